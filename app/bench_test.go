package app

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkAccountPage measures a signed-in page view through the whole middleware chain
// (device cookie, CSRF, session JWT verify + store lookup) and the template, over loopback.
func BenchmarkAccountPage(b *testing.B) {
	env := newTestEnv(b)
	browser := env.newBrowser()
	browser.signIn("email", uniqueEmail())
	for b.Loop() {
		// A new request each time: the client adds the jar's cookies to the one it is given.
		req, _ := http.NewRequest(http.MethodGet, env.appURL+"/account", nil)
		resp, err := browser.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/account" {
			b.Fatalf("GET /account: status %d at %s", resp.StatusCode, resp.Request.URL)
		}
		io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
		resp.Body.Close()
	}
}
