package app

import (
	"fmt"
	"testing"
	"time"

	"example.com/passwordless/internal/testkit"
)

func TestWindowLimiter(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newWindowLimiter(2, 10*time.Minute, clock.Now)
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "a", true},
		{time.Minute, "a", true},
		{time.Minute, "a", false},                // third within the window
		{0, "b", true},                           // other keys are independent
		{8*time.Minute + time.Second, "a", true}, // the first event has left the window
		{0, "a", false},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := l.reserve(s.key); got != s.want {
			t.Fatalf("step %d: reserve(%q) = %v, want %v", i, s.key, got, s.want)
		}
	}
	// A released reservation frees its place.
	l.release("a")
	if !l.reserve("a") {
		t.Fatal("reserve after release refused")
	}
}

func TestWindowLimiterLock(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newWindowLimiter(3, time.Hour, clock.Now)
	for i := 0; i < 3; i++ {
		if _, locked := l.lockedUntil("a"); locked {
			t.Fatalf("locked after %d events", i)
		}
		l.record("a", fmt.Sprint("code", i))
		l.record("a", fmt.Sprint("code", i)) // the same one again counts once
		clock.Advance(10 * time.Minute)
	}
	until, locked := l.lockedUntil("a")
	if want := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC); !locked || !until.Equal(want) {
		t.Fatalf("lockedUntil = %v, %v; want %v (the first event leaves the window)", until, locked, want)
	}
	clock.Advance(until.Sub(clock.Now()) + time.Second)
	if _, locked := l.lockedUntil("a"); locked {
		t.Fatal("still locked after the window")
	}
}

func TestWindowLimiterForgetsOldKeys(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newWindowLimiter(1, time.Minute, clock.Now)
	for i := 0; i <= sweepAbove; i++ {
		l.reserve(fmt.Sprint("key", i))
	}
	clock.Advance(2 * time.Minute)
	l.reserve("fresh")
	if n := len(l.events); n != 1 {
		t.Fatalf("%d keys kept after their window passed, want 1", n)
	}
}
