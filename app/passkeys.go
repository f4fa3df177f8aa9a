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

// scopeAddAuthenticators lets a track token add an authenticator for a user who has one
// already; only a signed-in person gets one, right after an OTP sign-in proved who they are.
const scopeAddAuthenticators = "add:authenticators"

// passkeyToken serves POST /passkeys/token (JavaScript, with the CSRF header): a track
// token that lets this user's browser create a passkey.
func (s *server) passkeyToken(c *fiber.Ctx) error {
	if !s.cfg.Passkeys() {
		return c.Status(fiber.StatusNotFound).JSON(fiber.Map{"error": "Passkeys are not set up."})
	}
	user, _ := currentUser(c)
	res, err := s.authsignal.Track(c.UserContext(), user.ID, actionAddPasskey, authsignal.TrackAttributes{
		IdempotencyKey: s.randomID(16), Scope: scopeAddAuthenticators, Username: user.Email,
		IPAddress: c.IP(), UserAgent: string(c.Request().Header.UserAgent()), DeviceID: deviceID(c),
	})
	if err != nil {
		s.log.Warn("authsignal call failed", "call", "track", "action", actionAddPasskey, "request_id", c.Locals(localReqID), "err", err)
		return c.Status(fiber.StatusBadGateway).JSON(fiber.Map{"error": "The sign-in service is not answering. Try again in a moment."})
	}
	switch res.State {
	case authsignal.StateBlock, authsignal.StateReviewRequired:
		return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"error": "A passkey cannot be added to this account right now."})
	}
	return c.JSON(fiber.Map{"token": res.Token, "username": user.Email})
}

// addPasskey serves POST /passkeys: the browser created the passkey with the token; the
// server checks with Authsignal that it did, for this user.
func (s *server) addPasskey(c *fiber.Ctx) error {
	user, _ := currentUser(c)
	v, ok, err := s.validatedPasskeyToken(c, actionAddPasskey)
	if err != nil {
		s.log.Warn("authsignal call failed", "call", "validate", "action", actionAddPasskey, "request_id", c.Locals(localReqID), "err", err)
		return c.Redirect("/account?notice=passkey-unavailable", fiber.StatusSeeOther)
	}
	if !ok || v.UserID != user.ID {
		s.log.Warn("passkey not added", "request_id", c.Locals(localReqID), "user_id", user.ID, "token_user_id", v.UserID)
		return c.Redirect("/account?notice=passkey-failed", fiber.StatusSeeOther)
	}
	s.log.Info("passkey added", "user_id", user.ID)
	return c.Redirect("/account?notice=passkey-added", fiber.StatusSeeOther)
}

// signInWithPasskey serves POST /signin/passkey: the browser signed in with a passkey; the
// server checks the token with Authsignal, uses it once, and starts a session for the
// passkey's user.
func (s *server) signInWithPasskey(c *fiber.Ctx) error {
	v, ok, err := s.validatedPasskeyToken(c, actionPasskeySignIn)
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

// validatedPasskeyToken validates the posted token and reports whether it is a passkey
// success of action; err is a failure to ask Authsignal.
func (s *server) validatedPasskeyToken(c *fiber.Ctx, action string) (*authsignal.ValidateResponse, bool, error) {
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
	ok := v.IsValid && v.State == authsignal.StateChallengeSucceeded && v.VerificationMethod == "PASSKEY" && actionOf(v) == action
	return v, ok, nil
}

// actionOf is the validated action's code (older answers only have actionCode).
func actionOf(v *authsignal.ValidateResponse) string {
	if v.Action != "" {
		return v.Action
	}
	return v.ActionCode
}
