// Package store keeps the app's users, sessions, pending sign-ins, limits, accounts and
// withdrawals in SQLite (the default) or PostgreSQL (for several instances at once).
//
// One Store serves both: it holds the rules (validation, defaults, ids, the errors callers
// see) and runs every statement through database/sql; an engine below it holds a
// database's connections, its SQL and the few things the two do differently. Every write
// that must be atomic runs in one transaction, and money moves only in conditional updates
// that are correct under SQLite's single writer and PostgreSQL's READ COMMITTED alike.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"example.com/passwordless/internal/sqlitedb"
)

// DemoBalanceCents is the balance every new user starts with (25,000.00), so
// that every outcome of the default withdrawal rules can be tried.
const DemoBalanceCents = 2_500_000

var (
	// ErrNotFound means the row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotSettleable means a withdrawal could not be moved to a new state:
	// it is unknown, belongs to another user, or is not in one of the expected
	// states (typically: it was already settled). Nothing was changed.
	ErrNotSettleable = errors.New("withdrawal not settleable")
	// ErrInsufficientFunds means completing a withdrawal would make the balance
	// negative. Nothing was changed.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrExists means a row with that id is already there (a repeated form). Nothing was
	// changed.
	ErrExists = errors.New("already exists")
)

// engine is one database: its connections, its SQL, and what the two databases do
// differently. sqliteEngine (sqlite.go) and postgresEngine (postgres.go) implement it.
type engine interface {
	writer() *sql.DB    // where writes and their transactions go
	reader() *sql.DB    // where reads outside a transaction go (may be writer())
	queries() *queries  // every statement, in this database's dialect
	param(n int) string // the placeholder of the nth bound value, from 1
	// snapshot begins a read-only transaction whose reads all see one moment.
	snapshot(ctx context.Context) (*sql.Tx, error)
	// lockLimits makes tx the only one counting under these limit keys until it ends.
	lockLimits(ctx context.Context, tx *sql.Tx, keys []string) error
	// isUniqueViolation reports whether err is a unique index refusing a write.
	isUniqueViolation(err error) bool
	close() error
}

// queries are the store's statements in one dialect. Those with %s take a column name
// (or, for settleWithdrawal, a list of placeholders) that the Store chooses from its own
// constants, never from input.
type queries struct {
	insertUser, insertAccount, userBy, touchSignIn, balance, consumeAction string
	setAddress, clearAddress                                               string
	insertSession, getSession, revokeSession, sessionExists                string
	insertPending, getPending, updatePending, wrongAttempt, deletePending  string
	insertWithdrawal, awaitChallenge, getWithdrawal, listWithdrawals       string
	settleWithdrawal, debit, staleWithdrawals                              string
	expireLimit, countLimit, tagSeen, insertLimit, releaseLimit            string
	lockedUntil, sweepLimits                                               string
}

// Store is the app's data. It is safe for concurrent use.
type Store struct {
	e    engine
	q    *queries
	now  func() time.Time
	rand io.Reader
	// limitWrites counts limit writes, to sweep every expired event now and then.
	limitWrites atomic.Uint64
}

// Option configures a Store.
type Option func(*Store)

// WithRand sets the source of randomness for ids the store generates
// (default crypto/rand).
func WithRand(r io.Reader) Option {
	return func(s *Store) {
		if r != nil {
			s.rand = r
		}
	}
}

func newStore(e engine, now func() time.Time, opts []Option) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{e: e, q: e.queries(), now: now, rand: rand.Reader}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.e.close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping reports whether the database answers, for a readiness check.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.e.writer().PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// NewID returns 16 random bytes from r, hex encoded (32 characters); r nil
// means crypto/rand. Use it for ids the caller generates (pending sign-ins,
// withdrawals / idempotency keys).
func NewID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// inTx runs fn in a transaction of the writer, committing when fn returns nil. SQLite's
// begins IMMEDIATE (it takes the write lock at once); PostgreSQL's is READ COMMITTED.
// (sqlitedb.InTx is plain database/sql, for either.)
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return sqlitedb.InTx(ctx, s.e.writer(), fn)
}

// toDB converts a time to the stored form: UTC unix nanoseconds (a 64-bit integer in both
// databases, so times sort and compare as numbers and round-trip to the nanosecond).
func toDB(t time.Time) int64 { return t.UTC().UnixNano() }

// fromDB converts a stored time back, in UTC.
func fromDB(n int64) time.Time { return time.Unix(0, n).UTC() }

// fromNullDB converts a nullable stored time; NULL becomes the zero time.
func fromNullDB(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromDB(n.Int64)
}

// affected is how many rows res changed, with what as the error's prefix.
func affected(res sql.Result, what string) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

// rowsOrNotFound turns "no row matched" into ErrNotFound.
func rowsOrNotFound(res sql.Result, what string) error {
	n, err := affected(res, what)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound, leaving other errors alone.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
