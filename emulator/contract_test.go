package emulator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
)

// TestContractWithProjectClient drives the project's typed client against the emulator:
// every endpoint the client offers, success and the main error paths.
func TestContractWithProjectClient(t *testing.T) {
	const key = "contract-key"
	emu, err := emulator.New(emulator.Config{SecretKey: key, DBPath: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); emu.Close() })
	ctx := context.Background()
	c := authsignal.New(key, authsignal.WithBaseURL(srv.URL+"/v1"), authsignal.WithMaxRetries(0))

	lastCode := func(to string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/emulator/messages?to=" + url.QueryEscape(to))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msgs []emulator.Message
		if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil || len(msgs) == 0 {
			t.Fatalf("outbox for %s: %v", to, err)
		}
		return msgs[0].Code
	}

	// Sign-in: challenge, wrong code, right code, claim.
	ch, err := c.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodEmailOTP, Action: "signInWithEmail", Email: "kim@example.com", Locale: "en"})
	if err != nil || ch.ChallengeID == "" || ch.ExpiresAt == 0 || ch.IdempotencyKey == "" {
		t.Fatalf("Challenge: %+v %v", ch, err)
	}
	code := lastCode("kim@example.com")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if v, err := c.Verify(ctx, authsignal.VerifyRequest{ChallengeID: ch.ChallengeID, VerificationCode: wrong}); err != nil || v.IsVerified || v.FailureReason != authsignal.FailureCodeInvalidOrExpired {
		t.Fatalf("Verify wrong: %+v %v", v, err)
	}
	if v, err := c.Verify(ctx, authsignal.VerifyRequest{ChallengeID: ch.ChallengeID, VerificationCode: code}); err != nil || !v.IsVerified || v.Email != "kim@example.com" {
		t.Fatalf("Verify: %+v %v", v, err)
	}
	gc, err := c.GetChallenge(ctx, authsignal.GetChallengeRequest{ChallengeID: ch.ChallengeID})
	if err != nil || gc.Action != "signInWithEmail" || gc.Email != "kim@example.com" {
		t.Fatalf("GetChallenge: %+v %v", gc, err)
	}
	cl, err := c.Claim(ctx, authsignal.ClaimRequest{ChallengeID: ch.ChallengeID, UserID: "kim"})
	if err != nil || cl.Token == "" || cl.VerificationMethod != authsignal.MethodEmailOTP {
		t.Fatalf("Claim: %+v %v", cl, err)
	}
	u, err := c.GetUser(ctx, "kim")
	if err != nil || !u.IsEnrolled || u.Email != "kim@example.com" || !u.EmailVerified {
		t.Fatalf("GetUser: %+v %v", u, err)
	}

	// Users and authenticators.
	if up, err := c.UpdateUser(ctx, "kim", authsignal.UpdateUserRequest{Username: "kimmy", Custom: map[string]any{"plan": "pro"}}); err != nil || up.Username != "kimmy" || up.Custom["plan"] != "pro" {
		t.Fatalf("UpdateUser: %+v %v", up, err)
	}
	en, err := c.EnrollAuthenticator(ctx, "kim", authsignal.EnrollAuthenticatorRequest{VerificationMethod: authsignal.MethodSMS, PhoneNumber: "+447700900555"})
	if err != nil || en.Authenticator.UserAuthenticatorID == "" {
		t.Fatalf("EnrollAuthenticator: %+v %v", en, err)
	}
	auths, err := c.GetAuthenticators(ctx, "kim")
	if err != nil || len(auths) != 2 {
		t.Fatalf("GetAuthenticators: %+v %v", auths, err)
	}
	if err := c.DeleteAuthenticator(ctx, "kim", en.Authenticator.UserAuthenticatorID); err != nil {
		t.Fatalf("DeleteAuthenticator: %v", err)
	}
	q, err := c.QueryUsers(ctx, authsignal.QueryUsersRequest{Email: "kim@example.com"})
	if err != nil || len(q.Users) != 1 || q.Users[0].UserID != "kim" {
		t.Fatalf("QueryUsers: %+v %v", q, err)
	}

	// Step-up: track, page flow by hand, validate.
	tr, err := c.Track(ctx, "kim", "withdrawal", authsignal.TrackAttributes{IdempotencyKey: "wd-1", Custom: map[string]any{"amount": 1500.25}, RedirectURL: "https://app.example/cb"})
	if err != nil || tr.State != authsignal.StateChallengeRequired || tr.URL == "" || tr.Token == "" || len(tr.RuleIDs) != 1 || !tr.IsEnrolled {
		t.Fatalf("Track: %+v %v", tr, err)
	}
	a, err := c.GetAction(ctx, "kim", "withdrawal", "wd-1")
	if err != nil || a.State != authsignal.StateChallengeRequired || len(a.Rules) != 1 || a.Rules[0].RuleID != "challenge-withdrawal" {
		t.Fatalf("GetAction: %+v %v", a, err)
	}
	if a, err := c.UpdateAction(ctx, "kim", "withdrawal", "wd-1", authsignal.UpdateActionRequest{State: authsignal.StateChallengeSucceeded}); err != nil || a.State != authsignal.StateChallengeSucceeded {
		t.Fatalf("UpdateAction: %+v %v", a, err)
	}
	v, err := c.Validate(ctx, authsignal.ValidateRequest{Token: tr.Token, UserID: "kim", Action: "withdrawal"})
	if err != nil || !v.IsValid || v.State != authsignal.StateChallengeSucceeded || v.IdempotencyKey != "wd-1" || v.Action != "withdrawal" || v.ActionCode != "withdrawal" {
		t.Fatalf("Validate: %+v %v", v, err)
	}
	if v, err := c.Validate(ctx, authsignal.ValidateRequest{Token: tr.Token + "x"}); err != nil || v.IsValid {
		t.Fatalf("Validate tampered: %+v %v", v, err)
	}
	list, err := c.QueryActions(ctx, "kim", authsignal.QueryActionsRequest{Codes: []string{"withdrawal", "signInWithEmail"}})
	if err != nil || len(list) != 2 {
		t.Fatalf("QueryActions: %+v %v", list, err)
	}

	// Errors map to the client's typed error.
	if _, err := c.GetUser(ctx, "nobody"); !authsignal.IsCode(err, authsignal.ErrorCodeNotFound) {
		t.Fatalf("GetUser unknown: %v", err)
	}
	if _, err := c.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodSMS, Action: "signIn", PhoneNumber: "0770"}); !authsignal.IsCode(err, authsignal.ErrorCodeInvalidRequest) {
		t.Fatalf("Challenge bad phone: %v", err)
	}
	bad := authsignal.New("wrong", authsignal.WithBaseURL(srv.URL+"/v1"), authsignal.WithMaxRetries(0))
	if _, err := bad.GetUser(ctx, "kim"); !authsignal.IsCode(err, authsignal.ErrorCodeUnauthorized) {
		t.Fatalf("wrong key: %v", err)
	}
	for i := 0; i < emulator.DefaultLimits().SMSPerWindow; i++ {
		if _, err := c.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodWhatsApp, Action: "signIn", PhoneNumber: "+447700900777"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Challenge(ctx, authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodSMS, Action: "signIn", PhoneNumber: "+447700900777"}); !authsignal.IsCode(err, authsignal.ErrorCodeTooManyRequests) {
		t.Fatalf("send limit: %v", err)
	}
	if err := c.DeleteUser(ctx, "kim"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
}
