package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
)

// Sign-in methods: add a phone (its code proves it), remove the email, sign in with the
// phone into the same account; the last method and the last address stay; a stale
// session changes nothing; another account's address is refused.

// addPhone adds a phone number by SMS on the methods page and returns the page after.
func (b *browser) addPhone(phone string) response {
	b.env.t.Helper()
	code := b.submit("/methods", "/methods/address", url.Values{"method": {"sms"}, "phone": {phone}})
	if code.status != http.StatusOK {
		b.env.t.Fatalf("add phone: %d %s", code.status, code.text())
	}
	return b.submitForm(code, "Verify", map[string]string{"Code": b.env.latestCode(phone)})
}

// methodIDs are the user's authenticators by method.
func (e *testEnv) methodIDs(userID string) map[string]string {
	e.t.Helper()
	auths, err := e.api().GetAuthenticators(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range auths {
		out[a.VerificationMethod] = a.UserAuthenticatorID
	}
	return out
}

func (b *browser) postMethod(path string) response {
	b.env.t.Helper()
	return b.submit("/methods", path, url.Values{})
}

func TestAddPhoneRemoveEmailSignInWithPhone(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	phone := uniquePhone()
	mustContain(t, b.addPhone(phone), "Sign-in method added", "SMS to "+phone[:3]+"…")
	ids := env.methodIDs(user.ID)
	if ids["SMS"] == "" || ids["EMAIL_OTP"] == "" {
		t.Fatalf("methods after adding the phone: %v", ids)
	}
	if u, _ := env.store.GetUser(context.Background(), user.ID); u.Phone != phone {
		t.Fatalf("the user's phone: %q", u.Phone)
	}

	mustContain(t, b.postMethod("/methods/"+ids["EMAIL_OTP"]+"/remove"), "Sign-in method removed")
	if u, _ := env.store.GetUser(context.Background(), user.ID); u.Email != "" {
		t.Fatalf("the removed email still signs in: %q", u.Email)
	}
	// The last method stays.
	page := b.postMethod("/methods/" + ids["SMS"] + "/remove")
	if page.status != http.StatusConflict {
		t.Fatalf("removing the last method: %d", page.status)
	}
	mustContain(t, page, "This is your only sign-in method")

	// Recovery: the phone signs in to the same account (its balance and id).
	other := env.newBrowser()
	other.signIn("sms", phone)
	if u, _, _ := env.store.FindOrCreateUserByPhone(context.Background(), phone); u.ID != user.ID {
		t.Fatalf("the phone signs in to %s, want %s", u.ID, user.ID)
	}
	// And the email no longer does: it is a new account now.
	fresh := env.newBrowser()
	fresh.signIn("email", user.Email)
	if u, _, _ := env.store.FindOrCreateUserByEmail(context.Background(), user.Email); u.ID == user.ID {
		t.Fatal("the removed email still reaches the account")
	}
}

func TestMethodChangesNeedARecentSignIn(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	env.clock.Advance(recentSignIn + time.Minute)
	page := b.submit("/methods", "/methods/address", url.Values{"method": {"sms"}, "phone": {uniquePhone()}})
	if page.status != http.StatusForbidden {
		t.Fatalf("a stale session added an address: %d", page.status)
	}
	mustContain(t, page, "sign in again")
	if ids := env.methodIDs(user.ID); len(ids) != 1 {
		t.Fatalf("methods: %v", ids)
	}
	if page := b.postMethod("/methods/" + env.methodIDs(user.ID)["EMAIL_OTP"] + "/remove"); page.status != http.StatusForbidden {
		t.Fatalf("a stale session removed a method: %d", page.status)
	}
}

func TestTheLastAddressStays(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	// A second method on the same email (a magic link): removing the email code leaves
	// the address, which the link still confirms.
	if _, err := env.api().EnrollAuthenticator(context.Background(), user.ID, authsignal.EnrollAuthenticatorRequest{VerificationMethod: "EMAIL_MAGIC_LINK", Email: user.Email}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, b.postMethod("/methods/"+env.methodIDs(user.ID)["EMAIL_OTP"]+"/remove"), "Sign-in method removed")
	if u, _ := env.store.GetUser(context.Background(), user.ID); u.Email != user.Email {
		t.Fatalf("the email left although a method still uses it: %q", u.Email)
	}
	// A passkey-like second method on no address: removing the only address is refused.
	c, other := env.signedIn()
	if _, err := env.api().EnrollAuthenticator(context.Background(), other.ID, authsignal.EnrollAuthenticatorRequest{VerificationMethod: "EMAIL_MAGIC_LINK", Email: "someone-" + randomDigits(6) + "@example.com"}); err != nil {
		t.Fatal(err)
	}
	page := c.postMethod("/methods/" + env.methodIDs(other.ID)["EMAIL_OTP"] + "/remove")
	if page.status != http.StatusConflict {
		t.Fatalf("removing the only address: %d", page.status)
	}
	mustContain(t, page, "only email or phone number you sign in with by code")
}

func TestAnotherAccountsAddressIsRefused(t *testing.T) {
	env := newTestEnv(t)
	_, owner := env.signedIn()
	phone := uniquePhone()
	if err := env.store.SetUserAddress(context.Background(), owner.ID, "phone", phone); err != nil {
		t.Fatal(err)
	}
	b, user := env.signedIn()
	page := b.addPhone(phone)
	if page.status != http.StatusConflict {
		t.Fatalf("another account's phone: %d %s", page.status, page.text())
	}
	mustContain(t, page, "another account")
	if u, _ := env.store.GetUser(context.Background(), user.ID); u.Phone != "" {
		t.Fatalf("the phone was taken: %q", u.Phone)
	}
}

func TestMakeDefault(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	b.addPhone(uniquePhone())
	mustContain(t, b.postMethod("/methods/"+env.methodIDs(user.ID)["SMS"]+"/default"), "Default method changed")
	u, err := env.api().GetUser(context.Background(), user.ID)
	if err != nil || u.DefaultVerificationMethod != "SMS" {
		t.Fatalf("default: %+v %v", u, err)
	}
}

// Every notice is shown by its severity: what happened, what is not finished, what did
// not happen.
func TestNoticesBySeverity(t *testing.T) {
	env := newTestEnv(t)
	b, _ := env.signedIn()
	for _, tt := range []struct{ key, class string }{
		{"withdrawal-done", `class="notice success"`},
		{"withdrawal-held", `class="notice info"`},
		{"withdrawal-blocked", `class="notice warning"`},
		{"no-such-notice", `Balance:`},
	} {
		page := b.get("/account?notice=" + tt.key)
		mustContain(t, page, tt.class)
		if tt.key == "no-such-notice" {
			mustNotContain(t, page, `class="notice`)
		}
	}
	for key, n := range notices {
		if n.text == "" || n.severity == "" {
			t.Errorf("notice %q has no text or severity", key)
		}
	}
}

// The account page describes the rules the embedded emulator really runs, not a fixed
// sentence that a rules file (or the real service) would make wrong.
func TestAccountShowsTheEmulatorsRules(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     []envOption
		want     []string
		unwanted string
	}{
		{"built-in", nil, []string{"Withdrawals over 1,000 need a one-time code (CHALLENGE_REQUIRED)", "anything else: ALLOW"}, "Hold"},
		{"a rules file", []envOption{withRules(`{"rules":[{"id":"hold","name":"Hold everything","actionCode":"withdrawal","priority":1,"conditions":[],"outcome":"REVIEW_REQUIRED"}],"defaultOutcome":"BLOCK"}`)},
			[]string{"Hold everything (REVIEW_REQUIRED)", "anything else: BLOCK"}, "1,000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, tt.opts...)
			b, _ := env.signedIn()
			page := b.get("/account")
			mustContain(t, page, tt.want...)
			mustNotContain(t, page, tt.unwanted)
		})
	}
}

// An account keeps one email and one phone: a second one is refused before any code, so
// it never quietly replaces the one the account signs in with.
func TestASecondAddressIsRefused(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	phone := uniquePhone()
	b.addPhone(phone)
	other := "other-" + randomDigits(6) + "@example.com"
	for _, tt := range []url.Values{
		{"method": {"email"}, "email": {other}},
		{"method": {"link"}, "email": {other}},
		{"method": {"whatsapp"}, "phone": {uniquePhone()}},
	} {
		page := b.submit("/methods", "/methods/address", tt)
		if page.status != http.StatusConflict {
			t.Fatalf("%v: %d", tt, page.status)
		}
		mustContain(t, page, "already")
	}
	if msgs := env.messagesTo(other); len(msgs) != 0 {
		t.Fatalf("a code went to the second email")
	}
	// The same phone by WhatsApp is another method on the same number: fine.
	code := b.submit("/methods", "/methods/address", url.Values{"method": {"whatsapp"}, "phone": {phone}})
	mustContain(t, b.submitForm(code, "Verify", map[string]string{"Code": env.latestCode(phone)}), "Sign-in method added", "WhatsApp to")
	if u, _ := env.store.GetUser(context.Background(), user.ID); u.Email != user.Email || u.Phone != phone {
		t.Fatalf("the account's addresses changed: %+v", u)
	}
}

// The code page links to the emulator's outbox, filtered to the address the code went to.
func TestCodePageLinksToTheInbox(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	phone := uniquePhone()
	page := b.submit("/signin", "/signin", url.Values{"method": {"sms"}, "phone": {phone}})
	mustContain(t, page, "Open your inbox")
	want := strings.ToLower(`href="` + env.emulatorURL + `/outbox?to=` + url.QueryEscape(phone) + `"`) // %2B or %2b
	if !strings.Contains(strings.ToLower(page.body), want) {
		t.Fatalf("no link to the filtered outbox (%s) in %s", want, page.body)
	}
}

// A sign-in that must start again (too many wrong codes) keeps the address typed; the
// 404 page says what it is.
func TestRestartKeepsTheAddress(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	phone := uniquePhone()
	code := b.submit("/signin", "/signin", url.Values{"method": {"sms"}, "phone": {phone}})
	var page response
	for i := 0; i < 5; i++ {
		page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, code.body)}, "code": {wrongCode(env.latestCode(phone))}})
	}
	if page.url.Path != "/signin" {
		t.Fatalf("after five wrong codes: at %s", page.url)
	}
	mustContain(t, page, `value="`+phone+`"`, `value="sms" checked`)
	// Once only: a later visit, even with the same notice, is the empty form.
	mustNotContain(t, b.get("/signin?notice=too-many-attempts"), `value="`+phone+`"`)

	missing := b.get("/no-such-page")
	if missing.status != http.StatusNotFound {
		t.Fatalf("status %d", missing.status)
	}
	mustContain(t, missing, "<h1>Page not found</h1>")
}

// A bad address is reported beside its field, which is marked invalid and tied to it.
func TestAddressErrorBesideItsField(t *testing.T) {
	env := newTestEnv(t)
	page := env.newBrowser().submit("/signin", "/signin", url.Values{"method": {"sms"}, "phone": {"555-0100"}})
	mustContain(t, page, `aria-invalid="true" aria-describedby="phone-error"`, `<p id="phone-error" class="field-error" role="alert">`, `value="555-0100"`)
	mustNotContain(t, page, `aria-describedby="email-error"`, `class="alert"`)
}
