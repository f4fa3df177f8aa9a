package emulator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
)

// The pre-built challenge page. Every request carries the action token (query on GETs,
// hidden field on POSTs): it authenticates the browser for this one action and, being an
// unguessable bearer value a cross-site page cannot read, is also the CSRF defence.

// uiError is a page-level failure shown as a message page.
type uiError struct {
	Status int
	Title  string
	Text   string
}

func (u *uiError) Error() string { return u.Title + ": " + u.Text }

var errUIToken = &uiError{Status: http.StatusBadRequest, Title: "Link expired or invalid", Text: "This challenge link is invalid or has expired. Go back to the app and try again."}

// uiAction checks the token and loads its action, which must still await a challenge.
func (e *Emulator) uiAction(ctx context.Context, q rowQueryer, token string) (*actionClaims, *actionRecord, error) {
	if token == "" {
		return nil, nil, errUIToken
	}
	claims, err := e.parseToken(token)
	if err != nil {
		e.log.Info("challenge page: token rejected", "reason", tokenErrorReason(err))
		return nil, nil, errUIToken
	}
	a, err := loadAction(ctx, q, claims.Subject, claims.Other.ActionCode, claims.Other.IdempotencyKey)
	if errors.Is(err, errNotFound) {
		return nil, nil, &uiError{Status: http.StatusNotFound, Title: "Action not found", Text: "The action this link belongs to no longer exists."}
	}
	if err != nil {
		return nil, nil, err
	}
	if a.State != StateChallengeRequired {
		return claims, a, &uiError{Status: http.StatusConflict, Title: "Nothing to confirm",
			Text: fmt.Sprintf("This action is not waiting for a challenge (its state is %s). Go back to the app.", a.State)}
	}
	return claims, a, nil
}

func (e *Emulator) uiFail(w http.ResponseWriter, r *http.Request, err error) {
	var ue *uiError
	if errors.As(err, &ue) {
		e.renderMessage(w, ue.Status, ue.Title, ue.Text)
		return
	}
	var ae *apiError
	if errors.As(err, &ae) {
		e.renderMessage(w, ae.Status, "Something is not right", ae.Description)
		return
	}
	e.log.Error("challenge page failed", "path", r.URL.Path, "err", err)
	e.renderMessage(w, http.StatusInternalServerError, "Something went wrong", "The emulator could not handle this step; see its log.")
}

type authenticatorChoice struct {
	ID    string
	Label string
}

func maskEmail(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" {
		return s
	}
	r := []rune(local)
	return string(r[0]) + "…@" + domain
}

func maskPhone(s string) string {
	if len(s) <= 6 {
		return s
	}
	return s[:3] + "…" + s[len(s)-2:]
}

func methodLabel(method, email, phone string) string {
	switch method {
	case MethodEmailOTP:
		return "Email " + maskEmail(email)
	case MethodWhatsApp:
		return "WhatsApp " + maskPhone(phone)
	default:
		return "SMS " + maskPhone(phone)
	}
}

// handleChallengePage shows the methods to choose from, or the enrolment form.
func (e *Emulator) handleChallengePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	_, a, err := e.uiAction(r.Context(), e.db, token)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	e.renderChoose(w, r, http.StatusOK, token, a, "", nil)
}

func (e *Emulator) renderChoose(w http.ResponseWriter, r *http.Request, status int, token string, a *actionRecord, alert string, form url.Values) {
	auths, err := listAuthenticators(r.Context(), e.db, a.UserID)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	var choices []authenticatorChoice
	for _, au := range auths {
		if au.Method == MethodEmailOTP || au.Method == MethodSMS || au.Method == MethodWhatsApp {
			choices = append(choices, authenticatorChoice{ID: au.ID, Label: methodLabel(au.Method, au.Email, au.PhoneNumber)})
		}
	}
	title := "Confirm it is you"
	if len(choices) == 0 {
		title = "Add a verification method"
	}
	e.render(w, status, "choose", map[string]any{"Title": title, "Token": token, "Authenticators": choices, "Alert": alert,
		"Method": form.Get("method"), "Email": form.Get("email"), "Phone": form.Get("phoneNumber"), "Lang": messageLanguage(a.Locale)})
}

// startUIChallenge creates a pre-built-page challenge for the action and sends its code.
// authID is "" when enrolling a new email/phone.
func (e *Emulator) startUIChallenge(ctx context.Context, tx *txn, a *actionRecord, authID, method, email, phone string) error {
	id, err := e.newUUID()
	if err != nil {
		return err
	}
	channel := deliveryChannel(method, "")
	recipient := email
	if channel != ChannelEmail {
		recipient = phone
	}
	// The same test-mode rules as the API: failing recipients, then fixed codes.
	if err := deliveryFailure(channel, recipient); err != nil {
		return err
	}
	code, err := e.codeFor(recipient)
	if err != nil {
		return err
	}
	if err := e.sendCode(ctx, tx, id, channel, recipient, a.Locale, code); err != nil {
		return err
	}
	now := e.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO challenges(challenge_id, origin, idempotency_key, action_code, verification_method, channel,
		email, phone_number, user_id, authenticator_id, locale, code_hash, expires_at, created_at)
		VALUES (?, 'ui', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, a.IdempotencyKey, a.ActionCode, method, channel, email, phone, a.UserID, authID, a.Locale, codeHash(id, code),
		ms(now.Add(e.limits.CodeTTL)), ms(now)); err != nil {
		return fmt.Errorf("insert page challenge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE actions SET ui_challenge_id = ?, updated_at = ? WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		id, ms(now), a.UserID, a.ActionCode, a.IdempotencyKey); err != nil {
		return fmt.Errorf("link page challenge: %w", err)
	}
	return nil
}

func codePageURL(token string) string { return "/challenge/code?token=" + url.QueryEscape(token) }

// handleChallengeSend sends a code to the chosen enrolled authenticator.
func (e *Emulator) handleChallengeSend(w http.ResponseWriter, r *http.Request) {
	e.sendFromPage(w, r, func(ctx context.Context, tx *txn, a *actionRecord, auths []authenticatorRow, form url.Values) error {
		for _, au := range auths {
			if au.ID == form.Get("authenticatorId") {
				return e.startUIChallenge(ctx, tx, a, au.ID, au.Method, au.Email, au.PhoneNumber)
			}
		}
		return badRequest("Choose one of your methods.")
	})
}

// handleChallengeEnroll sends a code to a new email/phone; verifying it enrols it.
func (e *Emulator) handleChallengeEnroll(w http.ResponseWriter, r *http.Request) {
	e.sendFromPage(w, r, func(ctx context.Context, tx *txn, a *actionRecord, auths []authenticatorRow, form url.Values) error {
		if len(auths) > 0 {
			return badRequest("You already have a verification method; choose it.")
		}
		method := form.Get("method")
		var email, phone string
		var err error
		switch method {
		case MethodEmailOTP:
			if email, err = checkEmail("Email", form.Get("email")); err != nil {
				return badRequest("Enter a valid email address, like name@example.com.")
			}
		case MethodSMS, MethodWhatsApp:
			if phone, err = checkPhone("Phone number", form.Get("phoneNumber")); err != nil {
				return badRequest("Enter a phone number in international format, like +447700900123.")
			}
		default:
			return badRequest("Choose Email, SMS or WhatsApp.")
		}
		return e.startUIChallenge(ctx, tx, a, "", method, email, phone)
	})
}

// sendFromPage is one "send a code" step of the pre-built page: it reads the form, loads
// the token's action and the user's authenticators, and lets send start the challenge,
// all in one transaction. A refusal (bad choice, send limit, failing recipient) shows the
// method page again with the reason; success goes on to the code page.
func (e *Emulator) sendFromPage(w http.ResponseWriter, r *http.Request,
	send func(ctx context.Context, tx *txn, a *actionRecord, auths []authenticatorRow, form url.Values) error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		e.renderMessage(w, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return
	}
	form := r.PostForm
	token := form.Get("token")
	ctx := r.Context()
	var page *actionRecord
	err := e.inTx(ctx, func(tx *txn) error {
		_, a, err := e.uiAction(ctx, tx, token)
		if err != nil {
			return err
		}
		page = a
		auths, err := listAuthenticators(ctx, tx, a.UserID)
		if err != nil {
			return err
		}
		return send(ctx, tx, a, auths, form)
	})
	var ae *apiError
	if errors.As(err, &ae) && page != nil {
		e.renderChoose(w, r, ae.Status, token, page, ae.Description, form)
		return
	}
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	http.Redirect(w, r, codePageURL(token), http.StatusSeeOther)
}

// pendingUIChallenge returns the action's code in flight, or nil.
func pendingUIChallenge(ctx context.Context, tx *txn, a *actionRecord) (*challengeRow, error) {
	if a.UIChallengeID == "" {
		return nil, nil
	}
	c, err := loadChallenge(ctx, tx, a.UIChallengeID, "ui")
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return c, err
}

func (e *Emulator) handleChallengeCodePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	ctx := r.Context()
	var c *challengeRow
	var a *actionRecord
	err := e.inTx(ctx, func(tx *txn) error {
		var err error
		if _, a, err = e.uiAction(ctx, tx, token); err != nil {
			return err
		}
		c, err = pendingUIChallenge(ctx, tx, a)
		return err
	})
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	if c == nil {
		http.Redirect(w, r, "/challenge?token="+url.QueryEscape(token), http.StatusSeeOther)
		return
	}
	e.renderCode(w, http.StatusOK, token, a, c, "")
}

func (e *Emulator) renderCode(w http.ResponseWriter, status int, token string, a *actionRecord, c *challengeRow, alert string) {
	e.render(w, status, "code", map[string]any{"Title": "Enter your code", "Token": token, "Alert": alert, "Lang": messageLanguage(a.Locale),
		"Recipient": methodLabel(c.VerificationMethod, c.Email, c.PhoneNumber), "TTLMinutes": int(math.Ceil(e.limits.CodeTTL.Minutes()))})
}

// handleChallengeVerify checks the code. Right: the action succeeds (enrolling a new
// method first), and the browser goes back to the app. MaxAttempts wrong: the action fails
// and the browser goes back too.
func (e *Emulator) handleChallengeVerify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		e.renderMessage(w, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return
	}
	token, code := r.PostForm.Get("token"), strings.TrimSpace(r.PostForm.Get("code"))
	ctx := r.Context()
	var a *actionRecord
	var c *challengeRow
	var out verifyOutcome
	finalState := ""
	err := e.inTx(ctx, func(tx *txn) error {
		var err error
		if _, a, err = e.uiAction(ctx, tx, token); err != nil {
			return err
		}
		if c, err = pendingUIChallenge(ctx, tx, a); err != nil || c == nil {
			return err
		}
		if code == "" {
			out = verifyOutcome{FailureReason: "EMPTY"}
			return nil
		}
		if out, err = e.verifyCode(ctx, tx, c, code); err != nil {
			return err
		}
		switch {
		case out.Verified:
			authID := c.AuthenticatorID
			if authID == "" {
				auth, err := e.enrollAuthenticator(ctx, tx, a.UserID, c.VerificationMethod, c.Email, c.PhoneNumber, false)
				if err != nil {
					return err
				}
				authID = auth.ID
				if err := e.setUserContactVerified(ctx, tx, a.UserID, c.Email, c.PhoneNumber); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET last_verified_at = ? WHERE authenticator_id = ?`, ms(e.now()), authID); err != nil {
				return fmt.Errorf("touch authenticator: %w", err)
			}
			finalState = StateChallengeSucceeded
			return e.finishUIAction(ctx, tx, a, finalState, c.VerificationMethod, authID)
		case out.FailureReason == FailureMaxAttemptsReached:
			finalState = StateChallengeFailed
			return e.finishUIAction(ctx, tx, a, finalState, "", "")
		}
		return nil
	})
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	if c == nil {
		http.Redirect(w, r, "/challenge?token="+url.QueryEscape(token), http.StatusSeeOther)
		return
	}
	if finalState != "" {
		e.log.Info("challenge page finished", "user_id", a.UserID, "action", a.ActionCode, "state", finalState)
		e.redirectBack(w, r, a, finalState)
		return
	}
	switch {
	case out.FailureReason == "EMPTY":
		e.renderCode(w, http.StatusBadRequest, token, a, c, "Enter the code we sent you.")
	case out.AttemptsLeft > 0 && !e.now().Before(c.ExpiresAt):
		e.renderChoose(w, r, http.StatusBadRequest, token, a, "That code has expired. Send a new one.", nil)
	case out.AttemptsLeft > 0 && c.Attempts > 0:
		e.renderCode(w, http.StatusBadRequest, token, a, c, fmt.Sprintf("Incorrect code. %s left.", plural(out.AttemptsLeft, "attempt")))
	default:
		e.renderChoose(w, r, http.StatusBadRequest, token, a, "That code can no longer be used. Send a new one.", nil)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// finishUIAction settles the action (only from CHALLENGE_REQUIRED) and drops the page state.
func (e *Emulator) finishUIAction(ctx context.Context, tx *txn, a *actionRecord, state, method, authID string) error {
	ok, err := e.updateActionState(ctx, tx, a.UserID, a.ActionCode, a.IdempotencyKey, state, method, authID, StateChallengeRequired)
	if err != nil {
		return err
	}
	if !ok {
		return &uiError{Status: http.StatusConflict, Title: "Nothing to confirm", Text: "This action was settled meanwhile. Go back to the app."}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE actions SET ui_challenge_id = '' WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		a.UserID, a.ActionCode, a.IdempotencyKey); err != nil {
		return fmt.Errorf("clear page challenge: %w", err)
	}
	return nil
}

func (e *Emulator) handleChallengeCancel(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		e.renderMessage(w, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return
	}
	token := r.PostForm.Get("token")
	ctx := r.Context()
	var a *actionRecord
	err := e.inTx(ctx, func(tx *txn) error {
		var err error
		if _, a, err = e.uiAction(ctx, tx, token); err != nil {
			return err
		}
		return e.finishUIAction(ctx, tx, a, StateChallengeFailed, "", "")
	})
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	e.log.Info("challenge page cancelled", "user_id", a.UserID, "action", a.ActionCode)
	e.redirectBack(w, r, a, StateChallengeFailed)
}

// redirectBack sends the browser to the action's redirectUrl with a fresh token added
// (keeping its query), or shows a final page when there is none.
func (e *Emulator) redirectBack(w http.ResponseWriter, r *http.Request, a *actionRecord, state string) {
	if a.RedirectURL == "" {
		if state == StateChallengeSucceeded {
			e.renderMessage(w, http.StatusOK, "Done", "You are verified. You can close this window and go back to the app.")
		} else {
			e.renderMessage(w, http.StatusOK, "Not verified", "The challenge was not completed. You can close this window and go back to the app.")
		}
		return
	}
	token, err := e.issueToken(tokenAction{UserID: a.UserID, ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey, Scope: a.Scope, Username: a.Username})
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	target, err := withToken(a.RedirectURL, token)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// withToken appends token=… to raw, keeping its query as is (replacing an existing token).
func withToken(raw, token string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse redirectUrl: %w", err)
	}
	q := u.Query()
	if q.Has("token") {
		q.Set("token", token)
		u.RawQuery = q.Encode()
	} else if u.RawQuery == "" {
		u.RawQuery = "token=" + url.QueryEscape(token)
	} else {
		u.RawQuery += "&token=" + url.QueryEscape(token)
	}
	return u.String(), nil
}
