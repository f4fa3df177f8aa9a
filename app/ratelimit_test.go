package app

import (
	"fmt"
	"testing"
	"time"
)

func TestSendLimiter(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newSendLimiter(2, 10*time.Minute, clock.Now)
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "a", true},
		{time.Minute, "a", true},
		{time.Minute, "a", false},                // third within the window
		{0, "b", true},                           // other keys are independent
		{8*time.Minute + time.Second, "a", true}, // the first send has left the window
		{0, "a", false},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := l.allow(s.key); got != s.want {
			t.Fatalf("step %d: allow(%q) = %v, want %v", i, s.key, got, s.want)
		}
	}
}

func TestSendLimiterForgetsOldKeys(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newSendLimiter(1, time.Minute, clock.Now)
	for i := 0; i <= sweepAbove; i++ {
		l.allow(fmt.Sprint("key", i))
	}
	clock.Advance(2 * time.Minute)
	l.allow("fresh")
	if n := len(l.sends); n != 1 {
		t.Fatalf("%d keys kept after their window passed, want 1", n)
	}
}
