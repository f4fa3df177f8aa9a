// Package emulator is a local stand-in for Authsignal's Server API: challenges and
// one-time codes, track/validate with rules, users and authenticators, the pre-built
// challenge page, an outbox of sent messages, and an admin page for reviews.
// State lives in SQLite. See README.md.
package emulator

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"example.com/passwordless/internal/listener"
	"example.com/passwordless/store/wal"
)

// DevSecretKey is the key accepted when none is configured; printed clearly when used.
const DevSecretKey = "emulator-dev-secret-key"

// DevTenantID is the emulated tenant's id unless configured otherwise: the audience of its
// tokens and their other.tenantId (and other.publishableKey: the emulator has one id for both).
const DevTenantID = "emulator-tenant"

// Limits are the knobs of the code lifecycle and send limits.
type Limits struct {
	CodeTTL        time.Duration // 10m
	MaxAttempts    int           // 5 wrong attempts kill a challenge
	SendWindow     time.Duration // 10m
	SMSPerWindow   int           // 6  (SMS and WhatsApp, per recipient)
	EmailPerWindow int           // 12 (per recipient)
	TokenTTL       time.Duration // 10m, pre-built UI / validate tokens
}

// DefaultLimits returns the emulator's defaults (the real service's published send limits).
func DefaultLimits() Limits {
	return Limits{
		CodeTTL:        10 * time.Minute,
		MaxAttempts:    5,
		SendWindow:     10 * time.Minute,
		SMSPerWindow:   6,
		EmailPerWindow: 12,
		TokenTTL:       10 * time.Minute,
	}
}

// Config configures an Emulator.
type Config struct {
	SecretKey string           // required
	TenantID  string           // "" = DevTenantID
	DBPath    string           // SQLite file or ":memory:"
	RulesFile string           // "" = built-in default rules
	PublicURL string           // e.g. "http://127.0.0.1:4000"; "" = derived from the listener in Start (or the request Host)
	Limits    Limits           // zero value = DefaultLimits()
	Now       func() time.Time // nil = time.Now
	Rand      io.Reader        // nil = crypto/rand
	Logger    *slog.Logger     // nil = discard
	// MessageCap is how many outbox messages are kept (the oldest are trimmed on insert); 0 = DefaultMessageCap.
	MessageCap int

	// Test knobs (seed.go, force.go). Seeded mode makes codes predictable: tests only.
	Seed           *uint64           // non-nil = ids and codes from ChaCha8(seed), repeatable; excludes Rand
	SeedFile       string            // JSON users, authenticators, rules, testRecipients (seed.example.json)
	TestRecipients map[string]string // email or E.164 → fixed 6-digit code; others get random codes
}

// maxConns caps the emulator's open connections (a development tool: a few clients).
const maxConns = 256

// DefaultMessageCap is how many outbox messages are kept unless configured otherwise.
const DefaultMessageCap = 10_000

// Emulator is one emulated Authsignal tenant.
type Emulator struct {
	secretKey   []byte
	tenantID    string
	limits      Limits
	now         func() time.Time
	rand        io.Reader
	log         *slog.Logger
	db          *sql.DB
	checkpoints *wal.Checkpointer // nil for ":memory:"
	rules       *Rules
	pages       map[string]*template.Template
	handler     http.Handler
	testCodes   map[string]string // normalized recipient → fixed code (seed.go)
	seed        *seedData         // Config.SeedFile, re-applied by reset; nil = none
	clock       clockOffset       // added to every e.now() (clock.go)

	outbox *outboxHub // live outbox streams (events.go)

	// The committer (db.go): inTx's parts, and its stop.
	parts       chan *part
	stopCommits chan struct{}
	commitsDone chan struct{}
	stopOnce    sync.Once
	messageCap  int // outbox messages kept

	mu        sync.Mutex
	publicURL string
	srv       *http.Server
	closed    bool
}

// New validates cfg, opens the database (applying migrations) and loads the rules.
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
	if err := limits.validate(); err != nil {
		return nil, err
	}
	e := &Emulator{
		secretKey: []byte(cfg.SecretKey),
		tenantID:  cfg.TenantID,
		limits:    limits,
		now:       cfg.Now,
		rand:      cfg.Rand,
		log:       cfg.Logger,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),

		outbox:     newOutboxHub(),
		messageCap: cfg.MessageCap,
	}
	if e.tenantID == "" {
		e.tenantID = DevTenantID
	}
	if e.messageCap == 0 {
		e.messageCap = DefaultMessageCap
	}
	if e.messageCap < 0 {
		return nil, errors.New("emulator: MessageCap must not be negative")
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.now = e.withClockOffset(e.now) // POST /emulator/clock moves it forward
	if cfg.Seed != nil {
		if cfg.Rand != nil {
			return nil, errors.New("emulator: set Seed or Rand, not both")
		}
		e.rand = &lockedReader{r: seededReader(*cfg.Seed)}
	} else if e.rand == nil {
		e.rand = rand.Reader
	} else {
		// An injected reader (e.g. a seeded one in tests) need not be safe for concurrent use.
		e.rand = &lockedReader{r: e.rand}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	seed, err := e.loadRulesAndSeed(cfg) // sets e.rules and e.testCodes
	if err != nil {
		return nil, err
	}
	if e.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if e.db, e.checkpoints, err = openDB(context.Background(), cfg.DBPath); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e.parts, e.stopCommits, e.commitsDone = make(chan *part, maxBatch), make(chan struct{}), make(chan struct{})
	go e.commitLoop()
	if e.seed = seed; seed != nil {
		if err := e.applySeed(context.Background(), seed); err != nil {
			e.closeDB()
			return nil, err
		}
	}
	e.handler = e.routes()
	return e, nil
}

func (l Limits) validate() error {
	switch {
	case l.CodeTTL <= 0:
		return errors.New("emulator: Limits.CodeTTL must be positive")
	case l.MaxAttempts <= 0:
		return errors.New("emulator: Limits.MaxAttempts must be positive")
	case l.SendWindow <= 0:
		return errors.New("emulator: Limits.SendWindow must be positive")
	case l.SMSPerWindow <= 0 || l.EmailPerWindow <= 0:
		return errors.New("emulator: Limits.SMSPerWindow and EmailPerWindow must be positive")
	case l.TokenTTL <= 0:
		return errors.New("emulator: Limits.TokenTTL must be positive")
	}
	return nil
}

// Handler serves the whole surface: /v1 API, pre-built page, outbox, admin, /emulator/*.
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

// Close stops the server gracefully (if started) and closes the database. Safe to call twice.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	srv := e.srv
	e.mu.Unlock()
	e.outbox.close() // end open event streams first: Shutdown waits for running handlers
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("emulator: shutdown: %w", err))
		}
	}
	if err := e.closeDB(); err != nil {
		errs = append(errs, fmt.Errorf("emulator: close db: %w", err))
	}
	return errors.Join(errs...)
}

func (e *Emulator) closeDB() error {
	e.stopOnce.Do(func() { close(e.stopCommits) })
	<-e.commitsDone // the last batch is committed before the database closes
	var err error
	if e.checkpoints != nil {
		err = e.checkpoints.Close()
	}
	return errors.Join(err, e.db.Close())
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

type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// randomBytes reads n bytes from the injected random source.
func (e *Emulator) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return b, nil
}

// newUUID returns a random (version 4 layout) UUID string.
func (e *Emulator) newUUID() (string, error) {
	b, err := e.randomBytes(16)
	if err != nil {
		return "", err
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// newCode returns a 6-digit code. Rejection sampling keeps every code equally likely
// (a plain modulo would favour low codes slightly).
func (e *Emulator) newCode() (string, error) {
	const limit = 4_294_000_000 // largest multiple of 1e6 below 2^32
	for {
		b, err := e.randomBytes(4)
		if err != nil {
			return "", err
		}
		v := binary.BigEndian.Uint32(b)
		if v < limit {
			return fmt.Sprintf("%06d", v%1_000_000), nil
		}
	}
}
