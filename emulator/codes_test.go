package emulator

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/state"
)

func TestCodeLifecycle(t *testing.T) {
	limits := DefaultLimits()
	tests := []struct {
		name string
		run  func(t *testing.T, env *testEnv)
	}{
		{"right code once", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			code := env.lastCode("a@example.com")
			if v := env.verify(id, code); v["isVerified"] != true {
				t.Fatalf("first %v", v)
			}
			if v := env.verify(id, code); v["isVerified"] != false || v["failureReason"] != FailureInvalidOrExpired {
				t.Fatalf("reuse %v", v)
			}
		}},
		{"expiry", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			code := env.lastCode("a@example.com")
			env.clock.Advance(limits.CodeTTL - time.Second)
			env.clock.Advance(time.Second)
			if v := env.verify(id, code); v["isVerified"] != false || v["failureReason"] != FailureInvalidOrExpired {
				t.Fatalf("expired %v", v)
			}
		}},
		{"just before expiry", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			code := env.lastCode("a@example.com")
			env.clock.Advance(limits.CodeTTL - time.Millisecond)
			if v := env.verify(id, code); v["isVerified"] != true {
				t.Fatalf("before expiry %v", v)
			}
		}},
		{"attempts", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			code := env.lastCode("a@example.com")
			for i := 1; i < limits.MaxAttempts; i++ {
				if v := env.verify(id, wrongCode(code)); v["failureReason"] != FailureInvalidOrExpired {
					t.Fatalf("wrong #%d: %v", i, v)
				}
			}
			if v := env.verify(id, wrongCode(code)); v["failureReason"] != FailureMaxAttemptsReached {
				t.Fatalf("wrong #%d: %v", limits.MaxAttempts, v)
			}
			if v := env.verify(id, code); v["isVerified"] != false || v["failureReason"] != FailureMaxAttemptsReached {
				t.Fatalf("right code after max: %v", v)
			}
		}},
		{"right code after some wrong", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			code := env.lastCode("a@example.com")
			for i := 1; i < limits.MaxAttempts; i++ {
				env.verify(id, wrongCode(code))
			}
			if v := env.verify(id, code); v["isVerified"] != true {
				t.Fatalf("right code on the last attempt: %v", v)
			}
		}},
		{"resend", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			old := env.lastCode("a@example.com")
			for i := 0; i < limits.MaxAttempts; i++ {
				env.verify(id, wrongCode(old))
			}
			env.clock.Advance(time.Minute)
			resp := env.apiOK("POST", "/v1/challenge", map[string]any{"challengeId": id, "verificationMethod": "EMAIL_OTP"})
			if resp["challengeId"] != id || resp["expiresAt"].(float64) != float64(env.clock.Now().Add(limits.CodeTTL).Unix()) {
				t.Fatalf("resend %v", resp)
			}
			fresh := env.lastCode("a@example.com")
			if len(env.messages("a@example.com")) != 2 {
				t.Fatal("resend sent no message")
			}
			if fresh != old {
				if v := env.verify(id, old); v["isVerified"] != false {
					t.Fatalf("old code works after resend: %v", v)
				}
			}
			if v := env.verify(id, fresh); v["isVerified"] != true {
				t.Fatalf("fresh code: %v", v)
			}
		}},
		{"resend mismatched method", func(t *testing.T, env *testEnv) {
			id := env.challengeEmail("a@example.com")
			status, m := env.api("POST", "/v1/challenge", map[string]any{"challengeId": id, "verificationMethod": "SMS"})
			wantError(t, status, m, 400, "invalid_request")
		}},
		{"email send limit", func(t *testing.T, env *testEnv) {
			for i := 0; i < limits.EmailPerWindow; i++ {
				env.challengeEmail("a@example.com")
			}
			status, m := env.api("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signIn", "email": "A@example.com"})
			wantError(t, status, m, http.StatusTooManyRequests, "too_many_requests")
			// Other recipients are unaffected; the window slides.
			env.challengeEmail("b@example.com")
			env.clock.Advance(limits.SendWindow)
			env.challengeEmail("a@example.com")
			if n := len(env.messages("a@example.com")); n != limits.EmailPerWindow+1 {
				t.Fatalf("messages %d", n)
			}
		}},
		{"sms and whatsapp share a limit, resend counts", func(t *testing.T, env *testEnv) {
			phone := "+447700900123"
			first := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signIn", "phoneNumber": phone})
			for i := 1; i < limits.SMSPerWindow-1; i++ {
				env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "WHATSAPP", "action": "signIn", "phoneNumber": phone})
			}
			env.apiOK("POST", "/v1/challenge", map[string]any{"challengeId": first["challengeId"]})
			status, m := env.api("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signIn", "phoneNumber": phone})
			wantError(t, status, m, http.StatusTooManyRequests, "too_many_requests")
			status, m = env.api("POST", "/v1/challenge", map[string]any{"challengeId": first["challengeId"]})
			wantError(t, status, m, http.StatusTooManyRequests, "too_many_requests")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newEnv(t))
		})
	}
}

func TestCustomLimits(t *testing.T) {
	env := newEnv(t, func(c *Config) {
		c.Limits = Limits{CodeTTL: time.Minute, MaxAttempts: 2, SendWindow: time.Hour, SMSPerWindow: 1, EmailPerWindow: 1, TokenTTL: time.Minute}
	})
	id := env.challengeEmail("a@example.com")
	code := env.lastCode("a@example.com")
	if v := env.verify(id, wrongCode(code)); v["failureReason"] != FailureInvalidOrExpired {
		t.Fatalf("1st wrong %v", v)
	}
	if v := env.verify(id, wrongCode(code)); v["failureReason"] != FailureMaxAttemptsReached {
		t.Fatalf("2nd wrong %v", v)
	}
	status, m := env.api("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signIn", "email": "a@example.com"})
	wantError(t, status, m, 429, "too_many_requests")
	if _, err := New(Config{SecretKey: "k", DBPath: ":memory:", Limits: Limits{CodeTTL: time.Minute}}); err == nil {
		t.Fatal("partial limits accepted")
	}
}

// TestVerifyRace: 50 concurrent attempts (wrong codes and the right one) on one challenge.
func TestVerifyRace(t *testing.T) {
	for round := 0; round < 3; round++ {
		env := newEnv(t)
		id := env.challengeEmail("race@example.com")
		code := env.lastCode("race@example.com")
		const n = 50
		var wg sync.WaitGroup
		results := make([]map[string]any, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c := wrongCode(code)
				if i%10 == 7 {
					c = code
				}
				results[i] = env.verify(id, c)
			}(i)
		}
		wg.Wait()
		verified, invalid, maxed := 0, 0, 0
		for _, r := range results {
			switch {
			case r["isVerified"] == true:
				verified++
			case r["failureReason"] == FailureInvalidOrExpired:
				invalid++
			case r["failureReason"] == FailureMaxAttemptsReached:
				maxed++
			default:
				t.Fatalf("unexpected result %v", r)
			}
		}
		if verified > 1 {
			t.Fatalf("right code succeeded %d times", verified)
		}
		attempts := env.attempts(id)
		if attempts > DefaultLimits().MaxAttempts {
			t.Fatalf("attempts counted %d > %d", attempts, DefaultLimits().MaxAttempts)
		}
		max := DefaultLimits().MaxAttempts
		if verified == 1 && attempts > max-1 {
			t.Fatalf("verified after %d wrong attempts (cap %d)", attempts, max)
		}
		if verified == 0 && (attempts != max || invalid != max-1 || maxed != n-(max-1)) {
			t.Fatalf("dead challenge: attempts %d, invalid %d, maxed %d", attempts, invalid, maxed)
		}
	}
}

func TestVerifyRaceFileDB(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.DBPath = t.TempDir() + "/race.db" })
	id := env.challengeEmail("race@example.com")
	code := env.lastCode("race@example.com")
	var wg sync.WaitGroup
	var mu sync.Mutex
	verified, live := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := wrongCode(code)
			if i%2 == 0 {
				c = code
			}
			r := env.verify(id, c)
			mu.Lock()
			defer mu.Unlock()
			if r["isVerified"] == true {
				verified++
			} else if c != code && r["failureReason"] == FailureInvalidOrExpired {
				live++
			}
		}(i)
	}
	wg.Wait()
	if verified > 1 {
		t.Fatalf("verified %d times, want at most 1 (the right code was sent 25 times)", verified)
	}
	attempts := env.attempts(id)
	max := DefaultLimits().MaxAttempts
	if attempts > max {
		t.Fatalf("attempts %d > %d", attempts, max)
	}
	// The right code loses only when five wrong ones were processed before it.
	if verified == 0 && attempts != max {
		t.Fatalf("no attempt verified, yet the challenge is not dead (%d wrong attempts)", attempts)
	}
}

// attempts is how many wrong codes a challenge has counted.
func (env *testEnv) attempts(challengeID string) int {
	env.t.Helper()
	c, err := env.emu.store.FindChallenge(context.Background(), state.ChallengeQuery{ID: challengeID})
	if err != nil || c == nil {
		env.t.Fatalf("challenge %s: %v", challengeID, err)
	}
	return c.Attempts
}
