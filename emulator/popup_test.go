package emulator

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The pre-built UI in popup mode (the browser SDK's launch(url, {mode: "popup"}) loads
// url&mode=popup in an iframe): framed by the client origins only, the mode kept through
// every step, and the end handed to the app's window as a token instead of a redirect.

var finishTokenRE = regexp.MustCompile(`data-finish-token="([^"]+)"`)

func TestPrebuiltPopupMode(t *testing.T) {
	env := newClientEnv(t)
	env.enrol("u-popup", "popup@example.com")
	b := newBrowser(t)
	app := newFakeApp(t)

	resp, err := http.Get(stepUp(t, env, "u-popup", "w-popup", app.srv.URL+"/cb") + "&mode=popup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors "+appOrigin) || strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "" {
		t.Fatalf("popup page framing: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
	}

	choose := b.get(stepUp(t, env, "u-popup", "w-popup-2", app.srv.URL+"/cb") + "&mode=popup")
	choose.must(t, 200, `data-mode="popup"`, `data-origins="[&#34;`+appOrigin+`&#34;]"`, `name="mode" value="popup"`)
	auth := radioRE.FindStringSubmatch(choose.body)[1]
	code := b.post(env.srv.URL+"/challenge/send", url.Values{"token": {choose.token(t)}, "authenticatorId": {auth}, "mode": {"popup"}})
	if code.url.Query().Get("mode") != "popup" {
		t.Fatalf("the code page lost the mode: %s", code.url)
	}
	done := b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {code.token(t)}, "code": {env.lastCode("popup@example.com")}, "mode": {"popup"}})
	done.must(t, 200, "You are verified")
	m := finishTokenRE.FindStringSubmatch(done.body)
	if m == nil {
		t.Fatalf("the last page hands no token to the app: %s", done.body)
	}
	if v := env.apiOK("POST", "/v1/validate", map[string]any{"token": htmlUnescape(m[1])}); v["state"] != "CHALLENGE_SUCCEEDED" || v["idempotencyKey"] != "w-popup-2" {
		t.Fatalf("validate the popup's token: %v", v)
	}
	if len(app.hits) != 0 {
		t.Fatalf("popup mode redirected to the app: %v", app.hits)
	}

	// Cancelled: the app gets the token of a failed action.
	cancel := b.get(stepUp(t, env, "u-popup", "w-popup-3", app.srv.URL+"/cb") + "&mode=popup")
	gone := b.post(env.srv.URL+"/challenge/cancel", url.Values{"token": {cancel.token(t)}, "mode": {"popup"}})
	m = finishTokenRE.FindStringSubmatch(gone.body)
	if m == nil {
		t.Fatalf("a cancelled popup hands no token: %s", gone.body)
	}
	if v := env.apiOK("POST", "/v1/validate", map[string]any{"token": htmlUnescape(m[1])}); v["state"] != "CHALLENGE_FAILED" || v["isValid"] != false {
		t.Fatalf("validate the cancelled popup's token: %v", v)
	}

	// Without client origins, nobody may frame the pre-built UI.
	plain := newEnv(t)
	plain.enrol("u-plain", "plain@example.com")
	resp, err = http.Get(stepUp(t, plain, "u-plain", "w-plain", "") + "&mode=popup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("framing without client origins: %v", resp.Header)
	}
}

// A dead end of the pre-built UI (an expired link) leads back to the app.
func TestPrebuiltErrorPagesLeadBackToTheApp(t *testing.T) {
	env := newClientEnv(t)
	b := newBrowser(t)
	b.get(env.srv.URL+"/challenge?token=expired").must(t, 400, `<a href="`+appOrigin+`">Back to the app</a>`)
	if p := b.get(env.srv.URL + "/challenge?token=expired&mode=popup"); strings.Contains(p.body, "Back to the app") {
		t.Fatal("a popup's error page navigates its frame away")
	}
}

// The pre-built UI says who asks and for what, the amount formatted when the app gave one.
func TestPrebuiltUISaysWhoAsks(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.AppName = "Sample bank" })
	env.enrol("u-ctx", "ctx@example.com")
	b := newBrowser(t)
	p := b.get(stepUpWith(t, env, "u-ctx", "w-ctx", "", map[string]any{"amount": 1234567.5, ForceStateField: StateChallengeRequired}))
	p.must(t, 200, "Sample bank asks you to confirm: withdrawal of 1,234,567.50")
	auth := radioRE.FindStringSubmatch(p.body)[1]
	code := b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {auth}})
	code.must(t, 200, "Sample bank asks you to confirm: withdrawal of 1,234,567.50")
	plain := newEnv(t)
	plain.enrol("u-ctx", "ctx@example.com")
	newBrowser(t).get(stepUpWith(t, plain, "u-ctx", "w-ctx", "", map[string]any{"amount": 1500})).must(t, 200, "The app asks you to confirm: withdrawal of 1,500.00")
}

// The admin pages show an action's amount formatted, not as raw JSON.
func TestAdminFormatsAmounts(t *testing.T) {
	env := newEnv(t)
	env.enrol("u-amt", "amt@example.com")
	env.apiOK("POST", "/v1/users/u-amt/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 7000, "note": "rent"}})
	p := newBrowser(t).get(env.srv.URL + "/admin") // held for review: the dashboard shows it with its data
	p.must(t, 200, `amount 7,000.00 {&#34;note&#34;:&#34;rent&#34;}`)
	if strings.Contains(p.body, `{&#34;amount&#34;`) {
		t.Fatal("the raw amount JSON is still shown")
	}
}
