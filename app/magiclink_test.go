package app

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
)

// Sign-in by link: only for an address added as a link method; the same answer for any
// other; Continue before the link is opened waits; after, a session for the link's user,
// once.

var linkSecretField = regexp.MustCompile(`name="secret" value="([^"]+)"`)

// openMagicLink opens the newest link to email in a browser of its own and confirms it.
func (e *testEnv) openMagicLink(email string) {
	e.t.Helper()
	msgs := e.messagesTo(email)
	if len(msgs) == 0 || msgs[0].Link == "" {
		e.t.Fatalf("no link to %s: %+v", email, msgs)
	}
	b := e.newBrowser()
	page := b.get(msgs[0].Link)
	m := linkSecretField.FindStringSubmatch(page.body)
	if m == nil {
		e.t.Fatalf("no confirm form at the link: %s", page.body)
	}
	u, _ := url.Parse(msgs[0].Link)
	if done := b.post(u.Scheme+"://"+u.Host+u.Path, url.Values{"secret": {m[1]}}); done.status != http.StatusOK {
		e.t.Fatalf("confirm the link: %d %s", done.status, done.text())
	}
}

func TestSignInByLink(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	code := b.submit("/methods", "/methods/address", url.Values{"method": {"link"}, "email": {user.Email}})
	mustContain(t, b.submitForm(code, "Verify", map[string]string{"Code": env.latestCode(user.Email)}), "Sign-in method added", "Email link to")

	other := env.newBrowser()
	wait := other.submit("/signin", "/signin", url.Values{"method": {"link"}, "email": {user.Email}})
	mustContain(t, wait, "Check your email")
	early := other.submitForm(wait, "Continue", nil)
	if early.status != http.StatusAccepted {
		t.Fatalf("Continue before the link: %d", early.status)
	}
	mustContain(t, early, "has not been opened yet")
	env.openMagicLink(user.Email)
	account := other.submitForm(early, "Continue", nil)
	if account.url.Path != "/account" {
		t.Fatalf("after the link: at %s: %s", account.url, account.text())
	}
	mustContain(t, account, "Signed in as <strong>"+user.Email)

	// An address without a link method: the same page, and nothing ever comes.
	stranger := env.newBrowser()
	before := len(env.messagesTo("nobody-" + randomDigits(6) + "@example.com"))
	nobody := "nobody-" + randomDigits(6) + "@example.com"
	page := stranger.submit("/signin", "/signin", url.Values{"method": {"link"}, "email": {nobody}})
	mustContain(t, page, "Check your email")
	if got := len(env.messagesTo(nobody)); got != before {
		t.Fatalf("a link went to an unknown address")
	}
	if again := stranger.submitForm(page, "Continue", nil); again.status != http.StatusAccepted {
		t.Fatalf("Continue for an unknown address: %d", again.status)
	}
	// An account's email without a link method: the same.
	_, plain := env.signedIn()
	page = env.newBrowser().submit("/signin", "/signin", url.Values{"method": {"link"}, "email": {plain.Email}})
	mustContain(t, page, "Check your email")
	for _, m := range env.messagesTo(plain.Email) {
		if m.Link != "" {
			t.Fatalf("a link went to an address that has no link method")
		}
	}
}

// The link's token counts only as validate describes it: a success by EMAIL_MAGIC_LINK of
// signInWithEmailLink for the address's user.
func TestSignInByLinkChecksTheToken(t *testing.T) {
	env, fake := newScriptedEnv(t)
	b, user := env.signedIn()
	code := b.submit("/methods", "/methods/address", url.Values{"method": {"link"}, "email": {user.Email}})
	b.submitForm(code, "Verify", map[string]string{"Code": env.latestCode(user.Email)})
	_, other := env.signedIn()
	for _, tt := range []struct {
		name string
		edit func(*authsignal.ValidateResponse)
	}{
		{"by a code", func(r *authsignal.ValidateResponse) { r.VerificationMethod = "EMAIL_OTP" }},
		{"another user", func(r *authsignal.ValidateResponse) { r.UserID = other.ID }},
		{"another action", func(r *authsignal.ValidateResponse) { r.Action, r.ActionCode = "withdrawal", "withdrawal" }},
		{"not valid", func(r *authsignal.ValidateResponse) { r.IsValid = false }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env.clock.Advance(11 * time.Minute) // past the app's five sends per address
			c := env.newBrowser()
			wait := c.submit("/signin", "/signin", url.Values{"method": {"link"}, "email": {user.Email}})
			env.openMagicLink(user.Email)
			fake.script(func(f *scriptedAuthsignal) { f.validate = tt.edit })
			page := c.submitForm(wait, "Continue", nil)
			fake.script(func(*scriptedAuthsignal) {})
			if page.url.Path == "/account" || c.get("/account").url.Path != "/signin" {
				t.Fatalf("signed in with %s", tt.name)
			}
		})
	}
}
