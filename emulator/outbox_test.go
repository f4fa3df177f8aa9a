package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
	"example.com/passwordless/internal/testkit"
	"example.com/passwordless/internal/theme"
)

// eventMessage decodes an event's data as an outbox message.
func eventMessage(t testing.TB, ev testkit.Event) Message {
	t.Helper()
	var m Message
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("event data is not a message: %q", ev.Data)
	}
	return m
}

// openStream connects to an event stream; it is closed when the test ends.
func openStream(t testing.TB, rawURL string, header http.Header) *testkit.Stream {
	t.Helper()
	return testkit.OpenStream(t, rawURL, header)
}

// send starts a challenge to an email address or (with a leading +) a phone number by SMS.
func (env *testEnv) send(to string) (int, map[string]any) {
	env.t.Helper()
	body := map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": to}
	if strings.HasPrefix(to, "+") {
		body = map[string]any{"verificationMethod": "SMS", "action": "signInWithSms", "phoneNumber": to}
	}
	return env.api("POST", "/v1/challenge", body)
}

func (env *testEnv) sendOK(to string) string {
	env.t.Helper()
	status, m := env.send(to)
	if status != http.StatusOK {
		env.t.Fatalf("challenge to %s: %d %v", to, status, m)
	}
	return m["challengeId"].(string)
}

func TestEventsStreamMessages(t *testing.T) {
	env := newEnv(t)
	all := openStream(t, env.srv.URL+"/emulator/events", nil)
	onlyBob := openStream(t, env.srv.URL+"/emulator/events?to="+url.QueryEscape("Bob@Example.com"), nil)

	id := env.sendOK("ann@example.com")
	m := eventMessage(t, all.Next(t, time.Second))
	stored := env.messages("ann@example.com")
	if len(stored) != 1 || m != stored[0] || m.ChallengeID != id {
		t.Fatalf("streamed %+v, stored %+v (challenge %s)", m, stored, id)
	}
	onlyBob.None(t, 100*time.Millisecond)

	env.sendOK("bob@example.com")
	if m := eventMessage(t, onlyBob.Next(t, time.Second)); m.To != "bob@example.com" {
		t.Fatalf("filtered stream got %+v", m)
	}
	if m := eventMessage(t, all.Next(t, time.Second)); m.To != "bob@example.com" {
		t.Fatalf("stream got %+v", m)
	}
}

// A send that rolls back (refused by the per-recipient limit) must publish nothing.
func TestEventsRolledBackSendPublishesNothing(t *testing.T) {
	env := newEnv(t, func(c *Config) {
		c.Limits = DefaultLimits()
		c.Limits.EmailPerWindow = 1
	})
	s := openStream(t, env.srv.URL+"/emulator/events", nil)
	env.sendOK("limit@example.com")
	first := eventMessage(t, s.Next(t, time.Second))
	if status, m := env.send("limit@example.com"); status != http.StatusTooManyRequests {
		t.Fatalf("second send: %d %v", status, m)
	}
	s.None(t, 200*time.Millisecond)
	if msgs := env.messages("limit@example.com"); len(msgs) != 1 || msgs[0].ID != first.ID {
		t.Fatalf("outbox %+v", msgs)
	}
	// A send rolled back by a later step of its transaction: state's TestRolledBackSendIsNotPublished.
}

// Last-Event-ID (EventSource's reconnect) and ?after= replay what the client missed.
func TestEventsReplay(t *testing.T) {
	env := newEnv(t)
	env.sendOK("r1@example.com")
	s := openStream(t, env.srv.URL+"/emulator/events", nil)
	env.sendOK("r2@example.com")
	second := s.Next(t, time.Second)
	env.sendOK("r3@example.com")
	third := s.Next(t, time.Second)
	n, _ := strconv.Atoi(second.ID)

	tests := []struct {
		name   string
		query  string
		header http.Header
		want   []string
	}{
		{"Last-Event-ID", "", http.Header{"Last-Event-Id": {second.ID}}, []string{"r3@example.com"}},
		{"after", "?after=" + strconv.Itoa(n-1), nil, []string{"r2@example.com", "r3@example.com"}},
		{"after with filter", "?to=r3@example.com&after=0", nil, []string{"r3@example.com"}},
		{"id from another database replays all", "?after=999999", nil, []string{"r1@example.com", "r2@example.com", "r3@example.com"}},
		{"up to date", "?after=" + third.ID, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openStream(t, env.srv.URL+"/emulator/events"+tt.query, tt.header)
			for _, want := range tt.want {
				if m := eventMessage(t, r.Next(t, time.Second)); m.To != want {
					t.Fatalf("replayed %s, want %s", m.To, want)
				}
			}
			r.None(t, 50*time.Millisecond)
		})
	}
	for _, q := range []string{"?after=-1", "?after=x", "?channel=FAX"} {
		status, raw, _ := env.do("GET", "/emulator/events"+q, nil, "")
		if status != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_request") {
			t.Errorf("%s: %d %s", q, status, raw)
		}
	}
}

// Close ends open streams promptly instead of waiting for the shutdown timeout.
func TestCloseEndsStreams(t *testing.T) {
	emu, err := New(Config{SecretKey: testKey, DBPath: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := openStream(t, base+"/emulator/events", nil)
	<-s.Comments // connected
	start := time.Now()
	if err := emu.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s", d)
	}
	select {
	case <-s.Done:
	case <-time.After(time.Second):
		t.Fatal("stream still open after Close")
	}
	// That the hub holds no stream afterwards: outbox's TestHubClose.
}

func TestListMessagesFilters(t *testing.T) {
	env := newEnv(t)
	annID := env.sendOK("ann@example.com")
	env.sendOK("+447700900001")
	env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "smsChannel": "WHATSAPP", "action": "signInWithSms", "phoneNumber": "+447700900001"})
	env.sendOK("ann@example.com")
	env.apiOK("POST", "/v1/challenge", map[string]any{"challengeId": annID}) // re-send: same challenge

	tests := []struct {
		query    string
		wantTo   []string // newest first
		wantCode string   // error code, when an error is expected
	}{
		{"", []string{"ann@example.com", "ann@example.com", "+447700900001", "+447700900001", "ann@example.com"}, ""},
		{"?to=ANN@example.com", []string{"ann@example.com", "ann@example.com", "ann@example.com"}, ""},
		{"?channel=sms", []string{"+447700900001"}, ""},
		{"?channel=WHATSAPP&to=%2B447700900001", []string{"+447700900001"}, ""},
		{"?channel=EMAIL&to=%2B447700900001", []string{}, ""},
		{"?challengeId=" + annID, []string{"ann@example.com", "ann@example.com"}, ""},
		{"?limit=2", []string{"ann@example.com", "ann@example.com"}, ""},
		{"?channel=FAX", nil, "invalid_request"},
		{"?limit=0", nil, "invalid_request"},
		{"?limit=x", nil, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, raw, _ := env.do("GET", "/emulator/messages"+tt.query, nil, "")
			if tt.wantCode != "" {
				var m map[string]any
				json.Unmarshal(raw, &m)
				wantError(t, status, m, http.StatusBadRequest, tt.wantCode)
				return
			}
			var msgs []Message
			if err := json.Unmarshal(raw, &msgs); status != http.StatusOK || err != nil {
				t.Fatalf("%d %s", status, raw)
			}
			got := []string{}
			for _, m := range msgs {
				got = append(got, m.To)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantTo, ",") {
				t.Fatalf("got %v, want %v", got, tt.wantTo)
			}
		})
	}
	// Every message of a challenge carries its id, newest first (the re-send's code first).
	msgs := env.messages("ann@example.com")
	if msgs[0].ChallengeID != annID || msgs[1].ChallengeID == annID || msgs[2].ChallengeID != annID || msgs[0].Code == "" {
		t.Fatalf("challenge ids %+v", msgs)
	}
}

func TestLatestMessage(t *testing.T) {
	env := newEnv(t)
	env.sendOK("ann@example.com")
	second := env.sendOK("ann@example.com")
	tests := []struct {
		name, query string
		wantStatus  int
		wantCode    string
	}{
		{"found", "?to=Ann@example.com", 200, ""},
		{"none", "?to=nobody@example.com", 404, "invalid_request"},
		{"no to", "", 400, "invalid_request"},
		{"bad channel", "?to=ann@example.com&channel=X", 400, "invalid_request"},
		{"channel filter", "?to=ann@example.com&channel=SMS", 404, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw, _ := env.do("GET", "/emulator/messages/latest"+tt.query, nil, "")
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("not a JSON object: %s", raw)
			}
			if tt.wantCode != "" {
				wantError(t, status, m, tt.wantStatus, tt.wantCode)
				return
			}
			if status != 200 || m["challengeId"] != second || m["code"] != env.lastCode("ann@example.com") {
				t.Fatalf("%d %v, want challenge %s", status, m, second)
			}
		})
	}
}

func TestMessageCapTrimsOldest(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.MessageCap = 3 })
	for i := range 5 {
		env.sendOK("cap" + strconv.Itoa(i) + "@example.com")
	}
	got := []string{}
	for _, m := range env.messages("") {
		got = append(got, m.To)
	}
	if want := "cap4@example.com,cap3@example.com,cap2@example.com"; strings.Join(got, ",") != want {
		t.Fatalf("kept %v, want %s", got, want)
	}
	// With gaps (a scoped delete), still the 3 newest are kept.
	env.do("DELETE", "/emulator/messages?to=cap3@example.com", nil, "")
	env.sendOK("cap5@example.com")
	env.sendOK("cap6@example.com")
	got = got[:0]
	for _, m := range env.messages("") {
		got = append(got, m.To)
	}
	if want := "cap6@example.com,cap5@example.com,cap4@example.com"; strings.Join(got, ",") != want {
		t.Fatalf("kept %v, want %s", got, want)
	}
	if _, err := New(Config{SecretKey: testKey, DBPath: ":memory:", MessageCap: -1}); err == nil {
		t.Fatal("negative MessageCap accepted")
	}
}

// A larger outbox runs over by at most a hundredth of its cap, then trims back to the cap,
// oldest first.
func TestMessageCapTrimsInHundredths(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.MessageCap = 200 })
	send := func(from, to int) {
		for i := from; i < to; i++ {
			env.sendOK("hundredth" + strconv.Itoa(i) + "@example.com")
		}
	}
	send(0, 202)
	if n := len(env.messages("")); n != 202 {
		t.Fatalf("%d messages after 202 sends to a cap of 200, want all 202 (a hundredth over)", n)
	}
	send(202, 203)
	kept := env.messages("")
	if len(kept) != 200 || kept[0].To != "hundredth202@example.com" || kept[len(kept)-1].To != "hundredth3@example.com" {
		t.Fatalf("after 203 sends kept %d, newest %s, oldest %s; want the newest 200, hundredth202 to hundredth3",
			len(kept), kept[0].To, kept[len(kept)-1].To)
	}
}

func TestScopedDelete(t *testing.T) {
	env := newEnv(t)
	annID := env.sendOK("ann@example.com")
	env.sendOK("ann@example.com")
	env.sendOK("bob@example.com")
	env.sendOK("+447700900002")

	del := func(query string) float64 {
		t.Helper()
		status, raw, _ := env.do("DELETE", "/emulator/messages"+query, nil, "")
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || status != 200 || m["success"] != true {
			t.Fatalf("DELETE %s: %d %s", query, status, raw)
		}
		return m["deleted"].(float64)
	}
	if n := del("?challengeId=" + annID); n != 1 {
		t.Fatalf("deleted %v by challenge", n)
	}
	if n := del("?to=Ann@Example.com"); n != 1 {
		t.Fatalf("deleted %v for ann", n)
	}
	if len(env.messages("bob@example.com")) != 1 || len(env.messages("+447700900002")) != 1 || len(env.messages("ann@example.com")) != 0 {
		t.Fatalf("scoped delete touched others: %+v", env.messages(""))
	}
	status, raw, _ := env.do("DELETE", "/emulator/messages?channel=FAX", nil, "")
	if status != 400 {
		t.Fatalf("bad channel: %d %s", status, raw)
	}
	if n := del(""); n != 2 || len(env.messages("")) != 0 {
		t.Fatalf("delete all: %v, left %+v", n, env.messages(""))
	}
}

func TestOutboxPage(t *testing.T) {
	env := newEnv(t)
	env.sendOK("page@example.com")
	status, raw, h := env.do("GET", "/outbox", nil, "")
	body := string(raw)
	if status != 200 {
		t.Fatalf("outbox: %d", status)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	for _, want := range []string{
		`<script src="/static/outbox.js" defer></script>`,
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`,
		`data-events="/emulator/events?after=`,
		`>Copy code</button>`,
		`<caption`,
		`<th scope="col">Code or link</th>`,
		`Your verification code`, // subject
		env.lastCode("page@example.com"),
		`<template id="message-row">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("outbox page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("inline script on the outbox page")
	}
	// Only the outbox page runs a script.
	if _, _, h := env.do("GET", "/admin", nil, ""); strings.Contains(h.Get("Content-Security-Policy"), "script-src") {
		t.Errorf("admin CSP allows scripts: %q", h.Get("Content-Security-Policy"))
	}
	status, raw, h = env.do("GET", "/static/outbox.js", nil, "")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || !strings.Contains(string(raw), "EventSource") {
		t.Fatalf("outbox.js: %d %q", status, h.Get("Content-Type"))
	}
	if status, _, _ := env.do("GET", "/outbox?channel=FAX", nil, ""); status != 400 {
		t.Fatalf("bad filter: %d", status)
	}
}

// The stream handler must not hold the single database connection: other requests keep
// working while streams are open.
func TestEventsDoNotHoldDatabase(t *testing.T) {
	env := newEnv(t)
	for range 3 {
		openStream(t, env.srv.URL+"/emulator/events?after=0", nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := env.emu.store.Messages(ctx, state.MessageFilter{}, 0, 0); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("database held by open streams")
		}
		t.Fatal(err)
	}
}

// BenchmarkSendAtCap measures a send when the outbox is full (each insert trims the oldest).
func BenchmarkSendAtCap(b *testing.B) {
	env := newEnv(b)
	fill := &state.Seed{}
	for i := range DefaultMessageCap {
		fill.Messages = append(fill.Messages, state.Message{ID: "fill-" + strconv.Itoa(i), Channel: vocab.ChannelEmail, To: "fill" + strconv.Itoa(i) + "@example.com",
			Subject: "Your verification code", Body: "Your verification code is 123456. It expires in 10 minutes.", Code: "123456", CreatedAt: "2025-03-01T12:00:00.000Z"})
	}
	if err := env.emu.store.Import(context.Background(), fill); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		env.sendOK("bench" + strconv.Itoa(i) + "@example.com")
	}
	b.StopTimer()
	if n := len(env.messages("")); n < DefaultMessageCap || n > DefaultMessageCap+DefaultMessageCap/100 {
		b.Fatalf("%d messages kept, want %d to a hundredth more", n, DefaultMessageCap)
	}
}

// The emulator's pages are styled by the stylesheet they share with the app, and their own
// rules; no inline style is allowed.
func TestPagesUseTheSharedStylesheet(t *testing.T) {
	env := newEnv(t)
	_, page, h := env.do("GET", "/admin", nil, "")
	for _, want := range []string{`<link rel="stylesheet" href="/static/theme.css">`, `<link rel="stylesheet" href="/static/emulator.css">`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("admin page lacks %s", want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	status, css, h := env.do("GET", "/static/theme.css", nil, "")
	if status != 200 || !bytes.Equal(css, theme.CSS) || !strings.HasPrefix(h.Get("Content-Type"), "text/css") {
		t.Errorf("GET /static/theme.css: %d %q, %d bytes, want internal/theme's %d", status, h.Get("Content-Type"), len(css), len(theme.CSS))
	}
	if status, css, _ := env.do("GET", "/static/emulator.css", nil, ""); status != 200 || !bytes.Contains(css, []byte("var(--")) {
		t.Errorf("GET /static/emulator.css: %d, %.80q", status, css)
	}
}
