package app

import (
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The per-address limit holds for every spelling of one address, interleaved with other
// requests on the same connection: the limiter's keys must not alias the buffer the server
// reuses for the next request on that connection (which the other address, of the same
// length, overwrites).
func TestSendLimitHoldsForEverySpelling(t *testing.T) {
	env := newTestEnv(t)
	local := "user-" + randomDigits(10)
	spellings := []string{
		local + "@example.com", strings.ToUpper(local) + "@EXAMPLE.COM", " " + local + "@Example.com ",
		strings.ToUpper(local[:1]) + local[1:] + "@example.com",
	}
	b := env.newBrowser()
	oneConn := &http.Transport{MaxConnsPerHost: 1} // one connection, reused
	defer oneConn.CloseIdleConnections()
	b.client.Transport = oneConn
	token := csrfToken(t, b.get("/signin").body)
	send := func(email string) {
		b.post("/signin", url.Values{"_csrf": {token}, "method": {"email"}, "email": {email}})
	}
	for round := 0; round < 3; round++ {
		for _, spelling := range spellings {
			send(spelling)
			send(uniqueEmail())
		}
	}
	if n := len(env.messagesTo(local + "@example.com")); n != 5 {
		t.Fatalf("%d codes sent to one address in its spellings, want exactly the limit of 5", n)
	}
}

// A send the address's limit refuses costs the IP nothing; nor does one Authsignal refuses.
func TestIPBudgetCountsOnlyCodesSent(t *testing.T) {
	env := newTestEnv(t, withSendsPerIP(7))
	b := env.newBrowser()
	send := func(email string) response {
		return b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	}
	email := uniqueEmail()
	for i := 0; i < 6; i++ { // the sixth is refused by the address's limit of 5
		send(email)
	}
	if page := send("someone@fail.example.com"); page.status != http.StatusServiceUnavailable { // the provider refuses it
		t.Fatalf("failing recipient: status %d", page.status)
	}
	for i := 0; i < 2; i++ {
		if page := send(uniqueEmail()); page.url.Path != "/signin/verify" {
			t.Fatalf("send %d of the IP's last two: at %s (%d), want sent", i+1, page.url, page.status)
		}
	}
	if page := send(uniqueEmail()); page.status != http.StatusTooManyRequests {
		t.Fatalf("the IP's eighth code: status %d, want 429", page.status)
	}
}

// Wrong codes are counted per address across challenges and resends: after 10 different
// ones in an hour, sign-in with that address is paused, and the page says until when.
func TestGuessingHasACeilingAcrossResends(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	wrongs := 0
	for wrongs < 10 {
		for i := 0; i < 4 && wrongs < 10; i++ { // under the app's 5 per pending sign-in
			guess := fmt.Sprintf("%06d", 100000+wrongs) // a guesser tries a different code each time
			if guess == env.latestCode(email) {
				guess = fmt.Sprintf("%06d", 200000+wrongs)
			}
			page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {guess}})
			wrongs++
		}
		if wrongs < 10 {
			env.clock.Advance(3 * time.Minute) // stay under the send limit
			page = b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
		}
	}
	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {env.latestCode(email)}})
	if page.status != http.StatusTooManyRequests || page.url.Path == "/account" {
		t.Fatalf("the right code after 10 wrong ones: %d at %s, want refused", page.status, page.url)
	}
	mustContain(t, page, "signing in with it is paused until")
	// A new code does not help, and says the same.
	page = env.newBrowser().submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	if page.status != http.StatusTooManyRequests {
		t.Fatalf("send while locked: %d", page.status)
	}
	mustContain(t, page, "paused until")
	// Other addresses are not affected, and the lock ends with the hour.
	env.newBrowser().signIn("email", uniqueEmail())
	env.clock.Advance(time.Hour)
	account := env.newBrowser().signIn("email", email)
	mustContain(t, account, "Signed in as")
}

// A client that sends half a request, or nothing after one, is cut off: it cannot hold a
// connection (and its descriptor) for long.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	env := newTestEnv(t, withConnTimeouts(300*time.Millisecond))
	addr := strings.TrimPrefix(env.appURL, "http://")
	for _, tt := range []struct{ name, send string }{
		{"slow headers", "GET /signin HTTP/1.1\r\nHost: x\r\n"},
		{"idle after a request", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte(tt.send))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("the connection was not closed by the server: %v", err)
			}
			if waited := time.Since(start); waited > 3*time.Second {
				t.Fatalf("closed after %s, want about the 300 ms timeout", waited)
			}
		})
	}
}

// When the store cannot count the limits, the app sends no code and says so on the page
// (it fails closed), rather than answering 500 or sending uncounted.
func TestLimitsFailClosed(t *testing.T) {
	tests := []struct {
		name       string
		breakStore func(t *testing.T, env *testEnv)
	}{
		{"the store is gone", func(t *testing.T, env *testEnv) { env.store.Close() }},
		// Reads work, so the guess lock is checked; the send's reservation fails.
		{"limit events cannot be written", func(t *testing.T, env *testEnv) {
			db, err := sql.Open("sqlite3", env.dbPath)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TRIGGER limits_down BEFORE INSERT ON limit_events
				BEGIN SELECT RAISE(ABORT, 'limits down'); END`); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			b := env.newBrowser()
			token := csrfToken(t, b.get("/signin").body)
			tt.breakStore(t, env)
			email := uniqueEmail()
			page := b.post("/signin", url.Values{"_csrf": {token}, "method": {"email"}, "email": {email}})
			if page.status != http.StatusServiceUnavailable {
				t.Fatalf("send: %d, want 503", page.status)
			}
			mustContain(t, page, "Sign-in is unavailable for a moment")
			if n := len(env.messagesTo(email)); n != 0 {
				t.Fatalf("%d codes sent while the limits could not be counted", n)
			}
		})
	}
}
