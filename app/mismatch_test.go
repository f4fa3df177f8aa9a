package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// scriptedAuthsignal passes every call to the emulator and lets a test rewrite an answer,
// so that the app's own checks meet the mismatches the emulator never makes: a verified
// address, a token's user or action, an idempotency key or a challenge URL that is not the
// one the app expects. Every check of the app's must then make a test fail when removed.
type scriptedAuthsignal struct {
	Authsignal
	mu       sync.Mutex
	verify   func(*authsignal.VerifyResponse)
	track    func(*authsignal.TrackResponse)
	validate func(*authsignal.ValidateResponse)
}

func (f *scriptedAuthsignal) Verify(ctx context.Context, req authsignal.VerifyRequest) (*authsignal.VerifyResponse, error) {
	res, err := f.Authsignal.Verify(ctx, req)
	if edit := f.edits().verify; err == nil && edit != nil {
		edit(res)
	}
	return res, err
}

func (f *scriptedAuthsignal) Track(ctx context.Context, userID, action string, attrs authsignal.TrackAttributes) (*authsignal.TrackResponse, error) {
	res, err := f.Authsignal.Track(ctx, userID, action, attrs)
	if edit := f.edits().track; err == nil && edit != nil {
		edit(res)
	}
	return res, err
}

func (f *scriptedAuthsignal) Validate(ctx context.Context, req authsignal.ValidateRequest) (*authsignal.ValidateResponse, error) {
	res, err := f.Authsignal.Validate(ctx, req)
	if edit := f.edits().validate; err == nil && edit != nil {
		edit(res)
	}
	return res, err
}

func (f *scriptedAuthsignal) edits() *scriptedAuthsignal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &scriptedAuthsignal{verify: f.verify, track: f.track, validate: f.validate}
}

func (f *scriptedAuthsignal) script(set func(*scriptedAuthsignal)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verify, f.track, f.validate = nil, nil, nil
	set(f)
}

func newScriptedEnv(t *testing.T) (*testEnv, *scriptedAuthsignal) {
	fake := &scriptedAuthsignal{}
	env := newTestEnv(t, withAuthsignalWrapper(func(a Authsignal) Authsignal { fake.Authsignal = a; return fake }))
	return env, fake
}

// A code verified for another address than the sign-in's signs nobody in.
func TestVerifiedAddressMustBeTheSignInsOwn(t *testing.T) {
	env, fake := newScriptedEnv(t)
	for _, tt := range []struct{ method, recipient string }{{"email", uniqueEmail()}, {"sms", uniquePhone()}} {
		t.Run(tt.method, func(t *testing.T) {
			fake.script(func(f *scriptedAuthsignal) {
				f.verify = func(r *authsignal.VerifyResponse) {
					r.Email, r.PhoneNumber = "", ""
					if tt.method == "email" {
						r.Email = "someone-else@example.com"
					} else {
						r.PhoneNumber = "+14155550100"
					}
				}
			})
			b := env.newBrowser()
			fields := url.Values{"method": {tt.method}, "email": {tt.recipient}, "phone": {tt.recipient}}
			codePage := b.submit("/signin", "/signin", fields)
			page := b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, codePage.body)}, "code": {env.latestCode(tt.recipient)}})
			if page.url.Path != "/signin" {
				t.Fatalf("a mismatched verification: at %s", page.url)
			}
			mustContain(t, page, "We couldn't confirm that address with the sign-in service")
			if b.get("/account").url.Path == "/account" {
				t.Fatal("signed in on another address's verification")
			}
		})
	}
}

// The callback acts only on a token of this user's withdrawal action naming a withdrawal
// of theirs, and the pre-built UI's address must be an http(s) URL.
func TestCallbackRefusesTokensThatAreNotForThisWithdrawal(t *testing.T) {
	env, fake := newScriptedEnv(t)
	other, otherUser := env.signedIn()
	other.withdrawNoFollow("1500")
	otherWithdrawal := env.withdrawals(otherUser.ID)[0]

	tests := []struct {
		name   string
		edit   func(*authsignal.ValidateResponse)
		notice string
	}{
		{"another user", func(r *authsignal.ValidateResponse) { r.UserID = otherUser.ID }, "Nothing changed: that link is not valid for your account"},
		{"another action", func(r *authsignal.ValidateResponse) { r.Action, r.ActionCode = "addPayee", "addPayee" }, "Nothing changed: that link is not valid for your account"},
		{"another user's withdrawal", func(r *authsignal.ValidateResponse) { r.IdempotencyKey = otherWithdrawal.ID }, "Nothing changed: that link is not valid for your account"},
		{"an unknown withdrawal", func(r *authsignal.ValidateResponse) { r.IdempotencyKey = randomHex(16) }, "Nothing changed: that link is not valid for your account"},
		{"valid but not succeeded", func(r *authsignal.ValidateResponse) { r.IsValid, r.State = true, authsignal.StateAllow }, "The challenge was not completed; the withdrawal is still waiting"},
		{"succeeded but not valid", func(r *authsignal.ValidateResponse) { r.IsValid = false }, "The challenge was not completed; the withdrawal is still waiting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, user := env.signedIn()
			resp := b.withdrawNoFollow("1500")
			fake.script(func(f *scriptedAuthsignal) { f.validate = tt.edit })
			_, page := env.completeChallenge(b, resp.Header.Get("Location"), user.Email, true)
			fake.script(func(*scriptedAuthsignal) {})
			mustContain(t, page, tt.notice, "Balance: $25,000.00")
			if w := env.withdrawals(user.ID)[0]; w.State != store.WithdrawalAwaitingChallenge {
				t.Fatalf("its withdrawal is %s, want still awaiting its challenge", w.State)
			}
			if w, _ := env.store.GetWithdrawal(context.Background(), otherWithdrawal.ID); w.State != store.WithdrawalAwaitingChallenge || env.balance(otherUser.ID) != 2_500_000 {
				t.Fatalf("the other user's withdrawal moved: %s", w.State)
			}
		})
	}
	// A challenge URL that is not http(s) is never followed.
	b, user := env.signedIn()
	fake.script(func(f *scriptedAuthsignal) {
		f.track = func(r *authsignal.TrackResponse) {
			if r.State == authsignal.StateChallengeRequired {
				r.URL = "javascript:alert(document.cookie)"
			}
		}
	})
	resp := b.withdrawNoFollow("1500")
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "javascript:") || resp.StatusCode == http.StatusSeeOther && !strings.HasPrefix(loc, "/account") {
		t.Fatalf("followed an unusable challenge URL: %d to %q", resp.StatusCode, loc)
	}
	if w := env.withdrawals(user.ID)[0]; w.State != store.WithdrawalFailed || env.balance(user.ID) != 2_500_000 {
		t.Fatalf("withdrawal with an unusable challenge URL: %s", w.State)
	}
}
