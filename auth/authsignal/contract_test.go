package authsignal_test

// The contract test drives the client against the real emulator in-process: every
// endpoint, the wire shapes both sides agree on, and the error mapping. A failure
// here means the client and the emulator disagree about the Server API.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
	"example.com/passwordless/internal/testkit"
)

const contractSecret = "contract-test-secret-key"

type contractEnv struct {
	t        *testing.T
	srv      *httptest.Server
	client   *authsignal.Client
	requests atomic.Int32 // requests the client sent
}

func newContractEnv(t *testing.T) *contractEnv {
	t.Helper()
	em, err := emulator.New(emulator.Config{SecretKey: contractSecret, DBPath: ":memory:"})
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	t.Cleanup(func() { em.Close() })
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	env := &contractEnv{t: t, srv: srv}
	env.client = env.newClient(contractSecret)
	return env
}

// newClient returns a client for the emulator that counts the requests it sends.
func (env *contractEnv) newClient(secret string) *authsignal.Client {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: countingTransport{n: &env.requests}}
	return authsignal.New(secret, authsignal.WithBaseURL(env.srv.URL+"/v1/"), authsignal.WithHTTPClient(hc), authsignal.WithRetryBackoff(0))
}

type countingTransport struct{ n *atomic.Int32 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// latestMessage reads the newest outbox message sent to `to`.
func (env *contractEnv) latestMessage(to string) testkit.Message {
	env.t.Helper()
	msgs, err := testkit.Outbox(nil, env.srv.URL, to)
	if err != nil {
		env.t.Fatal(err)
	}
	if len(msgs) == 0 {
		env.t.Fatalf("outbox: no message to %s", to)
	}
	return msgs[0]
}

func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestContract(t *testing.T) {
	env := newContractEnv(t)
	c := env.client
	ctx := context.Background()
	// Odd characters exercise path escaping against the emulator's router.
	const userID = "user/1 ü+x"

	t.Run("sign in by email, SMS and WhatsApp", func(t *testing.T) {
		channels := []struct {
			method, action, email, phone, channel string
		}{
			{authsignal.MethodEmailOTP, "signInWithEmail", "alice@example.com", "", "EMAIL"},
			{authsignal.MethodSMS, "signInWithSms", "", "+15551234567", "SMS"},
			{authsignal.MethodWhatsApp, "signInWithWhatsapp", "", "+15557654321", "WHATSAPP"},
		}
		for _, ch := range channels {
			t.Run(ch.method, func(t *testing.T) {
				recipient := ch.email + ch.phone
				started := time.Now()
				chal, err := c.Challenge(ctx, authsignal.ChallengeRequest{
					VerificationMethod: ch.method, Action: ch.action, Email: ch.email, PhoneNumber: ch.phone,
					Locale: "en", IPAddress: "203.0.113.7", UserAgent: "contract-test", DeviceID: "device-1",
				})
				if err != nil {
					t.Fatalf("challenge: %v", err)
				}
				if chal.ChallengeID == "" || chal.IdempotencyKey == "" {
					t.Errorf("challenge response %+v: want challengeId and idempotencyKey", chal)
				}
				if exp := time.Unix(chal.ExpiresAt, 0); exp.Before(started.Add(5*time.Minute)) || exp.After(started.Add(time.Hour)) {
					t.Errorf("expiresAt = %v, want Unix seconds about 10 minutes ahead", exp)
				}

				got, err := c.GetChallenge(ctx, authsignal.GetChallengeRequest{ChallengeID: chal.ChallengeID})
				if err != nil {
					t.Fatalf("get challenge: %v", err)
				}
				// No verificationMethod until the challenge is completed.
				if got.ChallengeID != chal.ChallengeID || got.ExpiresAt != chal.ExpiresAt || got.VerificationMethod != "" ||
					got.Action != ch.action || got.Email != ch.email || got.PhoneNumber != ch.phone {
					t.Errorf("get challenge = %+v", got)
				}

				msg := env.latestMessage(recipient)
				if msg.Channel != ch.channel || len(msg.Code) != 6 {
					t.Fatalf("outbox message: channel %q, code length %d", msg.Channel, len(msg.Code))
				}

				wrong, err := c.Verify(ctx, authsignal.VerifyRequest{ChallengeID: chal.ChallengeID, VerificationCode: wrongCode(msg.Code)})
				if err != nil {
					t.Fatalf("verify wrong code: %v", err)
				}
				if wrong.IsVerified || wrong.FailureReason != authsignal.FailureCodeInvalidOrExpired {
					t.Errorf("wrong code: %+v, want not verified, %s", wrong, authsignal.FailureCodeInvalidOrExpired)
				}

				ok, err := c.Verify(ctx, authsignal.VerifyRequest{ChallengeID: chal.ChallengeID, VerificationCode: msg.Code})
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if !ok.IsVerified || ok.FailureReason != "" || ok.VerificationMethod != ch.method || ok.Email != ch.email || ok.PhoneNumber != ch.phone {
					t.Errorf("verify = %+v", ok)
				}
				if got, err := c.GetChallenge(ctx, authsignal.GetChallengeRequest{ChallengeID: chal.ChallengeID}); err != nil || got.VerificationMethod != ch.method {
					t.Errorf("get verified challenge = %+v, %v; want verificationMethod %s", got, err, ch.method)
				}

				claim, err := c.Claim(ctx, authsignal.ClaimRequest{ChallengeID: chal.ChallengeID, UserID: userID})
				if err != nil {
					t.Fatalf("claim: %v", err)
				}
				if claim.Token == "" || claim.VerificationMethod != ch.method {
					t.Errorf("claim = {token set: %v, method %q}", claim.Token != "", claim.VerificationMethod)
				}

				// Claim enrols nothing; the app enrols the verified address itself.
				if user, err := c.GetUser(ctx, userID); err != nil || slices.Contains(user.EnrolledVerificationMethods, ch.method) {
					t.Errorf("user after claim = %+v, %v; want %s not enrolled yet", user, err, ch.method)
				}
				if _, err := c.EnrollAuthenticator(ctx, userID, authsignal.EnrollAuthenticatorRequest{VerificationMethod: ch.method, Email: ch.email, PhoneNumber: ch.phone}); err != nil {
					t.Fatalf("enroll: %v", err)
				}
				user, err := c.GetUser(ctx, userID)
				if err != nil {
					t.Fatalf("get user: %v", err)
				}
				if !user.IsEnrolled || !slices.Contains(user.EnrolledVerificationMethods, ch.method) {
					t.Errorf("user = %+v, want enrolled with %s", user, ch.method)
				}

				auths, err := c.GetAuthenticators(ctx, userID)
				if err != nil {
					t.Fatalf("get authenticators: %v", err)
				}
				i := slices.IndexFunc(auths, func(a authsignal.UserAuthenticator) bool {
					return a.VerificationMethod == ch.method && a.Email == ch.email && a.PhoneNumber == ch.phone
				})
				if i < 0 {
					t.Fatalf("authenticators %+v: none for %s %s", auths, ch.method, recipient)
				}
				if a := auths[i]; a.UserAuthenticatorID == "" || a.UserID != userID || !isISOTime(a.CreatedAt) {
					t.Errorf("authenticator = %+v", a)
				}
			})
		}
	})

	t.Run("resend keeps the challenge usable", func(t *testing.T) {
		const phone = "+15550009999"
		first, err := c.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodWhatsApp, Action: "signInWithWhatsapp", PhoneNumber: phone})
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Challenge(ctx, authsignal.ChallengeRequest{ChallengeID: first.ChallengeID, VerificationMethod: authsignal.MethodWhatsApp, Action: "signInWithWhatsapp", PhoneNumber: phone})
		if err != nil {
			t.Fatalf("resend: %v", err)
		}
		res, err := c.Verify(ctx, authsignal.VerifyRequest{ChallengeID: again.ChallengeID, VerificationCode: env.latestMessage(phone).Code})
		if err != nil || !res.IsVerified {
			t.Fatalf("verify after resend: %+v, %v", res, err)
		}
	})

	// Each subtest below has a user of its own (enrolledUser) and makes what it needs, so
	// that any one of them can run alone (-run) and in any order.
	t.Run("track withdrawals", func(t *testing.T) {
		env.trackWithdrawals(t, env.enrolledUser(t, "track"))
	})

	t.Run("get, update and query actions", func(t *testing.T) {
		userID := env.enrolledUser(t, "actions")
		env.trackWithdrawals(t, userID)
		action, err := c.GetAction(ctx, userID, "withdrawal", "w-large")
		if err != nil {
			t.Fatalf("get action: %v", err)
		}
		if action.State != authsignal.StateChallengeRequired || !isISOTime(action.CreatedAt) || !isISOTime(action.StateUpdatedAt) ||
			len(action.RuleIDs) == 0 || len(action.Rules) == 0 || action.Rules[0].RuleID != action.RuleIDs[0] || action.Rules[0].Name == "" {
			t.Errorf("get action = %+v", action)
		}

		updated, err := c.UpdateAction(ctx, userID, "withdrawal", "w-huge", authsignal.UpdateActionRequest{State: authsignal.StateReviewSucceeded})
		if err != nil {
			t.Fatalf("update action: %v", err)
		}
		if updated.State != authsignal.StateReviewSucceeded {
			t.Errorf("update action = %+v", updated)
		}
		if again, err := c.GetAction(ctx, userID, "withdrawal", "w-huge"); err != nil || again.State != authsignal.StateReviewSucceeded {
			t.Errorf("get updated action = %+v, %v", again, err)
		}

		all, err := c.QueryActions(ctx, userID, authsignal.QueryActionsRequest{Codes: []string{"withdrawal"}})
		if err != nil {
			t.Fatalf("query actions: %v", err)
		}
		var keys []string
		for _, a := range all {
			keys = append(keys, a.IdempotencyKey)
			if a.ActionCode != "withdrawal" || !isISOTime(a.CreatedAt) || !isISOTime(a.UpdatedAt) || !isISOTime(a.StateUpdatedAt) {
				t.Errorf("action summary = %+v", a)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"w-huge", "w-large", "w-small"}) {
			t.Errorf("queried actions = %v", keys)
		}
		byState, err := c.QueryActions(ctx, userID, authsignal.QueryActionsRequest{Codes: []string{"withdrawal", "signInWithEmail"}, State: authsignal.StateAllow})
		if err != nil {
			t.Fatalf("query actions by state: %v", err)
		}
		if len(byState) != 1 || byState[0].IdempotencyKey != "w-small" {
			t.Errorf("ALLOW actions = %+v", byState)
		}
		future, err := c.QueryActions(ctx, userID, authsignal.QueryActionsRequest{FromDate: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		if err != nil || len(future) != 0 {
			t.Errorf("actions from the future = %+v, %v", future, err)
		}
	})

	t.Run("validate", func(t *testing.T) {
		userID := env.enrolledUser(t, "validate")
		challengeToken := env.trackWithdrawals(t, userID)
		res, err := c.Validate(ctx, authsignal.ValidateRequest{Token: challengeToken, UserID: userID, Action: "withdrawal"})
		if err != nil {
			t.Fatalf("validate: %v", err)
		}
		// Genuine but not yet challenged: the action's details, isValid false.
		if res.IsValid || res.State != authsignal.StateChallengeRequired || res.UserID != userID || res.Action != "withdrawal" ||
			res.ActionCode != "withdrawal" || res.IdempotencyKey != "w-large" || !isISOTime(res.StateUpdatedAt) {
			t.Errorf("validate = %+v", res)
		}
		other, err := c.Validate(ctx, authsignal.ValidateRequest{Token: challengeToken, UserID: "someone-else"})
		if err != nil {
			t.Fatalf("validate for another user: %v", err)
		}
		if other.IsValid || other.State != "" || other.Error == "" {
			t.Errorf("a token for another user: %+v, want isValid false, no state and an error", other)
		}
	})

	t.Run("enroll and delete an authenticator", func(t *testing.T) {
		userID := env.enrolledUser(t, "enrol")
		res, err := c.EnrollAuthenticator(ctx, userID, authsignal.EnrollAuthenticatorRequest{VerificationMethod: authsignal.MethodSMS, PhoneNumber: "+15550001111"})
		if err != nil {
			t.Fatalf("enroll: %v", err)
		}
		a := res.Authenticator
		if a.UserAuthenticatorID == "" || a.UserID != userID || a.VerificationMethod != authsignal.MethodSMS || a.PhoneNumber != "+15550001111" || !isISOTime(a.CreatedAt) {
			t.Errorf("enrolled = %+v", a)
		}
		if !hasAuthenticator(t, c, userID, a.UserAuthenticatorID) {
			t.Error("enrolled authenticator not listed")
		}
		if err := c.DeleteAuthenticator(ctx, userID, a.UserAuthenticatorID); err != nil {
			t.Fatalf("delete authenticator: %v", err)
		}
		if hasAuthenticator(t, c, userID, a.UserAuthenticatorID) {
			t.Error("deleted authenticator still listed")
		}
		err = c.DeleteAuthenticator(ctx, userID, a.UserAuthenticatorID)
		if !authsignal.IsStatus(err, http.StatusNotFound) || !authsignal.IsCode(err, authsignal.ErrorCodeInvalidRequest) {
			t.Errorf("deleting twice: %v, want 404 invalid_request", err)
		}
	})

	t.Run("update and query users", func(t *testing.T) {
		userID := env.enrolledUser(t, "ann")
		up, err := c.UpdateUser(ctx, userID, authsignal.UpdateUserRequest{Username: "alice", DisplayName: "Alice", Custom: map[string]any{"tier": "gold"}})
		if err != nil {
			t.Fatalf("update user: %v", err)
		}
		if up.UserID != userID || up.Username != "alice" || up.DisplayName != "Alice" || up.Custom["tier"] != "gold" || up.Email != "ann@example.com" || !up.EmailVerified {
			t.Errorf("updated user = %+v", up)
		}
		user, err := c.GetUser(ctx, userID)
		if err != nil {
			t.Fatalf("get user: %v", err)
		}
		if user.Username != "alice" || user.DisplayName != "Alice" || user.Custom["tier"] != "gold" || user.Email != "ann@example.com" {
			t.Errorf("user after update = %+v", user)
		}
		for name, q := range map[string]authsignal.QueryUsersRequest{
			"by email":    {Email: "ann@example.com"},
			"by username": {Username: "alice", Limit: 5},
		} {
			res, err := c.QueryUsers(ctx, q)
			if err != nil {
				t.Fatalf("query users %s: %v", name, err)
			}
			if len(res.Users) != 1 || res.Users[0].UserID != userID || res.Users[0].Email != "ann@example.com" {
				t.Errorf("query users %s = %+v", name, res)
			}
		}
		none, err := c.QueryUsers(ctx, authsignal.QueryUsersRequest{Email: "nobody@example.com"})
		if err != nil || none.Users == nil || len(none.Users) != 0 {
			t.Errorf("query unknown user = %+v, %v", none, err)
		}
	})

	t.Run("delete user", func(t *testing.T) {
		userID := env.enrolledUser(t, "delete")
		env.trackWithdrawals(t, userID)
		if err := c.DeleteUser(ctx, userID, authsignal.DeleteUserOptions{Actions: true}); err != nil {
			t.Fatalf("delete user: %v", err)
		}
		if _, err := c.GetAction(ctx, userID, "withdrawal", "w-large"); !authsignal.IsStatus(err, http.StatusNotFound) {
			t.Errorf("an action of a user deleted with actions: %v, want 404", err)
		}
		// A deleted user is unknown again: not enrolled, nothing remembered.
		user, err := c.GetUser(ctx, userID)
		if err != nil || user.IsEnrolled || user.Email != "" || len(user.EnrolledVerificationMethods) != 0 {
			t.Errorf("get deleted user: %+v, %v; want an unenrolled, empty user", user, err)
		}
	})
}

func TestContractErrors(t *testing.T) {
	env := newContractEnv(t)
	ctx := context.Background()
	const wrongKey = "not-the-secret-key"
	tests := []struct {
		name       string
		call       func() error
		wantStatus int
		wantCode   string
	}{
		{"wrong key", func() error {
			_, err := env.newClient(wrongKey).GetUser(ctx, "u1")
			return err
		}, 401, authsignal.ErrorCodeUnauthorized},
		{"wrong key on POST", func() error {
			_, err := env.newClient(wrongKey).Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodEmailOTP, Action: "signIn", Email: "a@example.com"})
			return err
		}, 401, authsignal.ErrorCodeUnauthorized},
		{"bad email", func() error {
			_, err := env.client.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodEmailOTP, Action: "signIn", Email: "not-an-email"})
			return err
		}, 400, authsignal.ErrorCodeInvalidRequest},
		{"phone not E.164", func() error {
			_, err := env.client.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodSMS, Action: "signIn", PhoneNumber: "555-1234"})
			return err
		}, 400, authsignal.ErrorCodeInvalidRequest},
		{"invalid action code", func() error {
			_, err := env.client.Track(ctx, "u1", "with drawal", authsignal.TrackAttributes{})
			return err
		}, 400, authsignal.ErrorCodeInvalidRequest},
		{"unknown challenge on verify", func() error {
			_, err := env.client.Verify(ctx, authsignal.VerifyRequest{ChallengeID: "no-such-challenge", VerificationCode: "123456"})
			return err
		}, 404, authsignal.ErrorCodeInvalidRequest},
		{"unknown challenge on claim", func() error {
			_, err := env.client.Claim(ctx, authsignal.ClaimRequest{ChallengeID: "no-such-challenge", UserID: "u1"})
			return err
		}, 404, authsignal.ErrorCodeInvalidRequest},
		{"unknown action", func() error {
			_, err := env.client.GetAction(ctx, "u1", "withdrawal", "nope")
			return err
		}, 404, authsignal.ErrorCodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.requests.Load()
			err := tt.call()
			var apiErr *authsignal.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *authsignal.Error", err, err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.Code != tt.wantCode || apiErr.Description == "" {
				t.Errorf("error = %+v, want status %d code %q and a description", apiErr, tt.wantStatus, tt.wantCode)
			}
			if msg := err.Error(); strings.Contains(msg, contractSecret) || strings.Contains(msg, wrongKey) {
				t.Errorf("Error() leaks a key: %s", msg)
			}
			if n := env.requests.Load() - before; n != 1 {
				t.Errorf("%d requests for a 4xx, want 1 (never retried)", n)
			}
		})
	}
}

// enrolledUser makes a user of its own for a subtest, with odd characters in its id (to
// exercise path escaping) and the email authenticator name@example.com.
func (env *contractEnv) enrolledUser(t *testing.T, name string) string {
	t.Helper()
	userID := "user/" + name + " ü+x"
	if _, err := env.client.EnrollAuthenticator(context.Background(), userID, authsignal.EnrollAuthenticatorRequest{
		VerificationMethod: authsignal.MethodEmailOTP, Email: name + "@example.com"}); err != nil {
		t.Fatalf("enrol %s: %v", userID, err)
	}
	return userID
}

// trackWithdrawals tracks a small, a large and a huge withdrawal of userID (w-small ALLOW,
// w-large CHALLENGE_REQUIRED, w-huge BLOCK), checks the answers, and returns w-large's token.
func (env *contractEnv) trackWithdrawals(t *testing.T, userID string) string {
	t.Helper()
	const redirect = "http://app.example/withdrawals/callback"
	tests := []struct {
		key       string
		amount    float64
		wantState string
	}{
		{"w-small", 50, authsignal.StateAllow},
		{"w-large", 1500.25, authsignal.StateChallengeRequired},
		{"w-huge", 20000, authsignal.StateBlock},
	}
	var token string
	for _, tt := range tests {
		res, err := env.client.Track(context.Background(), userID, "withdrawal", authsignal.TrackAttributes{
			IdempotencyKey: tt.key, RedirectURL: redirect, IPAddress: "203.0.113.7", UserAgent: "contract-test",
			DeviceID: "device-1", Email: "alice@example.com", Custom: map[string]any{"amount": tt.amount},
		})
		if err != nil {
			t.Fatalf("track %s: %v", tt.key, err)
		}
		if res.State != tt.wantState || res.IdempotencyKey != tt.key || !res.IsEnrolled {
			t.Errorf("track %s = %+v, want state %s", tt.key, res, tt.wantState)
		}
		if tt.wantState == authsignal.StateAllow {
			continue
		}
		if len(res.RuleIDs) == 0 {
			t.Errorf("track %s: no ruleIds", tt.key)
		}
		if tt.wantState == authsignal.StateChallengeRequired {
			wantURL := env.srv.URL + "/challenge?token=" + url.QueryEscape(res.Token)
			if res.Token == "" || res.URL != wantURL {
				t.Errorf("track url = %q, want %q", res.URL, wantURL)
			}
			token = res.Token
		}
	}
	return token
}

func hasAuthenticator(t *testing.T, c *authsignal.Client, userID, id string) bool {
	t.Helper()
	auths, err := c.GetAuthenticators(context.Background(), userID)
	if err != nil {
		t.Fatalf("get authenticators: %v", err)
	}
	return slices.ContainsFunc(auths, func(a authsignal.UserAuthenticator) bool { return a.UserAuthenticatorID == id })
}

func isISOTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}
