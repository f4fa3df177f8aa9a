package emulator

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/http"
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
	ID        string `json:"id"`
	Channel   string `json:"channel"`
	To        string `json:"to"`
	Subject   string `json:"subject,omitempty"`
	Body      string `json:"body"`
	Code      string `json:"code"`
	CreatedAt string `json:"createdAt"`
}

// sendCode enforces the per-recipient send limit and puts the message in the outbox,
// inside the caller's transaction (so a refused send changes nothing).
func (e *Emulator) sendCode(ctx context.Context, tx *sql.Tx, channel, recipient, locale, code string) error {
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages(message_id, channel, recipient, subject, body, code, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, channel, recipient, subject, body, code, ms(now)); err != nil {
		return fmt.Errorf("store message: %w", err)
	}
	e.log.Info("message sent to outbox", "channel", channel, "message_id", id)
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

// listMessages returns the outbox newest first, optionally only for one recipient.
func (e *Emulator) listMessages(ctx context.Context, to string) ([]Message, error) {
	q := `SELECT message_id, channel, recipient, subject, body, code, created_at FROM messages`
	var args []any
	if to != "" {
		q += ` WHERE recipient = ?`
		args = append(args, to)
	}
	q += ` ORDER BY seq DESC LIMIT 500`
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	msgs := []Message{}
	for rows.Next() {
		var m Message
		var created int64
		if err := rows.Scan(&m.ID, &m.Channel, &m.To, &m.Subject, &m.Body, &m.Code, &created); err != nil {
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

func (e *Emulator) handleListMessages(w http.ResponseWriter, r *http.Request) {
	msgs, err := e.listMessages(r.Context(), normalizeRecipient(r.URL.Query().Get("to")))
	if err != nil {
		e.writeErr(w, r, err)
		return
	}
	e.writeJSON(w, http.StatusOK, msgs)
}

func (e *Emulator) handleDeleteMessages(w http.ResponseWriter, r *http.Request) {
	if _, err := e.db.ExecContext(r.Context(), `DELETE FROM messages`); err != nil {
		e.writeErr(w, r, fmt.Errorf("delete messages: %w", err))
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func (e *Emulator) handleReset(w http.ResponseWriter, r *http.Request) {
	if err := e.resetState(r.Context()); err != nil {
		e.writeErr(w, r, err)
		return
	}
	e.log.Info("emulator state reset")
	e.writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func (e *Emulator) handleOutboxPage(w http.ResponseWriter, r *http.Request) {
	msgs, err := e.listMessages(r.Context(), normalizeRecipient(r.URL.Query().Get("to")))
	if err != nil {
		e.log.Error("outbox page", "err", err)
		e.renderMessage(w, http.StatusInternalServerError, "Outbox unavailable", "The outbox could not be read; see the emulator log.")
		return
	}
	e.render(w, http.StatusOK, "outbox", map[string]any{"Title": "Outbox", "Messages": msgs, "Refresh": true})
}
