package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Limit is a ceiling on events of one kind for one value: at most Max within Window (a
// sliding window), e.g. 5 codes sent to one address in 10 minutes. It is counted in the
// database, so every instance of the app sees the same count.
type Limit struct {
	Kind  string // what is counted, e.g. "send-ip"; one Kind has one Max and Window
	Value string // whose events, e.g. an IP address; stored only as a hash with Kind
	Max   int
	// Window is how long an event counts.
	Window time.Duration
}

// key is the limit's key in limit_events: SHA-256 of "kind:value", in hex, so the table
// holds no address or IP.
func (l Limit) key() string {
	sum := sha256.Sum256([]byte(l.Kind + ":" + l.Value))
	return hex.EncodeToString(sum[:])
}

func (l Limit) valid() error {
	if l.Kind == "" || l.Max <= 0 || l.Window <= 0 {
		return fmt.Errorf("limit %q: a kind, a positive Max and a positive Window are required", l.Kind)
	}
	return nil
}

// Reservation is the events one Reserve recorded, to Release if what they counted did not
// happen after all.
type Reservation struct {
	id   string
	keys []string
}

// sweepEvery is how many limit writes pass between two sweeps of every expired event; a
// key's own expired events go at each of its writes.
const sweepEvery = 256

// Reserve records one event under every limit, or none of them when any is at its Max (ok
// false): a refusal by one limit costs the others nothing. The counts and the inserts are
// one transaction, locked per key, so of any number of concurrent calls, from any number of
// instances, no more than Max succeed within a window.
func (s *Store) Reserve(ctx context.Context, limits ...Limit) (r Reservation, ok bool, err error) {
	if len(limits) == 0 {
		return Reservation{}, false, errors.New("reserve: no limits given")
	}
	r.keys = make([]string, len(limits))
	byKey := make(map[string]Limit, len(limits))
	for i, l := range limits {
		if err := l.valid(); err != nil {
			return Reservation{}, false, fmt.Errorf("reserve: %w", err)
		}
		r.keys[i] = l.key()
		if _, dup := byKey[r.keys[i]]; dup {
			return Reservation{}, false, fmt.Errorf("reserve: limit %s given twice", l.Kind)
		}
		byKey[r.keys[i]] = l
	}
	sort.Strings(r.keys)
	if r.id, err = NewID(s.rand); err != nil {
		return Reservation{}, false, fmt.Errorf("reserve: %w", err)
	}
	now := s.now()
	err = s.limitTx(ctx, r.keys, func(tx *sql.Tx) error {
		for _, k := range r.keys {
			n, err := s.liveEvents(ctx, tx, k, now)
			if err != nil {
				return err
			}
			if n >= byKey[k].Max {
				return nil // ok stays false: insert nothing
			}
		}
		for _, k := range r.keys {
			if _, err := tx.ExecContext(ctx, s.q.insertLimit, k, r.id, "", toDB(now.Add(byKey[k].Window))); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		}
		ok = true
		return nil
	})
	if err != nil || !ok {
		return Reservation{}, false, wrapErr("reserve", err)
	}
	return r, true, nil
}

// Release takes back the events of a reservation, for something that did not happen after
// all (Authsignal answered with an error and sent no code). Releasing twice, or the zero
// Reservation, does nothing.
func (s *Store) Release(ctx context.Context, r Reservation) error {
	for _, k := range r.keys {
		if _, err := s.e.writer().ExecContext(ctx, s.q.releaseLimit, k, r.id); err != nil {
			return fmt.Errorf("release reservation: %w", err)
		}
	}
	return nil
}

// RecordFailure counts an event under l whatever its Max (a wrong code was entered),
// once per tag within the window: the same wrong code sent twice (a double click) is one
// guess. tag is stored only as a hash; "" means every call counts.
func (s *Store) RecordFailure(ctx context.Context, l Limit, tag string) error {
	if err := l.valid(); err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	if tag != "" {
		sum := sha256.Sum256([]byte(tag))
		tag = hex.EncodeToString(sum[:])
	}
	id, err := NewID(s.rand)
	if err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	key, now := l.key(), s.now()
	err = s.limitTx(ctx, []string{key}, func(tx *sql.Tx) error {
		if _, err := s.liveEvents(ctx, tx, key, now); err != nil {
			return err
		}
		if tag != "" {
			var seen int
			if err := tx.QueryRowContext(ctx, s.q.tagSeen, key, tag, toDB(now)).Scan(&seen); err != nil {
				return fmt.Errorf("find tag: %w", err)
			}
			if seen > 0 {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, s.q.insertLimit, key, id, tag, toDB(now.Add(l.Window))); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
	return wrapErr("record failure", err)
}

// LockedUntil reports whether l is at its Max, and if so when its oldest counted event
// leaves the window, which frees it.
func (s *Store) LockedUntil(ctx context.Context, l Limit) (time.Time, bool, error) {
	if err := l.valid(); err != nil {
		return time.Time{}, false, fmt.Errorf("locked until: %w", err)
	}
	// The Max-th newest live event: with Max of them live, the limit holds until it expires.
	var expires int64
	err := s.e.reader().QueryRowContext(ctx, s.q.lockedUntil, l.key(), toDB(s.now()), l.Max-1).Scan(&expires)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("locked until: %w", err)
	}
	return fromDB(expires), true, nil
}

// limitTx runs fn in a write transaction that holds the lock of every key (sorted), then,
// every sweepEvery calls, deletes every expired event of every key.
func (s *Store) limitTx(ctx context.Context, keys []string, fn func(*sql.Tx) error) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.e.lockLimits(ctx, tx, keys); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		return err
	}
	if s.limitWrites.Add(1)%sweepEvery == 0 {
		if _, err := s.e.writer().ExecContext(ctx, s.q.sweepLimits, toDB(s.now())); err != nil {
			return fmt.Errorf("sweep expired limit events: %w", err)
		}
	}
	return nil
}

// liveEvents deletes key's expired events and counts the rest; the caller holds key's lock.
func (s *Store) liveEvents(ctx context.Context, tx *sql.Tx, key string, now time.Time) (int, error) {
	if _, err := tx.ExecContext(ctx, s.q.expireLimit, key, toDB(now)); err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q.countLimit, key, toDB(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// wrapErr prefixes a non-nil err with what.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
