package state

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"time"

	"github.com/mattn/go-sqlite3" // SQLite driver "sqlite3"

	"example.com/passwordless/store/wal"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

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
