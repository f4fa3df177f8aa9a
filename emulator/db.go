package emulator

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime/debug"
	"sort"
	"time"

	"github.com/mattn/go-sqlite3" // SQLite driver "sqlite3"

	"example.com/passwordless/store/wal"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// tables lists every table holding state, children first, for reset.
var stateTables = []string{"seen_devices", "actions", "authenticators", "challenges", "messages", "sends", "users"}

// checkpointInterval is how often a file database's write-ahead log is copied into it.
const checkpointInterval = time.Second

// openDB opens the SQLite database and applies pending migrations. For a file it also
// starts the background checkpoints (nil for ":memory:"), so that commits never wait
// for one (store/wal; docs/performance.md).
func openDB(ctx context.Context, path string) (*sql.DB, *wal.Checkpointer, error) {
	memory := path == ":memory:"
	var dsn string
	params := "_foreign_keys=on&_busy_timeout=5000&_txlock=immediate&_stmt_cache_size=64"
	if memory {
		dsn = "file::memory:?" + params
	} else {
		// _txlock=immediate: every transaction takes the write lock at BEGIN, so two
		// writers never deadlock upgrading read locks; busy_timeout makes them queue.
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params + "&_journal_mode=WAL&_synchronous=NORMAL"
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	// One connection, kept open: each connection to :memory: is its own database, and
	// for a file, requests queueing in database/sql are far cheaper than writers
	// sleeping in SQLite's busy handler, or than reopening connections and re-reading
	// the schema (docs/performance.md).
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	// A damaged file stops the start with a sentence, not requests with errors later.
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if se := (sqlite3.Error{}); errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt) {
			return nil, nil, damagedDB(path, err.Error())
		}
		return nil, nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	if !memory {
		var result string
		if err := db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&result); err != nil || result != "ok" {
			db.Close()
			if err != nil {
				result = err.Error()
			}
			return nil, nil, damagedDB(path, result)
		}
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, nil, err
	}
	if memory {
		return db, nil, nil
	}
	checkpoints, err := wal.Start(ctx, db, "sqlite3", dsn, checkpointInterval)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	return db, checkpoints, nil
}

func damagedDB(path, detail string) error {
	return fmt.Errorf("the database %s is damaged or not a SQLite database (%s): restore it from a backup, or move it away to start with an empty one", path, detail)
}

// migrate applies the embedded migrations in file-name order, each once, each in a transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		if err := applyMigration(ctx, db, name, string(body)); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, name, body string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("migration %s: check: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)`, name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("migration %s: record: %w", name, err)
	}
	return tx.Commit()
}

// Group commit. Every write runs through inTx, and inTx hands its function to the
// committer, one goroutine that owns the writes: it runs the functions waiting at that
// moment one after another inside one transaction, each in a savepoint of its own, and
// commits them together. A function that fails rolls back to its savepoint alone. Each
// caller is answered only once the transaction holding its part has committed, so what it
// reports is durable as before; a batch costs one commit instead of one per request.

// maxBatch bounds how many parts one transaction holds.
const maxBatch = 64

// txn is one part of a group-committed transaction: the shared transaction, and the
// outbox messages this part sent, published only when its part commits.
type txn struct {
	*sql.Tx
	staged []Message
}

// part is one inTx call waiting for the committer.
type part struct {
	ctx  context.Context
	fn   func(*txn) error
	done chan error
}

var errClosed = errors.New("emulator: closed")

// inTx runs fn as part of a transaction and returns once that transaction has committed
// (nil) or fn's part was rolled back (fn's error, or the commit's).
func (e *Emulator) inTx(ctx context.Context, fn func(tx *txn) error) error {
	p := &part{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case e.parts <- p:
	case <-e.stopCommits:
		return errClosed
	}
	return <-p.done
}

// commitLoop is the committer: it batches the parts waiting and commits each batch, until
// Close stops it; parts still queued then are answered errClosed.
func (e *Emulator) commitLoop() {
	defer close(e.commitsDone)
	for {
		select {
		case <-e.stopCommits:
			for {
				select {
				case p := <-e.parts:
					p.done <- errClosed
				default:
					return
				}
			}
		case p := <-e.parts:
			batch := []*part{p}
		more:
			for len(batch) < maxBatch {
				select {
				case p := <-e.parts:
					batch = append(batch, p)
				default:
					break more
				}
			}
			e.commitBatch(batch)
		}
	}
}

// commitBatch runs the parts in one transaction, each in a savepoint, and commits.
func (e *Emulator) commitBatch(batch []*part) {
	// Not a request's context: database/sql closes the connection of a transaction whose
	// context is cancelled, and for ":memory:" the connection is the database.
	ctx := context.Background()
	errs := make([]error, len(batch))
	fail := func(err error) {
		for i, p := range batch {
			if errs[i] == nil {
				errs[i] = err
			}
			p.done <- errs[i]
		}
	}
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	defer tx.Rollback()
	parts := make([]*txn, len(batch))
	for i, p := range batch {
		if err := p.ctx.Err(); err != nil {
			errs[i] = err // the caller has gone: nothing to do for it
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT part`); err != nil {
			fail(fmt.Errorf("savepoint: %w", err))
			return
		}
		t := &txn{Tx: tx}
		if errs[i] = runPart(p.fn, t); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO part`); err != nil {
				fail(fmt.Errorf("roll back a part: %w", err))
				return
			}
		} else {
			parts[i] = t
		}
		if _, err := tx.ExecContext(ctx, `RELEASE part`); err != nil {
			fail(fmt.Errorf("release a part: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	for i, p := range batch {
		if parts[i] != nil {
			e.outbox.publish(parts[i].staged)
		}
		p.done <- errs[i]
	}
}

// runPart runs fn, turning a panic into an error so that one request's bug does not stop
// the committer (the part is rolled back like any failed one).
func runPart(fn func(*txn) error, t *txn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in a transaction: %v\n%s", v, debug.Stack())
		}
	}()
	return fn(t)
}

// resetState deletes every row of every state table, re-applies the seed file's users
// (so a reset returns to the start state) and sets the clock offset back to zero.
func (e *Emulator) resetState(ctx context.Context) error {
	err := e.inTx(ctx, func(tx *txn) error {
		for _, t := range stateTables {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
				return fmt.Errorf("reset %s: %w", t, err)
			}
		}
		return e.reseed(ctx, tx)
	})
	if err != nil {
		return err
	}
	e.resetClock()
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// isoTime is the timestamp format of the real API's JSON (ISO 8601, UTC, milliseconds).
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func nullableMS(v sql.NullInt64) string {
	if !v.Valid {
		return ""
	}
	return isoTime(fromMS(v.Int64))
}

var errNotFound = errors.New("not found")
