package wal

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

const walOptions = "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000"

// openWriter opens a WAL database the way store and emulator do: one writer connection.
func openWriter(t *testing.T) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := sql.Open("sqlite3", path+walOptions)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, path
}

// writePages commits n transactions of about one page (4 KiB) each.
func writePages(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	body := strings.Repeat("x", 3500)
	for i := 0; i < n; i++ {
		if _, err := db.Exec(`INSERT INTO rows(body) VALUES (?)`, body); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommitsLeaveTheCheckpointToTheCheckpointer(t *testing.T) {
	db, path := openWriter(t)
	c, err := Start(context.Background(), db, "sqlite3", path+walOptions, time.Hour) // no tick during the test
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Past SQLite's default threshold of 1,000 pages: without the Checkpointer one of
	// these commits would have checkpointed, and the log would hold fewer frames.
	writePages(t, db, 1500)
	got, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Log < 1500 {
		t.Errorf("log holds %d frames after 1,500 one-page commits; a commit checkpointed by itself", got.Log)
	}
	if got.Busy || got.Checkpointed != got.Log {
		t.Errorf("checkpoint = %+v, want every frame copied", got)
	}

	// What the checkpoint copied is in the database file: a fresh connection reads it
	// after the log is gone.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Errorf("the -wal file is still there after the last connection closed (stat: %v)", err)
	}
	again, err := sql.Open("sqlite3", path+walOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var n int
	if err := again.QueryRow(`SELECT COUNT(*) FROM rows`).Scan(&n); err != nil || n != 1500 {
		t.Errorf("rows after reopening = %d, %v; want 1500", n, err)
	}
}

func TestCheckpointsRunInTheBackground(t *testing.T) {
	db, path := openWriter(t)
	c, err := Start(context.Background(), db, "sqlite3", path+walOptions, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writePages(t, db, 200)
	c.mu.Lock()
	c.last = Result{} // forget checkpoints that ran while the test was writing
	c.mu.Unlock()

	// Only the loop checkpoints here; the test only reads what it reported. The log
	// keeps its frames until the next commit, so the next checkpoint sees them all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := c.lastResult()
		if r.Log > 0 && r.Checkpointed == r.Log {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s the latest background checkpoint reported %+v, want every frame copied", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartRefusesABadInterval(t *testing.T) {
	db, path := openWriter(t)
	if _, err := Start(context.Background(), db, "sqlite3", path+walOptions, 0); err == nil {
		t.Fatal("Start with a zero interval: no error")
	}
}
