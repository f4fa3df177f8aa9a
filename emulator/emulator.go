// Package emulator is a local stand-in for Authsignal: its Server API, the pre-built UI,
// an outbox of the messages it "sent", admin pages and test controls, over one SQLite
// state. See README.md.
package emulator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"example.com/passwordless/emulator/internal/outbox"
	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/testcontrols"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
	"example.com/passwordless/emulator/internal/webhook"
	"example.com/passwordless/internal/listener"
)

// DevSecretKey is the key accepted when none is configured; printed clearly when used.
const DevSecretKey = "emulator-dev-secret-key"

// DevCallConnectSecretKey is the Call Connect API's key unless configured otherwise (the
// real service gives Call Connect a secret key of its own).
const DevCallConnectSecretKey = "emulator-call-connect-secret-key"

// DevTenantID is the emulated tenant's id unless configured otherwise: the audience of its
// tokens and their other.tenantId (and other.publishableKey: the emulator has one id for both).
const DevTenantID = "emulator-tenant"

// DefaultMessageCap is how many outbox messages are kept unless configured otherwise.
const DefaultMessageCap = 10_000

// Limits are the knobs of the code lifecycle and the send limits.
type Limits = state.Limits

// DefaultLimits returns the emulator's defaults (the real service's published send limits).
func DefaultLimits() Limits { return state.DefaultLimits() }

// Config configures an Emulator.
type Config struct {
	SecretKey string // required
	// CallConnectSecretKey is the Call Connect API's own secret key; "" = DevCallConnectSecretKey.
	CallConnectSecretKey string
	TenantID             string           // "" = DevTenantID
	DBPath               string           // SQLite file or ":memory:"
	RulesFile            string           // "" = built-in default rules
	PublicURL            string           // e.g. "http://127.0.0.1:4000"; "" = derived from the listener in Start (or the request Host)
	Limits               Limits           // zero value = DefaultLimits()
	Now                  func() time.Time // nil = time.Now
	Rand                 io.Reader        // nil = crypto/rand
	Logger               *slog.Logger     // nil = discard
	// MessageCap is how many outbox messages are kept (the oldest are trimmed on insert); 0 = DefaultMessageCap.
	MessageCap int

	// WebhookURLs receive the emulator's events (authenticator.created and .deleted), signed
	// with the secret key as Authsignal signs them (X-Signature-V2).
	WebhookURLs []string
	// DeliveryWebhookURL, when set, is a custom email and SMS provider: every code is posted
	// to it first as email.created or sms.created, and a non-2xx answer fails the send.
	DeliveryWebhookURL string
	// ActionVerifyWebhookURL, when set, must approve (2xx) every action's success by a code,
	// before it is stored, as action.verify; otherwise the action keeps awaiting its challenge.
	ActionVerifyWebhookURL string
	// WebhookRetryDelay is the wait before a failed delivery is tried again; 0 = 30 s.
	WebhookRetryDelay time.Duration

	// ClientOrigins are the web origins (scheme://host[:port]) of the apps that use the
	// Client API from a browser: they may call it (CORS), frame the pre-built UI (popup
	// mode) and run passkey ceremonies. The emulator's own origin is always allowed.
	ClientOrigins []string
	// AppName is the app the pre-built UI names ("<AppName> asks you to confirm: …");
	// "" = "The app".
	AppName string
	// RPID is the passkeys' relying party id, a domain the origins are on; "" = "localhost".
	// An IP address cannot be one.
	RPID string

	// Import is a file of state (an export, see ExportOnClose) applied once at start.
	Import string
	// ExportOnClose is a file Close writes the whole state to, in the same format.
	ExportOnClose string

	// Test knobs. Seeded mode makes codes predictable: tests only.
	Seed           *uint64           // non-nil = ids and codes from ChaCha8(seed), repeatable; excludes Rand
	SeedFile       string            // users, authenticators, rules, testRecipients applied at start and by reset (seed.example.json)
	TestRecipients map[string]string // email or E.164 → fixed 6-digit code; others get random codes
}

// maxConns caps the emulator's open connections (a development tool: a few clients).
const maxConns = 256

// Emulator is one emulated Authsignal tenant.
type Emulator struct {
	store         *state.Store
	hub           *outbox.Hub
	clock         *testcontrols.Clock
	tokens        *token.Issuer
	tenantID      string
	clientOrigins []string
	rpID          string
	appName       string
	webhooks      *webhook.Sender
	log           *slog.Logger
	handler       http.Handler
	rulesSource   string // for the start-up banner
	rules         *rules.Rules
	table         []route // routeTable, kept for the OpenAPI test
	exportOnClose string

	mu        sync.Mutex
	publicURL string
	srv       *http.Server
	closed    bool
}

// New validates cfg, opens the database (applying migrations), loads the rules and the
// seed file, and applies the import.
func New(cfg Config) (*Emulator, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("emulator: SecretKey is required")
	}
	if cfg.DBPath == "" {
		return nil, errors.New(`emulator: DBPath is required (a file path or ":memory:")`)
	}
	limits := cfg.Limits
	if limits == (Limits{}) {
		limits = DefaultLimits()
	}
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.MessageCap == 0 {
		cfg.MessageCap = DefaultMessageCap
	}
	if cfg.MessageCap < 0 {
		return nil, errors.New("emulator: MessageCap must not be negative")
	}
	if cfg.TenantID == "" {
		cfg.TenantID = DevTenantID
	}
	if cfg.CallConnectSecretKey == "" {
		cfg.CallConnectSecretKey = DevCallConnectSecretKey
	}
	if cfg.RPID == "" {
		cfg.RPID = "localhost"
	}
	if net.ParseIP(strings.Trim(cfg.RPID, "[]")) != nil || strings.ContainsAny(cfg.RPID, ":/ ") {
		return nil, fmt.Errorf("emulator: RPID %q must be a domain name, like localhost or example.com (an IP address cannot be a passkey domain)", cfg.RPID)
	}
	for _, o := range cfg.ClientOrigins {
		if err := vocab.ValidateOrigin(o); err != nil {
			return nil, fmt.Errorf("emulator: client origin %q: %w", o, err)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var rnd *random.Source
	switch {
	case cfg.Seed != nil && cfg.Rand != nil:
		return nil, errors.New("emulator: set Seed or Rand, not both")
	case cfg.Seed != nil:
		rnd = random.Seeded(*cfg.Seed)
	case cfg.Rand != nil:
		rnd = random.New(cfg.Rand)
	default:
		rnd = random.New(rand.Reader)
	}
	seed, rs, rulesSource, err := loadRulesAndSeed(cfg)
	if err != nil {
		return nil, err
	}
	codes := testcontrols.NewCodes(rnd)
	if err := codes.Add(cfg.TestRecipients, "TestRecipients"); err != nil {
		return nil, err
	}
	if seed != nil {
		if err := codes.Add(seed.TestRecipients, "seed file "+seed.Path+": testRecipients"); err != nil {
			return nil, err
		}
	}
	var imported *state.Seed
	if cfg.Import != "" {
		if imported, err = loadImport(cfg.Import); err != nil {
			return nil, err
		}
	}
	e := &Emulator{hub: outbox.NewHub(), tenantID: cfg.TenantID, clientOrigins: cfg.ClientOrigins, rpID: cfg.RPID, appName: cfg.AppName, clock: testcontrols.NewClock(cfg.Now), log: cfg.Logger, rulesSource: rulesSource,
		exportOnClose: cfg.ExportOnClose, publicURL: strings.TrimRight(cfg.PublicURL, "/")}
	e.tokens = token.NewIssuer([]byte(cfg.SecretKey), cfg.TenantID, limits.TokenTTL, e.clock.Now, rnd.UUID)
	if cfg.WebhookRetryDelay == 0 {
		cfg.WebhookRetryDelay = 30 * time.Second
	}
	if seed != nil {
		cfg.WebhookURLs = append(slices.Clone(cfg.WebhookURLs), seed.WebhookURLs...)
	}
	for _, u := range append(slices.Clone(cfg.WebhookURLs), cfg.DeliveryWebhookURL, cfg.ActionVerifyWebhookURL) {
		if u == "" {
			continue
		}
		if err := vocab.ValidateRedirectURL(u); err != nil {
			return nil, fmt.Errorf("emulator: webhook URL %q: %w", u, err)
		}
	}
	e.webhooks = webhook.New(webhook.Config{URLs: cfg.WebhookURLs, SecretKey: []byte(cfg.SecretKey), TenantID: cfg.TenantID, Now: e.clock.Now,
		NewID: rnd.UUID, RetryDelay: cfg.WebhookRetryDelay, Log: cfg.Logger})
	e.store, err = state.Open(context.Background(), state.Options{Path: cfg.DBPath, Limits: limits, MessageCap: cfg.MessageCap, Now: e.clock.Now,
		Random: rnd, Codes: codes, Rules: rs, Tokens: e.tokens, Publish: e.hub.Publish, Notify: func(ev state.Event) { e.webhooks.Send(ev.Type, ev.Data) },
		Deliver: deliverTo(e.webhooks, cfg.DeliveryWebhookURL), VerifyAction: deliverTo(e.webhooks, cfg.ActionVerifyWebhookURL),
		Log: cfg.Logger, Seed: seed})
	if err != nil {
		e.webhooks.Close()
		return nil, err
	}
	if imported != nil {
		if err := e.store.Import(context.Background(), imported); err != nil {
			e.store.Close()
			e.webhooks.Close()
			return nil, fmt.Errorf("emulator: import %s: %w", cfg.Import, err)
		}
		cfg.Logger.Info("state imported", "file", cfg.Import, "users", len(imported.Users), "actions", len(imported.Actions), "messages", len(imported.Messages))
	}
	e.rules = rs
	if e.handler, err = e.routes([]byte(cfg.SecretKey), []byte(cfg.CallConnectSecretKey), rs, rnd, limits); err != nil {
		e.store.Close()
		e.webhooks.Close()
		return nil, err
	}
	return e, nil
}

// deliverTo posts synchronous webhooks (a delivery provider's, action.verify) to url; nil
// when there is no url.
func deliverTo(w *webhook.Sender, url string) state.Deliver {
	if url == "" {
		return nil
	}
	return func(ctx context.Context, typ string, data any) error { return w.Deliver(ctx, url, typ, data) }
}

// loadRulesAndSeed reads the seed file (if any) and picks the rules: the seed file's, the
// rules file's or the built-in ones.
func loadRulesAndSeed(cfg Config) (*state.Seed, *rules.Rules, string, error) {
	var seed *state.Seed
	var err error
	if cfg.SeedFile != "" {
		if seed, err = state.LoadSeed(cfg.SeedFile); err != nil {
			return nil, nil, "", err
		}
	}
	var rs *rules.Rules
	source := "built-in defaults"
	switch {
	case seed != nil && seed.Rules != nil && cfg.RulesFile != "":
		return nil, nil, "", fmt.Errorf("emulator: seed file %s has rules and a rules file (%s) is set too; use one", cfg.SeedFile, cfg.RulesFile)
	case seed != nil && seed.Rules != nil:
		rs, source = seed.Rules, "from the seed file "+seed.Path
	case cfg.RulesFile != "":
		rs, err = rules.LoadFile(cfg.RulesFile)
		source = cfg.RulesFile
	default:
		rs, err = rules.Default()
	}
	if err != nil {
		return nil, nil, "", err
	}
	return seed, rs, source, nil
}

// loadImport reads a file of state to import: the seed format without the configuration
// a seed file may carry.
func loadImport(path string) (*state.Seed, error) {
	s, err := state.LoadSeed(path)
	if err != nil {
		return nil, err
	}
	if s.Rules != nil || len(s.TestRecipients) > 0 || len(s.WebhookURLs) > 0 {
		return nil, fmt.Errorf("emulator: import %s: rules, testRecipients and webhookUrls are configuration, not state; pass this file as -seed-file instead", path)
	}
	return s, nil
}

// Handler serves the whole surface: the Server API, the pre-built UI, the outbox, the
// admin pages and the test controls.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL, e.g. "http://127.0.0.1:4000".
func (e *Emulator) Start(addr string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", errors.New("emulator: closed")
	}
	if e.srv != nil {
		return "", errors.New("emulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	// A flood waits instead of taking the process (and, embedded, the app) down.
	ln = listener.New(ln, maxConns, e.log)
	baseURL := "http://" + ln.Addr().String()
	if e.publicURL == "" {
		e.publicURL = baseURL
	}
	e.srv = &http.Server{
		Handler:           e.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	go func(srv *http.Server) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("emulator server stopped", "err", err)
		}
	}(e.srv)
	return baseURL, nil
}

// Close stops the server gracefully (if started), writes the export (if configured) and
// closes the database. Safe to call twice.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	srv := e.srv
	e.mu.Unlock()
	e.hub.Close() // end open event streams first: Shutdown waits for running handlers
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("emulator: shutdown: %w", err))
		}
	}
	if e.exportOnClose != "" {
		if err := e.export(e.exportOnClose); err != nil {
			errs = append(errs, err)
		}
	}
	e.webhooks.Close()
	if err := e.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("emulator: close db: %w", err))
	}
	return errors.Join(errs...)
}

// export writes the state to path, through a temporary file in the same folder so that a
// crash never leaves half a file where the last good export was.
func (e *Emulator) export(path string) error {
	seed, err := e.store.Export(context.Background())
	if err != nil {
		return fmt.Errorf("emulator: export: %w", err)
	}
	data, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		return fmt.Errorf("emulator: export: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.json")
	if err != nil {
		return fmt.Errorf("emulator: export: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("emulator: export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("emulator: export: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("emulator: export: %w", err)
	}
	e.log.Info("state exported", "file", path, "users", len(seed.Users), "actions", len(seed.Actions), "messages", len(seed.Messages))
	return nil
}

// baseURLFor is the public URL used in links: the configured one, else the request's host.
func (e *Emulator) baseURLFor(r *http.Request) string {
	e.mu.Lock()
	u := e.publicURL
	e.mu.Unlock()
	if u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ValidateEmail reports whether s is an address the emulator sends codes to: a plain
// address like name@example.com.
func ValidateEmail(s string) error { return vocab.ValidateEmail(s) }

// ValidatePhone reports whether s is a number the emulator sends codes to: E.164.
func ValidatePhone(s string) error { return vocab.ValidatePhone(s) }

// RulesFor describes, one sentence per rule in the order they are tried, the rules the
// emulator runs for action, and last the outcome when none matches: what an app shows
// beside a form (the sample's account page), since they are the emulator's and not the
// real tenant's.
func (e *Emulator) RulesFor(action string) []string {
	list := e.rules.List()
	sort.SliceStable(list, func(i, j int) bool { return list[i].Priority < list[j].Priority })
	var out []string
	for _, r := range list {
		if r.ActionCode != action && r.ActionCode != "" && r.ActionCode != "*" {
			continue
		}
		text := r.Description
		if text == "" {
			text = r.Name
		}
		if text == "" {
			text = r.ID
		}
		out = append(out, fmt.Sprintf("%s (%s)", strings.TrimSuffix(text, "."), r.Outcome))
	}
	return append(out, fmt.Sprintf("anything else: %s", e.rules.DefaultOutcome()))
}
