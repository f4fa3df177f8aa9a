package app

import (
	"sync"
	"time"
)

// windowLimiter is a sliding-window counter of events per key (an IP address or a
// recipient): code sends, or wrong codes. It lives in memory: enough for one process;
// behind a load balancer use a shared store instead. Keys must not alias request memory
// (the app runs Fiber with Immutable, so strings from the request are copies).
type windowLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	max    int
	events map[string][]time.Time
}

// sweepAbove bounds memory: past this many keys, keys with no recent events are dropped.
const sweepAbove = 10_000

func newWindowLimiter(max int, window time.Duration, now func() time.Time) *windowLimiter {
	return &windowLimiter{now: now, window: window, max: max, events: make(map[string][]time.Time)}
}

// recent drops key's events older than the window and returns the rest. l.mu is held.
func (l *windowLimiter) recent(key string, now time.Time) []time.Time {
	cutoff := now.Add(-l.window)
	if len(l.events) > sweepAbove {
		for k, times := range l.events {
			if len(times) == 0 || !times[len(times)-1].After(cutoff) {
				delete(l.events, k)
			}
		}
	}
	kept := l.events[key][:0]
	for _, at := range l.events[key] {
		if at.After(cutoff) {
			kept = append(kept, at)
		}
	}
	if len(kept) == 0 {
		delete(l.events, key)
		return nil
	}
	l.events[key] = kept
	return kept
}

// reserve records an event for key and reports true, or records nothing and reports
// false when key is at its limit.
func (l *windowLimiter) reserve(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.recent(key, now)) >= l.max {
		return false
	}
	l.events[key] = append(l.events[key], now)
	return true
}

// release takes back the newest event of key, for an event that did not happen after all.
func (l *windowLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if times := l.events[key]; len(times) > 0 {
		l.events[key] = times[:len(times)-1]
	}
}

// record counts an event for key whatever the limit (a wrong code happened).
func (l *windowLimiter) record(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.recent(key, now)
	l.events[key] = append(l.events[key], now)
}

// lockedUntil reports whether key is at its limit, and when its oldest counted event
// leaves the window, which frees it.
func (l *windowLimiter) lockedUntil(key string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.recent(key, l.now())
	if len(times) < l.max {
		return time.Time{}, false
	}
	return times[len(times)-l.max].Add(l.window), true
}
