package app

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// withdrawalRow is one line of the history table.
type withdrawalRow struct {
	ID        string
	Amount    string
	State     string // what people read: completed, blocked, held for review, …
	Held      bool   // offers "Check status"
	Awaiting  bool   // offers "Cancel"
	CreatedAt string
}

// stateLabel is what the history says of a withdrawal. A failed one says why, from the
// action's last state on Authsignal: a step-up that ended without success (a Cancel, an
// abandoned or failed challenge) is cancelled, a review rejected.
func stateLabel(w store.Withdrawal) string {
	switch {
	case w.State == store.WithdrawalHeld:
		return "held for review"
	case w.State == store.WithdrawalAwaitingChallenge:
		return "awaiting challenge"
	case w.State == store.WithdrawalFailed && (w.AuthsignalState == authsignal.StateChallengeRequired || w.AuthsignalState == authsignal.StateChallengeFailed):
		return "cancelled"
	case w.State == store.WithdrawalFailed && w.AuthsignalState == authsignal.StateReviewFailed:
		return "rejected at review"
	default:
		return string(w.State)
	}
}

func (s *server) account(c *fiber.Ctx) error {
	return s.renderAccount(c, fiber.StatusOK, "", noticeFor(c), "")
}

// renderAccount shows the balance, the withdrawal form and the history. amountInput
// echoes what was typed when the form needs correcting.
func (s *server) renderAccount(c *fiber.Ctx, status int, errMsg, notice, amountInput string) error {
	user, _ := currentUser(c)
	ctx := c.UserContext()
	account, err := s.store.GetAccount(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("load account: %w", err)
	}
	rows := make([]withdrawalRow, 0, len(account.Withdrawals))
	for _, w := range account.Withdrawals {
		rows = append(rows, withdrawalRow{
			ID:        w.ID,
			Amount:    formatCents(w.AmountCents),
			State:     stateLabel(w),
			Held:      w.State == store.WithdrawalHeld,
			Awaiting:  w.State == store.WithdrawalAwaitingChallenge,
			CreatedAt: w.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"),
		})
	}
	signedInAs := user.Email
	if signedInAs == "" {
		signedInAs = user.Phone
	}
	return s.render(c, status, "account", page{
		Title: "Your account", Error: errMsg, Notice: notice,
		Data: fiber.Map{
			"SignedInAs":  signedInAs,
			"Balance":     formatCents(account.BalanceCents),
			"Withdrawals": rows,
			"Amount":      amountInput,
			// The next withdrawal's id, minted with the form: posting it twice is one withdrawal.
			"WithdrawalID": s.randomID(16),
			"Rules":        s.cfg.WithdrawalRules,
		},
	})
}
