// Package webhook delivers the emulator's events to the configured URLs, signed the way
// Authsignal signs its webhooks, retries failed deliveries and keeps a log of them.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
)

// SignatureHeader carries the signature (docs: advanced-usage/webhooks/verify-requests).
const SignatureHeader = "X-Signature-V2"

// Signature is the header value for body sent at t: "t=<Unix seconds>,v2=<sig>", where sig
// is the HMAC-SHA256 of "<t>.<body>" keyed with the secret key, in base64 without padding,
// which is what every official server SDK's webhook.constructEvent recomputes.
func Signature(secretKey []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secretKey)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v2=" + base64.RawStdEncoding.EncodeToString(mac.Sum(nil))
}

// Event is a webhook's body: Authsignal's envelope around the event's data.
type Event struct {
	Version  int    `json:"version"`
	ID       string `json:"id"`
	Source   string `json:"source"`
	Time     string `json:"time"`
	TenantID string `json:"tenantId"`
	Type     string `json:"type"`
	Data     any    `json:"data"`
}

// Source is every event's source ("always https://authsignal.com", docs:
// advanced-usage/webhooks/event-types).
const Source = "https://authsignal.com"

// Attempt is one try at delivering an event to one URL.
type Attempt struct {
	At         string `json:"at"`
	StatusCode int    `json:"statusCode,omitempty"` // 0: no answer
	Error      string `json:"error,omitempty"`
}

// Delivery is one event for one URL: what was sent and how each attempt went.
type Delivery struct {
	ID        string    `json:"deliveryId"`
	EventID   string    `json:"eventId"`
	Type      string    `json:"type"`
	URL       string    `json:"url"`
	Body      string    `json:"body"`
	Signature string    `json:"signature"` // the X-Signature-V2 header of the last attempt
	State     string    `json:"state"`     // PENDING, DELIVERED or FAILED
	Attempts  []Attempt `json:"attempts"`
}

// Config configures a Sender.
type Config struct {
	URLs       []string
	SecretKey  []byte
	TenantID   string
	Now        func() time.Time
	NewID      func() (string, error)
	RetryDelay time.Duration // between attempts; at least 30 s in the real service
	Log        *slog.Logger
	Client     *http.Client // nil: a client with a 10 s timeout
}

// Retries is how many times a failed delivery is tried again ("retried up to 3 times", docs:
// advanced-usage/webhooks/authenticator-events).
const Retries = 3

// keep is how many deliveries the log holds; older ones are dropped.
const keep = 500

// Sender delivers events in the background, one at a time, in order.
type Sender struct {
	cfg  Config
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}

	mu         sync.Mutex
	deliveries []*Delivery // oldest first, at most keep
	pending    map[string]*Delivery
	ready      []string // delivery ids due for an attempt
	wake       chan struct{}
	timers     map[*time.Timer]struct{}
}

// New starts a sender; Close stops it.
func New(cfg Config) *Sender {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Sender{cfg: cfg, ctx: ctx, stop: stop, done: make(chan struct{}), pending: map[string]*Delivery{},
		wake: make(chan struct{}, 1), timers: map[*time.Timer]struct{}{}}
	go s.loop()
	return s
}

// Enabled reports whether any URL receives events.
func (s *Sender) Enabled() bool { return len(s.cfg.URLs) > 0 }

// Send queues typ with data for every URL (one event, the same id for each); it never
// blocks on the network.
func (s *Sender) Send(typ string, data any) {
	if !s.Enabled() {
		return
	}
	eventID, body, err := s.envelope(typ, data)
	if err != nil {
		s.cfg.Log.Error("webhook event not sent", "type", typ, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.cfg.URLs {
		d, err := s.newDelivery(u, eventID, typ, body)
		if err != nil {
			s.cfg.Log.Error("webhook event not sent", "type", typ, "err", err)
			return
		}
		s.log(d)
		s.pending[d.ID] = d
		s.ready = append(s.ready, d.ID)
	}
	s.signal()
}

// envelope wraps data in Authsignal's envelope, with a new event id.
func (s *Sender) envelope(typ string, data any) (string, string, error) {
	eventID, err := s.cfg.NewID()
	if err != nil {
		return "", "", err
	}
	body, err := json.Marshal(Event{Version: 1, ID: eventID, Source: Source, Time: s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		TenantID: s.cfg.TenantID, Type: typ, Data: data})
	if err != nil {
		return "", "", fmt.Errorf("encode webhook %s: %w", typ, err)
	}
	return eventID, string(body), nil
}

func (s *Sender) newDelivery(url, eventID, typ, body string) (*Delivery, error) {
	id, err := s.cfg.NewID()
	if err != nil {
		return nil, err
	}
	return &Delivery{ID: id, EventID: eventID, Type: typ, URL: url, Body: body, State: "PENDING", Attempts: []Attempt{}}, nil
}

// log keeps d in the log of deliveries, dropping the oldest beyond keep; s.mu is held.
func (s *Sender) log(d *Delivery) {
	s.deliveries = append(s.deliveries, d)
	if len(s.deliveries) > keep {
		s.deliveries = s.deliveries[len(s.deliveries)-keep:]
	}
}

func (s *Sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Deliveries returns copies of the logged deliveries, newest first.
func (s *Sender) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, 0, len(s.deliveries))
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		d := *s.deliveries[i]
		d.Attempts = append([]Attempt{}, d.Attempts...)
		out = append(out, d)
	}
	return out
}

// Close stops delivering; deliveries still pending stay PENDING.
func (s *Sender) Close() {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.timers {
		t.Stop()
	}
}

func (s *Sender) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		var d *Delivery
		if len(s.ready) > 0 {
			d = s.pending[s.ready[0]]
			s.ready = s.ready[1:]
		}
		s.mu.Unlock()
		if d == nil {
			select {
			case <-s.ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		s.attempt(d)
	}
}

// post sends d once and records the attempt; err is nil only for a 2xx answer.
func (s *Sender) post(ctx context.Context, d *Delivery) error {
	now := s.cfg.Now()
	sig := Signature(s.cfg.SecretKey, now, []byte(d.Body))
	a := Attempt{At: now.UTC().Format(time.RFC3339Nano)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader([]byte(d.Body)))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(SignatureHeader, sig)
		var res *http.Response
		if res, err = s.cfg.Client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			a.StatusCode = res.StatusCode
			if res.StatusCode < 200 || res.StatusCode > 299 {
				err = fmt.Errorf("answered %d", res.StatusCode)
			}
		}
	}
	if err != nil && a.StatusCode == 0 {
		a.Error = err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d.Signature = sig
	d.Attempts = append(d.Attempts, a)
	if err == nil {
		d.State = "DELIVERED"
	}
	return err
}

// attempt posts a queued delivery; a failure is tried again after RetryDelay, up to
// Retries times.
func (s *Sender) attempt(d *Delivery) {
	err := s.post(s.ctx, d)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		delete(s.pending, d.ID)
		s.cfg.Log.Info("webhook delivered", "type", d.Type, "url", d.URL)
	case len(d.Attempts) > Retries:
		d.State = "FAILED"
		delete(s.pending, d.ID)
		s.cfg.Log.Warn("webhook failed", "type", d.Type, "url", d.URL, "attempts", len(d.Attempts), "err", err)
	default:
		s.cfg.Log.Info("webhook will be retried", "type", d.Type, "url", d.URL, "err", err)
		var t *time.Timer
		t = time.AfterFunc(s.cfg.RetryDelay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.timers, t)
			s.ready = append(s.ready, d.ID)
			s.signal()
		})
		s.timers[t] = struct{}{}
	}
}

// Deliver posts one event to url at once and waits for the answer: an error unless it is
// 2xx. It is how email.created and sms.created reach a custom delivery provider, which
// must take each code before it counts as sent; logged like the others, never retried.
func (s *Sender) Deliver(ctx context.Context, url, typ string, data any) error {
	eventID, body, err := s.envelope(typ, data)
	if err != nil {
		return err
	}
	d, err := s.newDelivery(url, eventID, typ, body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.log(d)
	s.mu.Unlock()
	if err := s.post(ctx, d); err != nil {
		s.mu.Lock()
		d.State = "FAILED"
		s.mu.Unlock()
		return err
	}
	return nil
}

type deliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

// ListDeliveries serves GET /emulator/webhooks: the logged deliveries, newest first, each
// with the exact body and signature sent, so a test can check its own verification.
func (s *Sender) ListDeliveries(w http.ResponseWriter, r *http.Request) error {
	return httpjson.Write(w, http.StatusOK, deliveryList{Deliveries: s.Deliveries()})
}
