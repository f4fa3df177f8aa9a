package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
)

// Live outbox: GET /emulator/events streams each new outbox message as a Server-Sent Event.
//
// Messages are published in-process, never by polling the database: the database has one
// connection, so a stream waiting on rows would stall every request. The state layer
// hands each committed batch's messages to Hub.Publish (a send that rolls back, e.g.
// refused by a limit, publishes nothing).

const (
	// subscriberBuffer is how many messages a stream may fall behind before it is dropped.
	subscriberBuffer = 64
	// defaultHeartbeat keeps proxies and browsers from timing out an idle stream.
	defaultHeartbeat = 15 * time.Second
	// streamWriteTimeout bounds each write to a stream (the server's WriteTimeout would end
	// any stream after 30 s, so it is replaced per write): a client that stops reading is cut off.
	streamWriteTimeout = 30 * time.Second
	// reconnectDelayMS is the "retry:" hint: how soon EventSource reconnects after a drop.
	reconnectDelayMS = 2000
	// maxStreams caps the open streams: each holds a connection, a goroutine and a buffer.
	maxStreams = 100
)

// Hub fans committed outbox messages out to the open streams.
type Hub struct {
	heartbeat time.Duration // set before serving; tests shorten it

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	dropped int // subscribers cut off for falling behind (tests, diagnostics)
}

// subscriber is one open stream. The hub closes ch when it drops the subscriber (too slow)
// or closes; the stream then ends and EventSource reconnects with Last-Event-ID.
type subscriber struct {
	filter state.MessageFilter
	ch     chan state.Message
}

// NewHub returns a hub with no streams.
func NewHub() *Hub {
	return &Hub{heartbeat: defaultHeartbeat, subs: map[*subscriber]struct{}{}}
}

// Publish sends committed messages to the open streams (called after a commit).
func (h *Hub) Publish(msgs []state.Message) {
	if len(msgs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		h.publishLocked(m)
	}
}

// publishLocked never blocks: a subscriber whose buffer is full is dropped (its channel
// closed) rather than slowing down the sender; it resyncs from the database on reconnect.
func (h *Hub) publishLocked(m state.Message) {
	for s := range h.subs {
		if !s.filter.Match(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			delete(h.subs, s)
			close(s.ch)
			h.dropped++
		}
	}
}

// errStreamsFull refuses a stream beyond maxStreams.
var errStreamsFull = httpjson.TooManyRequests("Too many open event streams (at most %d); close some and retry.", maxStreams)

// subscribe opens a stream: an error once the hub is closed or maxStreams are open.
func (h *Hub) subscribe(f state.MessageFilter) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, httpjson.Internal(http.StatusServiceUnavailable, "The emulator is shutting down.")
	}
	if len(h.subs) >= maxStreams {
		return nil, errStreamsFull
	}
	s := &subscriber{filter: f, ch: make(chan state.Message, subscriberBuffer)}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Close ends every stream (http.Server.Shutdown does not end running handlers, so
// without this an open stream would hold up Emulator.Close).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *Hub) counts() (subs, dropped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.dropped
}

// Events serves GET /emulator/events[?to=&channel=&challengeId=&after=]: an SSE stream
// of new messages ("event: message", "id: <seq>", "data: <message JSON>"). With a
// Last-Event-ID header (sent by EventSource on reconnect) or ?after=<id>, the kept messages
// after that id are replayed first, so a dropped client loses nothing.
func (o *Outbox) Events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return err
	}
	after, replay := int64(0), false
	for _, v := range []string{r.Header.Get("Last-Event-ID"), q.Get("after")} {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return httpjson.BadRequest("after (or Last-Event-ID) must be a message event id (a non-negative integer).")
		}
		after, replay = n, true
		break
	}
	sub, err := o.hub.subscribe(f)
	if err != nil {
		return err
	}
	defer o.hub.unsubscribe(sub)

	// Replay after subscribing, so nothing committed in between is missed; live messages
	// already replayed are skipped below. The rows are read in full and released before
	// streaming: the single database connection must never wait on this client.
	var backlog []state.Message
	if replay {
		if backlog, err = o.messagesAfter(r, f, after); err != nil {
			return err
		}
	}

	rc := http.NewResponseController(w)
	// The server's ReadTimeout would cancel the request (and end the stream) when it expires.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		o.log.Warn("outbox stream: clear read deadline", "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)

	// send writes one chunk and flushes it, with a fresh write deadline each time.
	send := func(chunk string) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write([]byte(chunk)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(fmt.Sprintf("retry: %d\n: outbox stream open\n\n", reconnectDelayMS)) {
		return nil
	}
	var replayed int64
	for _, m := range backlog {
		if !send(messageEvent(m)) {
			return nil
		}
		replayed = m.Seq
	}

	heartbeat := time.NewTicker(o.hub.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case m, ok := <-sub.ch:
			if !ok {
				return nil // dropped for falling behind, or the emulator is closing
			}
			// Commits are serialized, so every live message up to the last replayed id
			// was already committed, hence replayed.
			if m.Seq <= replayed {
				continue
			}
			if !send(messageEvent(m)) {
				return nil
			}
		case <-heartbeat.C:
			if !send(": heartbeat\n\n") {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}

// messageEvent formats one SSE event. JSON never contains a raw newline, so data is one line.
func messageEvent(m state.Message) string {
	data, _ := json.Marshal(m) // a struct of strings cannot fail to encode
	return fmt.Sprintf("event: message\nid: %d\ndata: %s\n\n", m.Seq, data)
}

// messagesAfter returns the kept messages with an event id above after, oldest first.
// An id above any ever assigned comes from another database (e.g. a restarted in-memory
// emulator): then everything kept is replayed.
func (o *Outbox) messagesAfter(r *http.Request, f state.MessageFilter, after int64) ([]state.Message, error) {
	last, err := o.store.LastMessageSeq(r.Context())
	if err != nil {
		return nil, err
	}
	if after > last {
		after = 0
	}
	msgs, err := o.store.Messages(r.Context(), f, after, 0)
	if err != nil {
		return nil, err
	}
	slices.Reverse(msgs)
	return msgs, nil
}
