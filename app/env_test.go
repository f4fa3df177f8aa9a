package app

import (
	"context"
	"crypto/rand"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/auth"
	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
	"example.com/passwordless/public"
	"example.com/passwordless/store"
	"example.com/passwordless/templates"

	"example.com/passwordless/internal/testkit"
)

// testEnv is the whole sample in-process: the app and the emulator on loopback ports,
// a temp SQLite store and a captured log.
type testEnv struct {
	t           testing.TB
	appURL      string
	emulatorURL string
	store       *store.Store
	dbPath      string // the store's SQLite file
	clock       *testkit.Clock
	logs        *testkit.Buffer
}

const testSecret = "test-secret-key"

type envOption func(*envSettings)

type envSettings struct {
	rules       string // rules file contents; "" = the emulator's defaults
	sendsPerIP  int
	apiKey      string // the key the app sends; "" = the emulator's
	apiURL      string // where the app sends it; "" = the emulator
	https       bool   // BASE_URL says https (as behind a TLS proxy); the test still talks plain http
	wrap        func(Authsignal) Authsignal
	front       func(emulatorURL string) string // a server between the app and the emulator
	timeout     time.Duration                   // the Authsignal client's per-attempt timeout
	connTimeout time.Duration                   // the app's read and idle timeouts
}

// withConnTimeouts shortens the app's ReadTimeout and IdleTimeout.
func withConnTimeouts(d time.Duration) envOption { return func(s *envSettings) { s.connTimeout = d } }

// withSlowTrack puts a proxy before the emulator that answers track only after delay, and
// gives the app a client timeout of timeout: track times out although the emulator acts.
func withSlowTrack(delay, timeout time.Duration) envOption {
	return func(s *envSettings) {
		s.timeout = timeout
		s.front = func(emulatorURL string) string {
			target, _ := url.Parse(emulatorURL)
			proxy := httputil.NewSingleHostReverseProxy(target)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				proxy.ServeHTTP(w, r)
				if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/actions/") {
					time.Sleep(delay) // the emulator has answered; the app has stopped waiting
				}
			}))
			return srv.URL
		}
	}
}

// withAuthsignalWrapper puts wrap between the app and its Authsignal client, to make
// chosen calls fail.
func withAuthsignalWrapper(wrap func(Authsignal) Authsignal) envOption {
	return func(s *envSettings) { s.wrap = wrap }
}

// withHTTPSBaseURL makes the app believe it is served over https.
func withHTTPSBaseURL() envOption { return func(s *envSettings) { s.https = true } }

// withAuthsignal points the app at another key or address, to see how it copes when
// Authsignal refuses it or is down.
func withAuthsignal(key, apiURL string) envOption {
	return func(s *envSettings) { s.apiKey, s.apiURL = key, apiURL }
}

func withRules(rules string) envOption { return func(s *envSettings) { s.rules = rules } }

func withSendsPerIP(n int) envOption { return func(s *envSettings) { s.sendsPerIP = n } }

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	settings := envSettings{sendsPerIP: 1000}
	for _, o := range opts {
		o(&settings)
	}
	ctx := context.Background()
	// The clock starts at the real time: the test's cookie jar expires cookies by the wall
	// clock, so a fixed date would turn every session cookie stale once that date has passed.
	clock := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
	dir := t.TempDir()

	rulesFile := ""
	if settings.rules != "" {
		rulesFile = filepath.Join(dir, "rules.json")
		if err := os.WriteFile(rulesFile, []byte(settings.rules), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + listener.Addr().String()
	// The emulator's webhooks go to the app's receiver, as in make run.
	em, err := emulator.New(emulator.Config{SecretKey: testSecret, DBPath: ":memory:", RulesFile: rulesFile, Now: clock.Now,
		WebhookURLs: []string{appURL + WebhookPath}, ClientOrigins: []string{appURL}})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	emulatorURL, err := em.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() { em.Close() })

	db, err := store.Open(ctx, filepath.Join(dir, "app.db"), clock.Now)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	sessions := auth.NewSessions(db, auth.SessionConfig{
		Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "test", Audience: "test-web",
		TTL: 12 * time.Hour, Now: clock.Now,
	})

	base, _ := url.Parse(appURL)
	if settings.https {
		base.Scheme = "https"
	}
	logs := &testkit.Buffer{}
	apiKey, apiURL := testSecret, emulatorURL+"/v1"
	if settings.front != nil {
		apiURL = settings.front(emulatorURL) + "/v1"
	}
	if settings.apiKey != "" {
		apiKey = settings.apiKey
	}
	if settings.apiURL != "" {
		apiURL = settings.apiURL
	}
	httpClient := &http.Client{Timeout: authsignal.DefaultTimeout}
	if settings.timeout > 0 {
		httpClient.Timeout = settings.timeout
	}
	var client Authsignal = authsignal.New(apiKey, authsignal.WithBaseURL(apiURL), authsignal.WithRetryBackoff(time.Millisecond), authsignal.WithHTTPClient(httpClient))
	if settings.wrap != nil {
		client = settings.wrap(client)
	}
	web, err := New(Config{BaseURL: base, OutboxURL: emulatorURL + "/outbox", SendsPerIP: settings.sendsPerIP,
		ReadTimeout: settings.connTimeout, IdleTimeout: settings.connTimeout, WebhookSecret: testSecret,
		TenantID: emulator.DevTenantID, ClientAPIURL: emulatorURL + "/v1", PrebuiltUIOrigin: emulatorURL,
		WithdrawalRules: em.RulesFor(WithdrawalAction)}, Deps{
		Store:      db,
		Sessions:   sessions,
		Authsignal: client,
		Templates:  templates.Files,
		Public:     public.Files,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	go web.Listener(listener)
	t.Cleanup(func() {
		// Shutdown waits for open connections to end; the test clients' keep-alive ones
		// would only end by the server's idle timeout, so they are closed first.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		web.ShutdownWithTimeout(5 * time.Second)
	})
	return &testEnv{t: t, appURL: appURL, emulatorURL: emulatorURL, store: db, dbPath: filepath.Join(dir, "app.db"), clock: clock, logs: logs}
}

// api is a Server API client of the test's emulator, for what Authsignal's Portal would show.
func (e *testEnv) api() *authsignal.Client {
	return authsignal.New(testSecret, authsignal.WithBaseURL(e.emulatorURL+"/v1"))
}

// browser is a cookie-keeping HTTP client that follows redirects, like a person's browser.
type browser struct {
	env    *testEnv
	client *http.Client
}

func (e *testEnv) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{env: e, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// response is what a page load ended on.
type response struct {
	status   int
	url      *url.URL
	body     string
	location string // the Location header when a redirect was not followed
	header   http.Header
}

func (r response) text() string { return html.UnescapeString(r.body) }

func (b *browser) do(req *http.Request) response {
	b.env.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.env.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, url: resp.Request.URL, body: string(body), location: resp.Header.Get("Location"), header: resp.Header}
}

func (b *browser) get(rawURL string) response {
	b.env.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.abs(rawURL), nil)
	return b.do(req)
}

// post submits a form; the page's CSRF token must already be in fields when wanted.
func (b *browser) post(rawURL string, fields url.Values) response {
	b.env.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.abs(rawURL), strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit loads page, takes its CSRF token and posts fields to action, like a form would.
func (b *browser) submit(page, action string, fields url.Values) response {
	b.env.t.Helper()
	loaded := b.get(page)
	fields.Set("_csrf", csrfToken(b.env.t, loaded.body))
	return b.post(action, fields)
}

func (b *browser) abs(rawURL string) string {
	if strings.HasPrefix(rawURL, "http") {
		return rawURL
	}
	return b.env.appURL + rawURL
}

var csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func csrfToken(t testing.TB, body string) string {
	t.Helper()
	return hiddenField(t, body, "_csrf")
}

// hiddenField is the value of the page's first hidden input called name.
func hiddenField(t testing.TB, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s field in the page:\n%s", name, body)
	}
	return m[1]
}

func (e *testEnv) messagesTo(to string) []testkit.Message {
	e.t.Helper()
	msgs, err := testkit.Outbox(nil, e.emulatorURL, to)
	if err != nil {
		e.t.Fatal(err)
	}
	return msgs
}

// latestCode is the newest code sent to a recipient.
func (e *testEnv) latestCode(to string) string {
	e.t.Helper()
	msgs := e.messagesTo(to)
	if len(msgs) == 0 {
		e.t.Fatalf("no message sent to %s", to)
	}
	return msgs[0].Code
}

// wrongCode is a 6-digit code that is not the right one.
func wrongCode(right string) string {
	if right == "000000" {
		return "111111"
	}
	return "000000"
}

// signIn runs the whole email/SMS/WhatsApp sign-in and returns the account page.
func (b *browser) signIn(method, recipient string) response {
	b.env.t.Helper()
	fields := url.Values{"method": {method}}
	if method == "email" {
		fields.Set("email", recipient)
	} else {
		fields.Set("phone", recipient)
	}
	codePage := b.submit("/signin", "/signin", fields)
	if codePage.url.Path != "/signin/verify" {
		b.env.t.Fatalf("after Send code: at %s (status %d):\n%s", codePage.url, codePage.status, codePage.body)
	}
	account := b.post("/signin/verify", url.Values{"_csrf": {csrfToken(b.env.t, codePage.body)}, "code": {b.env.latestCode(recipient)}})
	if account.url.Path != "/account" {
		b.env.t.Fatalf("after Verify: at %s (status %d):\n%s", account.url, account.status, account.body)
	}
	return account
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.env.appURL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// uniqueEmail and uniquePhone give each test its own recipient, so tests never share
// an outbox entry or a send limit.
func uniqueEmail() string { return "user-" + randomDigits(10) + "@example.com" }

func uniquePhone() string { return "+1555" + randomDigits(7) }

func randomDigits(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func mustNotContain(t testing.TB, r response, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(r.text(), w) {
			t.Fatalf("page %s (status %d) says %q:\n%s", r.url, r.status, w, r.body)
		}
	}
}

// advanceEmulatorClock moves only the emulator's clock (POST /emulator/clock), as when
// Authsignal's clock and the app's disagree.
func (e *testEnv) advanceEmulatorClock(d string) {
	e.t.Helper()
	resp, err := http.Post(e.emulatorURL+"/emulator/clock", "application/json", strings.NewReader(`{"advance":"`+d+`"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("advance emulator clock: %d", resp.StatusCode)
	}
}

func mustContain(t testing.TB, r response, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.text(), w) {
			t.Fatalf("page %s (status %d) lacks %q:\n%s", r.url, r.status, w, r.body)
		}
	}
}
