package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// Call is a Call Connect call: its caller was sent a link, and the call centre reports how
// it ended.
type Call struct {
	ReferenceID, MessageID string
	Channel                vocab.Channel
	To                     string
	UserID, Username       string
	ActionCode, Locale     string
	State                  vocab.State // "" while the call runs
	Payload                string      // JSON or ""
	StartedAt, FinishedAt  time.Time
}

// NewCall is what StartCall needs; LinkBase is the emulator's URL, for the link.
type NewCall struct {
	ReferenceID                  string
	Channel                      vocab.Channel
	To                           string // normalized email or E.164 phone number
	UserID, Username, ActionCode string
	Locale, LinkBase             string
}

// StartCall sends the caller their link and records the call; starting a reference again
// sends a new link and starts the call over.
func (s *Store) StartCall(ctx context.Context, n NewCall) (Message, error) {
	var m Message
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		subject, body := callText(n.Channel, n.LinkBase+"/emulator/calls/"+n.ReferenceID)
		if m, err = s.sendMessage(ctx, tx, Message{Channel: n.Channel, To: n.To, Subject: subject, Body: body}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO calls(reference_id, message_id, channel, recipient, user_id, username, action_code, locale, started_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
			ON CONFLICT(reference_id) DO UPDATE SET message_id = ?2, channel = ?3, recipient = ?4, user_id = ?5, username = ?6, action_code = ?7,
				locale = ?8, state = '', payload = '', started_at = ?9, finished_at = NULL`,
			n.ReferenceID, m.ID, n.Channel, n.To, n.UserID, n.Username, n.ActionCode, n.Locale, ms(s.now()))
		if err != nil {
			return fmt.Errorf("record call: %w", err)
		}
		return nil
	})
	if err != nil {
		return Message{}, err
	}
	s.log.Info("call started", "channel", n.Channel, "message_id", m.ID)
	return m, nil
}

func callText(channel vocab.Channel, link string) (subject, body string) {
	text := "You are on a call with us. To confirm it is you, open this link: " + link
	if channel == vocab.ChannelEmail {
		return "Confirm it is you on the call", text
	}
	return "", text
}

// FinishCall records how a started call ended; finishing it again changes the record.
func (s *Store) FinishCall(ctx context.Context, referenceID string, st vocab.State, userID, payload string) error {
	return s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, payload = ?, finished_at = ?,
			user_id = CASE WHEN ? <> '' THEN ? ELSE user_id END WHERE reference_id = ?`, st, payload, ms(s.now()), userID, userID, referenceID)
		if err != nil {
			return fmt.Errorf("finish call: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refuse(NotFound, "Call %q was not started.", referenceID)
		}
		return nil
	})
}

// Call returns one call.
func (s *Store) Call(ctx context.Context, referenceID string) (Call, error) {
	var c Call
	var started int64
	var finished sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT reference_id, message_id, channel, recipient, user_id, username, action_code, locale, state, payload,
		started_at, finished_at FROM calls WHERE reference_id = ?`, referenceID).Scan(&c.ReferenceID, &c.MessageID, &c.Channel, &c.To, &c.UserID,
		&c.Username, &c.ActionCode, &c.Locale, &c.State, &c.Payload, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return Call{}, refuse(NotFound, "Call %q was not started.", referenceID)
	}
	if err != nil {
		return Call{}, fmt.Errorf("load call: %w", err)
	}
	c.StartedAt, c.FinishedAt = fromMS(started), nullTime(finished)
	return c, nil
}
