package state

import (
	"context"
	"embed"
	"io/fs"
	"time"

	"example.com/passwordless/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// openDB opens the emulator's database: one connection for everything, reads included. Each
// connection to ":memory:" is its own database, and for a file, requests queueing in
// database/sql are far cheaper than writers sleeping in SQLite's busy handler, or than
// reopening connections and re-reading the schema (docs/performance.md). NORMAL
// synchronous: a development tool's state survives a crash of the process, not a power cut.
func openDB(ctx context.Context, path string, now func() time.Time) (*sqlitedb.DB, error) {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return sqlitedb.Open(ctx, sqlitedb.Options{Path: path, Synchronous: "NORMAL", Migrations: migrations, Now: now})
}
