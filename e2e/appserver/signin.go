package appserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// A browser over plain HTTP, for tools and tests that drive the app without Chromium.

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// NewClient is a browser-like client: it keeps cookies and never follows redirects, so
// every call is one round trip whose answer can be read from its Location header.
// tr nil means http.DefaultTransport.
func NewClient(tr http.RoundTripper) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Fetch sends req and reads the whole answer.
func Fetch(client *http.Client, req *http.Request) (int, http.Header, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// PostForm posts form to path on the app and returns the status and Location.
func (p *Process) PostForm(ctx context.Context, client *http.Client, path string, form url.Values) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.AppURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, header, _, err := Fetch(client, req)
	if err != nil {
		return 0, "", err
	}
	return status, header.Get("Location"), nil
}

// CSRFToken loads path on the app and returns its form's CSRF token.
func (p *Process) CSRFToken(ctx context.Context, client *http.Client, path string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.AppURL+path, nil)
	status, _, body, err := Fetch(client, req)
	if err != nil {
		return "", err
	}
	m := csrfField.FindSubmatch(body)
	if status != http.StatusOK || m == nil {
		return "", fmt.Errorf("GET %s: status %d, no CSRF token", path, status)
	}
	return string(m[1]), nil
}

// LatestCode reads the newest code an emulator at emulatorURL sent to a recipient.
func LatestCode(ctx context.Context, client *http.Client, emulatorURL, to string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, emulatorURL+"/emulator/messages?to="+url.QueryEscape(to), nil)
	status, _, body, err := Fetch(client, req)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("outbox: status %d", status)
	}
	var msgs []struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &msgs); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	if len(msgs) == 0 || msgs[0].Code == "" {
		return "", fmt.Errorf("no code sent to %s", to)
	}
	return msgs[0].Code, nil
}

// SignIn runs the email sign-in as a browser would: GET /signin, "Send code", the code
// from the emulator's outbox, "Verify", landing on /account. client comes from NewClient
// (or keeps cookies and stops at redirects the same way).
func (p *Process) SignIn(ctx context.Context, client *http.Client, email string) error {
	token, err := p.CSRFToken(ctx, client, "/signin")
	if err != nil {
		return err
	}
	status, loc, err := p.PostForm(ctx, client, "/signin", url.Values{"_csrf": {token}, "method": {"email"}, "email": {email}})
	if err != nil {
		return err
	}
	if status != http.StatusSeeOther || loc != "/signin/verify" {
		return fmt.Errorf("POST /signin: status %d to %q", status, loc)
	}
	code, err := LatestCode(ctx, client, p.EmulatorURL, email)
	if err != nil {
		return err
	}
	status, loc, err = p.PostForm(ctx, client, "/signin/verify", url.Values{"_csrf": {token}, "code": {code}})
	if err != nil {
		return err
	}
	if status != http.StatusSeeOther || loc != "/account" {
		return fmt.Errorf("POST /signin/verify: status %d to %q", status, loc)
	}
	return nil
}
