package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseEvent is one Server-Sent Event as read off the wire.
type sseEvent struct {
	name, id, data string
}

// message decodes the event's data as an outbox message.
func (ev sseEvent) message(t testing.TB) Message {
	t.Helper()
	var m Message
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
		t.Fatalf("event data is not a message: %q", ev.data)
	}
	return m
}

// sseStream reads an event stream in the background.
type sseStream struct {
	resp     *http.Response
	events   chan sseEvent
	comments chan string
	done     chan struct{} // closed when the stream ends
}

// openStream connects to an event stream; the stream is closed when the test ends.
func openStream(t testing.TB, rawURL string, header http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 100), comments: make(chan string, 100), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case s.comments <- strings.TrimSpace(line[1:]):
				default:
				}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return s
}

// next waits for the next event.
func (s *sseStream) next(t testing.TB, within time.Duration) sseEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		if ev.name != "message" || ev.id == "" {
			t.Fatalf("event %+v: want event: message with an id", ev)
		}
		return ev
	case <-s.done:
		t.Fatal("stream ended")
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return sseEvent{}
}

// none checks that no event arrives for a while.
func (s *sseStream) none(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case ev := <-s.events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(wait):
	}
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
	m := all.next(t, time.Second).message(t)
	stored := env.messages("ann@example.com")
	if len(stored) != 1 || m != stored[0] || m.ChallengeID != id {
		t.Fatalf("streamed %+v, stored %+v (challenge %s)", m, stored, id)
	}
	onlyBob.none(t, 100*time.Millisecond)

	env.sendOK("bob@example.com")
	if m := onlyBob.next(t, time.Second).message(t); m.To != "bob@example.com" {
		t.Fatalf("filtered stream got %+v", m)
	}
	if m := all.next(t, time.Second).message(t); m.To != "bob@example.com" {
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
	first := s.next(t, time.Second).message(t)
	if status, m := env.send("limit@example.com"); status != http.StatusTooManyRequests {
		t.Fatalf("second send: %d %v", status, m)
	}
	s.none(t, 200*time.Millisecond)
	if msgs := env.messages("limit@example.com"); len(msgs) != 1 || msgs[0].ID != first.ID {
		t.Fatalf("outbox %+v", msgs)
	}

	// A message stored, then rolled back by a later failure in the same transaction.
	ctx := context.Background()
	errLater := errors.New("a later step failed")
	err := env.emu.inTx(ctx, func(tx *txn) error {
		if err := env.emu.sendCode(ctx, tx, "c-rolled-back", ChannelEmail, "rollback@example.com", "", "123456"); err != nil {
			t.Fatalf("sendCode: %v", err)
		}
		return errLater
	})
	if !errors.Is(err, errLater) {
		t.Fatalf("inTx: %v", err)
	}
	s.none(t, 200*time.Millisecond)
	if msgs := env.messages("rollback@example.com"); len(msgs) != 0 {
		t.Fatalf("rolled-back message stored: %+v", msgs)
	}
}

// Last-Event-ID (EventSource's reconnect) and ?after= replay what the client missed.
func TestEventsReplay(t *testing.T) {
	env := newEnv(t)
	env.sendOK("r1@example.com")
	s := openStream(t, env.srv.URL+"/emulator/events", nil)
	env.sendOK("r2@example.com")
	second := s.next(t, time.Second)
	env.sendOK("r3@example.com")
	third := s.next(t, time.Second)
	n, _ := strconv.Atoi(second.id)

	tests := []struct {
		name   string
		query  string
		header http.Header
		want   []string
	}{
		{"Last-Event-ID", "", http.Header{"Last-Event-Id": {second.id}}, []string{"r3@example.com"}},
		{"after", "?after=" + strconv.Itoa(n-1), nil, []string{"r2@example.com", "r3@example.com"}},
		{"after with filter", "?to=r3@example.com&after=0", nil, []string{"r3@example.com"}},
		{"id from another database replays all", "?after=999999", nil, []string{"r1@example.com", "r2@example.com", "r3@example.com"}},
		{"up to date", "?after=" + third.id, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openStream(t, env.srv.URL+"/emulator/events"+tt.query, tt.header)
			for _, want := range tt.want {
				if m := r.next(t, time.Second).message(t); m.To != want {
					t.Fatalf("replayed %s, want %s", m.To, want)
				}
			}
			r.none(t, 50*time.Millisecond)
		})
	}
	for _, q := range []string{"?after=-1", "?after=x", "?channel=FAX"} {
		status, raw, _ := env.do("GET", "/emulator/events"+q, nil, "")
		if status != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_request") {
			t.Errorf("%s: %d %s", q, status, raw)
		}
	}
}

// The stream outlives the server's ReadTimeout/WriteTimeout and sends heartbeats.
func TestEventsSurviveServerTimeouts(t *testing.T) {
	env := newEnv(t)
	env.emu.outbox.heartbeat = 100 * time.Millisecond
	srv := httptest.NewUnstartedServer(env.emu.Handler())
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	s := openStream(t, srv.URL+"/emulator/events", nil)
	time.Sleep(time.Second)
	if got := len(s.comments); got < 3 {
		t.Fatalf("%d comments (open + heartbeats) in 1 s, want several", got)
	}
	env.sendOK("late@example.com")
	if m := s.next(t, time.Second).message(t); m.To != "late@example.com" {
		t.Fatalf("got %+v", m)
	}
}

// A subscriber that stops reading is dropped rather than blocking senders.
func TestEventsSlowSubscriberDropped(t *testing.T) {
	env := newEnv(t)
	sub, err := env.emu.outbox.subscribe(messageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range subscriberBuffer + 1 {
			env.sendOK("slow" + strconv.Itoa(i) + "@example.com")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("senders blocked by a slow subscriber")
	}
	n := 0
	for range sub.ch { // buffered messages, then closed
		n++
	}
	if _, dropped := env.emu.outbox.counts(); n != subscriberBuffer || dropped != 1 {
		t.Fatalf("read %d buffered, dropped %d", n, dropped)
	}
	env.emu.outbox.unsubscribe(sub) // already gone: must not close twice
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
	<-s.comments // connected
	start := time.Now()
	if err := emu.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s", d)
	}
	select {
	case <-s.done:
	case <-time.After(time.Second):
		t.Fatal("stream still open after Close")
	}
	if subs, _ := emu.outbox.counts(); subs != 0 {
		t.Fatalf("%d subscribers left", subs)
	}
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
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe-inline'; script") {
		t.Fatalf("CSP %q", csp)
	}
	for _, want := range []string{
		`<script src="/static/outbox.js" defer></script>`,
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`,
		`data-events="/emulator/events?after=`,
		`>Copy code</button>`,
		`<caption`,
		`<th scope="col">Code</th>`,
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
	if _, err := env.emu.queryMessages(ctx, messageFilter{}, 0, 0); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("database held by open streams")
		}
		t.Fatal(err)
	}
}

// BenchmarkSendAtCap measures a send when the outbox is full (each insert trims the oldest).
func BenchmarkSendAtCap(b *testing.B) {
	env := newEnv(b)
	ctx := context.Background()
	err := env.emu.inTx(ctx, func(tx *txn) error {
		for i := range env.emu.messageCap {
			if _, err := tx.ExecContext(ctx, `INSERT INTO messages(message_id, channel, recipient, subject, body, code, created_at)
				VALUES (?, 'EMAIL', ?, 'Your verification code', 'Your verification code is 123456. It expires in 10 minutes.', '123456', 0)`,
				"fill-"+strconv.Itoa(i), "fill"+strconv.Itoa(i)+"@example.com"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		env.sendOK("bench" + strconv.Itoa(i) + "@example.com")
	}
	b.StopTimer()
	if n := len(env.messages("")); n != env.emu.messageCap {
		b.Fatalf("%d messages kept, want %d", n, env.emu.messageCap)
	}
}

// At most maxStreams streams are open at once; a closed one frees its place.
func TestEventsStreamCap(t *testing.T) {
	env := newEnv(t)
	var subs []*subscriber
	for range maxStreams {
		s, err := env.emu.outbox.subscribe(messageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	status, raw, _ := env.do("GET", "/emulator/events", nil, "")
	var m map[string]any
	json.Unmarshal(raw, &m)
	wantError(t, status, m, http.StatusTooManyRequests, "too_many_requests")
	env.emu.outbox.unsubscribe(subs[0])
	if _, err := env.emu.outbox.subscribe(messageFilter{}); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	if n, _ := env.emu.outbox.counts(); n != maxStreams {
		t.Fatalf("%d streams held, want %d", n, maxStreams)
	}
}
