package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// Message is one email, SMS or WhatsApp message the emulator "sent": an outbox entry.
type Message struct {
	ID          string        `json:"id"`
	Channel     vocab.Channel `json:"channel"`
	To          string        `json:"to"`
	Subject     string        `json:"subject,omitempty"`
	Body        string        `json:"body"`
	Code        string        `json:"code"`
	Link        string        `json:"link,omitempty"` // a magic link's address
	ChallengeID string        `json:"challengeId,omitempty"`
	CreatedAt   string        `json:"createdAt"`

	Seq int64 `json:"-"` // insertion order: the live stream's event id
}

// MessageFilter selects outbox messages: every non-empty field must match.
type MessageFilter struct {
	To          string // normalized as stored (vocab.NormalizeRecipient)
	Channel     vocab.Channel
	ChallengeID string
}

// Match reports whether m passes the filter.
func (f MessageFilter) Match(m Message) bool {
	return (f.To == "" || f.To == m.To) && (f.Channel == "" || f.Channel == m.Channel) &&
		(f.ChallengeID == "" || f.ChallengeID == m.ChallengeID)
}

// where is the SQL condition (with its arguments) of the filter; "1" when it has none.
func (f MessageFilter) where() (string, []any) {
	conds, args := []string{"1"}, []any{}
	for _, c := range []struct{ col, v string }{{"recipient", f.To}, {"channel", string(f.Channel)}, {"challenge_id", f.ChallengeID}} {
		if c.v != "" {
			conds = append(conds, c.col+" = +?")
			args = append(args, c.v)
		}
	}
	return strings.Join(conds, " AND "), args
}

// Messages returns the matching messages with Seq > after, newest first, at most limit of
// them (0 = all kept). The rows are read in full before returning: the database has one
// connection, which no reader may hold on to.
func (s *Store) Messages(ctx context.Context, f MessageFilter, after int64, limit int) ([]Message, error) {
	where, args := f.where()
	q := `SELECT seq, message_id, channel, recipient, subject, body, code, link, challenge_id, created_at FROM messages WHERE ` + where + ` AND seq > +? ORDER BY seq DESC`
	args = append(args, after)
	if limit > 0 {
		q += ` LIMIT +?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	msgs := []Message{}
	for rows.Next() {
		var m Message
		var created int64
		if err := rows.Scan(&m.Seq, &m.ID, &m.Channel, &m.To, &m.Subject, &m.Body, &m.Code, &m.Link, &m.ChallengeID, &created); err != nil {
			return nil, fmt.Errorf("scan message: %w", err)
		}
		m.CreatedAt = vocab.FormatTime(fromMS(created))
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// LastMessageSeq is the highest Seq ever assigned in this database (0 for none).
func (s *Store) LastMessageSeq(ctx context.Context) (int64, error) {
	var last sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'messages'`).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("outbox sequence: %w", err)
	}
	return last.Int64, nil
}

// DeleteMessages deletes the matching messages (every one without a filter) and says how many.
func (s *Store) DeleteMessages(ctx context.Context, f MessageFilter) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *txn) error {
		where, args := f.where()
		res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE `+where, args...)
		if err != nil {
			return fmt.Errorf("delete messages: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// sendCode enforces the per-recipient send limit and puts the message in the outbox,
// inside the caller's transaction (so a refused send changes nothing). The message is
// published to live streams only if that part commits (commit.go).
func (s *Store) sendCode(ctx context.Context, tx *txn, challengeID string, channel vocab.Channel, recipient, locale, code string) error {
	subject, body := messageText(channel, vocab.Language(locale), code, s.limits.CodeTTL)
	_, err := s.sendMessage(ctx, tx, Message{ChallengeID: challengeID, Channel: channel, To: recipient, Subject: subject, Body: body, Code: code})
	return err
}

// sendMessage puts m in the outbox (staged: published if the part commits) within the
// recipient's send limit, and returns it with its id, time and sequence number.
func (s *Store) sendMessage(ctx context.Context, tx *txn, m Message) (Message, error) {
	channel, recipient := m.Channel, m.To
	grp, limit := "sms", s.limits.SMSPerWindow
	if channel == vocab.ChannelEmail {
		grp, limit = "email", s.limits.EmailPerWindow
	}
	now := s.now()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sends WHERE grp = ? AND recipient = ? AND sent_at > ?`,
		grp, recipient, ms(now.Add(-s.limits.SendWindow))).Scan(&n); err != nil {
		return Message{}, fmt.Errorf("count sends: %w", err)
	}
	if n >= limit {
		what := "SMS and WhatsApp messages"
		if grp == "email" {
			what = "emails"
		}
		return Message{}, refuse(Limited, "Too many %s to this recipient: at most %d per %s. Try again later.", what, limit, s.limits.SendWindow)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sends(grp, recipient, sent_at) VALUES (?, ?, ?)`, grp, recipient, ms(now)); err != nil {
		return Message{}, fmt.Errorf("record send: %w", err)
	}
	// Old send records are useless once out of every window; trim them as we go.
	if _, err := tx.ExecContext(ctx, `DELETE FROM sends WHERE sent_at <= ?`, ms(now.Add(-s.limits.SendWindow))); err != nil {
		return Message{}, fmt.Errorf("trim sends: %w", err)
	}
	id, err := s.random.TimeUUID(now)
	if err != nil {
		return Message{}, err
	}
	m.ID, m.CreatedAt = id, vocab.FormatTime(fromMS(ms(now)))
	if m.Seq, err = insertMessage(ctx, tx, m, ms(now)); err != nil {
		return Message{}, err
	}
	if err := s.trimOutbox(ctx, tx, m.Seq); err != nil {
		return Message{}, err
	}
	if tx.holdMessages {
		tx.held = append(tx.held, m) // for the delivery provider, after the commit
	} else {
		tx.staged = append(tx.staged, m) // published if this part of the transaction commits
	}
	s.log.Info("message sent to outbox", "channel", channel, "message_id", id)
	return m, nil
}

func insertMessage(ctx context.Context, tx *txn, m Message, created int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO messages(message_id, channel, recipient, subject, body, code, link, challenge_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Channel, m.To, m.Subject, m.Body, m.Code, m.Link, m.ChallengeID, created)
	if err != nil {
		return 0, fmt.Errorf("store message: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store message: %w", err)
	}
	return seq, nil
}

// trimOutbox keeps the newest messageCap messages, and lets the outbox run over by a
// hundredth of the cap before it trims back to it: a hundred of the oldest deleted at once
// share the pages they sit on and one size check, where one at a time cost every send at the
// cap a page of each index (docs/performance.md). newest is the seq just inserted.
func (s *Store) trimOutbox(ctx context.Context, tx *txn, newest int64) error {
	limit := int64(s.messageCap + s.messageCap/100)
	// Cheap check first: fewer seq numbers in use than the limit means fewer messages.
	var oldest int64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM messages`).Scan(&oldest); err != nil {
		return fmt.Errorf("trim outbox: %w", err)
	}
	if newest-oldest < limit {
		return nil
	}
	// COUNT(*) only counts the cells of the narrowest index's pages, and the excess is
	// then deleted from the oldest end: both stay cheap at 10,000 messages, unlike an
	// OFFSET walk from the newest end.
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
		return fmt.Errorf("trim outbox: %w", err)
	}
	if n <= limit {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq LIMIT +?)`,
		n-int64(s.messageCap)); err != nil {
		return fmt.Errorf("trim outbox: %w", err)
	}
	return nil
}

// messageText renders the localized subject (email only) and body.
func messageText(channel vocab.Channel, lang, code string, ttl time.Duration) (subject, body string) {
	minutes := int(math.Ceil(ttl.Minutes()))
	if lang == "es" {
		if channel == vocab.ChannelEmail {
			return "Tu código de verificación",
				fmt.Sprintf("Tu código de verificación es %s.\n\nCaduca en %d minutos. Si no lo has solicitado, ignora este mensaje.", code, minutes)
		}
		return "", fmt.Sprintf("%s es tu código de verificación. Caduca en %d minutos. No lo compartas con nadie.", code, minutes)
	}
	if channel == vocab.ChannelEmail {
		return "Your verification code",
			fmt.Sprintf("Your verification code is %s.\n\nIt expires in %d minutes. If you did not ask for it, ignore this message.", code, minutes)
	}
	return "", fmt.Sprintf("%s is your verification code. It expires in %d minutes. Do not share it.", code, minutes)
}

// CodeState says whether a message's code or link can still be used ("" when it can).
type CodeState string

// The states of a code that can no longer be used.
const (
	CodeUsed       CodeState = "used"
	CodeReplaced   CodeState = "replaced by a newer code"
	CodeExpired    CodeState = "expired"
	CodeNoAttempts CodeState = "no attempts left"
)

// CodeStates returns the state of each of msgs' codes that can no longer be used, by message
// id. msgs are newest first, as Messages returns them: of a challenge's messages (a resend),
// only the newest can be used.
func (s *Store) CodeStates(ctx context.Context, msgs []Message) (map[string]CodeState, error) {
	var ids []string
	for _, m := range msgs {
		if m.ChallengeID != "" {
			ids = append(ids, m.ChallengeID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	challenges := make(map[string]*Challenge, len(ids))
	const chunk = 500 // well under SQLite's limit on bound values
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		marks, args := inList(ids[:n])
		list, err := queryAll(ctx, s.db, func(rows *sql.Rows) (*Challenge, error) { return scanChallenge(rows) },
			`SELECT `+challengeColumns+` FROM challenges WHERE challenge_id IN (`+marks+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("code states: %w", err)
		}
		for _, c := range list {
			challenges[c.ID] = c
		}
		ids = ids[n:]
	}
	now := s.now()
	states := map[string]CodeState{}
	newest := map[string]bool{} // challenges whose newest message was seen
	for _, m := range msgs {
		c, ok := challenges[m.ChallengeID]
		if !ok {
			continue // not a code (a Call Connect message), or its challenge was deleted
		}
		if newest[c.ID] {
			states[m.ID] = CodeReplaced
			continue
		}
		newest[c.ID] = true
		switch c.Status(now, s.limits.MaxAttempts) {
		case StatusVerified, StatusClaimed, StatusUsed:
			states[m.ID] = CodeUsed
		case StatusNoAttempts:
			states[m.ID] = CodeNoAttempts
		case StatusExpired:
			states[m.ID] = CodeExpired
		}
	}
	return states, nil
}
