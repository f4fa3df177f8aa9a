package emulator

import (
	"net/http"
	"strings"
	"testing"
)

// A web page in the developer's browser can neither read the emulator's codes through DNS
// rebinding nor change its state with a cross-site request.
func TestPagesRefuseOtherHostsAndCrossSiteWrites(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.PublicURL = "http://emulator.test:4000" })
	env.sendOK("guard@example.com")
	self := env.srv.URL // http://127.0.0.1:port
	tests := []struct {
		name, method, path, host, origin, contentType, body string
		want                                                int
	}{
		{name: "outbox on its own host", method: "GET", path: "/emulator/messages", want: 200},
		{name: "outbox as localhost", method: "GET", path: "/emulator/messages", host: "localhost:4000", want: 200},
		{name: "outbox on the public URL's host", method: "GET", path: "/outbox", host: "emulator.test:4000", want: 200},
		{name: "outbox by a rebound name", method: "GET", path: "/emulator/messages", host: "evil.example:4000", want: 403},
		{name: "admin by a rebound name", method: "GET", path: "/admin/users", host: "evil.example", want: 403},
		{name: "the API is left to its key", method: "GET", path: "/v1/users/u1", host: "evil.example", want: 401},
		{name: "health for any prober", method: "GET", path: "/healthz", host: "emulator-svc", want: 200},
		{name: "reset from another site", method: "POST", path: "/emulator/reset", origin: "http://evil.example", want: 403},
		{name: "reset from its own page", method: "POST", path: "/emulator/reset", origin: self, want: 200},
		{name: "reset from an opaque origin", method: "POST", path: "/emulator/reset", origin: "null", want: 403},
		{name: "reset by a tool (no Origin)", method: "POST", path: "/emulator/reset", want: 200},
		{name: "clock from another site", method: "POST", path: "/emulator/clock", origin: "http://evil.example", contentType: "application/json", body: `{"advance":"1m"}`, want: 403},
		{name: "clock as text/plain", method: "POST", path: "/emulator/clock", contentType: "text/plain", body: `{"advance":"1m"}`, want: 415},
		{name: "clock as a form", method: "POST", path: "/emulator/clock", contentType: "application/x-www-form-urlencoded", body: "advance=1m", want: 415},
		{name: "clock as JSON", method: "POST", path: "/emulator/clock", contentType: "application/json", body: `{"advance":"1m"}`, want: 200},
		{name: "delete messages from another site", method: "DELETE", path: "/emulator/messages", origin: "http://evil.example", want: 403},
		{name: "review from another site", method: "POST", path: "/admin/review", origin: "http://evil.example", contentType: "application/x-www-form-urlencoded", body: "x=1", want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, env.srv.URL+tt.path, strings.NewReader(tt.body))
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := env.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
