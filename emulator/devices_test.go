package emulator

import (
	"testing"
	"time"
)

func TestDevices(t *testing.T) {
	rulesFile := writeRules(t, `{"rules":[
		{"id":"new-device","actionCode":"*","conditions":[{"field":"isNewDevice","op":"eq","value":true},{"field":"isEnrolled","op":"eq","value":true}],"outcome":"CHALLENGE_REQUIRED"}
	]}`)
	env := newEnv(t, func(c *Config) { c.RulesFile = rulesFile })
	env.enrol("dev-user", "dev@example.com")
	track := func(device, key string) map[string]any {
		return env.apiOK("POST", "/v1/users/dev-user/actions/login", map[string]any{"deviceId": device, "idempotencyKey": key})
	}
	if m := track("laptop", "k1"); m["state"] != "CHALLENGE_REQUIRED" {
		t.Fatalf("a new device: %v", m)
	}
	if m := track("laptop", "k2"); m["state"] != "ALLOW" {
		t.Fatalf("a known device: %v", m)
	}
	list := env.apiList("GET", "/v1/users/dev-user/devices")
	if len(list) != 1 || list[0]["deviceId"] != "laptop" || list[0]["userId"] != "dev-user" || list[0]["createdAt"] == nil || list[0]["authenticatedAt"] != nil {
		t.Fatalf("devices %v", list)
	}

	// A challenge that succeeds on the device marks it authenticated.
	env.apiOK("PATCH", "/v1/users/dev-user/actions/login/k1", map[string]any{"state": "CHALLENGE_SUCCEEDED"})
	if list = env.apiList("GET", "/v1/users/dev-user/devices"); list[0]["authenticatedAt"] == nil {
		t.Fatalf("after a success: %v", list)
	}

	// Invalidated: new again on the next actions, until a challenge succeeds on it.
	d := env.apiOK("POST", "/v1/users/dev-user/devices/laptop/invalidate", nil)
	if d["invalidatedAt"] == nil {
		t.Fatalf("invalidate: %v", d)
	}
	for _, key := range []string{"k3", "k4"} {
		if m := track("laptop", key); m["state"] != "CHALLENGE_REQUIRED" {
			t.Fatalf("an invalidated device (%s): %v", key, m)
		}
	}
	env.apiOK("PATCH", "/v1/users/dev-user/actions/login/k4", map[string]any{"state": "CHALLENGE_SUCCEEDED"})
	if m := track("laptop", "k5"); m["state"] != "ALLOW" {
		t.Fatalf("re-authenticated device: %v", m)
	}

	// Remembered until a future time, then forgotten.
	until := env.clock.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	d = env.apiOK("PATCH", "/v1/users/dev-user/devices/laptop", map[string]any{"rememberedUntil": until})
	if d["rememberedUntil"] == nil {
		t.Fatalf("remember: %v", d)
	}
	if d = env.apiOK("PATCH", "/v1/users/dev-user/devices/laptop", map[string]any{"rememberedUntil": nil}); d["rememberedUntil"] != nil {
		t.Fatalf("forget: %v", d)
	}

	for _, tt := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"unknown device", "POST", "/v1/users/dev-user/devices/phone/invalidate", nil, 404},
		{"another user's device", "PATCH", "/v1/users/someone/devices/laptop", map[string]any{"rememberedUntil": until}, 404},
		{"a past time", "PATCH", "/v1/users/dev-user/devices/laptop", map[string]any{"rememberedUntil": "2001-01-01T00:00:00Z"}, 400},
		{"not a time", "PATCH", "/v1/users/dev-user/devices/laptop", map[string]any{"rememberedUntil": "tomorrow"}, 400},
		{"no field", "PATCH", "/v1/users/dev-user/devices/laptop", map[string]any{}, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, m := env.api(tt.method, tt.path, tt.body)
			wantError(t, status, m, tt.status, "invalid_request")
		})
	}
	if list := env.apiList("GET", "/v1/users/nobody/devices"); len(list) != 0 {
		t.Fatalf("a user with no devices: %v", list)
	}
}
