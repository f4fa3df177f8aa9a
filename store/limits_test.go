package store

import (
	"context"
	"fmt"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"example.com/passwordless/internal/testkit"
)

func TestReserve(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, clock *testkit.Clock) {
		ctx := context.Background()
		limit := func(value string) Limit { return Limit{Kind: "send", Value: value, Max: 2, Window: 10 * time.Minute} }
		steps := []struct {
			advance time.Duration
			value   string
			want    bool
		}{
			{0, "a", true},
			{time.Minute, "a", true},
			{time.Minute, "a", false},                // third within the window
			{0, "b", true},                           // other values are independent
			{8*time.Minute + time.Second, "a", true}, // the first event has left the window
			{0, "a", false},
		}
		var last Reservation
		for i, st := range steps {
			clock.Advance(st.advance)
			r, ok, err := s.Reserve(ctx, limit(st.value))
			if err != nil || ok != st.want {
				t.Fatalf("step %d: Reserve(%q) = %v, %v; want %v", i, st.value, ok, err, st.want)
			}
			if ok && st.value == "a" {
				last = r
			}
		}
		// A released reservation frees its place, once.
		for range 2 {
			if err := s.Release(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok, _ := s.Reserve(ctx, limit("a")); !ok {
			t.Fatal("reserve after release refused")
		}
		if _, ok, _ := s.Reserve(ctx, limit("a")); ok {
			t.Fatal("a second release freed a second place")
		}
		if err := s.Release(ctx, Reservation{}); err != nil {
			t.Fatalf("releasing nothing: %v", err)
		}
	})
}

// A reservation under two limits takes from both or from neither: a refusal by the
// address's limit costs the IP nothing.
func TestReserveIsAllOrNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ *testkit.Clock) {
		ctx := context.Background()
		ip := Limit{Kind: "send-ip", Value: "203.0.113.5", Max: 3, Window: time.Minute}
		address := func(v string) Limit { return Limit{Kind: "send-address", Value: v, Max: 1, Window: time.Minute} }
		if _, ok, err := s.Reserve(ctx, ip, address("a@example.com")); !ok || err != nil {
			t.Fatalf("first: %v, %v", ok, err)
		}
		for range 3 { // the address is at its limit: the IP loses nothing
			if _, ok, err := s.Reserve(ctx, ip, address("a@example.com")); ok || err != nil {
				t.Fatalf("the address's second: %v, %v; want refused", ok, err)
			}
		}
		r, ok, _ := s.Reserve(ctx, address("b@example.com"), ip) // the order of the limits does not matter
		if !ok {
			t.Fatal("the IP's second refused")
		}
		if err := s.Release(ctx, r); err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, true, false} {
			if _, ok, _ := s.Reserve(ctx, ip, address(fmt.Sprint(i, "@example.com"))); ok != want {
				t.Fatalf("the IP's reservation %d: %v, want %v", i+2, ok, want)
			}
		}
		bad := [][]Limit{nil, {{Kind: "x", Value: "v", Max: 0, Window: time.Minute}}, {{Kind: "x", Max: 1}}, {ip, ip}}
		for _, limits := range bad {
			if _, _, err := s.Reserve(ctx, limits...); err == nil {
				t.Errorf("Reserve(%+v) succeeded, want an error", limits)
			}
		}
	})
}

func TestRecordFailureAndLockedUntil(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, clock *testkit.Clock) {
		ctx := context.Background()
		guesses := Limit{Kind: "guess", Value: "ada@example.com", Max: 3, Window: time.Hour}
		for i := 0; i < 3; i++ {
			if _, locked, err := s.LockedUntil(ctx, guesses); locked || err != nil {
				t.Fatalf("locked after %d events (%v)", i, err)
			}
			for range 2 { // the same one again counts once
				if err := s.RecordFailure(ctx, guesses, fmt.Sprint("code", i)); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(10 * time.Minute)
		}
		until, locked, err := s.LockedUntil(ctx, guesses)
		if want := t0.Add(time.Hour); !locked || err != nil || !until.Equal(want) {
			t.Fatalf("LockedUntil = %v, %v, %v; want %v (the first event leaves the window)", until, locked, err, want)
		}
		// Another value is not locked; untagged failures each count.
		other := guesses
		other.Value = "bob@example.com"
		for range 2 {
			s.RecordFailure(ctx, other, "")
		}
		if _, locked, _ := s.LockedUntil(ctx, other); locked {
			t.Fatal("two failures lock a limit of three")
		}
		s.RecordFailure(ctx, other, "")
		if _, locked, _ := s.LockedUntil(ctx, other); !locked {
			t.Fatal("three untagged failures do not lock a limit of three")
		}
		clock.Advance(until.Sub(clock.Now()) + time.Second)
		if _, locked, _ := s.LockedUntil(ctx, guesses); locked {
			t.Fatal("still locked after the window")
		}
		// The table holds digests only: no address, IP or code.
		assertLimitRowsAreDigests(t, s)
	})
}

func assertLimitRowsAreDigests(t *testing.T, s *Store) {
	t.Helper()
	rows, err := s.e.writer().QueryContext(context.Background(), `SELECT key, tag FROM limit_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	digest := regexp.MustCompile(`^[0-9a-f]{64}$`)
	n := 0
	for rows.Next() {
		var key, tag string
		if err := rows.Scan(&key, &tag); err != nil {
			t.Fatal(err)
		}
		if !digest.MatchString(key) || (tag != "" && !digest.MatchString(tag)) {
			t.Errorf("limit_events row %q, %q: want SHA-256 digests", key, tag)
		}
		n++
	}
	if n == 0 {
		t.Error("no limit_events rows to check")
	}
}

// Expired events do not stay: a key's go at its next write, and every sweepEvery writes
// every key's go.
func TestLimitEventsAreSwept(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, clock *testkit.Clock) {
		ctx := context.Background()
		events := func() int {
			t.Helper()
			var n int
			if err := s.e.writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM limit_events`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		again := Limit{Kind: "k", Value: "again", Max: 5, Window: time.Minute}
		for range 2 {
			if _, ok, err := s.Reserve(ctx, again); !ok || err != nil {
				t.Fatalf("again: %v, %v", ok, err)
			}
			clock.Advance(2 * time.Minute)
		}
		if n := events(); n != 1 {
			t.Fatalf("%d events after a key's second write, want 1: its expired one stayed", n)
		}
		for i := 0; i < sweepEvery-3; i++ {
			if _, ok, err := s.Reserve(ctx, Limit{Kind: "k", Value: fmt.Sprint(i), Max: 1, Window: time.Minute}); !ok || err != nil {
				t.Fatalf("reserve %d: %v, %v", i, ok, err)
			}
		}
		clock.Advance(2 * time.Minute)
		if _, ok, err := s.Reserve(ctx, Limit{Kind: "k", Value: "fresh", Max: 1, Window: time.Minute}); !ok || err != nil {
			t.Fatalf("fresh: %v, %v", ok, err)
		}
		if n := events(); n != 1 {
			t.Fatalf("%d events kept after their window passed, want 1", n)
		}
	})
}

// The limits hold across instances under concurrency: of 20 reservations at once, through
// two stores on one database, exactly Max succeed; of 20 failures with one tag, one counts.
// Several rounds, on warm connections, so that a race has every chance to show.
func TestLimitsAtomicAcrossInstances(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) {
		ctx := context.Background()
		instances := []*Store{db.open(t), db.open(t)}
		const n, max, rounds = 20, 5, 5
		atOnce(n, func(i int) { instances[i%2].Ping(ctx) }) // open the connections first
		for round := range rounds {
			ip := Limit{Kind: "send-ip", Value: fmt.Sprint("203.0.113.", round), Max: max, Window: time.Hour}
			guess := Limit{Kind: "guess", Value: fmt.Sprint(round, "@example.com"), Max: 2, Window: time.Hour}
			var reserved atomic.Int32
			atOnce(n, func(i int) {
				s := instances[i%2]
				// Each also reserves under an address of its own, as a sign-in does.
				_, ok, err := s.Reserve(ctx, ip, Limit{Kind: "send-address", Value: fmt.Sprint(round, "-", i), Max: 5, Window: time.Hour})
				if err != nil {
					t.Error(err)
				}
				if ok {
					reserved.Add(1)
				}
				if err := s.RecordFailure(ctx, guess, "the same code"); err != nil {
					t.Error(err)
				}
			})
			if reserved := int(reserved.Load()); reserved != max {
				t.Errorf("round %d: %d of %d concurrent reservations succeeded, want exactly %d", round, reserved, n, max)
			}
			if _, locked, _ := instances[0].LockedUntil(ctx, guess); locked {
				t.Errorf("round %d: %d failures with one tag counted more than once", round, n)
			}
		}
	})
}
