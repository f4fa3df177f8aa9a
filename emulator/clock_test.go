package emulator

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

// clock calls a /emulator/clock endpoint and decodes the JSON object answer.
func (env *testEnv) clockAPI(method string, body any) (int, map[string]any) {
	env.t.Helper()
	status, raw, _ := env.do(method, "/emulator/clock", body, "")
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		env.t.Fatalf("%s /emulator/clock: not JSON: %s", method, raw)
	}
	return status, m
}

func TestClockAdvanceExpiresCode(t *testing.T) {
	env := newEnv(t)
	id := env.challengeEmail("clock@example.com")
	code := env.lastCode("clock@example.com")

	status, m := env.clockAPI("POST", map[string]any{"advance": "11m"})
	if status != http.StatusOK || m["offset"] != "11m0s" {
		t.Fatalf("advance: %d %v", status, m)
	}
	want := env.clock.Now().Add(11 * time.Minute).UTC().Format(time.RFC3339)
	if _, m := env.clockAPI("GET", nil); m["now"] != want || m["offset"] != "11m0s" {
		t.Fatalf("GET clock = %v, want now %s", m, want)
	}
	if v := env.verify(id, code); v["isVerified"] != false || v["failureReason"] != FailureInvalidOrExpired {
		t.Fatalf("verify after 11m: %v", v)
	}
	// The offset applies to everything that reads the clock: a fresh code expires 10m after the new now.
	id2 := env.challengeEmail("clock@example.com")
	env.clockAPI("POST", map[string]any{"advance": "9m"})
	if v := env.verify(id2, env.lastCode("clock@example.com")); v["isVerified"] != true {
		t.Fatalf("verify within TTL after advancing: %v", v)
	}
	// Reset sets the offset back to zero.
	if status, _, _ := env.do("POST", "/emulator/reset", nil, ""); status != http.StatusOK {
		t.Fatalf("reset: %d", status)
	}
	if _, m := env.clockAPI("GET", nil); m["offset"] != "0s" {
		t.Fatalf("offset after reset: %v", m)
	}
}

func TestClockBadInput(t *testing.T) {
	env := newEnv(t)
	for _, body := range []any{
		map[string]any{},
		map[string]any{"advance": "soon"},
		map[string]any{"advance": "-5m"},
		map[string]any{"advance": "0s"},
		map[string]any{"advance": "8785h"},
		map[string]any{"advance": 600},
		"{not json",
		"",
	} {
		status, m := env.clockAPI("POST", body)
		wantError(t, status, m, http.StatusBadRequest, codeInvalidRequest)
	}
	if _, m := env.clockAPI("GET", nil); m["offset"] != "0s" {
		t.Fatalf("bad input moved the clock: %v", m)
	}
	// The total offset is bounded too.
	for i := 0; i < 100; i++ {
		env.clockAPI("POST", map[string]any{"advance": "8784h"})
	}
	status, m := env.clockAPI("POST", map[string]any{"advance": "8784h"})
	wantError(t, status, m, http.StatusBadRequest, codeInvalidRequest)
}

func TestClockConcurrentAdvance(t *testing.T) {
	env := newEnv(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env.emu.clock.Advance(time.Minute)
			env.emu.clock.Now()
		}()
	}
	wg.Wait()
	if got := env.emu.clock.Offset(); got != 20*time.Minute {
		t.Fatalf("offset %s, want 20m", got)
	}
}
