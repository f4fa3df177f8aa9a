package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// Sign-in by a link in an email, for a user who added their email as a link method
// (Sign-in methods). The server does all of it, so the answer is the same whether the
// address can sign in by link or not, and the browser never holds a token that could
// send links elsewhere: it tracks signInWithEmailLink for the user, has Authsignal's
// Client API email the link to the enrolled address with that token, and, when the
// person presses Continue, asks whether the link was opened, then validates the token
// it gets (a success by EMAIL_MAGIC_LINK of this action, for this user) and uses it once.

// linkSignIn is the sign-in method "Email link" (pending sign-ins' method "link").
var linkSignIn = signInMethod{Key: "link", Label: "Email link", VerificationMethod: "EMAIL_MAGIC_LINK", Action: "signInWithEmailLink"}

// sendLink starts a sign-in by link: pending either way, a link only to a known address.
func (s *server) sendLink(c *fiber.Ctx, form signInForm) error {
	recipient, err := normalizeEmail(form.Email)
	if err != nil {
		form.Field, form.Problem = "email", err.Error()
		return s.renderSignIn(c, fiber.StatusBadRequest, form, "", "")
	}
	release, status, refusal := s.reserveSend(c, recipient)
	if refusal != "" {
		return s.renderSignIn(c, status, form, refusal, "")
	}
	token, err := s.linkToken(c, recipient)
	if err != nil {
		release()
		status, msg := s.authsignalFailure(c, "send link", err)
		return s.renderSignIn(c, status, form, msg, "")
	}
	if token == "" {
		release() // nothing was sent
	}
	pending := store.PendingSignIn{ID: s.randomID(16), ChallengeID: token, Method: linkSignIn.Key, Recipient: recipient,
		CreatedAt: s.now(), ExpiresAt: s.now().Add(s.cfg.PendingTTL)}
	if err := s.store.CreatePendingSignIn(c.UserContext(), pending); err != nil {
		return fmt.Errorf("save pending sign-in: %w", err)
	}
	if err := s.setPendingCookie(c, pending); err != nil {
		return err
	}
	return c.Redirect("/signin/verify", fiber.StatusSeeOther)
}

// linkToken tracks the sign-in for the address's user and has the link sent; "" when the
// address has no user or no link method (nothing sent).
func (s *server) linkToken(c *fiber.Ctx, email string) (string, error) {
	ctx := c.UserContext()
	user, err := s.store.FindUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	auths, err := s.authsignal.GetAuthenticators(ctx, user.ID)
	if err != nil {
		return "", err
	}
	if !hasLinkTo(auths, email) {
		return "", nil
	}
	res, err := s.authsignal.Track(ctx, user.ID, linkSignIn.Action, authsignal.TrackAttributes{
		IdempotencyKey: s.randomID(16), Email: email, IPAddress: c.IP(), UserAgent: c.Get(fiber.HeaderUserAgent), DeviceID: deviceID(c),
		Locale: preferredLocale(c.Get(fiber.HeaderAcceptLanguage)),
	})
	if err != nil {
		return "", err
	}
	if res.State == authsignal.StateBlock || res.State == authsignal.StateReviewRequired || res.Token == "" {
		return "", nil
	}
	if err := s.authsignal.ChallengeEmailMagicLink(ctx, res.Token); err != nil {
		return "", err
	}
	return res.Token, nil
}

func hasLinkTo(auths []authsignal.UserAuthenticator, email string) bool {
	for _, a := range auths {
		if a.VerificationMethod == linkSignIn.VerificationMethod && strings.EqualFold(a.Email, email) {
			return true
		}
	}
	return false
}

const linkNotYet = "The link has not been opened yet. Open it from your email, then press Continue."

// continueLink serves POST /signin/verify for a sign-in by link: Continue.
func (s *server) continueLink(c *fiber.Ctx, pending store.PendingSignIn) error {
	ctx := c.UserContext()
	if pending.ChallengeID == "" {
		return s.renderCodePage(c, fiber.StatusAccepted, pending, linkNotYet, "")
	}
	status, err := s.authsignal.FinalizeEmailMagicLink(ctx, pending.ChallengeID)
	if authsignal.IsStatus(err, fiber.StatusUnauthorized) {
		return s.restartSignIn(c, &pending, "code-expired") // the token expired: start again
	}
	if err != nil {
		st, msg := s.authsignalFailure(c, "check link", err)
		return s.renderCodePage(c, st, pending, msg, "")
	}
	if !status.IsVerified {
		return s.renderCodePage(c, fiber.StatusAccepted, pending, linkNotYet, "")
	}
	v, err := s.authsignal.Validate(ctx, authsignal.ValidateRequest{Token: status.AccessToken})
	if err != nil {
		st, msg := s.authsignalFailure(c, "validate", err)
		return s.renderCodePage(c, st, pending, msg, "")
	}
	user, err := s.store.FindUserByEmail(ctx, pending.Recipient)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("find user: %w", err)
	}
	ok := err == nil && v.IsValid && v.State == authsignal.StateChallengeSucceeded && v.VerificationMethod == linkSignIn.VerificationMethod &&
		actionOf(v) == linkSignIn.Action && v.UserID == user.ID
	if !ok {
		s.log.Error("link sign-in not confirmed", "request_id", c.Locals(localReqID))
		return s.restartSignIn(c, &pending, "signin-mismatch")
	}
	fresh, err := s.store.ConsumeAction(ctx, linkSignIn.Action, v.IdempotencyKey)
	if err != nil {
		return fmt.Errorf("consume link sign-in: %w", err)
	}
	if !fresh {
		return s.restartSignIn(c, &pending, "signin-expired")
	}
	return s.startSession(c, user, pending, "email")
}
