package emulator

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Email magic links: the link in the outbox, a confirming page (a scanner's fetch verifies
// nothing), single use, expiry, a newer link replacing an older one, the SDK's finalize
// polling, and the pre-built UI's step-up by link.

var linkSecretRE = regexp.MustCompile(`name="secret" value="([^"]+)"`)

// openLink opens a magic link as a person would, in any browser: the page, then Confirm.
func openLink(t *testing.T, b *browser, link string) page {
	t.Helper()
	p := b.get(link)
	if p.status != http.StatusOK {
		return p
	}
	m := linkSecretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no confirm form: %s", p.body)
	}
	u, _ := url.Parse(link)
	return b.post(u.Scheme+"://"+u.Host+u.Path, url.Values{"secret": {htmlUnescape(m[1])}})
}

func TestClientAPIMagicLink(t *testing.T) {
	env := newClientEnv(t)
	const user, email = "u-link", "link@example.com"
	tok := env.trackToken(user, "signUp", nil)
	env.clientOK("POST", "/v1/client/user-authenticators/email-magic-link", map[string]any{"email": email}, bearer(tok))
	msgs := env.messages(email)
	if len(msgs) != 1 || msgs[0].Link == "" || msgs[0].Code != "" || !strings.Contains(msgs[0].Body, msgs[0].Link) {
		t.Fatalf("the outbox: %+v", msgs)
	}
	finalize := func(tok string) map[string]any {
		return env.clientOK("POST", "/v1/client/verify/email-magic-link/finalize", map[string]any{}, bearer(tok))
	}
	if f := finalize(tok); f["isVerified"] != false || f["accessToken"] != nil {
		t.Fatalf("before the link is opened: %v", f)
	}
	// A fetch of the link (a mail scanner) verifies nothing.
	newBrowser(t).get(msgs[0].Link).must(t, 200, "Confirm")
	if f := finalize(tok); f["isVerified"] != false {
		t.Fatalf("after a mere fetch: %v", f)
	}
	// Opened in another browser than the one polling.
	openLink(t, newBrowser(t), msgs[0].Link).must(t, 200, "You are verified")
	f := finalize(tok)
	if f["isVerified"] != true || f["accessToken"] == nil || f["userAuthenticator"].(map[string]any)["verificationMethod"] != "EMAIL_MAGIC_LINK" {
		t.Fatalf("after the link: %v", f)
	}
	if v := env.validated(f["accessToken"].(string)); v["state"] != "CHALLENGE_SUCCEEDED" || v["verificationMethod"] != "EMAIL_MAGIC_LINK" {
		t.Fatalf("validate: %v", v)
	}
	openLink(t, newBrowser(t), msgs[0].Link).must(t, 410, "expired or was used")

	// Expiry, and a newer link replacing an older one.
	step := env.trackToken(user, "withdraw", nil)
	env.clientOK("POST", "/v1/client/challenge/email-magic-link", nil, bearer(step))
	old := env.messages(email)[0].Link
	env.clientOK("POST", "/v1/client/challenge/email-magic-link", nil, bearer(step))
	for i := 0; i < DefaultLimits().MaxAttempts; i++ { // the old one's tries cost the new one nothing
		openLink(t, newBrowser(t), old).must(t, 410)
	}
	openLink(t, newBrowser(t), env.messages(email)[0].Link).must(t, 200, "You are verified")
	step = env.trackToken(user, "withdraw", nil)
	env.clientOK("POST", "/v1/client/challenge/email-magic-link", nil, bearer(step))
	fresh := env.messages(email)[0].Link
	env.clock.Advance(DefaultLimits().CodeTTL + time.Second)
	openLink(t, newBrowser(t), fresh).must(t, 410, "expired")
	if v := env.validated(step); v["state"] == "CHALLENGE_SUCCEEDED" {
		t.Fatalf("an expired link verified: %v", v)
	}
}

func TestPrebuiltUIMagicLink(t *testing.T) {
	env := newEnv(t)
	app := newFakeApp(t)
	b := newBrowser(t)
	const email = "ml@example.com"
	env.apiOK("POST", "/v1/users/u-ml/authenticators", map[string]any{"verificationMethod": "EMAIL_MAGIC_LINK", "email": email})
	p := b.get(stepUp(t, env, "u-ml", "w-ml", app.srv.URL+"/cb"))
	p.must(t, 200, "Email link to m…@example.com")
	auth := radioRE.FindStringSubmatch(p.body)[1]
	code := b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {auth}})
	code.must(t, 200, "We sent a link to m…@example.com", ">Continue</a>")
	if strings.Contains(code.body, `name="code"`) {
		t.Fatal("the link page asks for a code")
	}
	done := env.srv.URL + "/challenge/done?token=" + url.QueryEscape(code.token(t))
	b.get(done).must(t, 200, "We sent a link") // not opened yet: back to the same page
	openLink(t, newBrowser(t), env.messages(email)[0].Link).must(t, 200, "You are verified")
	b.get(done).must(t, 200, "app callback")
	if v := env.apiOK("POST", "/v1/validate", map[string]any{"token": app.last(t).Get("token")}); v["state"] != "CHALLENGE_SUCCEEDED" || v["verificationMethod"] != "EMAIL_MAGIC_LINK" {
		t.Fatalf("validate: %v", v)
	}
}
