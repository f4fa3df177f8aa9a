package app

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
)

func TestSignInEachMethod(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		method, recipient, channel string
	}{
		{"email", uniqueEmail(), "EMAIL"},
		{"sms", uniquePhone(), "SMS"},
		{"whatsapp", uniquePhone(), "WHATSAPP"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			b := env.newBrowser()
			account := b.signIn(tt.method, tt.recipient)
			mustContain(t, account, "Signed in as", tt.recipient, "Balance: $25,000.00", "Sign out")
			msgs := env.messagesTo(tt.recipient)
			if len(msgs) != 1 || msgs[0].Channel != tt.channel {
				t.Fatalf("outbox for %s = %+v, want one %s message", tt.recipient, msgs, tt.channel)
			}
			if c := b.cookie(pendingCookie); c != nil {
				t.Errorf("pending sign-in cookie still set after sign-in")
			}
		})
	}
}

func TestSignInPhoneFormatting(t *testing.T) {
	env := newTestEnv(t)
	phone := uniquePhone()
	spaced := phone[:5] + " " + phone[5:8] + "-" + phone[8:]
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"sms"}, "phone": {spaced}})
	if page.url.Path != "/signin/verify" {
		t.Fatalf("a phone typed with spaces and dashes was refused: %s", page.body)
	}
	mustContain(t, page, phone)
}

func TestSignInInvalidInputSendsNothing(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name   string
		fields url.Values
		want   string
	}{
		{"empty email", url.Values{"method": {"email"}, "email": {""}}, "Enter your email address."},
		{"bad email", url.Values{"method": {"email"}, "email": {"not-an-email"}}, "Enter a valid email address"},
		{"display-name email", url.Values{"method": {"email"}, "email": {"Ann <ann@example.com>"}}, "Enter a valid email address"},
		{"email without dot", url.Values{"method": {"email"}, "email": {"ann@localhost"}}, "Enter a valid email address"},
		{"phone without plus", url.Values{"method": {"sms"}, "phone": {"4155550123"}}, "international format"},
		{"phone with letters", url.Values{"method": {"whatsapp"}, "phone": {"+1555CALLME"}}, "international format"},
		{"phone too long", url.Values{"method": {"sms"}, "phone": {"+1234567890123456"}}, "cannot exist"},
		{"phone with a lookalike letter", url.Values{"method": {"sms"}, "phone": {"+1415555O123"}}, "international format"},
		{"unknown method", url.Values{"method": {"pigeon"}, "email": {"ann@example.com"}}, "Choose how to receive your code"},
		{"unicode email", url.Values{"method": {"email"}, "email": {"änn@exämple.com\u202e"}}, "Enter a valid email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := env.newBrowser()
			page := b.submit("/signin", "/signin", tt.fields)
			if page.status != http.StatusBadRequest || page.url.Path != "/signin" {
				t.Fatalf("status %d at %s, want 400 on /signin", page.status, page.url)
			}
			mustContain(t, page, tt.want, `role="alert"`, "Send code")
		})
	}
	// Where a code would have gone had an input been taken as something: nothing went there.
	for _, to := range []string{"not-an-email", "+14155550123", "4155550123", "ann@localhost", "ann@example.com", "+15552255563", "+1234567890123456"} {
		if msgs := env.messagesTo(to); len(msgs) != 0 {
			t.Errorf("a message was sent to %q for invalid input", to)
		}
	}
}

func TestWrongCodeThenRightCodeWorks(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	right := env.latestCode(email)

	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {wrongCode(right)}})
	if page.status != http.StatusUnprocessableEntity {
		t.Fatalf("wrong code: status %d", page.status)
	}
	// Authsignal says CODE_INVALID_OR_EXPIRED: which of the two, and how many tries are
	// left, the app cannot know, so it does not claim either.
	mustContain(t, page, wrongCodeMessage)
	mustNotContain(t, page, "attempts left", "attempt left")

	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {"12ab"}})
	mustContain(t, page, "Enter the 6-digit code")

	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {right}})
	if page.url.Path != "/account" {
		t.Fatalf("right code after a wrong one: at %s", page.url)
	}
	mustContain(t, page, "Signed in as", email)
}

func TestFiveWrongCodesStartOver(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	right := env.latestCode(email)
	for i := 1; i <= 4; i++ {
		page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {wrongCode(right)}})
		mustContain(t, page, wrongCodeMessage)
	}
	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {wrongCode(right)}})
	if page.url.Path != "/signin" {
		t.Fatalf("after five wrong codes: at %s", page.url)
	}
	mustContain(t, page, "Too many attempts")

	// The old code is dead; a new sign-in works.
	account := b.signIn("email", email)
	mustContain(t, account, "Signed in as", email)
}

func TestExpiredCodeIsReportedAsAuthsignalSaysIt(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	code := env.latestCode(email)
	// Only Authsignal's clock moves past the code's expiry: the app must not call the
	// right code "incorrect" on its own clock, nor count the attempt as if it knew better.
	env.advanceEmulatorClock("11m")
	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {code}})
	if page.url.Path != "/signin/verify" || page.status != http.StatusUnprocessableEntity {
		t.Fatalf("expired code: at %s (%d)", page.url, page.status)
	}
	mustContain(t, page, wrongCodeMessage)
	// A new code works.
	page = b.post("/signin/resend", url.Values{"_csrf": {csrfToken(t, page.body)}})
	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {env.latestCode(email)}})
	if page.url.Path != "/account" {
		t.Fatalf("new code after expiry: at %s", page.url)
	}
}

func TestPendingSignInOutlivedStartsOver(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	code := env.latestCode(email)
	// Past the app's own pending sign-in (the code's life plus its grace): the app knows that.
	env.clock.Advance(10*time.Minute + pendingGrace + time.Second)
	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {code}})
	if page.url.Path != "/signin" {
		t.Fatalf("outlived sign-in: at %s", page.url)
	}
	mustContain(t, page, "Your sign-in took too long")
}

func TestResendCodeReplacesTheOldOne(t *testing.T) {
	env := newTestEnv(t)
	phone := uniquePhone()
	b := env.newBrowser()
	page := b.submit("/signin", "/signin", url.Values{"method": {"sms"}, "phone": {phone}})
	oldCode := env.latestCode(phone)

	page = b.post("/signin/resend", url.Values{"_csrf": {csrfToken(t, page.body)}})
	mustContain(t, page, "We sent a new code")
	msgs := env.messagesTo(phone)
	if len(msgs) != 2 {
		t.Fatalf("after resend: %d messages, want 2", len(msgs))
	}
	newCode := msgs[0].Code
	if newCode != oldCode {
		page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {oldCode}})
		mustContain(t, page, wrongCodeMessage)
	}
	page = b.post("/signin/verify", url.Values{"_csrf": {csrfToken(t, page.body)}, "code": {newCode}})
	if page.url.Path != "/account" {
		t.Fatalf("new code after resend: at %s", page.url)
	}
}

func TestCodePageWithoutPendingSignIn(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	page := b.get("/signin/verify")
	if page.url.Path != "/signin" {
		t.Fatalf("code page with no pending sign-in: at %s", page.url)
	}
	mustContain(t, page, "Start again")

	// A forged pending cookie is ignored the same way.
	u, _ := url.Parse(env.appURL + "/signin")
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: pendingCookie, Value: "forged.value.here", Path: "/signin"}})
	page = b.get("/signin/verify")
	if page.url.Path != "/signin" {
		t.Fatalf("forged pending cookie: at %s", page.url)
	}
}

func TestCSRF(t *testing.T) {
	env := newTestEnv(t)
	b := env.newBrowser()
	token := csrfToken(t, b.get("/signin").body) // sets this browser's nonce cookie
	other := csrfToken(t, env.newBrowser().get("/signin").body)
	origin := env.appURL
	tests := []struct {
		name    string
		query   string // on the action URL
		field   string // _csrf in the body
		header  map[string]string
		advance time.Duration
		want    int
	}{
		{name: "in the form", field: token, want: http.StatusSeeOther},
		{name: "in the header", header: map[string]string{"X-CSRF-Token": token}, want: http.StatusSeeOther},
		{name: "same origin", field: token, header: map[string]string{"Origin": origin}, want: http.StatusSeeOther},
		{name: "missing", want: http.StatusForbidden},
		{name: "wrong", field: "not-the-token", want: http.StatusForbidden},
		{name: "in the query string only", query: "?_csrf=" + url.QueryEscape(token), want: http.StatusForbidden},
		{name: "another browser's token", field: other, want: http.StatusForbidden},
		{name: "foreign origin, right token", field: token, header: map[string]string{"Origin": "http://evil.example"}, want: http.StatusForbidden},
		{name: "null origin", field: token, header: map[string]string{"Origin": "null"}, want: http.StatusForbidden},
		{name: "foreign referer", field: token, header: map[string]string{"Referer": "http://evil.example/page"}, want: http.StatusForbidden},
		{name: "expired", field: token, advance: csrfTokenTTL + time.Minute, want: http.StatusForbidden}, // last: it moves the clock
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.clock.Advance(tt.advance)
			email := uniqueEmail()
			fields := url.Values{"method": {"email"}, "email": {email}}
			if tt.field != "" {
				fields.Set("_csrf", tt.field)
			}
			req, _ := http.NewRequest(http.MethodPost, env.appURL+"/signin"+tt.query, strings.NewReader(fields.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			client := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			sent := len(env.messagesTo(email)) != 0
			if tt.want == http.StatusForbidden {
				if !strings.Contains(string(body), "This form has expired") || sent {
					t.Fatalf("refused: page %q, code sent %v", body, sent)
				}
			} else if !sent {
				t.Fatal("accepted but no code sent")
			}
		})
	}
}

func TestSameAnswerForNewAndKnownEmail(t *testing.T) {
	env := newTestEnv(t)
	known := uniqueEmail()
	env.newBrowser().signIn("email", known)

	answer := func(email string) response {
		page := env.newBrowser().submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
		page.body = strings.ReplaceAll(page.body, email, "EMAIL")
		page.body = strings.ReplaceAll(page.body, strings.ReplaceAll(email, "@", "%40"), "EMAIL") // in the outbox link
		page.body = csrfFieldRE.ReplaceAllString(page.body, "CSRF")
		return page
	}
	a, b := answer(known), answer(uniqueEmail())
	if a.status != b.status || a.url.Path != b.url.Path || a.body != b.body {
		t.Fatalf("sign-in answers differ for a known and a new email")
	}
}

func TestSendLimitPerIP(t *testing.T) {
	env := newTestEnv(t, withSendsPerIP(2))
	b := env.newBrowser()
	for i := 0; i < 2; i++ {
		page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {uniqueEmail()}})
		if page.url.Path != "/signin/verify" {
			t.Fatalf("send %d refused", i+1)
		}
	}
	email := uniqueEmail()
	page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	if page.status != http.StatusTooManyRequests {
		t.Fatalf("third send: status %d, want 429", page.status)
	}
	mustContain(t, page, "Too many codes were requested")
	if len(env.messagesTo(email)) != 0 {
		t.Fatal("a code was sent over the limit")
	}
}

func TestSendLimitPerRecipient(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	b := env.newBrowser()
	var page response
	for i := 0; i < 6; i++ {
		page = b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
	}
	if page.status != http.StatusTooManyRequests {
		t.Fatalf("sixth send to one address: status %d, want 429", page.status)
	}
	if n := len(env.messagesTo(email)); n != 5 {
		t.Fatalf("%d messages sent, want 5", n)
	}
}

func TestConcurrentVerifiesOfOneNewEmailMakeOneUserAndSignEveryoneIn(t *testing.T) {
	env := newTestEnv(t)
	email := uniqueEmail()
	// 50 browsers each get a code, then all verify at once.
	type pendingBrowser struct {
		b    *browser
		csrf string
		code string
	}
	var ready []pendingBrowser
	for i := 0; i < 50; i++ {
		b := env.newBrowser()
		page := b.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {email}})
		if page.url.Path != "/signin/verify" {
			// The per-address send limit stops the 6th code: that is the point of it.
			break
		}
		ready = append(ready, pendingBrowser{b: b, csrf: csrfToken(t, page.body), code: env.latestCode(email)})
	}
	if len(ready) < 2 {
		t.Fatalf("only %d sign-ins started", len(ready))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var serverErrors int
	for _, p := range ready {
		for i := 0; i < 50/len(ready)+1; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				form := url.Values{"_csrf": {p.csrf}, "code": {p.code}}
				req, _ := http.NewRequest(http.MethodPost, env.appURL+"/signin/verify", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r, err := p.b.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				r.Body.Close()
				if r.StatusCode >= 500 {
					mu.Lock()
					serverErrors++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if serverErrors > 0 {
		t.Fatalf("%d concurrent verifies failed with a server error", serverErrors)
	}
	if _, created, err := env.store.FindOrCreateUserByEmail(t.Context(), email); err != nil || created {
		t.Fatalf("after the sign-ins: created=%v err=%v, want the one existing user", created, err)
	}
	for _, p := range ready {
		if page := p.b.get("/account"); page.url.Path != "/account" {
			t.Errorf("a browser that verified its code is not signed in")
		}
	}
}

func TestAuthsignalFailuresAreFriendly(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + closed.Addr().String() + "/v1"
	closed.Close() // nothing listens there now

	tests := []struct {
		name       string
		option     envOption
		wantStatus int
		wantText   string
	}{
		{"wrong key (401)", withAuthsignal("not-the-key", ""), http.StatusServiceUnavailable, "The sign-in service is not reachable right now"},
		{"service down", withAuthsignal(testSecret, downURL), http.StatusServiceUnavailable, "The sign-in service is not reachable right now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, tt.option)
			page := env.newBrowser().submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {uniqueEmail()}})
			if page.status != tt.wantStatus || page.url.Path != "/signin" {
				t.Fatalf("status %d at %s, want %d on /signin", page.status, page.url, tt.wantStatus)
			}
			mustContain(t, page, tt.wantText, "Send code")
			if !strings.Contains(env.logs.String(), "authsignal call failed") {
				t.Error("the cause was not logged")
			}
		})
	}

	t.Run("too many requests (429)", func(t *testing.T) {
		env := newTestEnv(t)
		phone := uniquePhone()
		// Use up Authsignal's own limit (6 SMS per 10 minutes per number) directly, so that
		// the app's next request for that number gets Authsignal's 429.
		client := authsignal.New(testSecret, authsignal.WithBaseURL(env.emulatorURL+"/v1"))
		for i := 0; i < 6; i++ {
			if _, err := client.Challenge(t.Context(), authsignal.ChallengeRequest{VerificationMethod: authsignal.MethodSMS, Action: "signInWithSms", PhoneNumber: phone}); err != nil {
				t.Fatalf("direct send %d: %v", i+1, err)
			}
		}
		page := env.newBrowser().submit("/signin", "/signin", url.Values{"method": {"sms"}, "phone": {phone}})
		if page.status != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", page.status)
		}
		mustContain(t, page, "Too many codes were sent to this address")
	})
}
