package outbox

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/internal/testkit"
)

// message is a committed outbox message, as the state layer publishes it.
func message(seq int, to string) state.Message {
	return state.Message{ID: "m" + strconv.Itoa(seq), Channel: "EMAIL", To: to, Body: "Your code", Code: "123456", CreatedAt: "2025-03-01T12:00:00.000Z", Seq: int64(seq)}
}

// eventsServer serves the live stream alone (no replay, so no database), with the
// server's read and write timeouts given.
func eventsServer(t *testing.T, hub *Hub, timeout time.Duration) *httptest.Server {
	log := slog.New(slog.DiscardHandler)
	o := &Outbox{hub: hub, log: log}
	srv := httptest.NewUnstartedServer(httpjson.Handle(log, o.Events))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// The stream outlives the server's ReadTimeout/WriteTimeout and sends heartbeats.
func TestEventsSurviveServerTimeouts(t *testing.T) {
	hub := NewHub()
	hub.heartbeat = 100 * time.Millisecond
	srv := eventsServer(t, hub, 300*time.Millisecond)
	s := testkit.OpenStream(t, srv.URL, nil)
	time.Sleep(time.Second)
	if got := len(s.Comments); got < 3 {
		t.Fatalf("%d comments (open + heartbeats) in 1 s, want several", got)
	}
	hub.Publish([]state.Message{message(1, "late@example.com")})
	var m state.Message
	if err := json.Unmarshal([]byte(s.Next(t, time.Second).Data), &m); err != nil || m.To != "late@example.com" {
		t.Fatalf("got %+v, %v", m, err)
	}
}

// A subscriber that stops reading is dropped rather than blocking senders.
func TestHubDropsSlowSubscriber(t *testing.T) {
	hub := NewHub()
	sub, err := hub.subscribe(state.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range subscriberBuffer + 1 {
			hub.Publish([]state.Message{message(i+1, "slow"+strconv.Itoa(i)+"@example.com")})
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
	if _, dropped := hub.counts(); n != subscriberBuffer || dropped != 1 {
		t.Fatalf("read %d buffered, dropped %d", n, dropped)
	}
	hub.unsubscribe(sub) // already gone: must not close twice
}

// At most maxStreams streams are open at once; a closed one frees its place.
func TestEventsStreamCap(t *testing.T) {
	hub := NewHub()
	srv := eventsServer(t, hub, time.Minute)
	var subs []*subscriber
	for range maxStreams {
		s, err := hub.subscribe(state.MessageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || m["errorCode"] != httpjson.CodeTooManyRequests {
		t.Fatalf("stream beyond the cap: %d %v", resp.StatusCode, m)
	}
	hub.unsubscribe(subs[0])
	if _, err := hub.subscribe(state.MessageFilter{}); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	if n, _ := hub.counts(); n != maxStreams {
		t.Fatalf("%d streams held, want %d", n, maxStreams)
	}
}

// Close ends every stream and refuses new ones: an open stream never holds up shutdown.
func TestHubClose(t *testing.T) {
	hub := NewHub()
	var subs []*subscriber
	for range 3 {
		s, err := hub.subscribe(state.MessageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	hub.Close()
	for _, s := range subs {
		if _, open := <-s.ch; open {
			t.Fatal("a stream's channel is still open after Close")
		}
	}
	if n, _ := hub.counts(); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
	if _, err := hub.subscribe(state.MessageFilter{}); err == nil {
		t.Fatal("subscribed after Close")
	}
}
