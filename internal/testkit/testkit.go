// Package testkit holds what the project's tests share: a clock they move, a buffer that
// concurrent writers may share, a client of the emulator's outbox and of event streams.
package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Clock is a settable clock for Now fields (func() time.Time), safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that starts at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Buffer is a bytes.Buffer that concurrent writers (handlers logging, a child process's
// output) may share.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Message is one message of the emulator's outbox, as GET /emulator/messages lists it.
type Message struct {
	ID          string `json:"id"`
	Channel     string `json:"channel"`
	To          string `json:"to"`
	Subject     string `json:"subject"`
	Body        string `json:"body"`
	Code        string `json:"code"`
	Link        string `json:"link"` // a magic link's address
	ChallengeID string `json:"challengeId"`
	CreatedAt   string `json:"createdAt"`
}

// Outbox reads the messages the emulator at emulatorURL sent to `to`, newest first
// (every message when `to` is empty). client nil is http.DefaultClient.
func Outbox(client *http.Client, emulatorURL, to string) ([]Message, error) {
	if client == nil {
		client = http.DefaultClient
	}
	target := emulatorURL + "/emulator/messages"
	if to != "" {
		target += "?" + url.Values{"to": {to}}.Encode()
	}
	resp, err := client.Get(target)
	if err != nil {
		return nil, fmt.Errorf("read the emulator outbox: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the emulator outbox: status %s", resp.Status)
	}
	var msgs []Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		return nil, fmt.Errorf("read the emulator outbox: %w", err)
	}
	return msgs, nil
}
