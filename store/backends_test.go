package store

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"example.com/passwordless/internal/testkit"
)

// backend is one database under test: open gives a new *Store on it, with its own
// connections (a second instance of the app), all on one clock.
type backend struct {
	name       string
	clock      *testkit.Clock
	open       func(t testing.TB) *Store
	connect    func(now func() time.Time) (*Store, error) // open without the test's checks
	migrations string                                     // the folder of its migration files
}

// eachBackend runs fn on a fresh store of each database: SQLite in memory, and
// PostgreSQL in a database of its own when TEST_DATABASE_URL is set.
func eachBackend(t *testing.T, fn func(t *testing.T, s *Store, clock *testkit.Clock)) {
	t.Helper()
	eachDatabaseAt(t, ":memory:", func(t *testing.T, db backend) { fn(t, db.open(t), db.clock) })
}

// eachDatabase runs fn on a fresh database of each kind, one that several stores can
// open: a SQLite file, or a PostgreSQL database of its own.
func eachDatabase(t *testing.T, fn func(t *testing.T, db backend)) {
	t.Helper()
	eachDatabaseAt(t, "", fn)
}

// eachDatabaseAt is eachDatabase with SQLite at sqlitePath ("" = a new file).
func eachDatabaseAt(t *testing.T, sqlitePath string, fn func(t *testing.T, db backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		path := sqlitePath
		if path == "" {
			path = filepath.Join(t.TempDir(), "app.db")
		}
		fn(t, newBackend("sqlite", "migrations", func(now func() time.Time) (*Store, error) {
			return Open(context.Background(), path, now)
		}))
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL := testkit.FreshPostgres(t)
		fn(t, newBackend("postgres", "migrations_postgres", func(now func() time.Time) (*Store, error) {
			return OpenPostgres(context.Background(), dbURL, now)
		}))
	})
}

func newBackend(name, migrations string, open func(now func() time.Time) (*Store, error)) backend {
	db := backend{name: name, clock: testkit.NewClock(t0), connect: open, migrations: migrations}
	db.open = func(t testing.TB) *Store {
		t.Helper()
		s, err := open(db.clock.Now)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return db
}

// atOnce runs fn(0) … fn(n-1) in n goroutines released together, and waits for them.
func atOnce(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}
