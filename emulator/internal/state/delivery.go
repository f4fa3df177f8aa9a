package state

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"example.com/passwordless/emulator/internal/vocab"
)

// Deliver hands a code message to a custom delivery provider (email.created, sms.created)
// and returns its refusal; it runs outside every transaction, since it waits on the network.
type Deliver func(ctx context.Context, eventType string, data any) error

// codeEvent is the data of email.created and sms.created (docs: advanced-usage/webhooks/
// email-created, sms-created; the Node SDK's signed test payloads add verificationMethod).
type codeEvent struct {
	To                 string       `json:"to"`
	Code               string       `json:"code"`
	UserID             string       `json:"userId"`
	IdempotencyKey     string       `json:"idempotencyKey"`
	ActionCode         string       `json:"actionCode"`
	VerificationMethod vocab.Method `json:"verificationMethod,omitempty"`
	Locale             string       `json:"locale,omitempty"`
}

// inTxSending is inTx for an operation that sends codes. With a delivery provider, each
// code is handed to it once the transaction has committed; a refusal voids that code,
// takes its message out of the outbox and fails the operation (Undeliverable), as a
// non-2xx answer to email.created fails the real service's challenge.
func (s *Store) inTxSending(ctx context.Context, fn func(*txn) error) error {
	if s.deliver == nil {
		return s.inTx(ctx, fn)
	}
	var held []Message
	err := s.inTx(ctx, func(tx *txn) error {
		tx.holdMessages = true
		if err := fn(tx); err != nil {
			return err
		}
		held = tx.held
		return nil
	})
	if err != nil {
		return err
	}
	for i, m := range held {
		if err := s.handOver(ctx, m); err != nil {
			for _, unsent := range held[i:] {
				if undoErr := s.unsend(ctx, unsent); undoErr != nil {
					return undoErr
				}
			}
			return err
		}
		s.publish([]Message{m})
	}
	return nil
}

// handOver sends m to the delivery provider as its event.
func (s *Store) handOver(ctx context.Context, m Message) error {
	c, err := scanChallenge(s.db.QueryRowContext(ctx, `SELECT `+challengeColumns+` FROM challenges WHERE challenge_id = ?`, m.ChallengeID))
	if err != nil {
		return fmt.Errorf("hand over a message: %w", err)
	}
	ev := codeEvent{To: m.To, Code: m.Code, UserID: c.UserID, IdempotencyKey: c.IdempotencyKey, ActionCode: c.ActionCode, Locale: c.Locale}
	typ := "sms.created" // SMS and WhatsApp
	if m.Channel == vocab.ChannelEmail {
		typ, ev.VerificationMethod = "email.created", vocab.MethodEmailOTP
	}
	if err := s.deliver(ctx, typ, ev); err != nil {
		s.log.Warn("delivery provider refused a message", "type", typ, "message_id", m.ID, "err", err)
		return refuse(Undeliverable, "The delivery provider refused the message (%s: %s).", typ, err)
	}
	return nil
}

// unsend voids a code the provider did not take: the challenge's code no longer verifies
// and its message leaves the outbox.
func (s *Store) unsend(ctx context.Context, m Message) error {
	return s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `UPDATE challenges SET code_hash = NULL WHERE challenge_id = ?`, m.ChallengeID); err != nil {
			return fmt.Errorf("void undelivered code: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE message_id = ?`, m.ID); err != nil {
			return fmt.Errorf("remove undelivered message: %w", err)
		}
		return nil
	})
}

// actionVerifyEvent is the data of action.verify (docs: advanced-usage/webhooks/action-verify).
type actionVerifyEvent struct {
	UserID              string       `json:"userId"`
	Action              string       `json:"action"`
	IdempotencyKey      string       `json:"idempotencyKey"`
	VerifiedAt          string       `json:"verifiedAt"`
	State               vocab.State  `json:"state"`
	VerificationMethod  vocab.Method `json:"verificationMethod"`
	UserAuthenticatorID string       `json:"userAuthenticatorId,omitempty"`
}

// approveSuccess asks the action.verify webhook (the caller checks there is one), before
// anything is stored, whether the right code for c may make its action succeed; it returns
// the refusal ("" = go on). Only a code that would verify, for an action still awaiting its
// challenge, is asked about: the transaction that follows checks everything again.
func (s *Store) approveSuccess(ctx context.Context, c *Challenge, code, authID string) (string, error) {
	if c.UserID == "" || !s.wouldVerify(c, code) {
		return "", nil
	}
	a, err := loadAction(ctx, s.db, ActionKey{UserID: c.UserID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey})
	if errors.Is(err, errNoRow) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if a.State != vocab.StateChallengeRequired {
		return "", nil
	}
	ev := actionVerifyEvent{UserID: c.UserID, Action: c.ActionCode, IdempotencyKey: c.IdempotencyKey, VerifiedAt: vocab.FormatTime(s.now()),
		State: vocab.StateChallengeSucceeded, VerificationMethod: c.VerificationMethod, UserAuthenticatorID: authID}
	if err := s.verifyAction(ctx, "action.verify", ev); err != nil {
		s.log.Warn("action.verify refused a verification", "user_id", c.UserID, "action", c.ActionCode, "err", err)
		return fmt.Sprintf("The action.verify webhook refused it (%s).", err), nil
	}
	return "", nil
}

// wouldVerify reports whether code is c's live code, without counting an attempt.
func (s *Store) wouldVerify(c *Challenge, code string) bool {
	return c.Attempts < s.limits.MaxAttempts && !c.Verified() && c.codeHash != nil && s.now().Before(c.ExpiresAt) &&
		subtle.ConstantTimeCompare(codeHash(c.ID, code), c.codeHash) == 1
}
