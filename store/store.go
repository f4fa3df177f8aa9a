// Package store keeps the app's users, sessions, pending sign-ins, accounts and
// withdrawals in SQLite (mattn/go-sqlite3).
//
// Every write that must be atomic runs in one transaction. Writes go through a
// single connection and reads through a pool of read-only ones: SQLite allows one
// writer at a time anyway, and writers queueing in database/sql wait far less than
// writers sleeping in SQLite's busy handler (docs/performance.md). The
// driver is opened with _txlock=immediate so a transaction takes the write lock
// when it begins, which turns read-then-write races into simple queueing.
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
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"example.com/passwordless/store/wal"
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

// dsnOptions are go-sqlite3 connection parameters (see the driver's sqlite3.go):
// WAL for concurrent readers; synchronous=FULL (the driver's default is NORMAL) so a
// committed withdrawal survives a power cut, not only a process crash, at the price of
// an fsync per commit; foreign keys enforced, wait up to 5s for a lock, and a cache of
// prepared statements per connection (preparing was a tenth of the time of GET /account).
const dsnOptions = "_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on&_busy_timeout=5000&_stmt_cache_size=64"

// The writer begins every transaction IMMEDIATE (it takes the write lock at once);
// readers are query-only and begin DEFERRED, so a read transaction is a snapshot that
// never waits for the writer.
const (
	writerOptions = dsnOptions + "&_txlock=immediate"
	readerOptions = dsnOptions + "&_txlock=deferred&_query_only=true"
)

// checkpointInterval is how often the write-ahead log is copied into the database file.
const checkpointInterval = time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a SQLite-backed store. It is safe for concurrent use.
type Store struct {
	db          *sql.DB           // the writer: one connection
	reads       *sql.DB           // read-only connections; the writer itself for ":memory:"
	checkpoints *wal.Checkpointer // nil for ":memory:"
	now         func() time.Time
	rand        io.Reader
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
	// go-sqlite3 splits the DSN at the first '?', so a '?' in a file name
	// would be misread as options.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open store: database path %q must not contain '?'", path)
	}
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open store: create folder for %s: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite3", path+"?"+writerOptions)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One writer connection, kept open (for ":memory:" it is the whole database:
	// each connection to it is a database of its own).
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	reads := db
	if !memory {
		// WAL lets readers run beside the writer; the pool is sized for a small
		// server and kept open so connections are not re-opened under load.
		if reads, err = sql.Open("sqlite3", path+"?"+readerOptions); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		reads.SetMaxOpenConns(8)
		reads.SetMaxIdleConns(8)
	}
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, reads: reads, now: now, rand: rand.Reader}
	for _, opt := range opts {
		opt(s)
	}
	if err := db.PingContext(ctx); err != nil {
		s.Close()
		if IsDamaged(err) {
			return nil, damagedError(path, err.Error())
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if !memory {
		if err := quickCheck(ctx, db, path); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if !memory {
		// Commits no longer wait for a checkpoint: it runs beside them (store/wal).
		if s.checkpoints, err = wal.Start(ctx, db, "sqlite3", path+"?"+dsnOptions, checkpointInterval); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	return s, nil
}

// quickCheck runs SQLite's quick integrity check, so that a damaged database file (a disk
// fault, a half-copied backup, not a database at all) stops the start with a sentence
// instead of failing requests later.
func quickCheck(ctx context.Context, db *sql.DB, path string) error {
	var result string
	err := db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&result)
	if err == nil && result == "ok" {
		return nil
	}
	if err != nil {
		result = err.Error()
	}
	return damagedError(path, result)
}

// IsDamaged reports whether err is SQLite finding a file that is not a database or is corrupt.
func IsDamaged(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

func damagedError(path, detail string) error {
	return fmt.Errorf("the database %s is damaged or not a SQLite database (%s): restore it from a backup, or move it away to start with an empty one", path, detail)
}

// Close closes the database.
func (s *Store) Close() error {
	var err error
	if s.checkpoints != nil {
		err = s.checkpoints.Close()
	}
	err = errors.Join(err, s.db.Close())
	if s.reads != s.db {
		err = errors.Join(err, s.reads.Close())
	}
	if err != nil {
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

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations ordered by their numeric
// prefix (0001_init.sql -> 1).
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		base := filepath.Base(name)
		prefix, _, ok := strings.Cut(base, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		version, err := strconv.Atoi(prefix)
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number", base)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, base, version)
		}
		seen[version] = base
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		ms = append(ms, migration{version: version, name: base, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies every migration not yet recorded in schema_migrations, each
// in its own transaction together with its record, so a crash never leaves a
// half-applied migration behind. Safe when several processes open the same
// file: the immediate transaction serialises them and the check is inside it.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, toDB(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE, see writerOptions), committing
// when fn returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one worth reporting
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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
