// Package state is the emulator's tenant: its users, authenticators, challenges, actions and
// outbox in SQLite, changed only through typed operations whose writes commit in groups.
// Its queries follow internal/sqlitedb's +? convention.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/internal/sqlitedb"
)

// Limits are the knobs of the code lifecycle and the send limits.
type Limits struct {
	CodeTTL        time.Duration // 10m
	MaxAttempts    int           // 5 wrong attempts kill a challenge
	SendWindow     time.Duration // 10m
	SMSPerWindow   int           // 6  (SMS and WhatsApp, per recipient)
	EmailPerWindow int           // 12 (per recipient)
	TokenTTL       time.Duration // 10m, track, claim and pre-built UI tokens
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

// Validate names the first limit that is not positive.
func (l Limits) Validate() error {
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

// Codes decides what each send carries: a test recipient's fixed code or a random one,
// and which recipients always fail delivery (the test controls' magic addresses).
type Codes interface {
	Code(recipient string) (string, error)
	Undeliverable(recipient string) bool
}

// Options configure a Store.
type Options struct {
	Path       string // SQLite file, or ":memory:"
	Limits     Limits
	MessageCap int // outbox messages kept; the oldest are trimmed on insert
	Now        func() time.Time
	Random     *random.Source
	Codes      Codes
	Rules      *rules.Rules
	Tokens     *token.Issuer
	Publish    func([]Message) // receives each committed batch's sent messages; nil = none
	Notify     func(Event)     // receives each committed event (authenticator changes); nil = none
	Deliver    Deliver         // a custom delivery provider that must take each code first; nil = none
	// VerifyAction is the action.verify webhook, which must approve each action's success
	// by a code before it is stored; nil = none.
	VerifyAction Deliver
	Log          *slog.Logger
	Seed         *Seed // applied at open and again by Reset; nil = none
}

// Store is the emulator's state.
type Store struct {
	sqlite       *sqlitedb.DB
	db           *sql.DB // reads outside the committer (sqlitedb.DB.Reader); the committer writes on sqlitedb.DB.Writer
	limits       Limits
	messageCap   int
	now          func() time.Time
	random       *random.Source
	codes        Codes
	rules        *rules.Rules
	tokens       *token.Issuer
	publish      func([]Message)
	notify       func(Event)
	deliver      Deliver
	verifyAction Deliver
	log          *slog.Logger
	seed         *Seed

	// The committer (commit.go): inTx's parts, and its stop.
	parts       chan *part
	stopCommits chan struct{}
	commitsDone chan struct{}
	stopOnce    sync.Once
}

// Open opens (creating or migrating) the database and applies the seed.
func Open(ctx context.Context, o Options) (*Store, error) {
	d, err := openDB(ctx, o.Path, o.Now)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	s := &Store{sqlite: d, db: d.Reader, limits: o.Limits, messageCap: o.MessageCap, now: o.Now, random: o.Random,
		codes: o.Codes, rules: o.Rules, tokens: o.Tokens, publish: o.Publish, notify: o.Notify, deliver: o.Deliver, verifyAction: o.VerifyAction, log: o.Log, seed: o.Seed,
		parts: make(chan *part, maxBatch), stopCommits: make(chan struct{}), commitsDone: make(chan struct{})}
	if s.publish == nil {
		s.publish = func([]Message) {}
	}
	if s.notify == nil {
		s.notify = func(Event) {}
	}
	go s.commitLoop()
	if o.Seed != nil {
		if err := s.Import(ctx, o.Seed); err != nil {
			s.Close()
			return nil, fmt.Errorf("emulator: seed file %s: %w", o.Seed.Path, err)
		}
		o.Log.Info("seed file applied", "file", o.Seed.Path, "users", len(o.Seed.Users), "test_recipients", len(o.Seed.TestRecipients), "rules", o.Seed.Rules != nil)
	}
	return s, nil
}

// Close commits what is queued, stops the committer and closes the database. Safe to call twice.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stopCommits) })
	<-s.commitsDone // the last batch is committed before the database closes
	return s.sqlite.Close()
}

// readyTimeout bounds Ready: in memory, one connection does everything and a long
// transaction holds it, and a probe should report that rather than queue behind it.
const readyTimeout = time.Second

// Ready reports whether the database answers a query on its schema within a second: an
// empty replacement of an in-memory database answers SELECT 1 but has lost every table.
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var n int
	return s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
}

// Kind is what kind of refusal an Error is; the HTTP layers map it to a status.
type Kind int

// The kinds of refusal.
const (
	Invalid       Kind = iota + 1 // the operation cannot be done as asked
	NotFound                      // what it names does not exist
	Conflict                      // it no longer applies: the thing moved on meanwhile
	Limited                       // a send limit refused it
	Undeliverable                 // the delivery provider refused the message
	Forbidden                     // the caller's token does not allow it (its scope)
)

// Error is an operation's refusal, with a sentence for the caller.
type Error struct {
	Kind        Kind
	Description string
}

func (e *Error) Error() string { return e.Description }

func refuse(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Description: fmt.Sprintf(format, args...)}
}

// IsKind reports whether err is a refusal of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// ErrClosed is the answer to an operation after Close.
var ErrClosed = errors.New("emulator: closed")

// errNoRow is a lookup that found nothing, before it becomes the caller's refusal.
var errNoRow = errors.New("not found")

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
