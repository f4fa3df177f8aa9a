package emulator

import (
	"context"
	_ "embed" // the outbox page's script
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Delivery channels of the outbox.
const (
	ChannelEmail    = "EMAIL"
	ChannelSMS      = "SMS"
	ChannelWhatsApp = "WHATSAPP"
)

// Message is one email/SMS/WhatsApp message the emulator "sent".
type Message struct {
	ID          string `json:"id"`
	Channel     string `json:"channel"`
	To          string `json:"to"`
	Subject     string `json:"subject,omitempty"`
	Body        string `json:"body"`
	Code        string `json:"code"`
	ChallengeID string `json:"challengeId,omitempty"`
	CreatedAt   string `json:"createdAt"`

	seq int64 // insertion order; the SSE event id
}

// sendCode enforces the per-recipient send limit and puts the message in the outbox,
// inside the caller's transaction (so a refused send changes nothing). The message is
// published to live streams only if that transaction commits (see inTx).
func (e *Emulator) sendCode(ctx context.Context, tx *txn, challengeID, channel, recipient, locale, code string) error {
	grp, limit := "sms", e.limits.SMSPerWindow
	if channel == ChannelEmail {
		grp, limit = "email", e.limits.EmailPerWindow
	}
	now := e.now()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sends WHERE grp = ? AND recipient = ? AND sent_at > ?`,
		grp, recipient, ms(now.Add(-e.limits.SendWindow))).Scan(&n); err != nil {
		return fmt.Errorf("count sends: %w", err)
	}
	if n >= limit {
		what := "SMS and WhatsApp messages"
		if grp == "email" {
			what = "emails"
		}
		return tooManyRequests("Too many %s to this recipient: at most %d per %s. Try again later.", what, limit, e.limits.SendWindow)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sends(grp, recipient, sent_at) VALUES (?, ?, ?)`, grp, recipient, ms(now)); err != nil {
		return fmt.Errorf("record send: %w", err)
	}
	// Old send records are useless once out of every window; trim them as we go.
	if _, err := tx.ExecContext(ctx, `DELETE FROM sends WHERE sent_at <= ?`, ms(now.Add(-e.limits.SendWindow))); err != nil {
		return fmt.Errorf("trim sends: %w", err)
	}
	id, err := e.newUUID()
	if err != nil {
		return err
	}
	subject, body := e.messageText(channel, messageLanguage(locale), code)
	res, err := tx.ExecContext(ctx, `INSERT INTO messages(message_id, channel, recipient, subject, body, code, challenge_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, channel, recipient, subject, body, code, challengeID, ms(now))
	if err != nil {
		return fmt.Errorf("store message: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("store message: %w", err)
	}
	if err := e.trimOutbox(ctx, tx, seq); err != nil {
		return err
	}
	m := Message{ID: id, Channel: channel, To: recipient, Subject: subject, Body: body, Code: code,
		ChallengeID: challengeID, CreatedAt: isoTime(fromMS(ms(now))), seq: seq}
	tx.staged = append(tx.staged, m) // published if this part of the transaction commits
	e.log.Info("message sent to outbox", "channel", channel, "message_id", id)
	return nil
}

// trimOutbox keeps the newest messageCap messages; newest is the seq just inserted.
func (e *Emulator) trimOutbox(ctx context.Context, tx *txn, newest int64) error {
	// Cheap check first: fewer seq numbers in use than the cap means fewer messages.
	var oldest int64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM messages`).Scan(&oldest); err != nil {
		return fmt.Errorf("trim outbox: %w", err)
	}
	if newest-oldest < int64(e.messageCap) {
		return nil
	}
	// COUNT(*) only counts the cells of the narrowest index's pages, and the excess is
	// then deleted from the oldest end: both stay cheap at 10,000 messages, unlike an
	// OFFSET walk from the newest end.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
		return fmt.Errorf("trim outbox: %w", err)
	}
	if n <= e.messageCap {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq LIMIT ?)`,
		n-e.messageCap); err != nil {
		return fmt.Errorf("trim outbox: %w", err)
	}
	return nil
}

// messageText renders the localized subject (email only) and body.
func (e *Emulator) messageText(channel, lang, code string) (subject, body string) {
	minutes := int(math.Ceil(e.limits.CodeTTL.Minutes()))
	if lang == "es" {
		if channel == ChannelEmail {
			return "Tu código de verificación",
				fmt.Sprintf("Tu código de verificación es %s.\n\nCaduca en %d minutos. Si no lo has solicitado, ignora este mensaje.", code, minutes)
		}
		return "", fmt.Sprintf("%s es tu código de verificación. Caduca en %d minutos. No lo compartas con nadie.", code, minutes)
	}
	if channel == ChannelEmail {
		return "Your verification code",
			fmt.Sprintf("Your verification code is %s.\n\nIt expires in %d minutes. If you did not ask for it, ignore this message.", code, minutes)
	}
	return "", fmt.Sprintf("%s is your verification code. It expires in %d minutes. Do not share it.", code, minutes)
}

// messageFilter selects outbox messages: every non-empty field must match.
type messageFilter struct {
	to, channel, challengeID string
}

// parseMessageFilter reads ?to=, ?channel= and ?challengeId=.
func parseMessageFilter(q url.Values) (messageFilter, error) {
	f := messageFilter{
		to:          normalizeRecipient(q.Get("to")),
		channel:     strings.ToUpper(strings.TrimSpace(q.Get("channel"))),
		challengeID: strings.TrimSpace(q.Get("challengeId")),
	}
	switch f.channel {
	case "", ChannelEmail, ChannelSMS, ChannelWhatsApp:
		return f, nil
	}
	return f, badRequest("channel must be EMAIL, SMS or WHATSAPP.")
}

func (f messageFilter) match(m Message) bool {
	return (f.to == "" || f.to == m.To) && (f.channel == "" || f.channel == m.Channel) &&
		(f.challengeID == "" || f.challengeID == m.ChallengeID)
}

// where is the SQL condition (with its arguments) of the filter; "1" when it has none.
func (f messageFilter) where() (string, []any) {
	conds, args := []string{"1"}, []any{}
	for _, c := range []struct{ col, v string }{{"recipient", f.to}, {"channel", f.channel}, {"challenge_id", f.challengeID}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	return strings.Join(conds, " AND "), args
}

// queryMessages returns the matching messages with seq > after, newest first, at most
// limit of them (0 = all kept). The rows are read in full before returning.
func (e *Emulator) queryMessages(ctx context.Context, f messageFilter, after int64, limit int) ([]Message, error) {
	where, args := f.where()
	q := `SELECT seq, message_id, channel, recipient, subject, body, code, challenge_id, created_at FROM messages WHERE ` + where + ` AND seq > ? ORDER BY seq DESC`
	args = append(args, after)
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	msgs := []Message{}
	for rows.Next() {
		var m Message
		var created int64
		if err := rows.Scan(&m.seq, &m.ID, &m.Channel, &m.To, &m.Subject, &m.Body, &m.Code, &m.ChallengeID, &created); err != nil {
			return nil, fmt.Errorf("scan message: %w", err)
		}
		m.CreatedAt = isoTime(fromMS(created))
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// normalizeRecipient makes ?to= match how recipients are stored (emails lower-cased).
func normalizeRecipient(to string) string {
	to = strings.TrimSpace(to)
	if strings.Contains(to, "@") {
		return normalizeEmail(to)
	}
	return to
}

// handleListMessages serves GET /emulator/messages[?to=&channel=&challengeId=&limit=]:
// newest first, every kept message unless limit is given.
func (e *Emulator) handleListMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := parseMessageFilter(q)
	if err != nil {
		return err
	}
	limit := 0
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return badRequest("limit must be a positive integer.")
		}
	}
	msgs, err := e.queryMessages(r.Context(), f, 0, limit)
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, msgs)
	return nil
}

// handleLatestMessage serves GET /emulator/messages/latest?to=…: the newest message to
// that recipient (the other filters may narrow it), or 404.
func (e *Emulator) handleLatestMessage(w http.ResponseWriter, r *http.Request) error {
	f, err := parseMessageFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if f.to == "" {
		return badRequest("to is required: the email address or phone number the message went to.")
	}
	msgs, err := e.queryMessages(r.Context(), f, 0, 1)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return notFound("No message to %s in the outbox.", f.to)
	}
	e.writeJSON(w, http.StatusOK, msgs[0])
	return nil
}

// handleDeleteMessages serves DELETE /emulator/messages[?to=&channel=&challengeId=]:
// the matching messages, or the whole outbox without filters.
func (e *Emulator) handleDeleteMessages(w http.ResponseWriter, r *http.Request) error {
	f, err := parseMessageFilter(r.URL.Query())
	if err != nil {
		return err
	}
	where, args := f.where()
	res, err := e.db.ExecContext(r.Context(), `DELETE FROM messages WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("delete messages: %w", err)
	}
	n, _ := res.RowsAffected()
	e.writeJSON(w, http.StatusOK, map[string]any{"success": true, "deleted": n})
	return nil
}

func (e *Emulator) handleReset(w http.ResponseWriter, r *http.Request) error {
	if err := e.resetState(r.Context()); err != nil {
		return err
	}
	e.log.Info("emulator state reset")
	e.writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return nil
}

//go:embed static/outbox.js
var outboxJS []byte

// handleOutboxJS serves the outbox page's script (same origin, so the CSP allows it).
func (e *Emulator) handleOutboxJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(outboxJS)
}

// handleOutboxPage serves GET /outbox[?to=&channel=&challengeId=]. With JavaScript it
// follows /emulator/events live; without, it refreshes itself (a <noscript> meta refresh).
func (e *Emulator) handleOutboxPage(w http.ResponseWriter, r *http.Request) {
	f, err := parseMessageFilter(r.URL.Query())
	if err != nil {
		var ae *apiError
		errors.As(err, &ae)
		e.renderMessage(w, http.StatusBadRequest, "Bad filter", ae.Description)
		return
	}
	msgs, err := e.queryMessages(r.Context(), f, 0, 0)
	if err != nil {
		e.log.Error("outbox page", "err", err)
		e.renderMessage(w, http.StatusInternalServerError, "Outbox unavailable", "The outbox could not be read; see the emulator log.")
		return
	}
	// The stream starts after the newest message shown, so nothing sent between this
	// render and the stream opening is missed.
	var newest int64
	if len(msgs) > 0 {
		newest = msgs[0].seq
	}
	events := url.Values{"after": {strconv.FormatInt(newest, 10)}}
	for k, v := range map[string]string{"to": f.to, "channel": f.channel, "challengeId": f.challengeID} {
		if v != "" {
			events.Set(k, v)
		}
	}
	// This page alone runs a script: allow same-origin scripts and the event stream.
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src") {
		w.Header().Set("Content-Security-Policy", csp+"; script-src 'self'; connect-src 'self'")
	}
	e.render(w, http.StatusOK, "outbox", map[string]any{"Title": "Outbox", "Messages": msgs, "Refresh": true,
		"Scripts": []string{"/static/outbox.js"}, "EventsURL": "/emulator/events?" + events.Encode(), "Blank": Message{}})
}
