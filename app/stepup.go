package app

import (
	"fmt"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// The step-up pattern every gated operation follows (withdrawals; WORKSHOP.md's payees):
//
//  1. record the operation with an id, which is the Authsignal action's idempotencyKey;
//  2. track the action (trackStepUp) and act on the verdict: do it, refuse it, hold it, or
//     send the browser to the pre-built UI;
//  3. on the way back, validate the token (validateStepUp): it must be genuine and name
//     this user's action with the id of an operation of theirs;
//  4. settle the operation exactly once (the caller's one conditional update).

// verdict is what the app does with a tracked action.
type verdict int

const (
	verdictAllow      verdict = iota // do it now
	verdictBlock                     // refuse it
	verdictReview                    // hold it until an analyst decides
	verdictChallenge                 // send the browser to ChallengeURL
	verdictUnenrolled                // Authsignal allowed it only because it cannot challenge this user: refuse
	verdictUnknown                   // a state the app does not expect: refuse
)

// trackedStepUp is Authsignal's answer to a track, read.
type trackedStepUp struct {
	Verdict      verdict
	State        string // the action's state, to record with the operation
	ChallengeURL string // for verdictChallenge: the pre-built UI, checked to be an http(s) URL
}

// trackStepUp tracks action for the operation id of the signed-in user, with the
// browser's details and custom (for the rules), asking the pre-built UI to come back to
// callbackPath. An error is Authsignal's error answer or its silence (answeredWithError
// tells which).
func (s *server) trackStepUp(c *fiber.Ctx, user store.User, action, id, callbackPath string, custom map[string]any) (trackedStepUp, error) {
	res, err := s.authsignal.Track(c.UserContext(), user.ID, action, authsignal.TrackAttributes{
		IdempotencyKey: id,
		RedirectURL:    s.cfg.BaseURL.JoinPath(callbackPath).String(),
		IPAddress:      c.IP(),
		UserAgent:      c.Get(fiber.HeaderUserAgent),
		DeviceID:       deviceID(c),
		Email:          user.Email,
		PhoneNumber:    user.Phone,
		Custom:         custom,
	})
	if err != nil {
		return trackedStepUp{}, err
	}
	t := trackedStepUp{State: res.State}
	switch res.State {
	case authsignal.StateAllow:
		// Authsignal allows any action of a user with no authenticator, even one its rules
		// would challenge: never act on that answer.
		t.Verdict = verdictAllow
		if !res.IsEnrolled {
			t.Verdict = verdictUnenrolled
		}
	case authsignal.StateBlock:
		t.Verdict = verdictBlock
	case authsignal.StateReviewRequired:
		t.Verdict = verdictReview
	case authsignal.StateChallengeRequired:
		u, err := url.Parse(res.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			s.log.Warn("track answered an unusable challenge url", "action", action)
			t.Verdict = verdictUnknown // never send the browser to javascript: or the like
			break
		}
		t.Verdict, t.ChallengeURL = verdictChallenge, u.String()
	default:
		s.log.Warn("unexpected action state", "action", action, "state", res.State)
		t.Verdict = verdictUnknown
	}
	return t, nil
}

// toChallenge sends the browser to the pre-built UI: a redirect, or, for the page's
// script that opens it in a popup (stepup=popup in the form), its address as JSON. The
// popup's token comes back to the same callback as the redirect's.
func (s *server) toChallenge(c *fiber.Ctx, challengeURL string) error {
	if s.cfg.Popup() && c.FormValue("stepup") == "popup" {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(fiber.Map{"challengeUrl": challengeURL})
	}
	return c.Redirect(challengeURL, fiber.StatusSeeOther)
}

// maxTokenLength bounds the callback's token before it is sent anywhere (real ones are a
// few hundred bytes).
const maxTokenLength = 4096

// validatedStepUp is a genuine callback token of the user's action, read.
type validatedStepUp struct {
	ID        string // the operation's id (the action's idempotencyKey)
	State     string
	Succeeded bool // isValid and CHALLENGE_SUCCEEDED: do it
	Failed    bool // back without success (failed, or cancelled and still CHALLENGE_REQUIRED): it is over
}

// validateStepUp validates the callback's ?token= for action. notice is non-empty when the
// browser is to be told something instead (an invalid token, someone else's); err is a
// failure to ask Authsignal. The caller still checks that the id names an operation of
// this user's before settling it.
func (s *server) validateStepUp(c *fiber.Ctx, user store.User, action string) (v validatedStepUp, notice string, err error) {
	token := c.Query("token")
	if token == "" || len(token) > maxTokenLength {
		return v, "invalid-token", nil
	}
	res, err := s.authsignal.Validate(c.UserContext(), authsignal.ValidateRequest{Token: token, UserID: user.ID, Action: action})
	if authsignal.IsStatus(err, fiber.StatusBadRequest) || authsignal.IsStatus(err, fiber.StatusNotFound) {
		return v, "invalid-token", nil
	}
	if err != nil {
		return v, "", fmt.Errorf("validate %s: %w", action, err)
	}
	// A token that is not genuine (forged, expired, another user's) names no action. A
	// genuine one names its action whatever its state; isValid is true only once the
	// challenge succeeded.
	if res.State == "" || res.IdempotencyKey == "" {
		return v, "invalid-token", nil
	}
	if res.UserID != user.ID || actionOf(res) != action {
		return v, "not-yours", nil
	}
	return validatedStepUp{
		ID:        res.IdempotencyKey,
		State:     res.State,
		Succeeded: res.IsValid && res.State == authsignal.StateChallengeSucceeded,
		Failed:    res.State == authsignal.StateChallengeFailed || res.State == authsignal.StateChallengeRequired,
	}, "", nil
}

// enrolForNextTime enrols the address the user signs in with, after Authsignal allowed an
// action only because it could not challenge them (verdictUnenrolled), so that the next
// try gets the rules' real answer. The operation itself is refused either way.
func (s *server) enrolForNextTime(c *fiber.Ctx, user store.User) error {
	method, recipient := signInAddress(user)
	if err := s.ensureEnrolled(c.UserContext(), user.ID, method, recipient); err != nil {
		s.log.Warn("authsignal call failed", "call", "enroll authenticator", "request_id", c.Locals(localReqID), "user_id", user.ID, "err", err)
		return err
	}
	return nil
}

// actionOf is the validated action's code (older answers only have actionCode).
func actionOf(v *authsignal.ValidateResponse) string {
	if v.Action != "" {
		return v.Action
	}
	return v.ActionCode
}
