// Package store keeps the app's users, sessions, pending sign-ins, accounts and
// withdrawals in SQLite (mattn/go-sqlite3).
//
// Every write that must be atomic runs in one transaction. Writes go through a
// single connection and reads through a pool of read-only ones (internal/sqlitedb), whose
// +? convention the queries follow.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"example.com/passwordless/internal/sqlitedb"
	// registers the "sqlite3" driver
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

// synchronous is FULL (the driver's default is NORMAL) so that a committed withdrawal
// survives a power cut, not only a process crash, at the price of an fsync per commit.
const synchronous = "FULL"

// readers is the read-only pool of a database file, sized for a small server.
const readers = 8

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a SQLite-backed store. It is safe for concurrent use.
type Store struct {
	sqlite *sqlitedb.DB
	db     *sql.DB // the writer: one connection
	reads  *sql.DB // read-only connections; the writer itself for ":memory:"
	now    func() time.Time
	rand   io.Reader
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

// Open opens (creating if needed) the SQLite database at path and applies any
// pending migrations. path ":memory:" gives a private in-memory database.
// now is the clock used for timestamps (nil means time.Now).
func Open(ctx context.Context, path string, now func() time.Time, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open store: create folder for %s: %w", path, err)
		}
	}
	if now == nil {
		now = time.Now
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	d, err := sqlitedb.Open(ctx, sqlitedb.Options{Path: path, Synchronous: synchronous, Readers: readers, Migrations: migrations, Now: now})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{sqlite: d, db: d.Writer, reads: d.Reader, now: now, rand: rand.Reader}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// IsDamaged reports whether err is SQLite finding a file that is not a database or is corrupt.
func IsDamaged(err error) bool { return sqlitedb.IsDamaged(err) }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.sqlite.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
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

// inTx runs fn in a transaction of the writer (it begins IMMEDIATE).
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return sqlitedb.InTx(ctx, s.db, fn)
}

// toDB converts a time to the stored form: UTC unix nanoseconds.
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

// rowsOrNotFound turns "no row matched" into ErrNotFound.
func rowsOrNotFound(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
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
