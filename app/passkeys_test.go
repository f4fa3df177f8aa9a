package app

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
	"example.com/passwordless/internal/softauthn"
)

// The passkey flows, with the browser's half played by a software authenticator talking
// to the emulator's Client API as the browser SDK does.

// clientAPI calls the emulator's Client API from the app's origin.
func (e *testEnv) clientAPI(path string, body any, authorization string) map[string]any {
	e.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.emulatorURL+"/v1/client/"+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.appURL)
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("client API %s: %d %s", path, resp.StatusCode, out)
	}
	return m
}

var tenantAuthorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(emulator.DevTenantID))

// passkeyToken asks the app for a passkey token, as the account page's script does.
func (b *browser) passkeyToken() string {
	b.env.t.Helper()
	account := b.get("/account")
	req, _ := http.NewRequest(http.MethodPost, b.env.appURL+"/passkeys/token", nil)
	req.Header.Set("X-CSRF-Token", csrfToken(b.env.t, account.body))
	resp := b.do(req)
	var m map[string]string
	if err := json.Unmarshal([]byte(resp.body), &m); err != nil || resp.status != http.StatusOK || m["token"] == "" {
		b.env.t.Fatalf("POST /passkeys/token: %d %s", resp.status, resp.body)
	}
	return m["token"]
}

// addPasskey runs passkey.signUp with the app's token and returns the token it answers.
func (e *testEnv) addPasskey(a *softauthn.Authenticator, tok string) string {
	e.t.Helper()
	opts := e.clientAPI("user-authenticators/passkey/registration-options", map[string]any{"username": "me"}, "Bearer "+tok)
	raw, _ := json.Marshal(opts["options"])
	cred, err := a.Register(raw, e.appURL)
	if err != nil {
		e.t.Fatal(err)
	}
	added := e.clientAPI("user-authenticators/passkey", map[string]any{"challengeId": opts["challengeId"], "registrationCredential": json.RawMessage(cred)}, "Bearer "+tok)
	return added["accessToken"].(string)
}

// passkeySignIn runs passkey.signIn({action}) and returns the token it answers.
func (e *testEnv) passkeySignIn(a *softauthn.Authenticator, action string) string {
	e.t.Helper()
	id := e.clientAPI("challenge", map[string]any{"action": action}, tenantAuthorization)["challengeId"]
	opts := e.clientAPI("user-authenticators/passkey/authentication-options", map[string]any{"challengeId": id}, tenantAuthorization)
	raw, _ := json.Marshal(opts["options"])
	answer, err := a.Assert(raw, e.appURL)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.clientAPI("verify/passkey", map[string]any{"challengeId": id, "authenticationCredential": json.RawMessage(answer)}, tenantAuthorization)["accessToken"].(string)
}

// postPasskeySignIn posts a passkey token to /signin/passkey from a fresh sign-in page.
func (b *browser) postPasskeySignIn(tok string) response {
	b.env.t.Helper()
	return b.submit("/signin", "/signin/passkey", url.Values{"token": {tok}})
}

func TestPasskeyAddThenSignIn(t *testing.T) {
	env := newTestEnv(t)
	a := softauthn.New()
	b, user := env.signedIn()
	if page := b.get("/account"); !strings.Contains(page.body, "data-passkey-add") || !strings.Contains(page.body, `data-authsignal-tenant="`+emulator.DevTenantID+`"`) {
		t.Fatal("the account page offers no passkey")
	}
	added := b.submit("/account", "/passkeys", url.Values{"token": {env.addPasskey(a, b.passkeyToken())}})
	mustContain(t, added, "Passkey added")

	other := env.newBrowser()
	tok := env.passkeySignIn(a, actionPasskeySignIn)
	page := other.postPasskeySignIn(tok)
	if page.url.Path != "/account" {
		t.Fatalf("passkey sign-in: at %s: %s", page.url, page.text())
	}
	mustContain(t, page, "Signed in as <strong>"+user.Email)

	// The same token again, from a third browser, is no sign-in.
	third := env.newBrowser()
	replay := third.postPasskeySignIn(tok)
	if replay.status != http.StatusUnauthorized || third.get("/account").url.Path != "/signin" {
		t.Fatalf("replayed passkey token: %d at %s", replay.status, replay.url)
	}
	mustContain(t, replay, "That passkey sign-in was used already")
}

// The app trusts a passkey token only as Authsignal's validate describes it: valid, a
// success by PASSKEY, of the flow's action, and (adding) of this user.
func TestPasskeyTokensAreChecked(t *testing.T) {
	env, fake := newScriptedEnv(t)
	a := softauthn.New()
	b, _ := env.signedIn()
	b.submit("/account", "/passkeys", url.Values{"token": {env.addPasskey(a, b.passkeyToken())}})
	_, otherUser := env.signedIn()

	for _, tt := range []struct {
		name string
		edit func(*authsignal.ValidateResponse)
	}{
		{"not valid", func(r *authsignal.ValidateResponse) { r.IsValid = false }},
		{"not succeeded", func(r *authsignal.ValidateResponse) { r.State = authsignal.StateChallengeRequired }},
		{"by a code, not a passkey", func(r *authsignal.ValidateResponse) { r.VerificationMethod = "EMAIL_OTP" }},
		{"another action", func(r *authsignal.ValidateResponse) { r.Action, r.ActionCode = "withdraw", "withdraw" }},
		{"no user", func(r *authsignal.ValidateResponse) { r.UserID = "" }},
	} {
		t.Run("sign-in: "+tt.name, func(t *testing.T) {
			tok := env.passkeySignIn(a, actionPasskeySignIn)
			fake.script(func(f *scriptedAuthsignal) { f.validate = tt.edit })
			c := env.newBrowser()
			page := c.postPasskeySignIn(tok)
			fake.script(func(*scriptedAuthsignal) {})
			if page.status != http.StatusUnauthorized || c.get("/account").url.Path != "/signin" {
				t.Fatalf("signed in: %d at %s", page.status, page.url)
			}
			mustContain(t, page, "That passkey sign-in did not work")
		})
	}
	t.Run("sign-in: an unknown user", func(t *testing.T) {
		tok := env.passkeySignIn(a, actionPasskeySignIn)
		fake.script(func(f *scriptedAuthsignal) {
			f.validate = func(r *authsignal.ValidateResponse) { r.UserID = "nobody-" + randomDigits(6) }
		})
		page := env.newBrowser().postPasskeySignIn(tok)
		fake.script(func(*scriptedAuthsignal) {})
		mustContain(t, page, "That passkey belongs to no account here")
	})
	for _, tt := range []struct {
		name string
		edit func(*authsignal.ValidateResponse)
	}{
		{"another user's", func(r *authsignal.ValidateResponse) { r.UserID = otherUser.ID }},
		{"another action", func(r *authsignal.ValidateResponse) {
			r.Action, r.ActionCode = actionPasskeySignIn, actionPasskeySignIn
		}},
		{"by a code, not a passkey", func(r *authsignal.ValidateResponse) { r.VerificationMethod = "SMS" }},
	} {
		t.Run("add: "+tt.name, func(t *testing.T) {
			c, _ := env.signedIn()
			tok := env.addPasskey(softauthn.New(), c.passkeyToken())
			fake.script(func(f *scriptedAuthsignal) { f.validate = tt.edit })
			page := c.submit("/account", "/passkeys", url.Values{"token": {tok}})
			fake.script(func(*scriptedAuthsignal) {})
			mustContain(t, page, "No passkey was added")
		})
	}
}

// The page may reach the Client API and frame the pre-built UI, and nothing else: the
// policy names those two origins only, and the SDK popup's one style by its hash.
func TestBrowserSDKPolicy(t *testing.T) {
	env := newTestEnv(t)
	b, _ := env.signedIn()
	req, _ := http.NewRequest(http.MethodGet, env.appURL+"/account", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"connect-src 'self' " + env.emulatorURL + ";", "frame-src " + env.emulatorURL + ";", "style-src 'self' 'sha256-", "script-src 'self';"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "*") {
		t.Errorf("CSP is wider than it needs: %s", csp)
	}
	if coep := resp.Header.Get("Cross-Origin-Embedder-Policy"); coep == "require-corp" {
		t.Errorf("COEP require-corp blocks the pre-built UI's frame")
	}
}

// With stepup=popup (the page's script), a challenged withdrawal answers the pre-built
// UI's address as JSON; without it, a redirect there.
func TestPopupStepUpAnswersTheAddress(t *testing.T) {
	env := newTestEnv(t)
	b, _ := env.signedIn()
	post := func(extra url.Values) *http.Response {
		account := b.get("/account")
		form := url.Values{"_csrf": {csrfToken(t, account.body)}, "withdrawal_id": {withdrawalID(t, account.body)}, "amount": {"1500"}}
		for k, v := range extra {
			form[k] = v
		}
		client := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.PostForm(env.appURL+"/withdrawals", form)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post(url.Values{"stepup": {"popup"}})
	defer resp.Body.Close()
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(got["challengeUrl"], env.emulatorURL+"/challenge?token=") {
		t.Fatalf("popup step-up: %d %v %v", resp.StatusCode, got, err)
	}
	plain := post(nil)
	plain.Body.Close()
	if plain.StatusCode != http.StatusSeeOther || !strings.HasPrefix(plain.Header.Get("Location"), env.emulatorURL+"/challenge?token=") {
		t.Fatalf("redirect step-up: %d %s", plain.StatusCode, plain.Header.Get("Location"))
	}
}
