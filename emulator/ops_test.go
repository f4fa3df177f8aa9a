package emulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestHealthzAndReadyz(t *testing.T) {
	env := newEnv(t)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if status, body, _ := env.do("GET", path, nil, ""); status != 200 || string(body) != want {
			t.Fatalf("GET %s: %d %q, want 200 %q", path, status, body, want)
		}
	}

	// A busy database (its one connection held): state's TestReadyGivesUpWhenBusy.

	t.Run("closed database", func(t *testing.T) {
		if err := env.emu.Close(); err != nil {
			t.Fatal(err)
		}
		status, body, _ := env.do("GET", "/readyz", nil, "")
		if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
			t.Fatalf("readyz after Close: %d %q, want 503", status, body)
		}
		// Liveness is about the process, not the database.
		if status, _, _ := env.do("GET", "/healthz", nil, ""); status != 200 {
			t.Fatalf("healthz after Close: %d", status)
		}
	})
}

// TestVersionHeader: every response names the emulator's version, errors and unknown
// routes included, so a bug report or a test log shows which emulator answered.
func TestVersionHeader(t *testing.T) {
	env := newEnv(t)
	if v := buildVersion(); !strings.HasPrefix(v, Version) {
		t.Fatalf("buildVersion %q does not start with Version %q", v, Version)
	}
	tests := []struct {
		method, path, key string
		status            int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/v1/users/u1", testKey, 200},
		{"GET", "/v1/users/u1", "", 401},                     // /v1 auth error
		{"GET", "/v1/nope", testKey, 404},                    // /v1 unknown route (JSON)
		{"GET", "/v1/users/u1/actions/a/nope", testKey, 404}, // /v1 unknown id from a handler
		{"PUT", "/v1/users/u1", testKey, 405},                // /v1 wrong method (JSON)
		{"GET", "/no/such/page", "", 404},                    // unknown route outside /v1 (JSON)
		{"PUT", "/healthz", "", 405},                         // wrong method outside /v1 (JSON)
		{"GET", "/admin", "", 200},                           // HTML
		{"GET", "/admin/users/nobody", "", 404},              // HTML error page
		{"POST", "/emulator/clock", "", 400},                 // tooling JSON error (no body)
		{"GET", "/emulator/openapi.json", "", 200},
	}
	for _, tt := range tests {
		status, body, h := env.do(tt.method, tt.path, nil, tt.key)
		if status != tt.status {
			t.Errorf("%s %s: status %d, want %d: %s", tt.method, tt.path, status, tt.status, body)
		}
		if got := h.Get(versionHeader); got != buildVersion() {
			t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.path, versionHeader, got, buildVersion())
		}
	}
}
