// Package wal checkpoints a SQLite database's write-ahead log in the background.
//
// In WAL mode a commit appends its pages to the -wal file, and by default the commit
// that takes the log past 1,000 pages also copies the log back into the database file
// (a checkpoint, with an fsync of each file) before it returns: the request that made
// that commit waits for all of it. A Checkpointer does the same work on a connection of
// its own, beside the writer: a PASSIVE checkpoint never blocks a writer or a reader.
// Durability is unchanged; only who waits changes (docs/performance.md).
package wal

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// WriterAutoCheckpoint is the log size, in pages (about 40 MB), at which the writer
// still checkpoints by itself: a bound on the log for when background checkpoints fall
// behind or fail.
const WriterAutoCheckpoint = 10_000

// Checkpointer runs a PASSIVE checkpoint at a fixed interval until Close.
type Checkpointer struct {
	db   *sql.DB // its own connection, never the writer's
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	last Result // of the latest background checkpoint, for tests
}

// Result is what one checkpoint reports, in WAL frames (pages).
type Result struct {
	Busy         bool // it could not run now (another checkpoint was running)
	Log          int  // frames in the log
	Checkpointed int  // frames now in the database file
}

// Start leaves checkpoints to the background: it raises writer's own threshold to
// WriterAutoCheckpoint (writer must be a pool of exactly one connection, so that the
// setting sticks; a reopened connection falls back to SQLite's default, which is safe),
// opens dsn on a connection of its own and checkpoints every interval.
func Start(ctx context.Context, writer *sql.DB, driverName, dsn string, every time.Duration) (*Checkpointer, error) {
	if every <= 0 {
		return nil, fmt.Errorf("wal: checkpoint interval must be positive, got %v", every)
	}
	if _, err := writer.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", WriterAutoCheckpoint)); err != nil {
		return nil, fmt.Errorf("wal: set the writer's autocheckpoint: %w", err)
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("wal: open the checkpoint connection: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &Checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := c.Checkpoint(ctx); err != nil {
		db.Close()
		return nil, err
	}
	go c.loop(every)
	return c, nil
}

func (c *Checkpointer) loop(every time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			// An error here (a disk full, say) is not lost work: the log keeps every
			// commit, the next tick tries again and the writer's own threshold bounds it.
			if r, err := c.Checkpoint(context.Background()); err == nil {
				c.mu.Lock()
				c.last = r
				c.mu.Unlock()
			}
		}
	}
}

// Checkpoint runs one PASSIVE checkpoint now: it copies every log frame that no reader
// still needs into the database file, without waiting for anyone.
func (c *Checkpointer) Checkpoint(ctx context.Context) (Result, error) {
	var busy int
	var r Result
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &r.Log, &r.Checkpointed); err != nil {
		return Result{}, fmt.Errorf("wal: checkpoint: %w", err)
	}
	r.Busy = busy != 0
	return r, nil
}

func (c *Checkpointer) lastResult() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Close stops the background checkpoints and closes their connection. The database's
// last connection to close checkpoints what is left.
func (c *Checkpointer) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
