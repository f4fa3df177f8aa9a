// Package prebuiltui is the emulator's pre-built UI: the pages a tracked action's challenge
// URL opens, where a person chooses a method, gets a code and types it.
package prebuiltui

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"image/png"

	_ "embed" // the pages' script
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/pages"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
)

// Every request carries the action token (query on GETs, hidden field on POSTs): it
// authenticates the browser for this one action and, being an unguessable bearer value a
// cross-site page cannot read, is also the CSRF defence.

// Popup mode (?mode=popup, which Authsignal's browser SDK adds for launch(url, {mode:
// "popup"}) and {mode: "window"}): the page may be framed by the client origins, every
// step keeps the mode, and the last step posts the SDK's messages to the app's window
// (the parent frame or the opener) instead of redirecting.

// UI serves the pre-built UI.
type UI struct {
	store   *state.Store
	tokens  *token.Issuer
	pages   *pages.Pages
	log     *slog.Logger
	now     func() time.Time
	codeTTL time.Duration
	origins []string                   // the client origins: they may frame the pages, and receive the popup's messages
	baseURL func(*http.Request) string // the emulator's own, where magic links point
	appName string                     // shown on the pages: who asks
}

// New returns the pre-built UI over store; origins are the apps' web origins.
func New(store *state.Store, tokens *token.Issuer, p *pages.Pages, log *slog.Logger, now func() time.Time, codeTTL time.Duration, origins []string,
	baseURL func(*http.Request) string, appName string) *UI {
	if appName == "" {
		appName = "The app"
	}
	return &UI{store: store, tokens: tokens, pages: p, log: log, now: now, codeTTL: codeTTL, origins: origins, baseURL: baseURL, appName: appName}
}

// context says who asks and for what: the app, the action and, when the app gave one as
// custom.amount, its amount ("Passwordless sample asks you to confirm: withdrawal of 1,500.00").
func (u *UI) context(a state.Action) string {
	text := u.appName + " asks you to confirm: " + a.ActionCode
	var custom struct {
		Amount *float64 `json:"amount"`
	}
	if len(a.Custom) > 0 && json.Unmarshal(a.Custom, &custom) == nil && custom.Amount != nil {
		text += " of " + vocab.FormatAmount(*custom.Amount)
	}
	return text
}

// Headers sets the pre-built UI's own policy: its script, its calls to the Client API on
// this origin, and framing by the client origins only (popup mode).
func (u *UI) Headers(next http.HandlerFunc) http.HandlerFunc {
	ancestors := "'none'"
	if len(u.origins) > 0 {
		ancestors = strings.Join(u.origins, " ")
	}
	csp := "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self' http: https:; frame-ancestors " +
		ancestors + "; base-uri 'none'"
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		if len(u.origins) > 0 {
			h.Del("X-Frame-Options") // frame-ancestors says who may frame it
		}
		next(w, r)
	}
}

// mode is the request's mode: "popup" or "" (redirect).
func mode(r *http.Request) string {
	if r.FormValue("mode") == "popup" {
		return "popup"
	}
	return ""
}

// data is what every pre-built UI page gets: its script, its mode and the origins its
// messages go to.
func (u *UI) data(r *http.Request, title string) map[string]any {
	origins, _ := json.Marshal(append([]string{}, u.origins...)) // [] rather than null
	return map[string]any{"Title": title, "Prebuilt": true, "Mode": mode(r), "Origins": string(origins), "Scripts": []string{"/static/prebuilt.js"}}
}

// message shows a one-sentence page, which in popup mode the script reports to the app
// (AUTHSIGNAL_API_ERROR) when it is an error.
func (u *UI) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	d := u.data(r, title)
	if status >= 400 {
		d["Alert"], d["HTTPStatus"] = text, status
	} else {
		d["Status"] = text
	}
	// A way back from a dead end (an expired link, say) to the app, which is the first
	// client origin; in a popup the app's window is still there, under it.
	if len(u.origins) > 0 && mode(r) != "popup" {
		d["BackURL"] = u.origins[0]
	}
	u.pages.Render(w, status, "message", d)
}

// pageError is a page-level failure shown as a message page.
type pageError struct {
	Status int
	Title  string
	Text   string
}

func (p *pageError) Error() string { return p.Title + ": " + p.Text }

var errToken = &pageError{Status: http.StatusBadRequest, Title: "Link expired or invalid", Text: "This challenge link is invalid or has expired. Go back to the app and try again."}

// action checks the token and returns the action it names.
func (u *UI) action(tok string) (state.ActionKey, error) {
	if tok == "" {
		return state.ActionKey{}, errToken
	}
	claims, err := u.tokens.Parse(tok)
	if err != nil {
		u.log.Info("pre-built UI: token rejected", "reason", token.Reason(err))
		return state.ActionKey{}, errToken
	}
	return state.ActionKey{UserID: claims.Subject, ActionCode: claims.Other.ActionCode, IdempotencyKey: claims.Other.IdempotencyKey}, nil
}

// fail shows err as a page.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *pageError
	var se *state.Error
	switch {
	case errors.As(err, &pe):
		u.message(w, r, pe.Status, pe.Title, pe.Text)
	case errors.As(err, &se) && se.Kind == state.NotFound:
		u.message(w, r, http.StatusNotFound, "Action not found", "The action this link belongs to no longer exists.")
	case errors.As(err, &se) && se.Kind == state.Conflict:
		u.message(w, r, http.StatusConflict, "Nothing to confirm", se.Description+" Go back to the app.")
	case httpjson.From(err) != nil:
		u.message(w, r, httpjson.From(err).Status, "Something is not right", httpjson.From(err).Description)
	default:
		u.log.Error("pre-built UI failed", "path", r.URL.Path, "err", err)
		u.message(w, r, http.StatusInternalServerError, "Something went wrong", "The emulator could not handle this step; see its log.")
	}
}

// refusal is a refused send (bad input, a bad choice, a send limit, a failing recipient),
// shown on the method page; nil for any other error.
func refusal(err error) *httpjson.Error {
	var he *httpjson.Error
	var se *state.Error
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &se) && (se.Kind == state.Invalid || se.Kind == state.Limited || se.Kind == state.Undeliverable):
		return httpjson.From(err)
	}
	return nil
}

type authenticatorChoice struct {
	ID    string
	Label string
}

func methodLabel(m vocab.Method, email, phone string) string {
	switch m {
	case vocab.MethodAuthenticatorApp:
		return "Authenticator app"
	case vocab.MethodEmailMagicLink:
		return "Email link to " + vocab.MaskEmail(email)
	case vocab.MethodEmailOTP:
		return "Email " + vocab.MaskEmail(email)
	case vocab.MethodWhatsApp:
		return "WhatsApp " + vocab.MaskPhone(phone)
	default:
		return "SMS " + vocab.MaskPhone(phone)
	}
}

func choosePageURL(tok, mode string) string {
	return "/challenge?token=" + url.QueryEscape(tok) + modeParam(mode)
}
func codePageURL(tok, mode string) string {
	return "/challenge/code?token=" + url.QueryEscape(tok) + modeParam(mode)
}

func modeParam(mode string) string {
	if mode == "" {
		return ""
	}
	return "&mode=" + mode
}

// page reads the ?token= of a GET step and the page state of its action; false when it
// has already answered with the error.
func (u *UI) page(w http.ResponseWriter, r *http.Request) (string, state.Page, bool) {
	tok := r.URL.Query().Get("token")
	k, err := u.action(tok)
	if err != nil {
		u.fail(w, r, err)
		return "", state.Page{}, false
	}
	p, err := u.store.Page(r.Context(), k)
	if err != nil {
		u.fail(w, r, err)
		return "", state.Page{}, false
	}
	return tok, p, true
}

// ChoosePage serves GET /challenge: the methods to choose from, or the enrolment form.
func (u *UI) ChoosePage(w http.ResponseWriter, r *http.Request) {
	if tok, p, ok := u.page(w, r); ok {
		u.renderChoose(w, r, http.StatusOK, tok, p, "", nil)
	}
}

func (u *UI) renderChoose(w http.ResponseWriter, r *http.Request, status int, tok string, p state.Page, alert string, form url.Values) {
	var choices []authenticatorChoice
	for _, au := range p.Authenticators {
		choices = append(choices, authenticatorChoice{ID: au.ID, Label: methodLabel(au.Method, au.Email, au.PhoneNumber)})
	}
	title := "Confirm it is you"
	switch {
	case len(choices) == 0 && !p.HasPasskey:
		title = "Add a verification method"
	case p.Action.State == vocab.StateAllow:
		title = "Your verification methods"
	}
	d := u.data(r, title)
	d["Context"] = u.context(p.Action)
	for k, v := range map[string]any{"Token": tok, "Authenticators": choices, "HasPasskey": p.HasPasskey, "Enrol": len(choices) == 0 && !p.HasPasskey,
		"Alert": alert, "Method": form.Get("method"), "Email": form.Get("email"), "Phone": form.Get("phoneNumber"), "Lang": vocab.Language(p.Action.Locale)} {
		d[k] = v
	}
	u.pages.Render(w, status, "choose", d)
}

// readForm parses a POSTed form; false (with the page shown) when it cannot be read.
func (u *UI) readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, httpjson.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		u.message(w, r, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return false
	}
	return true
}

// Send serves POST /challenge/send: a code to the chosen enrolled authenticator.
func (u *UI) Send(w http.ResponseWriter, r *http.Request) {
	if !u.readForm(w, r) {
		return
	}
	u.send(w, r, state.PageRecipient{AuthenticatorID: r.PostForm.Get("authenticatorId"), LinkBase: u.baseURL(r)}, nil)
}

// Enroll serves POST /challenge/enroll: a code to a new email or phone; verifying it enrols it.
func (u *UI) Enroll(w http.ResponseWriter, r *http.Request) {
	if !u.readForm(w, r) {
		return
	}
	form := r.PostForm
	to := state.PageRecipient{Method: vocab.Method(form.Get("method"))}
	var bad error
	switch to.Method {
	case vocab.MethodEmailOTP:
		to.Email = vocab.NormalizeEmail(form.Get("email"))
		if vocab.ValidateEmail(to.Email) != nil {
			bad = httpjson.BadRequest("Enter a valid email address, like name@example.com.")
		}
	case vocab.MethodSMS, vocab.MethodWhatsApp:
		to.PhoneNumber = strings.TrimSpace(form.Get("phoneNumber"))
		if vocab.ValidatePhone(to.PhoneNumber) != nil {
			bad = httpjson.BadRequest("Enter a phone number in international format, like +447700900123.")
		}
	case vocab.MethodAuthenticatorApp:
		u.enrolApp(w, r)
		return
	default:
		bad = httpjson.BadRequest("Choose Email, SMS, WhatsApp or Authenticator app.")
	}
	u.send(w, r, to, bad)
}

// enrolApp starts adding an authenticator app: the code page shows its QR code.
func (u *UI) enrolApp(w http.ResponseWriter, r *http.Request) {
	tok := r.PostForm.Get("token")
	k, err := u.action(tok)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if _, err := u.store.StartPageTOTP(r.Context(), k); err != nil {
		if reason := refusal(err); reason != nil {
			if p, perr := u.store.Page(r.Context(), k); perr == nil {
				u.renderChoose(w, r, reason.Status, tok, p, reason.Description, r.PostForm)
				return
			}
		}
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, codePageURL(tok, mode(r)), http.StatusSeeOther)
}

// send is one "send a code" step: a refusal (bad input, a bad choice, a send limit, a
// failing recipient) shows the method page again with the reason; success goes on to the
// code page.
func (u *UI) send(w http.ResponseWriter, r *http.Request, to state.PageRecipient, bad error) {
	form := r.PostForm
	tok := form.Get("token")
	k, err := u.action(tok)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if err = bad; err == nil {
		err = u.store.SendPageCode(r.Context(), k, to)
	}
	if err == nil {
		http.Redirect(w, r, codePageURL(tok, mode(r)), http.StatusSeeOther)
		return
	}
	reason := refusal(err)
	if reason == nil {
		u.fail(w, r, err)
		return
	}
	p, err := u.store.Page(r.Context(), k)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.renderChoose(w, r, reason.Status, tok, p, reason.Description, form)
}

// CodePage serves GET /challenge/code: the form for the code in flight.
func (u *UI) CodePage(w http.ResponseWriter, r *http.Request) {
	tok, p, ok := u.page(w, r)
	if !ok {
		return
	}
	if p.Pending == nil {
		http.Redirect(w, r, choosePageURL(tok, mode(r)), http.StatusSeeOther)
		return
	}
	u.renderCode(w, r, http.StatusOK, tok, p.Action, *p.Pending, "")
}

func (u *UI) renderCode(w http.ResponseWriter, r *http.Request, status int, tok string, a state.Action, c state.Challenge, alert string) {
	d := u.data(r, "Enter your code")
	d["Context"] = u.context(a)
	for k, v := range map[string]any{"Token": tok, "Alert": alert, "Lang": vocab.Language(a.Locale), "ChooseURL": choosePageURL(tok, mode(r)),
		"Recipient": recipientLabel(c), "TTLMinutes": int(math.Ceil(u.codeTTL.Minutes())),
		"App": c.VerificationMethod == vocab.MethodAuthenticatorApp, "Link": c.VerificationMethod == vocab.MethodEmailMagicLink,
		"DoneURL": "/challenge/done?token=" + url.QueryEscape(tok) + modeParam(mode(r))} {
		d[k] = v
	}
	if c.VerificationMethod == vocab.MethodAuthenticatorApp && c.AuthenticatorID == "" {
		// Adding an app: show what to scan, or to type.
		p, err := u.store.Page(r.Context(), a.ActionKey)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		if e := p.PendingTOTP; e != nil {
			qr, err := qrCode(e.URI)
			if err != nil {
				u.fail(w, r, err)
				return
			}
			d["Title"], d["QR"], d["Secret"] = "Add an authenticator app", qr, e.Secret
		}
	}
	u.pages.Render(w, status, "code", d)
}

// recipientLabel says where a code or link went.
func recipientLabel(c state.Challenge) string {
	if c.VerificationMethod == vocab.MethodEmailMagicLink {
		return vocab.MaskEmail(c.Email)
	}
	return methodLabel(c.VerificationMethod, c.Email, c.PhoneNumber)
}

// qrCode is an otpauth URI as a PNG data URL, to scan with an authenticator app.
func qrCode(uri string) (template.URL, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", fmt.Errorf("read TOTP key: %w", err)
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return "", fmt.Errorf("draw QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("encode QR code: %w", err)
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil // made here: safe
}

// Verify serves POST /challenge/verify. Right: the action succeeds and the browser goes
// back to the app. MaxAttempts wrong: the action fails and the browser goes back too.
func (u *UI) Verify(w http.ResponseWriter, r *http.Request) {
	if !u.readForm(w, r) {
		return
	}
	tok, code := r.PostForm.Get("token"), strings.TrimSpace(r.PostForm.Get("code"))
	k, err := u.action(tok)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if code == "" {
		p, err := u.store.Page(r.Context(), k)
		switch {
		case err != nil:
			u.fail(w, r, err)
		case p.Pending == nil:
			http.Redirect(w, r, choosePageURL(tok, mode(r)), http.StatusSeeOther)
		default:
			u.renderCode(w, r, http.StatusBadRequest, tok, p.Action, *p.Pending, "Enter the code we sent you.")
		}
		return
	}
	v, err := u.store.VerifyPageCode(r.Context(), k, code)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if v.Pending == nil {
		http.Redirect(w, r, choosePageURL(tok, mode(r)), http.StatusSeeOther)
		return
	}
	if v.Refused != "" {
		u.renderCode(w, r, http.StatusConflict, tok, v.Action, *v.Pending, "The app did not accept this verification. Try again later.")
		return
	}
	if v.Settled != "" {
		u.redirectBack(w, r, v.Action, v.Settled)
		return
	}
	c := *v.Pending
	switch {
	case v.AttemptsLeft > 0 && !u.now().Before(c.ExpiresAt):
		u.chooseAgain(w, r, tok, k, "That code has expired. Send a new one.")
	case v.AttemptsLeft > 0 && c.Attempts > 0:
		u.renderCode(w, r, http.StatusBadRequest, tok, v.Action, c, fmt.Sprintf("Incorrect code. %s left.", plural(v.AttemptsLeft, "attempt")))
	default:
		u.chooseAgain(w, r, tok, k, "That code can no longer be used. Send a new one.")
	}
}

// chooseAgain shows the method page with alert, for a code that can no longer be used.
func (u *UI) chooseAgain(w http.ResponseWriter, r *http.Request, tok string, k state.ActionKey, alert string) {
	p, err := u.store.Page(r.Context(), k)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.renderChoose(w, r, http.StatusBadRequest, tok, p, alert, nil)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Cancel serves POST /challenge/cancel: the person gives up, the action fails.
func (u *UI) Cancel(w http.ResponseWriter, r *http.Request) {
	if !u.readForm(w, r) {
		return
	}
	k, err := u.action(r.PostForm.Get("token"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	a, err := u.store.CancelPage(r.Context(), k)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.redirectBack(w, r, a, a.State)
}

// Done serves GET /challenge/done: where the page's script goes once the Client API
// verified a passkey for the action (the token is the access token it answered).
func (u *UI) Done(w http.ResponseWriter, r *http.Request) {
	k, err := u.action(r.URL.Query().Get("token"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	a, err := u.store.Action(r.Context(), k)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if a.State != vocab.StateChallengeSucceeded {
		// Not yet (a magic link not opened yet): back to the code in flight, or the choice.
		http.Redirect(w, r, codePageURL(r.URL.Query().Get("token"), mode(r)), http.StatusSeeOther)
		return
	}
	u.redirectBack(w, r, a, a.State)
}

// redirectBack sends the browser to the action's redirectUrl with a fresh token added
// (keeping its query), or shows a final page when there is none. In popup mode the final
// page hands the token to the app's window instead (AUTHSIGNAL_CLOSE_POPUP).
func (u *UI) redirectBack(w http.ResponseWriter, r *http.Request, a state.Action, s vocab.State) {
	tok, err := u.tokens.Issue(token.Action{UserID: a.UserID, ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey, Scope: a.Scope, Username: a.Username})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if a.RedirectURL == "" || mode(r) == "popup" {
		title, text := "Done", "You are verified. You can close this window and go back to the app."
		if s != vocab.StateChallengeSucceeded {
			title, text = "Not verified", "The challenge was not completed. You can close this window and go back to the app."
		}
		d := u.data(r, title)
		d["Status"] = text
		if mode(r) == "popup" {
			d["FinishToken"] = tok
		}
		u.pages.Render(w, http.StatusOK, "message", d)
		return
	}
	target, err := withToken(a.RedirectURL, tok)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// withToken appends token=… to raw, keeping its query as is (replacing an existing token).
func withToken(raw, tok string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse redirectUrl: %w", err)
	}
	q := u.Query()
	if q.Has("token") {
		q.Set("token", tok)
		u.RawQuery = q.Encode()
	} else if u.RawQuery == "" {
		u.RawQuery = "token=" + url.QueryEscape(tok)
	} else {
		u.RawQuery += "&token=" + url.QueryEscape(tok)
	}
	return u.String(), nil
}

//go:embed prebuilt.js
var script []byte

// Script serves GET /static/prebuilt.js, the pages' script (same origin, so the CSP allows it).
func Script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(script)
}

// LinkPage serves GET /magic-link/{challengeId}?secret=…: the link in the email. It asks
// to confirm instead of verifying on sight, so a mail scanner that fetches links signs
// nobody in.
func (u *UI) LinkPage(w http.ResponseWriter, r *http.Request) {
	id, secret := r.PathValue("challengeId"), r.URL.Query().Get("secret")
	l, err := u.store.MagicLinkFor(r.Context(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if !l.Usable || secret == "" {
		u.message(w, r, http.StatusGone, "Link expired", "This link has expired or was used already. Go back to the app and ask for a new one.")
		return
	}
	d := u.data(r, "Confirm it is you")
	d["Email"], d["Secret"], d["Action"] = vocab.MaskEmail(l.Email), secret, "/magic-link/"+url.PathEscape(id)
	u.pages.Render(w, http.StatusOK, "link", d)
}

// OpenLink serves POST /magic-link/{challengeId} {secret}: the link confirmed. Right: the
// action succeeds, and the tab that asked goes on (its polling or its Continue).
func (u *UI) OpenLink(w http.ResponseWriter, r *http.Request) {
	if !u.readForm(w, r) {
		return
	}
	v, err := u.store.OpenMagicLink(r.Context(), r.PathValue("challengeId"), r.PostForm.Get("secret"))
	switch {
	case state.IsKind(err, state.Conflict):
		u.message(w, r, http.StatusGone, "Link expired", "This link was replaced by a newer one, or was used already.")
	case err != nil:
		u.fail(w, r, err)
	case v.Verified:
		u.message(w, r, http.StatusOK, "You are verified", "Go back to the tab where you started: it goes on by itself.")
	default:
		u.message(w, r, http.StatusGone, "Link expired", "This link has expired or was used already. Go back to the app and ask for a new one.")
	}
}
