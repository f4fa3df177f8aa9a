// Package migrations loads a folder of numbered SQL migrations, NNNN_description.sql, in
// the order they apply, and applies one with its record in schema_migrations; each
// database's runner (internal/sqlitedb, the store's PostgreSQL engine) chooses the
// transactions and the locks.
package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one file: its version (the number before the first "_"), its base name and
// its SQL.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the *.sql files of files ordered by version, refusing a name without a
// positive number in front and two files with one version.
func Load(files fs.FS) ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, name := range names {
		version, err := Version(name)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, version)
		}
		seen[version] = name
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: version, Name: path.Base(name), SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Version is the number a migration's file name starts with: 0001_init.sql is 1. The name
// may have a folder in front ("migrations/0001_init.sql").
func Version(name string) (int, error) {
	prefix, _, ok := strings.Cut(path.Base(name), "_")
	if !ok {
		return 0, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
	}
	version, err := strconv.Atoi(prefix)
	if err != nil || version <= 0 {
		return 0, fmt.Errorf("migration %s: name must start with a positive number", name)
	}
	return version, nil
}

// Tx is what Apply needs of a transaction.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Dialect is a database's two statements on schema_migrations(version, name, applied_at):
// whether a version is recorded (one boolean row, taking the version) and the record of one
// (taking version, name and applied_at).
type Dialect struct {
	IsApplied, Record string
}

// Apply runs m in tx and records it, applied at appliedAt (Unix nanoseconds), unless tx
// already finds it recorded: the migration and its record commit or roll back together.
func (d Dialect) Apply(ctx context.Context, tx Tx, m Migration, appliedAt int64) error {
	var done bool
	if err := tx.QueryRowContext(ctx, d.IsApplied, m.Version).Scan(&done); err != nil {
		return fmt.Errorf("is it applied: %w", err)
	}
	if done {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.Record, m.Version, m.Name, appliedAt); err != nil {
		return fmt.Errorf("record it: %w", err)
	}
	return nil
}
