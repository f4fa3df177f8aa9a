package app

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// withdrawalAction is the Authsignal action code tracked for every withdrawal; rules in
// the Authsignal Portal (or the emulator's rules file) are written against it.
const withdrawalAction = "withdrawal"

// withdraw records a pending withdrawal, asks Authsignal what to do with it and acts on
// the answer. The withdrawal id is the action's idempotencyKey, which ties the later
// callback to exactly this withdrawal.
func (s *server) withdraw(c *fiber.Ctx) error {
	ctx := c.UserContext()
	user, _ := currentUser(c)
	input := c.FormValue("amount")
	amount, err := parseAmount(input)
	if err != nil {
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, err.Error(), "", input)
	}
	balance, err := s.store.Balance(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("load balance: %w", err)
	}
	if amount > balance {
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, "That is more than your balance of "+formatCents(balance)+".", "", input)
	}

	now := s.now()
	w := store.Withdrawal{ID: s.randomID(16), UserID: user.ID, AmountCents: amount, State: store.WithdrawalPending, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateWithdrawal(ctx, w); err != nil {
		return fmt.Errorf("record withdrawal: %w", err)
	}

	tracked, err := s.authsignal.Track(ctx, user.ID, withdrawalAction, authsignal.TrackAttributes{
		IdempotencyKey: w.ID,
		RedirectURL:    s.cfg.BaseURL.JoinPath("/withdrawals/callback").String(),
		IPAddress:      c.IP(),
		UserAgent:      c.Get(fiber.HeaderUserAgent),
		DeviceID:       deviceID(c),
		Email:          user.Email,
		PhoneNumber:    user.Phone,
		Custom:         map[string]any{"amount": centsToUnits(amount)},
	})
	if err != nil {
		// Nothing moved; close the withdrawal so it can't be completed later.
		if settleErr := s.settle(c, w.ID, store.WithdrawalPending, store.WithdrawalFailed, ""); settleErr != nil {
			return settleErr
		}
		status, _ := s.authsignalFailure(c, "track withdrawal", err)
		return s.renderAccount(c, status, "We couldn't check this withdrawal with our security service, so nothing was taken. Please try again in a moment.", "", input)
	}

	switch tracked.State {
	case authsignal.StateAllow:
		if !tracked.IsEnrolled {
			// Authsignal allows any action of a user with no authenticator, even one its
			// rules would challenge; so money never moves on that answer.
			return s.refuseUnenrolled(c, user, w.ID, tracked.State)
		}
		return s.complete(c, w.ID, store.WithdrawalPending, tracked.State, "withdrawal-done")
	case authsignal.StateBlock:
		return s.settleAndNotify(c, w.ID, store.WithdrawalPending, store.WithdrawalBlocked, tracked.State, "withdrawal-blocked")
	case authsignal.StateReviewRequired:
		return s.settleAndNotify(c, w.ID, store.WithdrawalPending, store.WithdrawalHeld, tracked.State, "withdrawal-held")
	case authsignal.StateChallengeRequired:
		challengeURL, err := url.Parse(tracked.URL)
		if err != nil || (challengeURL.Scheme != "https" && challengeURL.Scheme != "http") || challengeURL.Host == "" {
			_ = s.settle(c, w.ID, store.WithdrawalPending, store.WithdrawalFailed, tracked.State)
			return fmt.Errorf("track returned an unusable challenge url")
		}
		if err := s.settle(c, w.ID, store.WithdrawalPending, store.WithdrawalAwaitingChallenge, tracked.State); err != nil {
			return err
		}
		return c.Redirect(challengeURL.String(), fiber.StatusSeeOther)
	default:
		s.log.Warn("unexpected action state", "state", tracked.State)
		return s.settleAndNotify(c, w.ID, store.WithdrawalPending, store.WithdrawalFailed, tracked.State, "challenge-failed")
	}
}

// refuseUnenrolled closes a withdrawal that Authsignal allowed only because the user has no
// authenticator to be challenged with, and enrols the address they sign in with, so that
// the next try gets the rules' real answer.
func (s *server) refuseUnenrolled(c *fiber.Ctx, user store.User, id, authsignalState string) error {
	if err := s.settle(c, id, store.WithdrawalPending, store.WithdrawalFailed, authsignalState); err != nil {
		if errors.Is(err, store.ErrNotSettleable) {
			return s.notify(c, "already-settled")
		}
		return err
	}
	method, recipient := signInAddress(user)
	if err := s.ensureEnrolled(c.UserContext(), user.ID, method, recipient); err != nil {
		s.log.Warn("authsignal call failed", "call", "enroll authenticator", "request_id", c.Locals(localReqID), "user_id", user.ID, "err", err)
		return s.notify(c, "check-unavailable")
	}
	return s.notify(c, "check-enrolled")
}

// signInAddress is the method and address the user signs in with: the last one used, or
// for older records their email, else their phone by SMS.
func signInAddress(user store.User) (signInMethod, string) {
	key := user.LastSignInMethod
	if _, ok := findMethod(key); !ok {
		key = "sms"
		if user.Email != "" {
			key = "email"
		}
	}
	method, _ := findMethod(key)
	if key == "email" {
		return method, user.Email
	}
	return method, user.Phone
}

// withdrawalCallback is where the pre-built UI sends the browser back. The token in the
// URL is only trusted after Authsignal validates it, and the money moves only for the
// signed-in user's own withdrawal that is still awaiting this challenge.
func (s *server) withdrawalCallback(c *fiber.Ctx) error {
	ctx := c.UserContext()
	user, _ := currentUser(c)
	token := c.Query("token")
	if token == "" || len(token) > 4096 {
		return s.notify(c, "invalid-token")
	}
	result, err := s.authsignal.Validate(ctx, authsignal.ValidateRequest{Token: token, UserID: user.ID, Action: withdrawalAction})
	if authsignal.IsStatus(err, fiber.StatusBadRequest) || authsignal.IsStatus(err, fiber.StatusNotFound) {
		return s.notify(c, "invalid-token")
	}
	if err != nil {
		status, _ := s.authsignalFailure(c, "validate challenge", err)
		return s.renderAccount(c, status, "We couldn't confirm the challenge right now. Nothing was taken; try the link again in a moment.", "", "")
	}
	// A token that is not genuine (forged, expired, another user's) names no action. A
	// genuine one names its action whatever its state; isValid is true only once the
	// challenge succeeded.
	if result.State == "" || result.IdempotencyKey == "" {
		return s.notify(c, "invalid-token")
	}
	action := result.Action
	if action == "" {
		action = result.ActionCode
	}
	if result.UserID != user.ID || action != withdrawalAction {
		return s.notify(c, "not-yours")
	}
	w, err := s.store.GetWithdrawal(ctx, result.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.UserID != user.ID) {
		return s.notify(c, "not-yours")
	}
	if err != nil {
		return fmt.Errorf("load withdrawal: %w", err)
	}

	switch {
	case result.IsValid && result.State == authsignal.StateChallengeSucceeded:
		return s.complete(c, w.ID, store.WithdrawalAwaitingChallenge, result.State, "withdrawal-done")
	case result.State == authsignal.StateChallengeFailed, result.State == authsignal.StateChallengeRequired:
		// Back from the pre-built UI without success: failed, or cancelled (which may
		// leave the action still CHALLENGE_REQUIRED). Either way this withdrawal is over.
		return s.settleAndNotify(c, w.ID, store.WithdrawalAwaitingChallenge, store.WithdrawalFailed, result.State, "challenge-failed")
	default:
		if w.State != store.WithdrawalAwaitingChallenge {
			return s.notify(c, "already-settled")
		}
		return s.notify(c, "challenge-pending")
	}
}

// checkWithdrawal asks Authsignal whether a held withdrawal's review has been decided.
func (s *server) checkWithdrawal(c *fiber.Ctx) error {
	ctx := c.UserContext()
	user, _ := currentUser(c)
	w, err := s.store.GetWithdrawal(ctx, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.UserID != user.ID) {
		return s.notify(c, "not-yours")
	}
	if err != nil {
		return fmt.Errorf("load withdrawal: %w", err)
	}
	if w.State != store.WithdrawalHeld {
		return s.notify(c, "already-settled")
	}
	action, err := s.authsignal.GetAction(ctx, user.ID, withdrawalAction, w.ID)
	if err != nil {
		status, _ := s.authsignalFailure(c, "get action", err)
		return s.renderAccount(c, status, "We couldn't reach the review service right now. Try again in a moment.", "", "")
	}
	switch action.State {
	case authsignal.StateReviewSucceeded:
		return s.complete(c, w.ID, store.WithdrawalHeld, action.State, "review-approved")
	case authsignal.StateReviewFailed:
		return s.settleAndNotify(c, w.ID, store.WithdrawalHeld, store.WithdrawalFailed, action.State, "review-rejected")
	default:
		return s.notify(c, "review-pending")
	}
}

// complete moves the money: one conditional update from `from` to completed with the
// debit in the same transaction. A second attempt finds nothing to settle.
func (s *server) complete(c *fiber.Ctx, id string, from store.WithdrawalState, authsignalState, notice string) error {
	user, _ := currentUser(c)
	err := s.store.SettleWithdrawal(c.UserContext(), user.ID, id, []store.WithdrawalState{from}, store.WithdrawalCompleted, authsignalState)
	switch {
	case errors.Is(err, store.ErrInsufficientFunds):
		if err := s.settle(c, id, from, store.WithdrawalFailed, authsignalState); err != nil {
			return err
		}
		return s.notify(c, "insufficient-funds")
	case errors.Is(err, store.ErrNotSettleable):
		return s.notify(c, "already-settled")
	case err != nil:
		return fmt.Errorf("complete withdrawal: %w", err)
	}
	return s.notify(c, notice)
}

func (s *server) settleAndNotify(c *fiber.Ctx, id string, from, to store.WithdrawalState, authsignalState, notice string) error {
	err := s.settle(c, id, from, to, authsignalState)
	if errors.Is(err, store.ErrNotSettleable) {
		return s.notify(c, "already-settled")
	}
	if err != nil {
		return err
	}
	return s.notify(c, notice)
}

func (s *server) settle(c *fiber.Ctx, id string, from, to store.WithdrawalState, authsignalState string) error {
	user, _ := currentUser(c)
	err := s.store.SettleWithdrawal(c.UserContext(), user.ID, id, []store.WithdrawalState{from}, to, authsignalState)
	if err != nil && !errors.Is(err, store.ErrNotSettleable) {
		return fmt.Errorf("settle withdrawal %s -> %s: %w", from, to, err)
	}
	return err
}

// notify ends a withdrawal request with a redirect to the account page (post/redirect/
// get), carrying a fixed notice key; a refresh never repeats the action.
func (s *server) notify(c *fiber.Ctx, notice string) error {
	return c.Redirect("/account?notice="+notice, fiber.StatusSeeOther)
}
