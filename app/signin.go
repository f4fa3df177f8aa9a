package app

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// pendingPurpose is the audience of the signed pending-sign-in cookie, so that no other
// signed value of ours can stand in for it.
const pendingPurpose = "pending-signin"

// pendingGrace is how long the pending sign-in cookie outlives its code.
const pendingGrace = 5 * time.Minute

// signInMethod is one way to receive a code.
type signInMethod struct {
	Key                string // form value and store value
	Label              string
	VerificationMethod string // Authsignal's verificationMethod
	Action             string // Authsignal action code, one per method so rules can tell them apart
}

// byEmail reports whether the method reaches the person at an email address (a code or a
// link), else at a phone number.
func (m signInMethod) byEmail() bool { return m.Key == "email" || m.Key == linkSignIn.Key }

func signInMethods() []signInMethod {
	return []signInMethod{
		{Key: "email", Label: "Email", VerificationMethod: authsignal.MethodEmailOTP, Action: "signInWithEmail"},
		{Key: "sms", Label: "SMS", VerificationMethod: authsignal.MethodSMS, Action: "signInWithSms"},
		{Key: "whatsapp", Label: "WhatsApp", VerificationMethod: authsignal.MethodWhatsApp, Action: "signInWithWhatsapp"},
	}
}

func findMethod(key string) (signInMethod, bool) {
	for _, m := range signInMethods() {
		if m.Key == key {
			return m, true
		}
	}
	return signInMethod{}, false
}

func (s *server) home(c *fiber.Ctx) error {
	if _, ok := currentUser(c); ok {
		return c.Redirect("/account", fiber.StatusSeeOther)
	}
	return s.render(c, fiber.StatusOK, "index", page{Title: "Passwordless sign-in sample"})
}

func (s *server) signInPage(c *fiber.Ctx) error {
	if _, ok := currentUser(c); ok {
		return c.Redirect("/account", fiber.StatusSeeOther)
	}
	if key := c.Query("notice"); isProblem(key) {
		return s.renderSignIn(c, fiber.StatusOK, s.prefilled(c), noticeText(key), "")
	}
	return s.renderSignIn(c, fiber.StatusOK, signInForm{Method: "email"}, "", noticeFor(c))
}

// signInForm is what the sign-in form posts, echoed back when it needs correcting.
type signInForm struct {
	Method string
	Email  string
	Phone  string
	// Field is the input a Problem is about ("email" or "phone"): shown beside it, tied
	// to it by aria-describedby, the input marked aria-invalid.
	Field, Problem string
}

func (s *server) renderSignIn(c *fiber.Ctx, status int, form signInForm, errMsg, notice string) error {
	if _, ok := findMethod(form.Method); !ok && form.Method != linkSignIn.Key {
		form.Method = "email"
	}
	return s.render(c, status, "signin", page{
		Title: "Sign in", Error: errMsg, Notice: notice,
		Data: fiber.Map{"Form": form, "Methods": append(signInMethods(), linkSignIn)},
	})
}

// sendCode validates the address, asks Authsignal to send a code and remembers the
// challenge server-side, bound to a signed, short-lived cookie.
func (s *server) sendCode(c *fiber.Ctx) error {
	form := signInForm{Method: c.FormValue("method"), Email: c.FormValue("email"), Phone: c.FormValue("phone")}
	if form.Method == linkSignIn.Key {
		return s.sendLink(c, form)
	}
	method, ok := findMethod(form.Method)
	if !ok {
		return s.renderSignIn(c, fiber.StatusBadRequest, form, "Choose how to receive your code: Email, SMS or WhatsApp.", "")
	}
	var recipient string
	var err error
	field := "phone"
	if method.Key == "email" {
		field = "email"
		recipient, err = normalizeEmail(form.Email)
	} else {
		recipient, err = normalizePhone(form.Phone)
	}
	if err != nil {
		form.Field, form.Problem = field, err.Error()
		return s.renderSignIn(c, fiber.StatusBadRequest, form, "", "")
	}
	if status, refusal := s.guessLock(c, recipient); refusal != "" {
		return s.renderSignIn(c, status, form, refusal, "")
	}
	release, status, refusal := s.reserveSend(c, recipient)
	if refusal != "" {
		return s.renderSignIn(c, status, form, refusal, "")
	}

	req := authsignal.ChallengeRequest{
		VerificationMethod: method.VerificationMethod,
		Action:             method.Action,
		IPAddress:          c.IP(),
		UserAgent:          c.Get(fiber.HeaderUserAgent),
		DeviceID:           deviceID(c),
		Locale:             preferredLocale(c.Get(fiber.HeaderAcceptLanguage)),
	}
	if method.Key == "email" {
		req.Email = recipient
	} else {
		req.PhoneNumber = recipient
	}
	challenge, err := s.authsignal.Challenge(c.UserContext(), req)
	if answeredWithError(err) {
		release() // the service answered, and sent nothing
	}
	if err != nil {
		status, msg := s.authsignalFailure(c, "send code", err)
		return s.renderSignIn(c, status, form, msg, "")
	}

	pending := store.PendingSignIn{
		ID:          s.randomID(16),
		ChallengeID: challenge.ChallengeID,
		Method:      method.Key,
		Recipient:   recipient,
		CreatedAt:   s.now(),
		ExpiresAt:   s.pendingExpiry(challenge.ExpiresAt),
	}
	if err := s.store.CreatePendingSignIn(c.UserContext(), pending); err != nil {
		return fmt.Errorf("save pending sign-in: %w", err)
	}
	if err := s.setPendingCookie(c, pending); err != nil {
		return err
	}
	return c.Redirect("/signin/verify", fiber.StatusSeeOther)
}

// setPendingCookie binds the browser to its pending sign-in with a signed id. The cookie
// outlives the code a little, so that an expired code is reported as such.
func (s *server) setPendingCookie(c *fiber.Ctx, pending store.PendingSignIn) error {
	ttl := pending.ExpiresAt.Sub(s.now()) + pendingGrace
	signed, err := s.sessions.SignValue(pendingPurpose, pending.ID, ttl)
	if err != nil {
		return fmt.Errorf("sign pending sign-in: %w", err)
	}
	c.Cookie(&fiber.Cookie{
		Name: s.cookies.pending, Value: signed, Path: "/signin", MaxAge: int(ttl.Seconds()),
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies,
	})
	return nil
}

// pendingExpiry is the code's own expiry when Authsignal gives a plausible one, else
// PendingTTL from now.
func (s *server) pendingExpiry(expiresAtUnix int64) time.Time {
	now := s.now()
	limit := now.Add(s.cfg.PendingTTL)
	if exp := time.Unix(expiresAtUnix, 0); exp.After(now) && exp.Before(limit) {
		return exp
	}
	return limit
}

// answeredWithError reports an error answer from Authsignal, as opposed to no answer (a
// timeout or a broken connection), after which a code may still have gone out.
func answeredWithError(err error) bool {
	var apiErr *authsignal.Error
	return errors.As(err, &apiErr)
}

// lockedMessage tells the person why the address is paused and until when, so that a lock
// caused by someone else's guessing is never silent.
func lockedMessage(until time.Time) string {
	return "Too many wrong codes were entered for this address. For its safety, signing in with it is paused until " +
		until.UTC().Format("15:04 UTC") + ". Nothing else is affected."
}

// loadPending finds the pending sign-in named by the signed cookie. ok is false when
// there is none, it is forged, or it has expired.
func (s *server) loadPending(c *fiber.Ctx) (store.PendingSignIn, bool, error) {
	signed := c.Cookies(s.cookies.pending)
	if signed == "" {
		return store.PendingSignIn{}, false, nil
	}
	id, err := s.sessions.VerifyValue(pendingPurpose, signed)
	if err != nil {
		return store.PendingSignIn{}, false, nil
	}
	pending, err := s.store.GetPendingSignIn(c.UserContext(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.PendingSignIn{}, false, nil
	}
	if err != nil {
		return store.PendingSignIn{}, false, fmt.Errorf("load pending sign-in: %w", err)
	}
	return pending, true, nil
}

// restartSignIn forgets the pending sign-in and sends the visitor back to /signin with
// a fixed notice.
func (s *server) restartSignIn(c *fiber.Ctx, pending *store.PendingSignIn, notice string) error {
	if pending != nil {
		if err := s.store.DeletePendingSignIn(c.UserContext(), pending.ID); err != nil {
			return fmt.Errorf("delete pending sign-in: %w", err)
		}
	}
	s.clearCookie(c, s.cookies.pending, "/signin")
	if pending != nil {
		// Starting again keeps the address: the person need not type it a second time.
		if signed, err := s.sessions.SignValue(prefillPurpose, pending.Method+"\n"+pending.Recipient, prefillTTL); err == nil {
			c.Cookie(&fiber.Cookie{Name: s.cookies.prefill, Value: signed, Path: "/signin", MaxAge: int(prefillTTL.Seconds()),
				HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies})
		}
	}
	return c.Redirect("/signin?notice="+notice, fiber.StatusSeeOther)
}

// prefillPurpose signs the address a restarted sign-in keeps, for prefillTTL.
const (
	prefillPurpose = "signin-prefill"
	prefillTTL     = 5 * time.Minute
)

// prefilled is the form of a sign-in that must start again, with its address, or the
// empty email form; the cookie is used once.
func (s *server) prefilled(c *fiber.Ctx) signInForm {
	form := signInForm{Method: "email"}
	raw := c.Cookies(s.cookies.prefill)
	if raw == "" {
		return form
	}
	s.clearCookie(c, s.cookies.prefill, "/signin")
	value, err := s.sessions.VerifyValue(prefillPurpose, raw)
	method, recipient, ok := strings.Cut(value, "\n")
	if err != nil || !ok {
		return form
	}
	form.Method = method
	if (signInMethod{Key: method}).byEmail() {
		form.Email = recipient
	} else {
		form.Phone = recipient
	}
	return form
}

func (s *server) codePage(c *fiber.Ctx) error {
	pending, ok, err := s.loadPending(c)
	if err != nil {
		return err
	}
	if !ok {
		return s.restartSignIn(c, nil, "signin-expired")
	}
	return s.renderCodePage(c, fiber.StatusOK, pending, "", "")
}

func (s *server) renderCodePage(c *fiber.Ctx, status int, pending store.PendingSignIn, errMsg, notice string) error {
	if pending.Method == linkSignIn.Key {
		return s.render(c, status, "verify", page{
			Title: "Check your email", Error: errMsg, Notice: notice,
			Data: fiber.Map{"Recipient": pending.Recipient, "Link": true},
		})
	}
	method, _ := findMethod(pending.Method)
	return s.render(c, status, "verify", page{
		Title: "Enter your code", Error: errMsg, Notice: notice,
		Data: fiber.Map{"Recipient": pending.Recipient, "Method": method.Label},
	})
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// verifyCode checks the code with Authsignal; on success it finds or creates the user,
// claims the challenge for them, makes sure the address is an authenticator they can be
// stepped up with, and starts a fresh session. Whether the code is right, expired or used
// up is Authsignal's to say (its clock and its attempt counter), so the app asks it
// rather than guessing on its own clock.
func (s *server) verifyCode(c *fiber.Ctx) error {
	ctx := c.UserContext()
	pending, ok, err := s.loadPending(c)
	if err != nil {
		return err
	}
	if !ok {
		return s.restartSignIn(c, nil, "signin-expired")
	}
	if pending.Method == linkSignIn.Key {
		return s.continueLink(c, pending)
	}
	code := strings.TrimSpace(c.FormValue("code"))
	if !sixDigits.MatchString(code) {
		return s.renderCodePage(c, fiber.StatusUnprocessableEntity, pending, "Enter the 6-digit code from your message.", "")
	}
	// Guesses are counted per address across challenges and resends: a fresh code does not
	// buy a fresh set of tries.
	if status, refusal := s.guessLock(c, pending.Recipient); refusal != "" {
		return s.renderCodePage(c, status, pending, refusal, "")
	}

	result, err := s.authsignal.Verify(ctx, authsignal.VerifyRequest{ChallengeID: pending.ChallengeID, VerificationCode: code})
	if authsignal.IsStatus(err, fiber.StatusNotFound) {
		return s.restartSignIn(c, &pending, "code-expired")
	}
	if err != nil {
		status, msg := s.authsignalFailure(c, "verify code", err)
		return s.renderCodePage(c, status, pending, msg, "")
	}
	if !result.IsVerified {
		// Counted once per distinct code: resending the same one (a double click, or the
		// right code again after a concurrent submission used it) is not another guess.
		s.recordGuess(c, pending.Recipient, code)
		if result.FailureReason == authsignal.FailureMaxAttemptsExceeded {
			return s.restartSignIn(c, &pending, "too-many-attempts")
		}
		wrong, err := s.store.RecordWrongAttempt(ctx, pending.ID)
		if errors.Is(err, store.ErrNotFound) {
			// A concurrent submission (a double click) already finished this sign-in.
			return c.Redirect("/account", fiber.StatusSeeOther)
		}
		if err != nil {
			return fmt.Errorf("record wrong attempt: %w", err)
		}
		// The app's own ceiling beside Authsignal's, which it cannot see.
		if wrong >= s.cfg.MaxCodeAttempts {
			return s.restartSignIn(c, &pending, "too-many-attempts")
		}
		// CODE_INVALID_OR_EXPIRED does not say which, nor how many tries are left.
		return s.renderCodePage(c, fiber.StatusUnprocessableEntity, pending, wrongCodeMessage, "")
	}

	if !verifiedAddressMatches(pending, result) {
		// Authsignal vouched for another address than this sign-in's: sign in nobody.
		s.log.Error("verified address does not match the pending sign-in", "request_id", c.Locals(localReqID), "method", pending.Method)
		return s.restartSignIn(c, &pending, "signin-mismatch")
	}
	user, err := s.findOrCreateUser(ctx, pending)
	if err != nil {
		return err
	}
	if _, err := s.authsignal.Claim(ctx, authsignal.ClaimRequest{ChallengeID: pending.ChallengeID, UserID: user.ID}); err != nil {
		status, msg := s.authsignalFailure(c, "claim challenge", err)
		return s.renderSignIn(c, status, signInForm{Method: pending.Method}, msg, "")
	}
	// Best effort: the person proved the address, so the sign-in goes on; a withdrawal
	// that finds them unenrolled enrols them then and is not completed without a check.
	method, _ := findMethod(pending.Method)
	if err := s.ensureEnrolled(ctx, user.ID, method, pending.Recipient); err != nil {
		s.log.Warn("authsignal call failed", "call", "enroll authenticator", "request_id", c.Locals(localReqID), "user_id", user.ID, "err", err)
	}
	return s.startSession(c, user, pending, pending.Method)
}

// startSession ends a pending sign-in with a new session for user, who signed in by
// method ("email", "sms" or "whatsapp": recorded for the withdrawal's enrolment).
func (s *server) startSession(c *fiber.Ctx, user store.User, pending store.PendingSignIn, method string) error {
	ctx := c.UserContext()
	if err := s.store.TouchSignIn(ctx, user.ID, method); err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	// A brand-new session on every sign-in, so a session id planted before sign-in
	// (fixation) is worth nothing.
	token, expires, err := s.sessions.Issue(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("issue session: %w", err)
	}
	if err := s.store.DeletePendingSignIn(ctx, pending.ID); err != nil {
		return fmt.Errorf("delete pending sign-in: %w", err)
	}
	s.clearCookie(c, s.cookies.pending, "/signin")
	s.clearCookie(c, s.cookies.csrf, "/") // a new nonce with the new session: none planted before sign-in survives it
	s.setSessionCookie(c, token, expires)
	s.log.Info("signed in", "user_id", user.ID, "method", pending.Method)
	return c.Redirect("/account", fiber.StatusSeeOther)
}

// wrongCodeMessage answers CODE_INVALID_OR_EXPIRED, which covers both.
const wrongCodeMessage = "That code didn't work: it is incorrect or has expired. Check it and try again, or send a new code."

// verifiedAddressMatches reports whether the address Authsignal says it verified, when it
// names one, is the one this sign-in sent the code to.
func verifiedAddressMatches(pending store.PendingSignIn, result *authsignal.VerifyResponse) bool {
	if pending.Method == "email" {
		return result.Email == "" || strings.EqualFold(result.Email, pending.Recipient)
	}
	return result.PhoneNumber == "" || result.PhoneNumber == pending.Recipient
}

// findOrCreateUser keys the user on the address this sign-in verified.
func (s *server) findOrCreateUser(ctx context.Context, pending store.PendingSignIn) (store.User, error) {
	if pending.Method == "email" {
		user, _, err := s.store.FindOrCreateUserByEmail(ctx, pending.Recipient)
		return user, err
	}
	user, _, err := s.store.FindOrCreateUserByPhone(ctx, pending.Recipient)
	return user, err
}

// resendCode asks Authsignal for a fresh code on the same challenge; the old code stops
// working.
func (s *server) resendCode(c *fiber.Ctx) error {
	pending, ok, err := s.loadPending(c)
	if err != nil {
		return err
	}
	if !ok {
		return s.restartSignIn(c, nil, "signin-expired")
	}
	if status, refusal := s.guessLock(c, pending.Recipient); refusal != "" {
		return s.renderCodePage(c, status, pending, refusal, "")
	}
	if pending.Method == linkSignIn.Key {
		return s.renderCodePage(c, fiber.StatusBadRequest, pending, "To get a new link, start again with your email.", "")
	}
	release, status, refusal := s.reserveSend(c, pending.Recipient)
	if refusal != "" {
		return s.renderCodePage(c, status, pending, refusal, "")
	}
	method, _ := findMethod(pending.Method)
	req := authsignal.ChallengeRequest{
		ChallengeID:        pending.ChallengeID,
		VerificationMethod: method.VerificationMethod,
		Action:             method.Action,
		IPAddress:          c.IP(),
		UserAgent:          c.Get(fiber.HeaderUserAgent),
		DeviceID:           deviceID(c),
		Locale:             preferredLocale(c.Get(fiber.HeaderAcceptLanguage)),
	}
	if method.Key == "email" {
		req.Email = pending.Recipient
	} else {
		req.PhoneNumber = pending.Recipient
	}
	challenge, err := s.authsignal.Challenge(c.UserContext(), req)
	if answeredWithError(err) {
		release() // the service answered, and sent nothing
	}
	if authsignal.IsStatus(err, fiber.StatusNotFound) {
		return s.restartSignIn(c, &pending, "code-expired")
	}
	if err != nil {
		status, msg := s.authsignalFailure(c, "resend code", err)
		return s.renderCodePage(c, status, pending, msg, "")
	}
	pending.ChallengeID, pending.ExpiresAt = challenge.ChallengeID, s.pendingExpiry(challenge.ExpiresAt)
	err = s.store.UpdatePendingSignInChallenge(c.UserContext(), pending.ID, pending.ChallengeID, pending.ExpiresAt)
	if errors.Is(err, store.ErrNotFound) {
		return s.restartSignIn(c, nil, "signin-expired")
	}
	if err != nil {
		return fmt.Errorf("update pending sign-in: %w", err)
	}
	if err := s.setPendingCookie(c, pending); err != nil {
		return err
	}
	return s.renderCodePage(c, fiber.StatusOK, pending, "", "We sent a new code. The previous one no longer works.")
}

// signOut revokes the session server-side, so the cookie is dead even if it was copied.
func (s *server) signOut(c *fiber.Ctx) error {
	if token, ok := c.Locals(localToken).(string); ok {
		if err := s.sessions.Revoke(c.UserContext(), token); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
	}
	s.clearCookie(c, s.cookies.session, "/")
	s.clearCookie(c, s.cookies.csrf, "/")
	return c.Redirect("/signin?notice=signed-out", fiber.StatusSeeOther)
}

// authsignalFailure logs why a call to Authsignal failed and picks what the visitor sees.
func (s *server) authsignalFailure(c *fiber.Ctx, what string, err error) (int, string) {
	s.log.Warn("authsignal call failed", "call", what, "request_id", c.Locals(localReqID), "err", err)
	switch {
	case authsignal.IsStatus(err, fiber.StatusTooManyRequests):
		return fiber.StatusTooManyRequests, "Too many codes were sent to this address. Wait a few minutes, then try again."
	case authsignal.IsStatus(err, fiber.StatusBadRequest):
		return fiber.StatusBadRequest, "The sign-in service could not accept that request. Check the address and try again."
	default:
		return fiber.StatusServiceUnavailable, "The sign-in service is not reachable right now. Please try again in a moment."
	}
}

func deviceID(c *fiber.Ctx) string {
	id, _ := c.Locals(localDevice).(string)
	return id
}

// preferredLocale passes the browser's first language on, so messages come localized.
func preferredLocale(acceptLanguage string) string {
	first, _, _ := strings.Cut(acceptLanguage, ",")
	first, _, _ = strings.Cut(first, ";")
	first = strings.TrimSpace(first)
	if len(first) > 35 || first == "*" {
		return ""
	}
	return first
}
