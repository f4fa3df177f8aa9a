package app

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// A tiny HTML form driver for pages we don't own (the emulator's pre-built UI and admin):
// it finds a form by its button's text and fills inputs by their label, as a person would.

var (
	formPattern   = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	attrPattern   = regexp.MustCompile(`([a-zA-Z_:-]+)\s*=\s*"([^"]*)"`)
	inputPattern  = regexp.MustCompile(`<input\b([^>]*)>`)
	buttonPattern = regexp.MustCompile(`(?s)<button\b([^>]*)>(.*?)</button>`)
	labelPattern  = regexp.MustCompile(`(?s)<label\b([^>]*)>(.*?)</label>`)
	tagPattern    = regexp.MustCompile(`<[^>]+>`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrPattern.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	if strings.Contains(" "+s+" ", " checked") {
		m["checked"] = "checked"
	}
	return m
}

func innerText(s string) string {
	return strings.Join(strings.Fields(html.UnescapeString(tagPattern.ReplaceAllString(s, " "))), " ")
}

// submitForm submits the form of page whose button reads button, with inputs labelled as
// in fill set to those values (radios: the label of the option to choose, value "check").
func (b *browser) submitForm(page response, button string, fill map[string]string) response {
	t := b.env.t
	t.Helper()
	for _, f := range formPattern.FindAllStringSubmatch(page.body, -1) {
		formAttrs, inner := attrs(f[1]), f[2]
		var pressed map[string]string
		for _, btn := range buttonPattern.FindAllStringSubmatch(inner, -1) {
			if innerText(btn[2]) == button {
				pressed = attrs(btn[1])
			}
		}
		if pressed == nil {
			continue
		}
		labels := map[string]string{} // input id -> label text
		for _, l := range labelPattern.FindAllStringSubmatch(inner, -1) {
			la := attrs(l[1])
			text := innerText(l[2])
			if la["for"] != "" {
				labels[la["for"]] = text
			} else if in := inputPattern.FindStringSubmatch(l[2]); in != nil {
				ia := attrs(in[1])
				labels["\x00"+ia["name"]+"="+ia["value"]] = text
			}
		}
		values := url.Values{}
		for _, in := range inputPattern.FindAllStringSubmatch(inner, -1) {
			ia := attrs(in[1])
			name := ia["name"]
			if name == "" {
				continue
			}
			label := labels[ia["id"]]
			if label == "" {
				label = labels["\x00"+name+"="+ia["value"]]
			}
			switch ia["type"] {
			case "radio", "checkbox":
				if want, ok := fill[label]; ok && want == "check" {
					values.Set(name, ia["value"])
				} else if ia["checked"] != "" && values.Get(name) == "" {
					values.Set(name, ia["value"])
				}
			default:
				if v, ok := fill[label]; ok {
					values.Set(name, v)
				} else {
					values.Set(name, ia["value"])
				}
			}
		}
		if pressed["name"] != "" {
			values.Set(pressed["name"], pressed["value"])
		}
		action, err := page.url.Parse(formAttrs["action"])
		if err != nil {
			t.Fatalf("form action %q: %v", formAttrs["action"], err)
		}
		if strings.EqualFold(formAttrs["method"], "get") {
			action.RawQuery = values.Encode()
			return b.get(action.String())
		}
		return b.post(action.String(), values)
	}
	t.Fatalf("no form with a %q button on %s:\n%s", button, page.url, page.body)
	return response{}
}

// passChallenge completes the emulator's pre-built UI with the user's email code (or
// fails it with wrong codes) and stops at the redirect back to the app, returning the
// callback URL without visiting it.
func (e *testEnv) passChallengeWithoutFollowing(b *browser, challengeURL, email string) string {
	e.t.Helper()
	callback, _ := e.runChallenge(b, challengeURL, email, true, false)
	return callback
}

// completeChallenge runs the pre-built UI and follows the redirect back to the app.
func (e *testEnv) completeChallenge(b *browser, challengeURL, email string, succeed bool) (string, response) {
	e.t.Helper()
	return e.runChallenge(b, challengeURL, email, succeed, true)
}

func (e *testEnv) runChallenge(b *browser, challengeURL, email string, succeed, follow bool) (string, response) {
	t := e.t
	t.Helper()
	page := b.get(challengeURL)
	if page.status != http.StatusOK {
		t.Fatalf("pre-built UI: status %d:\n%s", page.status, page.body)
	}
	page = b.submitForm(page, "Send code", map[string]string{})
	code := e.latestCode(email)
	attempts := 1
	if !succeed {
		code = wrongCode(code)
		attempts = 5
	}
	// Stop before the last submission reaches the app, to capture the callback URL.
	stop := &http.Client{Jar: b.client.Jar, Timeout: b.client.Timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), e.appURL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	normal := b.client
	for i := 0; i < attempts; i++ {
		if i == attempts-1 {
			b.client = stop
		}
		page = b.submitForm(page, "Verify", map[string]string{"Code": code})
	}
	b.client = normal
	if page.status != http.StatusSeeOther && page.status != http.StatusFound {
		t.Fatalf("pre-built UI did not redirect back: status %d at %s:\n%s", page.status, page.url, page.body)
	}
	callback := page.location
	if !strings.HasPrefix(callback, e.appURL+"/withdrawals/callback?") || !strings.Contains(callback, "token=") {
		t.Fatalf("redirect back to %q, want the app's callback with a token", callback)
	}
	if !follow {
		return callback, response{}
	}
	return callback, b.get(callback)
}

// decideReview presses Approve or Reject for a withdrawal on the emulator's admin page.
func (e *testEnv) decideReview(idempotencyKey, decision string) {
	e.t.Helper()
	b := e.newBrowser()
	admin := b.get(e.emulatorURL + "/admin")
	// Keep only the admin form row of this withdrawal.
	for _, f := range formPattern.FindAllString(admin.body, -1) {
		if strings.Contains(f, idempotencyKey) && strings.Contains(f, ">"+decision+"<") {
			row := admin
			row.body = f
			if page := b.submitForm(row, decision, nil); page.status >= 400 {
				e.t.Fatalf("%s on the admin page: status %d:\n%s", decision, page.status, page.body)
			}
			return
		}
	}
	e.t.Fatalf("no %s form for %s on the admin page:\n%s", decision, idempotencyKey, admin.body)
}
