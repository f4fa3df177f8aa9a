package state

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"runtime/debug"
)

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
	events []Event // sent (as webhooks) if this part commits

	// With a delivery provider (inTxSending), sent messages are held for it instead of
	// published at the commit.
	holdMessages bool
	held         []Message
}

// The statements of a part run on the batch's context, whatever context they are given:
// the caller waits for the whole batch anyway, an interrupted statement would fail its
// part for nothing, and a cancellable context costs every statement a goroutine that
// watches it (in database/sql and in the driver).

func (t *txn) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(context.Background(), query, args...)
}

func (t *txn) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(context.Background(), query, args...)
}

func (t *txn) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(context.Background(), query, args...)
}

// part is one inTx call waiting for the committer.
type part struct {
	ctx  context.Context
	fn   func(*txn) error
	done chan error
}

// inTx runs fn as part of a transaction and returns once that transaction has committed
// (nil) or fn's part was rolled back (fn's error, or the commit's).
func (s *Store) inTx(ctx context.Context, fn func(tx *txn) error) error {
	p := &part{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.parts <- p:
	case <-s.stopCommits:
		return ErrClosed
	}
	return <-p.done
}

// commitLoop is the committer: it batches the parts waiting and commits each batch, until
// Close stops it; parts still queued then are answered ErrClosed.
func (s *Store) commitLoop() {
	defer close(s.commitsDone)
	for {
		select {
		case <-s.stopCommits:
			for {
				select {
				case p := <-s.parts:
					p.done <- ErrClosed
				default:
					return
				}
			}
		case p := <-s.parts:
			batch := []*part{p}
			// Let the handlers that are ready hand in their parts first: a batch of two
			// commits about as fast as a batch of one (docs/performance.md).
			runtime.Gosched()
		more:
			for len(batch) < maxBatch {
				select {
				case p := <-s.parts:
					batch = append(batch, p)
				default:
					break more
				}
			}
			s.commitBatch(batch)
		}
	}
}

// commitBatch runs the parts in one transaction, each in a savepoint, and commits.
func (s *Store) commitBatch(batch []*part) {
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
	tx, err := s.sqlite.Writer.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	defer tx.Rollback()
	parts := make([]*txn, len(batch))
	// Alone in its transaction, a part needs no savepoint: if it fails, nothing commits.
	savepoints := len(batch) > 1
	for i, p := range batch {
		if err := p.ctx.Err(); err != nil {
			errs[i] = err // the caller has gone: nothing to do for it
			continue
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT part`); err != nil {
				fail(fmt.Errorf("savepoint: %w", err))
				return
			}
		}
		t := &txn{Tx: tx}
		errs[i] = runPart(p.fn, t)
		switch {
		case errs[i] == nil:
			parts[i] = t
		case !savepoints:
			p.done <- errs[i] // the deferred Rollback undoes it
			return
		default:
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO part`); err != nil {
				fail(fmt.Errorf("roll back a part: %w", err))
				return
			}
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, `RELEASE part`); err != nil {
				fail(fmt.Errorf("release a part: %w", err))
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	for i, p := range batch {
		if parts[i] != nil {
			s.publish(parts[i].staged)
			for _, ev := range parts[i].events {
				s.notify(ev)
			}
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
