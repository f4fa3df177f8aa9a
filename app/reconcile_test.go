package app

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

func (e *testEnv) reconciler(client Authsignal) *Reconciler {
	return &Reconciler{Store: e.store, Authsignal: client, Now: e.clock.Now}
}

// Track times out but Authsignal recorded ALLOW: the app leaves the withdrawal pending
// (it does not know), says so, and the reconciler then settles it as Authsignal says.
func TestTimedOutTrackIsReconciledAsAuthsignalDecided(t *testing.T) {
	env := newTestEnv(t, withSlowTrack(300*time.Millisecond, 100*time.Millisecond))
	b, user := env.signedIn()
	page := b.withdraw("250")
	mustContain(t, page, "This withdrawal is being checked: nothing has been taken yet", "Balance: $25,000.00")
	w := env.withdrawals(user.ID)[0]
	if w.State != store.WithdrawalPending {
		t.Fatalf("after a timed-out track: %s, want pending", w.State)
	}
	ctx := context.Background()
	if a, err := env.api().GetAction(ctx, user.ID, WithdrawalAction, w.ID); err != nil || a.State != authsignal.StateAllow {
		t.Fatalf("Authsignal's record: %+v, %v; want ALLOW", a, err)
	}
	r := env.reconciler(env.api())
	if n, err := r.Once(ctx); err != nil || n != 0 {
		t.Fatalf("a fresh pending withdrawal is left alone: %d settled, %v", n, err)
	}
	env.clock.Advance(2 * time.Minute)
	if n, err := r.Once(ctx); err != nil || n != 1 {
		t.Fatalf("reconcile: %d settled, %v", n, err)
	}
	if got := env.withdrawals(user.ID)[0]; got.State != store.WithdrawalCompleted || env.balance(user.ID) != 2_500_000-25_000 {
		t.Fatalf("after reconciling: %s, balance %d; want completed and debited once", got.State, env.balance(user.ID))
	}
	if n, _ := r.Once(ctx); n != 0 {
		t.Fatal("a second pass settled again")
	}
}

// Each way a withdrawal can be left unsettled ends as its action did.
func TestReconcilerSettlesAsTheActionEnded(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	api := env.api()
	b, user := env.signedIn()
	// Four withdrawals left awaiting a challenge, and one pending that Authsignal never saw.
	var ids []string
	for range 4 {
		resp := b.withdrawNoFollow("1500")
		if !strings.HasPrefix(resp.Header.Get("Location"), env.emulatorURL+"/challenge") {
			t.Fatalf("withdrawal not challenged: %q", resp.Header.Get("Location"))
		}
	}
	for _, w := range env.withdrawals(user.ID) {
		ids = append(ids, w.ID)
	}
	orphan := store.Withdrawal{ID: randomHex(16), UserID: user.ID, AmountCents: 100}
	if err := env.store.CreateWithdrawal(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	// Their actions end in different states (the callback never came back: a closed tab, a crash).
	ends := map[string]string{ids[0]: authsignal.StateChallengeSucceeded, ids[1]: authsignal.StateChallengeFailed,
		ids[2]: authsignal.StateReviewRequired} // ids[3] stays CHALLENGE_REQUIRED: abandoned
	for id, state := range ends {
		if _, err := api.UpdateAction(ctx, user.ID, WithdrawalAction, id, authsignal.UpdateActionRequest{State: state}); err != nil {
			t.Fatal(err)
		}
	}
	r := env.reconciler(api)
	env.clock.Advance(5 * time.Minute) // past the pending age, not the challenge's
	if n, err := r.Once(ctx); err != nil || n != 1 {
		t.Fatalf("first pass: %d settled, %v; want only the orphan", n, err)
	}
	env.clock.Advance(15 * time.Minute)
	if n, err := r.Once(ctx); err != nil || n != 4 {
		t.Fatalf("second pass: %d settled, %v", n, err)
	}
	want := map[string]store.WithdrawalState{ids[0]: store.WithdrawalCompleted, ids[1]: store.WithdrawalFailed,
		ids[2]: store.WithdrawalHeld, ids[3]: store.WithdrawalFailed, orphan.ID: store.WithdrawalFailed}
	for _, w := range env.withdrawals(user.ID) {
		if w.State != want[w.ID] {
			t.Errorf("withdrawal %s: %s, want %s", w.ID, w.State, want[w.ID])
		}
	}
	if got := env.balance(user.ID); got != 2_500_000-150_000 {
		t.Fatalf("balance %d, want one 1,500 debit", got)
	}
}

// An ALLOW for a user Authsignal cannot challenge is not trusted by the reconciler either.
func TestReconcilerDoesNotCompleteAnUnenrolledAllow(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	_, user := env.signedIn()
	api := env.api()
	auths, _ := api.GetAuthenticators(ctx, user.ID)
	for _, a := range auths {
		if err := api.DeleteAuthenticator(ctx, user.ID, a.UserAuthenticatorID); err != nil {
			t.Fatal(err)
		}
	}
	w := store.Withdrawal{ID: randomHex(16), UserID: user.ID, AmountCents: 150_000}
	if err := env.store.CreateWithdrawal(ctx, w); err != nil {
		t.Fatal(err)
	}
	// As if the app crashed after Authsignal answered ALLOW (isEnrolled false) to its track.
	if _, err := api.Track(ctx, user.ID, WithdrawalAction, authsignal.TrackAttributes{IdempotencyKey: w.ID, Custom: map[string]any{"amount": 1500}}); err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(2 * time.Minute)
	if _, err := env.reconciler(api).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := env.withdrawals(user.ID)[0]; got.State != store.WithdrawalFailed || env.balance(user.ID) != 2_500_000 {
		t.Fatalf("unenrolled ALLOW reconciled to %s with balance %d; want failed, nothing taken", got.State, env.balance(user.ID))
	}
}

func TestCancelAWithdrawalAwaitingItsChallenge(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	resp := b.withdrawNoFollow("1500")
	account := b.get("/account")
	w := env.withdrawals(user.ID)[0]
	page := b.submitForm(account, "Cancel", nil)
	mustContain(t, page, "Withdrawal cancelled: nothing was taken", "Balance: $25,000.00", "<td>cancelled</td>")
	if got := env.withdrawals(user.ID)[0]; got.State != store.WithdrawalFailed {
		t.Fatalf("after Cancel: %s", got.State)
	}
	// Completing the challenge afterwards moves nothing.
	_, page = env.completeChallenge(b, resp.Header.Get("Location"), user.Email, true)
	mustContain(t, page, "Nothing changed: this withdrawal was already settled", "Balance: $25,000.00")
	// Another user cannot cancel it.
	other, _ := env.signedIn()
	page = other.submit("/account", "/withdrawals/"+w.ID+"/cancel", url.Values{})
	mustContain(t, page, "Nothing changed: that link is not valid for your account")
}
