package app

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
)

func TestAccountNeedsSession(t *testing.T) {
	env := newTestEnv(t)
	page := env.newBrowser().get("/account")
	if page.url.Path != "/signin" {
		t.Fatalf("anonymous /account: at %s", page.url)
	}
}

func TestSignOutRevokesTheSession(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	account := b.signIn("email", uniqueEmail())
	stolen := b.cookie(sessionCookie)
	if stolen == nil {
		t.Fatal("no session cookie after sign-in")
	}

	page := b.post("/signout", url.Values{"_csrf": {csrfToken(t, account.body)}})
	mustContain(t, page, "You have signed out.")
	if page := b.get("/account"); page.url.Path != "/signin" {
		t.Fatalf("/account after sign-out: at %s", page.url)
	}

	replay := env.newBrowser()
	u, _ := url.Parse(env.appURL)
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: stolen.Value, Path: "/"}})
	if page := replay.get("/account"); page.url.Path != "/signin" {
		t.Fatalf("replayed cookie after sign-out: at %s", page.url)
	}
}

func TestSessionExpires(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	b.signIn("email", uniqueEmail())
	env.clock.Advance(12*time.Hour + time.Minute)
	if page := b.get("/account"); page.url.Path != "/signin" {
		t.Fatalf("/account after the session expired: at %s", page.url)
	}
}

func TestForgedSessionCookiesRejected(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	b.signIn("email", uniqueEmail())
	real := b.cookie(sessionCookie).Value
	header, payload, _ := strings.Cut(real, ".")
	payload, _, _ = strings.Cut(payload, ".")
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(real, claims); err != nil {
		t.Fatal(err)
	}

	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	wrongKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("another-key-another-key-another-key"))
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString([]byte("0123456789abcdef0123456789abcdef"))
	otherUser := jwt.MapClaims{}
	for k, v := range claims {
		otherUser[k] = v
	}
	otherUser["sub"] = "someone-else"
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone-else"}`))

	tests := []struct{ name, value string }{
		{"alg none", noneToken},
		{"wrong key", wrongKey},
		{"other algorithm", hs512},
		{"tampered payload", header + "." + tamperedPayload + "." + strings.Split(real, ".")[2]},
		{"garbage", "not.a.jwt"},
		{"empty signature", header + "." + payload + "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forged := env.newBrowser()
			u, _ := url.Parse(env.appURL)
			forged.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: tt.value, Path: "/"}})
			if page := forged.get("/account"); page.url.Path != "/signin" {
				t.Fatalf("forged session accepted: at %s", page.url)
			}
		})
	}
}

func TestEverySignInGetsANewSession(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	b.signIn("email", email)
	first := b.cookie(sessionCookie).Value
	b.signIn("email", email)
	second := b.cookie(sessionCookie).Value
	if first == second {
		t.Fatal("the same session token was issued twice")
	}
}

func TestReturningUserLandsInSameAccount(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	env.newBrowser().signIn("email", email)
	first, created, err := env.store.FindOrCreateUserByEmail(t.Context(), email)
	if err != nil || created {
		t.Fatalf("user after first sign-in: created=%v err=%v", created, err)
	}
	env.newBrowser().signIn("email", strings.ToUpper(email))
	again, created, err := env.store.FindOrCreateUserByEmail(t.Context(), email)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("second sign-in made another user: %v vs %v (created=%v, err=%v)", first.ID, again.ID, created, err)
	}
}

func TestCookieAndHeaderSecurity(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	b.signIn("email", uniqueEmail())

	// Read the raw Set-Cookie of a fresh sign-in to see every attribute.
	client := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	email := uniqueEmail()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	codePage := b.get("/signin/verify")
	_ = page
	form := url.Values{"_csrf": {csrfToken(t, codePage.body)}, "code": {env.latestCode(email)}}
	req, _ := http.NewRequest(http.MethodPost, env.appURL+"/signin/verify", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=") {
			session = strings.ToLower(c)
		}
	}
	for _, attr := range []string{"httponly", "samesite=lax", "path=/"} {
		if !strings.Contains(session, attr) {
			t.Errorf("session cookie %q lacks %s", session, attr)
		}
	}
	if strings.Contains(session, "secure") {
		t.Errorf("session cookie is Secure over plain http: it would never be sent back")
	}

	home, err := http.Get(env.appURL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	home.Body.Close()
	for header, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	} {
		if got := home.Header.Get(header); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", header, got, want)
		}
	}
	if csp := home.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline code: %s", csp)
	}
}

// Behind https every cookie is Secure (the CSRF one also __Host-), HSTS is on, and the
// session cookie keeps HttpOnly and SameSite.
func TestCookiesSecureOverHTTPS(t *testing.T) {
	env := newTestEnv(t, withHTTPSBaseURL())
	req, _ := http.NewRequest(http.MethodGet, env.appURL+"/signin", nil)
	req.Header.Set("X-Forwarded-Proto", "https") // what a TLS-terminating proxy adds
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Header.Values("Set-Cookie")
	if len(cookies) < 2 {
		t.Fatalf("want the device and CSRF cookies, got %q", cookies)
	}
	for _, c := range cookies {
		lower := strings.ToLower(c)
		for _, attr := range []string{"secure", "httponly", "samesite=lax"} {
			if !strings.Contains(lower, attr) {
				t.Errorf("cookie %q lacks %s over https", c, attr)
			}
		}
	}
	if !strings.Contains(strings.Join(cookies, " "), "__Host-csrf=") {
		t.Errorf("the CSRF cookie should be __Host- prefixed over https: %q", cookies)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=31536000") {
		t.Errorf("Strict-Transport-Security = %q over https", hsts)
	}

	s := &server{secureCookies: true, cookies: newCookieNames(true)}
	web := fiber.New()
	web.Get("/", func(c *fiber.Ctx) error {
		s.setSessionCookie(c, "token", time.Now().Add(time.Hour))
		return nil
	})
	resp, err = web.Test(httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	session := strings.ToLower(resp.Header.Get("Set-Cookie"))
	if !strings.HasPrefix(session, "__host-session=") {
		t.Errorf("the session cookie should be __Host- prefixed over https: %q", session)
	}
	for _, attr := range []string{"secure", "httponly", "samesite=lax", "path=/"} {
		if !strings.Contains(session, attr) {
			t.Errorf("session cookie %q lacks %s over https", session, attr)
		}
	}
}

func TestLogsHoldNoCodesOrTokens(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	b.signIn("email", email)
	code := env.messagesTo(email)[0].Code
	token := b.cookie(sessionCookie).Value
	logs := env.logs.String()
	if !strings.Contains(logs, "signed in") {
		t.Fatalf("expected sign-in log lines, got:\n%s", logs)
	}
	for name, secret := range map[string]string{"code": code, "session token": token, "api key": testSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

func TestUnknownPageAndOversizedForm(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	if page := b.get("/no-such-page"); page.status != http.StatusNotFound {
		t.Errorf("unknown page: status %d", page.status)
	} else {
		mustContain(t, page, "We couldn't find that page.")
	}
	// The headers announce a body over the limit and no byte of it is sent: the server
	// refuses on the Content-Length alone. (Sending the body races the server's close, and
	// a TCP reset can discard the 413 before the client reads it.)
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.appURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /signin HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n",
		strings.TrimPrefix(env.appURL, "http://"), 200_000)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: status %d, want 413", resp.StatusCode)
	}
}

// No page is kept by a browser or proxy cache: after sign-out the back button must not
// show the balance, nor a shared computer's cache a code page. Static files may be cached.
func TestPagesAreNotCached(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	email := uniqueEmail()
	codePage := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	pages := map[string]response{"the code page": codePage}
	b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, codePage.body)}, "code": {env.latestCode(email)}})
	for _, path := range []string{"/account", "/signin", "/", "/no-such-page"} {
		pages[path] = b.get(path)
	}
	for name, page := range pages {
		if got := page.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, got)
		}
	}
	css := b.get("/static/style.css")
	if got := css.header.Get("Cache-Control"); css.status != http.StatusOK || !strings.Contains(got, "max-age") {
		t.Errorf("static file: %d, Cache-Control %q", css.status, got)
	}
}
