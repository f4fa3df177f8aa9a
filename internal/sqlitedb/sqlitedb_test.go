package sqlitedb

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func migrationFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, body := range files {
		m[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

var twoMigrations = migrationFS(map[string]string{
	"0002_notes.sql": `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);`,
	"0001_init.sql":  `CREATE TABLE things (id INTEGER PRIMARY KEY);`,
})

func open(t *testing.T, path string, files fstest.MapFS) *DB {
	t.Helper()
	d, err := Open(context.Background(), Options{Path: path, Synchronous: "NORMAL", Readers: 2, Migrations: files})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func recorded(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return strings.Join(out, ",")
}

// Migrations run in their number's order, once each, however often the file is opened.
func TestMigrationsApplyOnceInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	for range 3 {
		d := open(t, path, twoMigrations)
		if got := recorded(t, d.Writer); got != "0001_init.sql,0002_notes.sql" {
			t.Fatalf("recorded %q", got)
		}
		if _, err := d.Writer.Exec(`INSERT INTO notes(body) VALUES ('x')`); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	d := open(t, path, twoMigrations)
	var n int
	if err := d.Reader.QueryRow(`SELECT COUNT(*) FROM notes`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d notes, %v: a migration ran twice or a write was lost", n, err)
	}
	if _, err := d.Reader.Exec(`INSERT INTO notes(body) VALUES ('y')`); err == nil {
		t.Fatal("the reader pool wrote")
	}
}

func TestMigrationNames(t *testing.T) {
	for name, files := range map[string]fstest.MapFS{
		"no number":  migrationFS(map[string]string{"init.sql": "SELECT 1;"}),
		"zero":       migrationFS(map[string]string{"0000_init.sql": "SELECT 1;"}),
		"same twice": migrationFS(map[string]string{"0001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 1;"}),
	} {
		if _, err := Open(context.Background(), Options{Path: ":memory:", Synchronous: "FULL", Migrations: files}); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// The emulator's earlier schema_migrations (keyed by file name, applied_at in
// milliseconds) becomes this one, and what it recorded is not applied again.
func TestEarlierMigrationTableIsConverted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emulator.db")
	old, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`CREATE TABLE things (id INTEGER PRIMARY KEY)`,
		`INSERT INTO schema_migrations VALUES ('migrations/0001_init.sql', 1700000000000)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	d := open(t, path, twoMigrations) // 0001 would fail if run again: "things" exists
	if got := recorded(t, d.Writer); got != "0001_init.sql,0002_notes.sql" {
		t.Fatalf("recorded %q", got)
	}
	var applied int64
	if err := d.Writer.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&applied); err != nil || applied != time.UnixMilli(1700000000000).UnixNano() {
		t.Fatalf("applied_at %d, %v: the earlier record was not kept", applied, err)
	}
}

// A file that is not a database stops the open with a sentence.
func TestDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 300)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{Path: path, Synchronous: "FULL", Migrations: twoMigrations})
	if err == nil || !strings.Contains(err.Error(), "is damaged or not a SQLite database") {
		t.Fatalf("Open = %v", err)
	}
}

// A '?' in a file name is part of the name, not the start of options.
func TestPathWithQuestionMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b.db")
	open(t, path, twoMigrations).Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
}
