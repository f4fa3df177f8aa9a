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
	events map[string][]event
}

// event is one counted event; tag, when set, lets record count a repeat only once.
type event struct {
	at  time.Time
	tag string
}

// sweepAbove bounds memory: past this many keys, keys with no recent events are dropped.
const sweepAbove = 10_000

func newWindowLimiter(max int, window time.Duration, now func() time.Time) *windowLimiter {
	return &windowLimiter{now: now, window: window, max: max, events: make(map[string][]event)}
}

// recent drops key's events older than the window and returns the rest. l.mu is held.
func (l *windowLimiter) recent(key string, now time.Time) []event {
	cutoff := now.Add(-l.window)
	if len(l.events) > sweepAbove {
		for k, evs := range l.events {
			if len(evs) == 0 || !evs[len(evs)-1].at.After(cutoff) {
				delete(l.events, k)
			}
		}
	}
	kept := l.events[key][:0]
	for _, ev := range l.events[key] {
		if ev.at.After(cutoff) {
			kept = append(kept, ev)
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
	l.events[key] = append(l.events[key], event{at: now})
	return true
}

// release takes back the newest event of key, for an event that did not happen after all.
func (l *windowLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if evs := l.events[key]; len(evs) > 0 {
		l.events[key] = evs[:len(evs)-1]
	}
}

// record counts an event for key whatever the limit (a wrong code happened), once per tag
// within the window: the same wrong code sent twice (a double click) is one guess.
func (l *windowLimiter) record(key, tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, ev := range l.recent(key, now) {
		if tag != "" && ev.tag == tag {
			return
		}
	}
	l.events[key] = append(l.events[key], event{at: now, tag: tag})
}

// lockedUntil reports whether key is at its limit, and when its oldest counted event
// leaves the window, which frees it.
func (l *windowLimiter) lockedUntil(key string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.recent(key, l.now())
	if len(evs) < l.max {
		return time.Time{}, false
	}
	return evs[len(evs)-l.max].at.Add(l.window), true
}
