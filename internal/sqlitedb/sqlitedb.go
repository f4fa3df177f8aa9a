// Package sqlitedb opens the project's SQLite databases, the app's and the emulator's, one
// way: a writer connection (and read-only ones), the damaged-file check, embedded
// migrations applied once each, and the write-ahead log checkpointed in the background.
//
// Queries on these databases write a bound value as +? (unary plus) in any statement that
// orders or limits: SQLite marks a bare ? there as one that could change the plan, and
// go-sqlite3 clears the bindings every time it reuses a cached statement, which makes SQLite
// prepare a marked statement again on every use (docs/performance.md).
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"example.com/passwordless/internal/migrations"
	"example.com/passwordless/internal/sqlitedb/wal"
)

// Options say how to open a database.
type Options struct {
	Path string // a file, or ":memory:" for a private in-memory database
	// Synchronous is the file's durability: "FULL" (a commit survives a power cut, at the
	// price of an fsync per commit) or "NORMAL" (it survives a crash of the process).
	Synchronous string
	// Readers is how many read-only connections a file gets beside the writer (WAL lets
	// them read while it writes); 0 = every read goes through the writer's connection.
	Readers int
	// Migrations holds NNNN_description.sql files, applied in NNNN order, each once.
	Migrations fs.FS
	Now        func() time.Time // the clock of schema_migrations.applied_at
}

// DB is an open database.
type DB struct {
	// Writer is the one writing connection; every transaction on it begins IMMEDIATE
	// (takes the write lock at once), which turns read-then-write races into queueing.
	// For ":memory:" it is the whole database: each connection to it is a database of its own.
	Writer *sql.DB
	// Reader is the read-only pool: query-only connections whose transactions begin
	// DEFERRED, so a read is a snapshot that never waits for the writer. It is Writer
	// itself for ":memory:" or Options.Readers 0.
	Reader *sql.DB

	checkpoints *wal.Checkpointer // nil for ":memory:"
}

// checkpointInterval is how often the write-ahead log is copied into the database file.
const checkpointInterval = time.Second

// params are go-sqlite3 connection parameters (see the driver's sqlite3.go): foreign keys
// enforced, wait up to 5 s for a lock, and a cache of prepared statements per connection.
const params = "_foreign_keys=on&_busy_timeout=5000&_stmt_cache_size=64"

// Open opens (creating if needed) the database, checks that a file is an undamaged
// database, applies pending migrations and starts the background checkpoints.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.Path == "" {
		return nil, errors.New("empty database path")
	}
	if o.Synchronous != "FULL" && o.Synchronous != "NORMAL" {
		return nil, fmt.Errorf("synchronous must be FULL or NORMAL, not %q", o.Synchronous)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	memory := o.Path == ":memory:"
	base := "file::memory:?" + params
	if !memory {
		// The file name as a URI path: a '?' or '#' in it is escaped, not read as options.
		base = "file:" + (&url.URL{Path: o.Path}).EscapedPath() + "?" + params + "&_journal_mode=WAL&_synchronous=" + o.Synchronous
	}
	writer, err := sql.Open("sqlite3", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", o.Path, err)
	}
	// One writer connection, kept open: writers queueing in database/sql wait far less than
	// writers sleeping in SQLite's busy handler (docs/performance.md).
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	d := &DB{Writer: writer, Reader: writer}
	if err := d.open(ctx, o, memory, base); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) open(ctx context.Context, o Options, memory bool, base string) error {
	// A damaged file stops the start with a sentence, not requests with errors later.
	if err := d.Writer.PingContext(ctx); err != nil {
		if IsDamaged(err) {
			return damaged(o.Path, err.Error())
		}
		return fmt.Errorf("open sqlite %s: %w", o.Path, err)
	}
	if !memory {
		var result string
		if err := d.Writer.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&result); err != nil || result != "ok" {
			if err != nil {
				result = err.Error()
			}
			return damaged(o.Path, result)
		}
	}
	if err := migrate(ctx, d.Writer, o.Migrations, o.Now); err != nil {
		return fmt.Errorf("open sqlite %s: %w", o.Path, err)
	}
	if memory {
		return nil
	}
	if o.Readers > 0 {
		reader, err := sql.Open("sqlite3", base+"&_txlock=deferred&_query_only=true")
		if err != nil {
			return fmt.Errorf("open sqlite %s: %w", o.Path, err)
		}
		reader.SetMaxOpenConns(o.Readers)
		reader.SetMaxIdleConns(o.Readers)
		d.Reader = reader
	}
	// Commits no longer wait for a checkpoint: it runs beside them (wal).
	var err error
	if d.checkpoints, err = wal.Start(ctx, d.Writer, "sqlite3", base, checkpointInterval); err != nil {
		return fmt.Errorf("open sqlite %s: %w", o.Path, err)
	}
	return nil
}

// Close stops the checkpoints and closes every connection. Safe to call twice.
func (d *DB) Close() error {
	var err error
	if d.checkpoints != nil {
		err = d.checkpoints.Close()
		d.checkpoints = nil
	}
	if d.Reader != d.Writer {
		err = errors.Join(err, d.Reader.Close())
	}
	return errors.Join(err, d.Writer.Close())
}

// IsDamaged reports whether err is SQLite finding a file that is not a database or is corrupt.
func IsDamaged(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

func damaged(path, detail string) error {
	return fmt.Errorf("the database %s is damaged or not a SQLite database (%s): restore it from a backup, or move it away to start with an empty one", path, detail)
}

// InTx runs fn in a transaction of db, committing when fn returns nil and rolling back
// otherwise.
func InTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
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

// migrate applies every migration not yet recorded in schema_migrations, each in its own
// transaction together with its record, so a crash never leaves a half-applied migration
// behind. Safe when several processes open the same file: the immediate transaction
// serialises them and the check is inside it.
func migrate(ctx context.Context, db *sql.DB, files fs.FS, now func() time.Time) error {
	ms, err := migrations.Load(files)
	if err != nil {
		return err
	}
	if err := InTx(ctx, db, func(tx *sql.Tx) error { return migrationTable(ctx, tx) }); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	sqlite := migrations.Dialect{
		IsApplied: `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`,
		Record:    `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
	}
	for _, m := range ms {
		if err := InTx(ctx, db, func(tx *sql.Tx) error { return sqlite.Apply(ctx, tx, m, now().UnixNano()) }); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// migrationTable creates schema_migrations, or converts the emulator's earlier one (keyed
// by file name, "migrations/0001_init.sql", with applied_at in milliseconds) to this
// layout, keeping what it records.
func migrationTable(ctx context.Context, tx *sql.Tx) error {
	var cols []string
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info('schema_migrations')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	const create = `CREATE TABLE schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`
	switch strings.Join(cols, ",") {
	case "":
		_, err := tx.ExecContext(ctx, create)
		return err
	case "version,name,applied_at":
		return nil
	case "name,applied_at":
		old, err := tx.QueryContext(ctx, `SELECT name, applied_at FROM schema_migrations`)
		if err != nil {
			return err
		}
		type rec struct {
			name    string
			applied int64
		}
		var recs []rec
		for old.Next() {
			var r rec
			if err := old.Scan(&r.name, &r.applied); err != nil {
				old.Close()
				return err
			}
			recs = append(recs, r)
		}
		old.Close()
		if err := old.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE schema_migrations`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, create); err != nil {
			return err
		}
		for _, r := range recs {
			version, err := migrations.Version(r.name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				version, path.Base(r.name), time.UnixMilli(r.applied).UnixNano()); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown layout (columns %s)", strings.Join(cols, ", "))
}
