// Package outbox is the emulator's outbox: the messages it "sent", as a page, as JSON and
// as a live stream.
package outbox

import (
	_ "embed" // the outbox page's script
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/pages"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// Outbox serves the outbox's page and endpoints.
type Outbox struct {
	store *state.Store
	hub   *Hub
	pages *pages.Pages
	log   *slog.Logger
}

// New returns the outbox over store, streaming what hub publishes.
func New(store *state.Store, hub *Hub, p *pages.Pages, log *slog.Logger) *Outbox {
	return &Outbox{store: store, hub: hub, pages: p, log: log}
}

// parseFilter reads ?to=, ?channel= and ?challengeId=.
func parseFilter(q url.Values) (state.MessageFilter, error) {
	f := state.MessageFilter{
		To:          vocab.NormalizeRecipient(q.Get("to")),
		Channel:     vocab.Channel(strings.ToUpper(strings.TrimSpace(q.Get("channel")))),
		ChallengeID: strings.TrimSpace(q.Get("challengeId")),
	}
	if f.Channel != "" && !f.Channel.Valid() {
		return f, httpjson.BadRequest("channel must be EMAIL, SMS or WHATSAPP.")
	}
	return f, nil
}

// ListMessages serves GET /emulator/messages[?to=&channel=&challengeId=&limit=]:
// newest first, every kept message unless limit is given.
func (o *Outbox) ListMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return err
	}
	limit := 0
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return httpjson.BadRequest("limit must be a positive integer.")
		}
	}
	msgs, err := o.store.Messages(r.Context(), f, 0, limit)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, msgs)
}

// LatestMessage serves GET /emulator/messages/latest?to=…: the newest message to
// that recipient (the other filters may narrow it), or 404.
func (o *Outbox) LatestMessage(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if f.To == "" {
		return httpjson.BadRequest("to is required: the email address or phone number the message went to.")
	}
	msgs, err := o.store.Messages(r.Context(), f, 0, 1)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return httpjson.NotFound("No message to %s in the outbox.", f.To)
	}
	return httpjson.Write(w, http.StatusOK, msgs[0])
}

// DeleteMessages serves DELETE /emulator/messages[?to=&channel=&challengeId=]:
// the matching messages, or the whole outbox without filters.
func (o *Outbox) DeleteMessages(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	n, err := o.store.DeleteMessages(r.Context(), f)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, map[string]any{"success": true, "deleted": n})
}

//go:embed outbox.js
var outboxJS []byte

// Script serves the outbox page's script (same origin, so the CSP allows it).
func (o *Outbox) Script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(outboxJS)
}

// messageRow is one message on the page, with whether its code can still be used.
type messageRow struct {
	state.Message
	CodeState state.CodeState
}

// Page serves GET /outbox[?to=&channel=&challengeId=]. With JavaScript it
// follows /emulator/events live; without, it refreshes itself (a <noscript> meta refresh).
func (o *Outbox) Page(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		var ae *httpjson.Error
		errors.As(err, &ae)
		o.pages.Message(w, http.StatusBadRequest, "Bad filter", ae.Description)
		return
	}
	msgs, err := o.store.Messages(r.Context(), f, 0, 0)
	var states map[string]state.CodeState
	if err == nil {
		states, err = o.store.CodeStates(r.Context(), msgs)
	}
	if err != nil {
		o.log.Error("outbox page", "err", err)
		o.pages.Message(w, http.StatusInternalServerError, "Outbox unavailable", "The outbox could not be read; see the emulator log.")
		return
	}
	rows := make([]messageRow, len(msgs))
	for i, m := range msgs {
		rows[i] = messageRow{Message: m, CodeState: states[m.ID]}
	}
	// The stream starts after the newest message shown, so nothing sent between this
	// render and the stream opening is missed.
	var newest int64
	if len(msgs) > 0 {
		newest = msgs[0].Seq
	}
	events := url.Values{"after": {strconv.FormatInt(newest, 10)}}
	for k, v := range map[string]string{"to": f.To, "channel": string(f.Channel), "challengeId": f.ChallengeID} {
		if v != "" {
			events.Set(k, v)
		}
	}
	// This page alone runs a script: allow same-origin scripts and the event stream.
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src") {
		w.Header().Set("Content-Security-Policy", csp+"; script-src 'self'; connect-src 'self'")
	}
	o.pages.Render(w, http.StatusOK, "outbox", map[string]any{"Title": "Outbox", "Messages": rows, "Refresh": true,
		"Scripts": []string{"/static/outbox.js"}, "EventsURL": "/emulator/events?" + events.Encode(), "Blank": messageRow{}})
}
