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

// openDB opens the emulator's database. A file gets one writer connection, which only the
// committer uses, and two read-only connections for the reads outside it, which WAL lets
// run beside a commit. ":memory:" gets one connection for everything: each connection to it
// is its own database. Requests queueing in database/sql are far cheaper than writers
// sleeping in SQLite's busy handler (docs/performance.md). NORMAL synchronous: a
// development tool's state survives a crash of the process, not a power cut.
func openDB(ctx context.Context, path string, now func() time.Time) (*sqlitedb.DB, error) {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return sqlitedb.Open(ctx, sqlitedb.Options{Path: path, Synchronous: "NORMAL", Readers: 2, Migrations: migrations, Now: now})
}
