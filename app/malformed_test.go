package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Every form, given malformed input, answers 4xx with a page: never a 5xx, and nothing
// already stored changes.
func TestMalformedFormsNeverFail(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	// A pending sign-in too, so the code forms have something to work against.
	pendingBrowser := env.newBrowser()
	pendingBrowser.submit("/signin", "/signin", url.Values{"method": {"email"}, "email": {uniqueEmail()}})

	bodies := []struct {
		name, contentType, body string
	}{
		{"empty", "application/x-www-form-urlencoded", ""},
		{"json", "application/json", `{"amount": -1, "email": ["x"], "method": {"a": 1}}`},
		{"not urlencoded", "application/x-www-form-urlencoded", "%%%zz&&=&=="},
		{"unicode", "application/x-www-form-urlencoded", "method=email&email=" + url.QueryEscape("😀@例え.テスト") + "&amount=" + url.QueryEscape("１０") + "&code=" + url.QueryEscape("١٢٣٤٥٦")},
		{"negative and absurd", "application/x-www-form-urlencoded", "method=sms&phone=-1&amount=-99999999999999999999999&code=-12345"},
		{"unknown fields", "application/x-www-form-urlencoded", "method=email&email=a@example.com&isAdmin=true&balance=999999999&userId=someone"},
		{"repeated fields", "application/x-www-form-urlencoded", "amount=abc&amount=1&method=pigeon&method=email"},
		{"null bytes", "application/x-www-form-urlencoded", "email=a%00b@example.com&amount=1%00&code=12%0034"},
		{"multipart garbage", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n1e400\r\n--x--"},
	}
	paths := []string{"/signin", "/signin/verify", "/signin/resend", "/withdrawals", "/withdrawals/nonexistent/check", "/withdrawals/" + url.PathEscape("../../etc") + "/check"}
	for _, who := range []struct {
		name string
		b    *browser
	}{{"signed in", b}, {"pending sign-in", pendingBrowser}} {
		page := who.b.get("/signin")
		token := csrfToken(t, page.body)
		for _, path := range paths {
			for _, body := range bodies {
				t.Run(who.name+" "+path+" "+body.name, func(t *testing.T) {
					withToken := body.body
					if strings.HasPrefix(body.contentType, "application/x-www-form-urlencoded") {
						withToken = "_csrf=" + token + "&" + body.body
					}
					req, _ := http.NewRequest(http.MethodPost, env.appURL+path, strings.NewReader(withToken))
					req.Header.Set("Content-Type", body.contentType)
					resp := who.b.do(req)
					if resp.status >= 500 {
						t.Fatalf("status %d:\n%s", resp.status, resp.body)
					}
				})
			}
		}
	}
	if got := env.balance(user.ID); got != 2_500_000 {
		t.Fatalf("balance changed to %d", got)
	}
	for _, w := range env.withdrawals(user.ID) {
		if w.State == "completed" {
			t.Fatalf("a malformed form completed a withdrawal: %+v", w)
		}
	}
}
