package app

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// Passkeys, with Authsignal's browser SDK: the browser talks to the Client API, and the
// server only ever trusts what Authsignal's Server API says about the token the browser
// brings back (validate), never the browser's word.

// The actions the passkey flows are tracked as.
const (
	actionAddPasskey    = "addPasskey"
	actionPasskeySignIn = "signInWithPasskey"
)

// newMethod is a sign-in method a signed-in person adds in the browser with the SDK: the
// action it is tracked as, the verification method its success must be by, and the
// notice names of its outcome.
type newMethod struct {
	action, method, notice string
}

var (
	passkeyMethod = newMethod{action: actionAddPasskey, method: "PASSKEY", notice: "passkey"}
	appMethod     = newMethod{action: "addAuthenticatorApp", method: "AUTHENTICATOR_APP", notice: "app"}
)

// scopeAddAuthenticators lets a track token add an authenticator for a user who has one
// already; only a signed-in person gets one, right after an OTP sign-in proved who they are.
const scopeAddAuthenticators = "add:authenticators"

// methodToken serves POST /passkeys/token and /authenticator-app/token (JavaScript, with
// the CSRF header): a track token that lets this user's browser add the method.
func (s *server) methodToken(m newMethod) fiber.Handler {
	return func(c *fiber.Ctx) error { return s.newMethodToken(c, m) }
}

func (s *server) newMethodToken(c *fiber.Ctx, m newMethod) error {
	if !s.fresh(c) {
		return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"error": "sign in again first: adding a method needs a sign-in from the last 10 minutes"})
	}
	user, _ := currentUser(c)
	res, err := s.authsignal.Track(c.UserContext(), user.ID, m.action, authsignal.TrackAttributes{
		IdempotencyKey: s.randomID(16), Scope: scopeAddAuthenticators, Username: user.Email,
		IPAddress: c.IP(), UserAgent: string(c.Request().Header.UserAgent()), DeviceID: deviceID(c),
	})
	if err != nil {
		s.log.Warn("authsignal call failed", "call", "track", "action", m.action, "request_id", c.Locals(localReqID), "err", err)
		return c.Status(fiber.StatusBadGateway).JSON(fiber.Map{"error": "The sign-in service is not answering. Try again in a moment."})
	}
	switch res.State {
	case authsignal.StateBlock, authsignal.StateReviewRequired:
		return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"error": "This cannot be added to this account right now."})
	}
	return c.JSON(fiber.Map{"token": res.Token, "username": user.Email})
}

// methodAdded serves POST /passkeys and /authenticator-app: the browser added the method
// with the token; the server checks with Authsignal that it did, for this user.
func (s *server) methodAdded(m newMethod) fiber.Handler {
	return func(c *fiber.Ctx) error { return s.newMethodAdded(c, m) }
}

func (s *server) newMethodAdded(c *fiber.Ctx, m newMethod) error {
	user, _ := currentUser(c)
	v, ok, err := s.validatedToken(c, m.action, m.method)
	if err != nil {
		s.log.Warn("authsignal call failed", "call", "validate", "action", m.action, "request_id", c.Locals(localReqID), "err", err)
		return c.Redirect("/account?notice="+m.notice+"-unavailable", fiber.StatusSeeOther)
	}
	if !ok || v.UserID != user.ID {
		s.log.Warn("sign-in method not added", "method", m.method, "request_id", c.Locals(localReqID), "user_id", user.ID, "token_user_id", v.UserID)
		return c.Redirect("/account?notice="+m.notice+"-failed", fiber.StatusSeeOther)
	}
	s.log.Info("sign-in method added", "method", m.method, "user_id", user.ID)
	return c.Redirect("/account?notice="+m.notice+"-added", fiber.StatusSeeOther)
}

// signInWithPasskey serves POST /signin/passkey: the browser signed in with a passkey; the
// server checks the token with Authsignal, uses it once, and starts a session for the
// passkey's user.
func (s *server) signInWithPasskey(c *fiber.Ctx) error {
	v, ok, err := s.validatedToken(c, actionPasskeySignIn, passkeyMethod.method)
	if err != nil {
		status, msg := s.authsignalFailure(c, "validate", err)
		return s.renderSignIn(c, status, signInForm{}, msg, "")
	}
	if !ok || v.UserID == "" {
		return s.renderSignIn(c, fiber.StatusUnauthorized, signInForm{}, "That passkey sign-in did not work. Try again, or sign in with a code.", "")
	}
	ctx := c.UserContext()
	user, err := s.store.GetUser(ctx, v.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return s.renderSignIn(c, fiber.StatusUnauthorized, signInForm{}, "That passkey belongs to no account here. Sign in with a code.", "")
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	// A token is one sign-in: the same token brought back again (copied, replayed) is not.
	fresh, err := s.store.ConsumeAction(ctx, v.Action, v.IdempotencyKey)
	if err != nil {
		return fmt.Errorf("consume passkey sign-in: %w", err)
	}
	if !fresh {
		s.log.Warn("passkey sign-in token used twice", "request_id", c.Locals(localReqID), "user_id", user.ID)
		return s.renderSignIn(c, fiber.StatusUnauthorized, signInForm{}, "That passkey sign-in was used already. Sign in again.", "")
	}
	if err := s.store.TouchSignIn(ctx, user.ID, "passkey"); err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	token, expires, err := s.sessions.Issue(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("issue session: %w", err)
	}
	s.clearCookie(c, s.cookies.csrf, "/")
	s.setSessionCookie(c, token, expires)
	s.log.Info("signed in", "user_id", user.ID, "method", "passkey")
	return c.Redirect("/account", fiber.StatusSeeOther)
}

// validatedToken validates the posted token and reports whether it is a success of action
// by method; err is a failure to ask Authsignal.
func (s *server) validatedToken(c *fiber.Ctx, action, method string) (*authsignal.ValidateResponse, bool, error) {
	tok := c.FormValue("token")
	if tok == "" || len(tok) > maxTokenLength {
		return &authsignal.ValidateResponse{}, false, nil
	}
	v, err := s.authsignal.Validate(c.UserContext(), authsignal.ValidateRequest{Token: tok})
	if authsignal.IsStatus(err, fiber.StatusBadRequest) || authsignal.IsStatus(err, fiber.StatusNotFound) {
		return &authsignal.ValidateResponse{}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ok := v.IsValid && v.State == authsignal.StateChallengeSucceeded && v.VerificationMethod == method && actionOf(v) == action
	return v, ok, nil
}
