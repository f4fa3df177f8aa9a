package app

import (
	"sync"
	"time"
)

// sendLimiter is a sliding-window counter of code sends per key (an IP address or a
// recipient). It lives in memory: enough for one process; behind a load balancer use a
// shared store instead.
type sendLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	max    int
	sends  map[string][]time.Time
}

// sweepAbove bounds memory: past this many keys, keys with no recent sends are dropped.
const sweepAbove = 10_000

func (l *sendLimiter) sweep(cutoff time.Time) {
	for key, times := range l.sends {
		if len(times) == 0 || !times[len(times)-1].After(cutoff) {
			delete(l.sends, key)
		}
	}
}

func newSendLimiter(max int, window time.Duration, now func() time.Time) *sendLimiter {
	return &sendLimiter{now: now, window: window, max: max, sends: make(map[string][]time.Time)}
}

// allow records a send for every key and reports true, or records nothing and reports
// false when any key is already at its limit.
func (l *sendLimiter) allow(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	cutoff := now.Add(-l.window)
	if len(l.sends) > sweepAbove {
		l.sweep(cutoff)
	}
	for _, key := range keys {
		recent := l.sends[key][:0]
		for _, at := range l.sends[key] {
			if at.After(cutoff) {
				recent = append(recent, at)
			}
		}
		if len(recent) == 0 {
			delete(l.sends, key)
		} else {
			l.sends[key] = recent
		}
		if len(recent) >= l.max {
			return false
		}
	}
	for _, key := range keys {
		l.sends[key] = append(l.sends[key], now)
	}
	return true
}
