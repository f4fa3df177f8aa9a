package emulator

import (
	"strings"
	"testing"
)

func TestCallConnect(t *testing.T) {
	env := newEnv(t)
	call := func(path string, body any) (int, map[string]any) {
		t.Helper()
		return env.apiWithKey("POST", path, body, DevCallConnectSecretKey)
	}
	status, m := call("/call/start", map[string]any{"referenceId": "ref-1", "email": "Caller@Example.com"})
	if status != 200 || m["channel"] != "EMAIL" || m["email"] != "caller@example.com" || m["messageId"] == nil {
		t.Fatalf("start by email: %d %v", status, m)
	}
	msgs := env.messages("caller@example.com")
	if len(msgs) != 1 || msgs[0].ID != m["messageId"] || !strings.Contains(msgs[0].Body, "/emulator/calls/ref-1") {
		t.Fatalf("outbox %+v", msgs)
	}
	if status, m = call("/call/start", map[string]any{"referenceId": "ref-2", "phoneNumber": "+15555550140", "channel": "SMS"}); status != 200 || m["channel"] != "SMS" {
		t.Fatalf("start by SMS: %d %v", status, m)
	}
	if status, m = call("/call/finish", map[string]any{"referenceId": "ref-1", "state": "CHALLENGE_FAILED", "userId": "caller-1"}); status != 200 || m["success"] != true {
		t.Fatalf("finish: %d %v", status, m)
	}
	var got map[string]any
	env.getJSON("/emulator/calls/ref-1", &got)
	if got["state"] != "CHALLENGE_FAILED" || got["userId"] != "caller-1" || got["actionCode"] != "call" || got["finishedAt"] == nil {
		t.Fatalf("call %v", got)
	}

	for _, tt := range []struct {
		name, path string
		body       map[string]any
		status     int
	}{
		{"no referenceId", "/call/start", map[string]any{"phoneNumber": "+15555550140"}, 400},
		{"no address", "/call/start", map[string]any{"referenceId": "r"}, 400},
		{"SMS without a phone", "/call/start", map[string]any{"referenceId": "r", "channel": "SMS", "email": "a@example.com"}, 400},
		{"a local number", "/call/start", map[string]any{"referenceId": "r", "phoneNumber": "0211234567", "country": "NZL"}, 400},
		{"an unknown channel", "/call/start", map[string]any{"referenceId": "r", "phoneNumber": "+15555550140", "channel": "PUSH"}, 400},
		{"a bad locale", "/call/start", map[string]any{"referenceId": "r", "phoneNumber": "+15555550140", "locale": "english"}, 400},
		{"finish a call never started", "/call/finish", map[string]any{"referenceId": "nope", "state": "CHALLENGE_SUCCEEDED"}, 404},
		{"finish with another state", "/call/finish", map[string]any{"referenceId": "ref-1", "state": "ALLOW"}, 400},
		{"a payload that is not an object", "/call/finish", map[string]any{"referenceId": "ref-1", "state": "CHALLENGE_SUCCEEDED", "payload": []int{1}}, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, m := call(tt.path, tt.body)
			wantError(t, status, m, tt.status, "invalid_request")
		})
	}
	// The Server API's key is not Call Connect's, nor the other way round.
	status, m = env.apiWithKey("POST", "/call/start", map[string]any{"referenceId": "r", "phoneNumber": "+15555550140"}, testKey)
	wantError(t, status, m, 401, "unauthorized")
	status, _, _ = env.do("GET", "/v1/users/u1", nil, DevCallConnectSecretKey)
	if status != 401 {
		t.Fatalf("the Call Connect key on the Server API: %d", status)
	}
}
