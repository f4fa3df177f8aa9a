package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// failingEnrolment is an Authsignal that cannot enrol authenticators, as when the service
// fails at that moment.
type failingEnrolment struct{ Authsignal }

func (failingEnrolment) EnrollAuthenticator(context.Context, string, authsignal.EnrollAuthenticatorRequest) (*authsignal.EnrollAuthenticatorResponse, error) {
	return nil, &authsignal.Error{StatusCode: http.StatusServiceUnavailable, Description: "down for the test"}
}

// countedEnrolment counts the enrolments the app asks for.
type countedEnrolment struct {
	Authsignal
	n *atomic.Int32
}

func (c countedEnrolment) EnrollAuthenticator(ctx context.Context, userID string, req authsignal.EnrollAuthenticatorRequest) (*authsignal.EnrollAuthenticatorResponse, error) {
	c.n.Add(1)
	return c.Authsignal.EnrollAuthenticator(ctx, userID, req)
}

func TestSignInEnrolsTheVerifiedAddressOnce(t *testing.T) {
	var enrolments atomic.Int32
	env := newTestEnv(t, withAuthsignalWrapper(func(a Authsignal) Authsignal { return countedEnrolment{a, &enrolments} }))
	tests := []struct{ method, recipient, verificationMethod string }{
		{"email", uniqueEmail(), authsignal.MethodEmailOTP},
		{"sms", uniquePhone(), authsignal.MethodSMS},
		{"whatsapp", uniquePhone(), authsignal.MethodWhatsApp},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			// Twice: the second sign-in finds the address enrolled and asks for nothing (the
			// emulator would return the same authenticator; the real service is not
			// documented to).
			before := enrolments.Load()
			for range 2 {
				env.newBrowser().signIn(tt.method, tt.recipient)
			}
			if n := enrolments.Load() - before; n != 1 {
				t.Fatalf("%d enrolments for two sign-ins, want 1", n)
			}
			user := env.userByAddress(tt.recipient)
			auths, err := env.api().GetAuthenticators(context.Background(), user.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(auths) != 1 || auths[0].VerificationMethod != tt.verificationMethod || auths[0].Email+auths[0].PhoneNumber != tt.recipient {
				t.Fatalf("authenticators %+v, want one %s for %s", auths, tt.verificationMethod, tt.recipient)
			}
		})
	}
}

// A withdrawal the rules would challenge is never completed without a challenge, also for
// a user Authsignal has no authenticator for (it answers ALLOW with isEnrolled false).
func TestUnenrolledUserWithdrawalIsNeverCompleted(t *testing.T) {
	t.Run("enrolment keeps failing", func(t *testing.T) {
		env := newTestEnv(t, withAuthsignalWrapper(func(a Authsignal) Authsignal { return failingEnrolment{a} }))
		b, user := env.signedIn() // the sign-in goes on without the enrolment
		if !strings.Contains(env.logs.String(), "enroll authenticator") {
			t.Fatal("the failed enrolment was not logged")
		}
		for _, amount := range []string{"1500", "50"} {
			page := b.withdraw(amount)
			mustContain(t, page, "Nothing was taken: we couldn't set up the security check", "Balance: $25,000.00")
		}
		for _, w := range env.withdrawals(user.ID) {
			if w.State != store.WithdrawalFailed {
				t.Fatalf("withdrawal %+v, want failed", w)
			}
		}
	})
	t.Run("authenticator removed after sign-in", func(t *testing.T) {
		env := newTestEnv(t)
		b, user := env.signedIn()
		ctx := context.Background()
		auths, err := env.api().GetAuthenticators(ctx, user.ID)
		if err != nil || len(auths) != 1 {
			t.Fatalf("authenticators after sign-in: %+v, %v", auths, err)
		}
		if err := env.api().DeleteAuthenticator(ctx, user.ID, auths[0].UserAuthenticatorID); err != nil {
			t.Fatal(err)
		}
		page := b.withdraw("1500")
		mustContain(t, page, "Nothing was taken: your account was not yet set up for security checks", "Balance: $25,000.00")
		if list := env.withdrawals(user.ID); len(list) != 1 || list[0].State != store.WithdrawalFailed {
			t.Fatalf("withdrawals %+v, want one failed", list)
		}
		// Enrolled again, so the next try is challenged.
		resp := b.withdrawNoFollow("1500")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), env.emulatorURL+"/challenge?token=") {
			t.Fatalf("second try: %d to %q, want the pre-built UI", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// The pre-built UI can send the browser back without a success: the action is then
// CHALLENGE_FAILED, or still CHALLENGE_REQUIRED (a cancel can leave it so). Validate
// answers isValid false with the action's details; the withdrawal must end as failed.
func TestCallbackWithUnfinishedChallengeFails(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	resp := b.withdrawNoFollow("1500")
	challengeURL, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || challengeURL.Query().Get("token") == "" {
		t.Fatalf("challenge url %q", resp.Header.Get("Location"))
	}
	// The track token names the action while it is still CHALLENGE_REQUIRED.
	page := b.get("/withdrawals/callback?token=" + url.QueryEscape(challengeURL.Query().Get("token")))
	mustContain(t, page, "Withdrawal cancelled: it was not confirmed, so nothing was taken", "Balance: $25,000.00", "<td>cancelled</td>")
	if list := env.withdrawals(user.ID); len(list) != 1 || list[0].State != store.WithdrawalFailed {
		t.Fatalf("withdrawals %+v, want one failed", list)
	}
}

// userByAddress finds the app's user for an email or phone number.
func (e *testEnv) userByAddress(address string) store.User {
	e.t.Helper()
	find := e.store.FindOrCreateUserByPhone
	if strings.Contains(address, "@") {
		find = e.store.FindOrCreateUserByEmail
	}
	user, created, err := find(context.Background(), address)
	if err != nil || created {
		e.t.Fatalf("user %s: created %v, %v", address, created, err)
	}
	return user
}
