package app

import (
	"net/http"
	"strings"
	"testing"
)

// /readyz says whether the database answers; /healthz only that the process is up.
func TestReadyzChecksTheDatabase(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	for _, tt := range []struct {
		name       string
		before     func()
		wantStatus int
		wantBody   string
	}{
		{"database up", func() {}, http.StatusOK, "ready"},
		{"database closed", func() { env.store.Close() }, http.StatusServiceUnavailable, "database unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.before()
			page := b.get("/readyz")
			if page.status != tt.wantStatus || !strings.Contains(page.body, tt.wantBody) {
				t.Fatalf("GET /readyz: %d %q, want %d %q", page.status, page.body, tt.wantStatus, tt.wantBody)
			}
			if health := b.get("/healthz"); health.status != http.StatusOK {
				t.Fatalf("GET /healthz: %d, want 200 whatever the database", health.status)
			}
		})
	}
}
