package app

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// WithdrawalAction is the Authsignal action code tracked for every withdrawal; rules in
// the Authsignal Portal (or the emulator's rules file) are written against it.
const WithdrawalAction = "withdrawal"

// withdraw records a pending withdrawal, asks Authsignal what to do with it and acts on
// the answer. The withdrawal's id comes with the form, minted when the page was rendered,
// and is the action's idempotencyKey: it ties the later callback to exactly this
// withdrawal, and a repeat of the same form (a double click) to its first outcome.
func (s *server) withdraw(c *fiber.Ctx) error {
	ctx := c.UserContext()
	user, _ := currentUser(c)
	id := c.FormValue("withdrawal_id")
	if !isWithdrawalID(id) {
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, "This form is out of date. Please try again.", "", "")
	}
	if w, err := s.store.GetWithdrawal(ctx, id); err == nil {
		return s.repeatedWithdrawal(c, user, w)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("load withdrawal: %w", err)
	}
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
	w := store.Withdrawal{ID: id, UserID: user.ID, AmountCents: amount, State: store.WithdrawalPending, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateWithdrawal(ctx, w); errors.Is(err, store.ErrExists) {
		// The same form, posted at the same moment: the first post does the work.
		first, err := s.store.GetWithdrawal(ctx, id)
		if err != nil {
			return fmt.Errorf("load withdrawal: %w", err)
		}
		return s.repeatedWithdrawal(c, user, first)
	} else if err != nil {
		return fmt.Errorf("record withdrawal: %w", err)
	}

	tracked, err := s.trackStepUp(c, user, WithdrawalAction, w.ID, "/withdrawals/callback", map[string]any{"amount": centsToUnits(amount)})
	if err != nil && !answeredWithError(err) {
		// No answer (a timeout, a broken connection): Authsignal may have recorded the
		// action. The withdrawal stays pending and the reconciler settles it as Authsignal
		// says (reconcile.go); nothing has moved meanwhile.
		s.authsignalFailure(c, "track withdrawal", err)
		return s.notify(c, "withdrawal-checking")
	}
	if err != nil {
		// Authsignal refused it, or answered nothing usable: nothing moved; close the
		// withdrawal so it can't be completed later.
		if settleErr := s.settle(c, w.ID, store.WithdrawalPending, store.WithdrawalFailed, ""); settleErr != nil {
			return settleErr
		}
		status, _ := s.authsignalFailure(c, "track withdrawal", err)
		return s.renderAccount(c, status, "We couldn't check this withdrawal with our security service, so nothing was taken. Please try again in a moment.", "", input)
	}

	switch tracked.Verdict {
	case verdictAllow:
		return s.complete(c, w.ID, store.WithdrawalPending, tracked.State, "withdrawal-done")
	case verdictUnenrolled:
		return s.refuseUnenrolled(c, user, w.ID, tracked.State)
	case verdictBlock:
		return s.settleAndNotify(c, w.ID, store.WithdrawalPending, store.WithdrawalBlocked, tracked.State, "withdrawal-blocked")
	case verdictReview:
		return s.settleAndNotify(c, w.ID, store.WithdrawalPending, store.WithdrawalHeld, tracked.State, "withdrawal-held")
	case verdictChallenge:
		if err := s.store.AwaitChallenge(ctx, user.ID, w.ID, tracked.ChallengeURL, tracked.State); err != nil {
			return fmt.Errorf("await challenge: %w", err)
		}
		return s.toChallenge(c, tracked.ChallengeURL)
	default:
		return s.settleAndNotify(c, w.ID, store.WithdrawalPending, store.WithdrawalFailed, tracked.State, "challenge-failed")
	}
}

// isWithdrawalID reports whether id has the form of the ids the account page mints.
func isWithdrawalID(id string) bool { return len(id) == 32 && isHex(id) }

// repeatPolls × repeatPoll bound how long a repeated form waits for its first post to get
// Authsignal's answer, so a double click shows what the first click did.
const (
	repeatPolls = 60
	repeatPoll  = 50 * time.Millisecond
)

// repeatedWithdrawal answers a form posted again (a double click, a reload of the POST)
// with the outcome of the first post, and moves nothing.
func (s *server) repeatedWithdrawal(c *fiber.Ctx, user store.User, w store.Withdrawal) error {
	if w.UserID != user.ID {
		return s.notify(c, "not-yours")
	}
	for i := 0; i < repeatPolls && w.State == store.WithdrawalPending; i++ {
		select {
		case <-c.UserContext().Done():
			return c.UserContext().Err()
		case <-time.After(repeatPoll):
		}
		var err error
		if w, err = s.store.GetWithdrawal(c.UserContext(), w.ID); err != nil {
			return fmt.Errorf("load withdrawal: %w", err)
		}
	}
	switch w.State {
	case store.WithdrawalCompleted:
		return s.notify(c, "withdrawal-done")
	case store.WithdrawalBlocked:
		return s.notify(c, "withdrawal-blocked")
	case store.WithdrawalHeld:
		return s.notify(c, "withdrawal-held")
	case store.WithdrawalFailed:
		return s.notify(c, "withdrawal-failed")
	case store.WithdrawalAwaitingChallenge:
		if u, err := url.Parse(w.ChallengeURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			return s.toChallenge(c, u.String())
		}
	}
	return s.notify(c, "withdrawal-checking")
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
	if err := s.enrolForNextTime(c, user); err != nil {
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
	user, _ := currentUser(c)
	v, notice, err := s.validateStepUp(c, user, WithdrawalAction)
	if err != nil {
		status, _ := s.authsignalFailure(c, "validate challenge", err)
		return s.renderAccount(c, status, "We couldn't confirm the challenge right now. Nothing was taken; try the link again in a moment.", "", "")
	}
	if notice != "" {
		return s.notify(c, notice)
	}
	w, err := s.store.GetWithdrawal(c.UserContext(), v.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.UserID != user.ID) {
		return s.notify(c, "not-yours")
	}
	if err != nil {
		return fmt.Errorf("load withdrawal: %w", err)
	}
	switch {
	case v.Succeeded:
		return s.complete(c, w.ID, store.WithdrawalAwaitingChallenge, v.State, "withdrawal-done")
	case v.Failed:
		// A Cancel in the pre-built UI, too many wrong codes, or a challenge left unfinished:
		// Authsignal's state does not tell them apart, and for the person each is a cancel.
		return s.settleAndNotify(c, w.ID, store.WithdrawalAwaitingChallenge, store.WithdrawalFailed, v.State, "stepup-cancelled")
	case w.State != store.WithdrawalAwaitingChallenge:
		return s.notify(c, "already-settled")
	default:
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
	action, err := s.authsignal.GetAction(ctx, user.ID, WithdrawalAction, w.ID)
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

// cancelWithdrawal ends a withdrawal still awaiting its challenge, at its owner's request
// (a challenge tab closed, a change of mind). A challenge completed later finds it settled.
func (s *server) cancelWithdrawal(c *fiber.Ctx) error {
	user, _ := currentUser(c)
	w, err := s.store.GetWithdrawal(c.UserContext(), c.Params("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.UserID != user.ID) {
		return s.notify(c, "not-yours")
	}
	if err != nil {
		return fmt.Errorf("load withdrawal: %w", err)
	}
	return s.settleAndNotify(c, w.ID, store.WithdrawalAwaitingChallenge, store.WithdrawalFailed, w.AuthsignalState, "withdrawal-cancelled")
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
