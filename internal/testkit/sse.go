package testkit

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one Server-Sent Event as read off the wire.
type Event struct {
	Name, ID, Data string
}

// Stream reads an event stream in the background.
type Stream struct {
	Events   chan Event
	Comments chan string
	Done     chan struct{} // closed when the stream ends
}

// OpenStream connects to an event stream, which must answer 200 text/event-stream; it is
// closed when the test ends.
func OpenStream(t testing.TB, rawURL string, header http.Header) *Stream {
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
	s := &Stream{Events: make(chan Event, 100), Comments: make(chan string, 100), Done: make(chan struct{})}
	go func() {
		defer close(s.Done)
		sc := bufio.NewScanner(resp.Body)
		var ev Event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Data != "" {
					s.Events <- ev
				}
				ev = Event{}
			case strings.HasPrefix(line, ":"):
				select {
				case s.Comments <- strings.TrimSpace(line[1:]):
				default:
				}
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[len("data: "):]
			}
		}
	}()
	return s
}

// Next waits for the next event, which must be a message event with an id.
func (s *Stream) Next(t testing.TB, within time.Duration) Event {
	t.Helper()
	select {
	case ev := <-s.Events:
		if ev.Name != "message" || ev.ID == "" {
			t.Fatalf("event %+v: want event: message with an id", ev)
		}
		return ev
	case <-s.Done:
		t.Fatal("stream ended")
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return Event{}
}

// None checks that no event arrives for a while.
func (s *Stream) None(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case ev := <-s.Events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(wait):
	}
}
