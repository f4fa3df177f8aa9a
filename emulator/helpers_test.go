package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/internal/testkit"
)

const testKey = "test-secret-key"

// newTestClock is the emulator tests' clock, at a fixed start.
func newTestClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
}

type testEnv struct {
	t     testing.TB
	emu   *Emulator
	srv   *httptest.Server
	clock *testkit.Clock
}

// newEnv starts an in-memory emulator behind an httptest server. mutate may adjust the config.
func newEnv(t testing.TB, mutate ...func(*Config)) *testEnv {
	t.Helper()
	clock := newTestClock()
	cfg := Config{SecretKey: testKey, DBPath: ":memory:", Now: clock.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	emu, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := emu.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testEnv{t: t, emu: emu, srv: srv, clock: clock}
}

// do sends a request; body may be nil, a string/[]byte (sent raw) or any value (JSON-encoded).
func (env *testEnv) do(method, path string, body any, key string) (int, []byte, http.Header) {
	env.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			env.t.Fatalf("marshal: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, env.srv.URL+path, r)
	if err != nil {
		env.t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		env.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		env.t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, out, resp.Header
}

// api calls the Server API with the right key and decodes a JSON object answer.
func (env *testEnv) api(method, path string, body any) (int, map[string]any) {
	env.t.Helper()
	return env.apiWithKey(method, path, body, testKey)
}

// apiWithKey is api with another key (Call Connect's, say).
func (env *testEnv) apiWithKey(method, path string, body any, key string) (int, map[string]any) {
	env.t.Helper()
	status, raw, h := env.do(method, path, body, key)
	// Exactly, without a charset: the Python SDK decodes nothing else.
	if ct := h.Get("Content-Type"); ct != "application/json" {
		env.t.Fatalf("%s %s: content type %q, want exactly application/json; body %s", method, path, ct, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		env.t.Fatalf("%s %s: not a JSON object: %s", method, path, raw)
	}
	return status, m
}

// apiOK is api that requires a 200.
func (env *testEnv) apiOK(method, path string, body any) map[string]any {
	env.t.Helper()
	status, m := env.api(method, path, body)
	if status != http.StatusOK {
		env.t.Fatalf("%s %s: status %d, body %v", method, path, status, m)
	}
	return m
}

// apiList calls an endpoint answering a JSON array.
func (env *testEnv) apiList(method, path string) []map[string]any {
	env.t.Helper()
	status, raw, h := env.do(method, path, nil, testKey)
	if ct := h.Get("Content-Type"); ct != "application/json" {
		env.t.Fatalf("%s %s: content type %q, want exactly application/json", method, path, ct)
	}
	if status != http.StatusOK {
		env.t.Fatalf("%s %s: status %d, body %s", method, path, status, raw)
	}
	var l []map[string]any
	if err := json.Unmarshal(raw, &l); err != nil {
		env.t.Fatalf("%s %s: not a JSON array: %s", method, path, raw)
	}
	return l
}

// documentedErrorCodes are the codes the real API documents
// (docs.authsignal.com/sdks/server/error-handling, and for the Client API
// sdks/client/web/error-handling); the emulator answers no others.
var documentedErrorCodes = map[string]bool{"invalid_request": true, "unauthorized": true, "too_many_requests": true,
	"invalid_configuration": true, "invalid_credential": true, "expired_token": true}

// enrol gives a user an email authenticator, so that rules can challenge them: the real
// service answers ALLOW to a user with none.
func (env *testEnv) enrol(userID, email string) {
	env.t.Helper()
	env.apiOK("POST", "/v1/users/"+userID+"/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": email})
}

// wantError checks a JSON error answer.
func wantError(t testing.TB, status int, m map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if code, _ := m["errorCode"].(string); !documentedErrorCodes[code] {
		t.Fatalf("errorCode %q is not a documented error code (body %v)", code, m)
	}
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %v)", status, wantStatus, m)
	}
	if m["error"] != wantCode || m["errorCode"] != wantCode {
		t.Fatalf("error %v / errorCode %v, want %q", m["error"], m["errorCode"], wantCode)
	}
	if d, _ := m["errorDescription"].(string); d == "" {
		t.Fatalf("errorDescription empty: %v", m)
	}
}

// messages returns the outbox for a recipient, newest first.
func (env *testEnv) messages(to string) []Message {
	env.t.Helper()
	status, raw, _ := env.do("GET", "/emulator/messages?to="+url.QueryEscape(to), nil, "")
	if status != http.StatusOK {
		env.t.Fatalf("messages: %d %s", status, raw)
	}
	var msgs []Message
	if err := json.Unmarshal(raw, &msgs); err != nil {
		env.t.Fatalf("messages: %v: %s", err, raw)
	}
	return msgs
}

// lastCode is the newest code sent to a recipient.
func (env *testEnv) lastCode(to string) string {
	env.t.Helper()
	msgs := env.messages(to)
	if len(msgs) == 0 {
		env.t.Fatalf("no message to %s", to)
	}
	return msgs[0].Code
}

// challengeEmail starts an email challenge and returns its id.
func (env *testEnv) challengeEmail(email string) string {
	env.t.Helper()
	m := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": email})
	return m["challengeId"].(string)
}

func (env *testEnv) verify(id, code string) map[string]any {
	env.t.Helper()
	return env.apiOK("POST", "/v1/verify", map[string]any{"challengeId": id, "verificationCode": code})
}

// wrongCode returns a 6-digit code different from code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// counts is how many users, actions, reviews and challenges the state holds.
func (env *testEnv) counts() state.Counts {
	env.t.Helper()
	c, err := env.emu.store.Counts(context.Background())
	if err != nil {
		env.t.Fatal(err)
	}
	return c
}
