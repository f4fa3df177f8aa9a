package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// fakeApp stands in for the integrating app: it records the callbacks it receives.
type fakeApp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []url.Values
}

func newFakeApp(t *testing.T) *fakeApp {
	a := &fakeApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits = append(a.hits, r.URL.Query())
		a.mu.Unlock()
		io.WriteString(w, "app callback")
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeApp) last(t *testing.T) url.Values {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.hits) == 0 {
		t.Fatal("the app got no callback")
	}
	return a.hits[len(a.hits)-1]
}

type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{Jar: jar}}
}

// page is a fetched HTML page after redirects.
type page struct {
	status int
	url    *url.URL
	body   string
}

func (b *browser) read(resp *http.Response, err error) page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
}

func (b *browser) get(u string) page { return b.read(b.client.Get(u)) }

func (b *browser) post(u string, form url.Values) page { return b.read(b.client.PostForm(u, form)) }

var (
	hiddenTokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)
	radioRE       = regexp.MustCompile(`<input type="radio" name="authenticatorId" value="([^"]+)"[^>]*> ([^<]+)</label>`)
)

func (p page) must(t *testing.T, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("page lacks %q: %s", c, p.body)
		}
	}
}

func (p page) token(t *testing.T) string {
	t.Helper()
	m := hiddenTokenRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no token field: %s", p.body)
	}
	return htmlUnescape(m[1])
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#61;", "=", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
}

// stepUp tracks a withdrawal needing a challenge and returns the page URL.
func stepUp(t *testing.T, env *testEnv, user, key, redirect string) string {
	t.Helper()
	return stepUpWith(t, env, user, key, redirect, map[string]any{"amount": 1500})
}

// forcedStepUp challenges even a user with no authenticator, which the rules never do
// (the real service answers ALLOW): the way to reach the pre-built UI's enrolment.
func forcedStepUp(t *testing.T, env *testEnv, user, key, redirect string) string {
	t.Helper()
	return stepUpWith(t, env, user, key, redirect, map[string]any{"amount": 1500, ForceStateField: StateChallengeRequired})
}

func stepUpWith(t *testing.T, env *testEnv, user, key, redirect string, custom map[string]any) string {
	t.Helper()
	body := map[string]any{"idempotencyKey": key, "custom": custom}
	if redirect != "" {
		body["redirectUrl"] = redirect
	}
	m := env.apiOK("POST", "/v1/users/"+user+"/actions/withdrawal", body)
	if m["state"] != StateChallengeRequired {
		t.Fatalf("track: %v", m)
	}
	return m["url"].(string)
}

func TestPrebuiltPageSuccess(t *testing.T) {
	env := newEnv(t)
	app := newFakeApp(t)
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "jane@example.com"})
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+447700900123"})
	pageURL := stepUp(t, env, "u1", "w-1", app.srv.URL+"/withdrawals/callback?wid=42")

	b := newBrowser(t)
	p := b.get(pageURL)
	p.must(t, 200, "<legend>Method</legend>", "Email j…@example.com", "SMS &#43;44…23", ">Send code</button>", ">Cancel</button>")
	radios := radioRE.FindAllStringSubmatch(p.body, -1)
	if len(radios) != 2 {
		t.Fatalf("radios %v", radios)
	}
	token := p.token(t)
	p = b.post(env.srv.URL+"/challenge/send", url.Values{"token": {token}, "authenticatorId": {radios[0][1]}})
	p.must(t, 200, `<label for="code">Code</label>`, ">Verify</button>", ">Cancel</button>", "j…@example.com")
	if p.url.Path != "/challenge/code" {
		t.Fatalf("after send at %s", p.url)
	}
	code := env.lastCode("jane@example.com")

	// One wrong code first.
	p = b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {wrongCode(code)}})
	p.must(t, 400, `role="alert"`, "Incorrect code. 4 attempts left.")
	p = b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {" " + code + " "}})
	p.must(t, 200, "app callback")
	q := app.last(t)
	if q.Get("wid") != "42" || q.Get("token") == "" {
		t.Fatalf("callback query %v", q)
	}
	v := env.apiOK("POST", "/v1/validate", map[string]any{"token": q.Get("token"), "userId": "u1", "action": "withdrawal"})
	if v["isValid"] != true || v["state"] != StateChallengeSucceeded || v["idempotencyKey"] != "w-1" || v["verificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("validate %v", v)
	}
	list := env.apiList("GET", "/v1/users/u1/actions?codes=withdrawal")
	if list[0]["verifiedByAuthenticatorId"] != radios[0][1] {
		t.Fatalf("verifiedByAuthenticatorId %v", list[0])
	}
	// The page cannot be used again.
	b.get(pageURL).must(t, 409, "not waiting for a challenge")
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {code}}).must(t, 409)
}

func TestPrebuiltPageFailureAndCancel(t *testing.T) {
	env := newEnv(t)
	app := newFakeApp(t)
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "WHATSAPP", "phoneNumber": "+447700900123"})
	b := newBrowser(t)

	t.Run("too many wrong codes", func(t *testing.T) {
		p := b.get(stepUp(t, env, "u1", "w-fail", app.srv.URL+"/cb"))
		p.must(t, 200, "WhatsApp &#43;44…23")
		token := p.token(t)
		authID := radioRE.FindStringSubmatch(p.body)[1]
		b.post(env.srv.URL+"/challenge/send", url.Values{"token": {token}, "authenticatorId": {authID}}).must(t, 200)
		code := env.lastCode("+447700900123")
		for i := 1; i < DefaultLimits().MaxAttempts; i++ {
			b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {wrongCode(code)}}).must(t, 400, "Incorrect code.")
		}
		b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {wrongCode(code)}}).must(t, 200, "app callback")
		v := env.apiOK("POST", "/v1/validate", map[string]any{"token": app.last(t).Get("token")})
		if v["isValid"] != false || v["state"] != StateChallengeFailed || v["idempotencyKey"] != "w-fail" {
			t.Fatalf("validate %v", v)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		p := b.get(stepUp(t, env, "u1", "w-cancel", app.srv.URL+"/cb?x=1&y=2"))
		token := p.token(t)
		b.post(env.srv.URL+"/challenge/cancel", url.Values{"token": {token}}).must(t, 200, "app callback")
		q := app.last(t)
		if q.Get("x") != "1" || q.Get("y") != "2" {
			t.Fatalf("query lost: %v", q)
		}
		v := env.apiOK("POST", "/v1/validate", map[string]any{"token": q.Get("token")})
		if v["isValid"] != false || v["state"] != StateChallengeFailed {
			t.Fatalf("validate %v", v)
		}
	})
	t.Run("no redirect url", func(t *testing.T) {
		p := b.get(stepUp(t, env, "u1", "w-none", ""))
		b.post(env.srv.URL+"/challenge/cancel", url.Values{"token": {p.token(t)}}).must(t, 200, "Not verified")
	})
	t.Run("bad and missing tokens", func(t *testing.T) {
		b.get(env.srv.URL+"/challenge?token=nope").must(t, 400, "invalid or has expired")
		b.get(env.srv.URL+"/challenge").must(t, 400)
		b.post(env.srv.URL+"/challenge/send", url.Values{"authenticatorId": {"x"}}).must(t, 400)
		b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {"forged"}, "code": {"123456"}}).must(t, 400)
		b.post(env.srv.URL+"/challenge/cancel", url.Values{}).must(t, 400)
	})
	t.Run("an allowed action's url shows the user's methods, and leaving it changes nothing", func(t *testing.T) {
		m := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 5}})
		p := b.get(m["url"].(string))
		p.must(t, 200, "Your verification methods")
		b.post(env.srv.URL+"/challenge/cancel", url.Values{"token": {p.token(t)}}).must(t, 200)
		if v := env.apiOK("POST", "/v1/validate", map[string]any{"token": m["token"]}); v["state"] != "ALLOW" {
			t.Fatalf("leaving an allowed action's page changed it: %v", v)
		}
	})
	t.Run("a blocked action's url has nothing to confirm", func(t *testing.T) {
		m := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 5}})
		env.apiOK("PATCH", "/v1/users/u1/actions/withdrawal/"+m["idempotencyKey"].(string), map[string]any{"state": "BLOCK"})
		b.get(m["url"].(string)).must(t, 409, "BLOCK")
	})
	t.Run("expired link", func(t *testing.T) {
		u := stepUp(t, env, "u1", "w-exp", app.srv.URL+"/cb")
		env.clock.Advance(DefaultLimits().TokenTTL + 1)
		b.get(u).must(t, 400, "expired")
	})
	t.Run("unknown authenticator", func(t *testing.T) {
		p := b.get(stepUp(t, env, "u1", "w-unknown", app.srv.URL+"/cb"))
		b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {"someone-elses"}}).must(t, 400, "Choose one of your methods")
	})
	t.Run("code page without a code in flight", func(t *testing.T) {
		p := b.get(stepUp(t, env, "u1", "w-nocode", app.srv.URL+"/cb"))
		q := b.get(env.srv.URL + "/challenge/code?token=" + url.QueryEscape(p.token(t)))
		q.must(t, 200, "Send code")
		if q.url.Path != "/challenge" {
			t.Fatalf("redirected to %s", q.url)
		}
	})
}

func TestPrebuiltPageEnrolment(t *testing.T) {
	env := newEnv(t)
	app := newFakeApp(t)
	b := newBrowser(t)
	p := b.get(forcedStepUp(t, env, "new-user", "w-enrol", app.srv.URL+"/cb"))
	p.must(t, 200, "Add a verification method", `value="EMAIL_OTP" checked> Email</label>`, "> SMS</label>", "> WhatsApp</label>",
		`<label for="enrol-email">Email</label>`, `<label for="enrol-phone">Phone number</label>`, ">Send code</button>")
	token := p.token(t)
	for _, tt := range []struct {
		name string
		form url.Values
		want string
	}{
		{"bad email", url.Values{"method": {"EMAIL_OTP"}, "email": {"nope"}}, "valid email"},
		{"bad phone", url.Values{"method": {"SMS"}, "phoneNumber": {"0770"}}, "international format"},
		{"no method", url.Values{"method": {"PIGEON"}}, "Choose Email, SMS, WhatsApp or Authenticator app"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("token", token)
			b.post(env.srv.URL+"/challenge/enroll", tt.form).must(t, 400, `role="alert"`, tt.want)
		})
	}
	b.post(env.srv.URL+"/challenge/enroll", url.Values{"token": {token}, "method": {"SMS"}, "phoneNumber": {"+15005550006"}}).must(t, 200, `<label for="code">Code</label>`)
	code := env.lastCode("+15005550006")
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {code}}).must(t, 200, "app callback")
	v := env.apiOK("POST", "/v1/validate", map[string]any{"token": app.last(t).Get("token")})
	if v["state"] != StateChallengeSucceeded || v["verificationMethod"] != "SMS" {
		t.Fatalf("validate %v", v)
	}
	auths := env.apiList("GET", "/v1/users/new-user/authenticators")
	if len(auths) != 1 || auths[0]["phoneNumber"] != "+15005550006" || auths[0]["verificationMethod"] != "SMS" {
		t.Fatalf("authenticators %v", auths)
	}
	if u := env.apiOK("GET", "/v1/users/new-user", nil); u["phoneNumberVerified"] != true || u["isEnrolled"] != true {
		t.Fatalf("user %v", u)
	}
}

func TestPrebuiltPageLocaleAndLimits(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.Limits = DefaultLimits(); c.Limits.EmailPerWindow = 1 })
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "es@example.com"})
	m := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}, "locale": "es-ES"})
	b := newBrowser(t)
	p := b.get(m["url"].(string))
	p.must(t, 200, `lang="es"`)
	authID := radioRE.FindStringSubmatch(p.body)[1]
	b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {authID}}).must(t, 200)
	if msgs := env.messages("es@example.com"); msgs[0].Subject != "Tu código de verificación" {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
	b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {authID}}).must(t, 429, "Too many emails")
}

// The pre-built UI follows the same test mode as the API: fixed codes for test
// recipients, and a recipient whose delivery always fails gets a clear page, no message.
func TestPrebuiltPageTestRecipients(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.TestRecipients = map[string]string{"demo@example.com": "000000"} })
	app := newFakeApp(t)
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "demo@example.com"})
	env.apiOK("POST", "/v1/users/u2/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "x@" + FailingEmailDomain})

	b := newBrowser(t)
	p := b.get(stepUp(t, env, "u1", "w-fixed", app.srv.URL+"/cb"))
	radios := radioRE.FindAllStringSubmatch(p.body, -1)
	token := p.token(t)
	b.post(env.srv.URL+"/challenge/send", url.Values{"token": {token}, "authenticatorId": {radios[0][1]}}).must(t, 200, ">Verify</button>")
	if got := env.lastCode("demo@example.com"); got != "000000" {
		t.Fatalf("pre-built UI sent %q to a test recipient, want its fixed code 000000", got)
	}
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {"000000"}}).must(t, 200, "app callback")

	p = b.get(stepUp(t, env, "u2", "w-fail", app.srv.URL+"/cb"))
	radios = radioRE.FindAllStringSubmatch(p.body, -1)
	p = b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {radios[0][1]}})
	p.must(t, http.StatusBadGateway, "could not be delivered")
	if msgs := env.messages("x@" + FailingEmailDomain); len(msgs) != 0 {
		t.Fatalf("a failing recipient got %d messages", len(msgs))
	}
}

// In the pre-built UI too, a success action.verify refuses changes nothing: the page says
// so, and the same code works once it approves.
func TestPrebuiltPageActionVerify(t *testing.T) {
	hook := newReceiver(t, 403, 200)
	env := newEnv(t, func(c *Config) { c.ActionVerifyWebhookURL = hook.srv.URL })
	app := newFakeApp(t)
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "jane@example.com"})
	pageURL := stepUp(t, env, "u1", "w-av", app.srv.URL+"/withdrawals/callback")
	b := newBrowser(t)
	p := b.get(pageURL)
	token := p.token(t)
	radios := radioRE.FindAllStringSubmatch(p.body, -1)
	b.post(env.srv.URL+"/challenge/send", url.Values{"token": {token}, "authenticatorId": {radios[0][1]}}).must(t, 200, ">Verify</button>")
	code := env.lastCode("jane@example.com")
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {code}}).must(t, 409, "did not accept this verification")
	if a := env.apiOK("GET", "/v1/users/u1/actions/withdrawal/w-av", nil); a["state"] != StateChallengeRequired {
		t.Fatalf("after a refusal: %v", a)
	}
	got := hook.wait(t, 1)
	if !strings.Contains(got[0].body, `"userAuthenticatorId":"`+radios[0][1]+`"`) {
		t.Fatalf("action.verify %s", got[0].body)
	}
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {code}}).must(t, 200, "app callback")
}

// A code the delivery provider refused is void: typed into the pre-built UI anyway (the
// provider saw it), it does not complete the action.
func TestPrebuiltPageRefusedDeliveryVoidsTheCode(t *testing.T) {
	provider := newReceiver(t, 500)
	env := newEnv(t, func(c *Config) { c.DeliveryWebhookURL = provider.srv.URL })
	app := newFakeApp(t)
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "jane@example.com"})
	pageURL := stepUp(t, env, "u1", "w-void", app.srv.URL+"/withdrawals/callback")
	b := newBrowser(t)
	p := b.get(pageURL)
	token := p.token(t)
	radios := radioRE.FindAllStringSubmatch(p.body, -1)
	b.post(env.srv.URL+"/challenge/send", url.Values{"token": {token}, "authenticatorId": {radios[0][1]}}).must(t, 502, "delivery provider refused")
	var ev struct{ Data struct{ Code string } }
	json.Unmarshal([]byte(provider.wait(t, 1)[0].body), &ev)
	if ev.Data.Code == "" {
		t.Fatal("the provider got no code")
	}
	if msgs := env.messages("jane@example.com"); len(msgs) != 0 {
		t.Fatalf("a refused code is in the outbox: %+v", msgs)
	}
	p = b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {ev.Data.Code}})
	if strings.Contains(p.body, "app callback") {
		t.Fatal("the refused code completed the action")
	}
	if a := env.apiOK("GET", "/v1/users/u1/actions/withdrawal/w-void", nil); a["state"] != StateChallengeRequired {
		t.Fatalf("after the refused code: %v", a)
	}
}
