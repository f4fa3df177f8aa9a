package emulator

import (
	"bytes"
	"strings"
	"testing"
)

func seedPtr(v uint64) *uint64 { return &v }

func TestTestRecipientsGetFixedCodes(t *testing.T) {
	env := newEnv(t, func(c *Config) {
		c.Seed = seedPtr(7) // so the "other recipient" code below is stable, not flaky
		c.TestRecipients = map[string]string{"+15555550100": "123456", "Demo@Example.com": "000000"}
	})
	sms := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signInWithSms", "phoneNumber": "+15555550100"})
	if got := env.lastCode("+15555550100"); got != "123456" {
		t.Fatalf("SMS test recipient got code %q, want 123456", got)
	}
	if v := env.verify(sms["challengeId"].(string), "123456"); v["isVerified"] != true {
		t.Fatalf("verify fixed code: %v", v)
	}
	// Emails match case-insensitively, in the config and in the request.
	id := env.challengeEmail("DEMO@example.com")
	if got := env.lastCode("demo@example.com"); got != "000000" {
		t.Fatalf("email test recipient got code %q, want 000000", got)
	}
	// A re-send keeps the fixed code.
	env.apiOK("POST", "/v1/challenge", map[string]any{"challengeId": id})
	if msgs := env.messages("demo@example.com"); len(msgs) != 2 || msgs[0].Code != "000000" {
		t.Fatalf("re-send to test recipient: %+v", msgs)
	}
	// Anyone else gets a random code.
	for _, to := range []string{"other@example.com", "demo@example.org"} {
		env.challengeEmail(to)
		if c := env.lastCode(to); c == "000000" || c == "123456" || len(c) != 6 {
			t.Fatalf("%s got code %q: fixed codes must apply only to configured recipients", to, c)
		}
	}
	env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signInWithSms", "phoneNumber": "+15555550111"})
	if c := env.lastCode("+15555550111"); c == "123456" {
		t.Fatalf("another phone got the fixed code")
	}
}

func TestTestRecipientsValidation(t *testing.T) {
	tests := []struct {
		name    string
		m       map[string]string
		wantErr string
	}{
		{"short code", map[string]string{"+15555550100": "12345"}, "6 digits"},
		{"letters", map[string]string{"+15555550100": "12345a"}, "6 digits"},
		{"bad phone", map[string]string{"5555550100": "123456"}, "E.164"},
		{"bad email", map[string]string{"a@b": "123456"}, "recipient \"a@b\""},
		{"failing recipient", map[string]string{"x@fail.example.com": "123456"}, "always fails"},
		{"same address twice", map[string]string{"a@example.com": "111111", "A@example.com": "222222"}, "two different"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{SecretKey: testKey, DBPath: ":memory:", TestRecipients: tt.m})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "TestRecipients") {
				t.Fatalf("err = %v, want one mentioning TestRecipients and %q", err, tt.wantErr)
			}
		})
	}
}

// seededRun performs a fixed sequence of requests and returns every generated value.
func seededRun(t *testing.T, seed uint64) []string {
	t.Helper()
	env := newEnv(t, func(c *Config) { c.Seed = seedPtr(seed) })
	var out []string
	ch := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": "seed@example.com"})
	code := env.lastCode("seed@example.com")
	out = append(out, ch["challengeId"].(string), ch["idempotencyKey"].(string), code)
	env.verify(ch["challengeId"].(string), code)
	env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": ch["challengeId"], "userId": "seed-user"})
	tr := env.apiOK("POST", "/v1/users/seed-user/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 5}})
	out = append(out, tr["idempotencyKey"].(string))
	en := env.apiOK("POST", "/v1/users/seed-user/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+15555550123"})
	out = append(out, en["authenticator"].(map[string]any)["userAuthenticatorId"].(string))
	for _, a := range env.apiList("GET", "/v1/users/seed-user/authenticators") {
		out = append(out, a["userAuthenticatorId"].(string))
	}
	sms := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "stepUp", "phoneNumber": "+15555550123", "userId": "seed-user"})
	out = append(out, sms["challengeId"].(string), sms["idempotencyKey"].(string), env.lastCode("+15555550123"))
	for _, m := range env.messages("") {
		out = append(out, m.ID)
	}
	return out
}

func TestSeedMakesIDsAndCodesRepeatable(t *testing.T) {
	a, b := seededRun(t, 42), seededRun(t, 42)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("same seed, different values:\n%v\n%v", a, b)
	}
	if c := seededRun(t, 43); c[0] == a[0] || c[2] == a[2] && c[len(c)-1] == a[len(a)-1] {
		t.Fatalf("different seeds gave the same values: %v", c)
	}
	if _, err := New(Config{SecretKey: testKey, DBPath: ":memory:", Seed: seedPtr(1), Rand: bytes.NewReader(nil)}); err == nil || !strings.Contains(err.Error(), "Seed or Rand") {
		t.Fatalf("Seed with Rand: %v", err)
	}
}
