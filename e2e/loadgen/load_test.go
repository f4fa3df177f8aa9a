package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The load runners are measuring instruments: check they count what they say.
func TestRunOpenLoop(t *testing.T) {
	o := options{duration: 300 * time.Millisecond, warmup: 100 * time.Millisecond}
	tests := []struct {
		name        string
		rate        float64
		maxInFlight int
		took        time.Duration
		fail        bool
		wantOps     [2]int // recorded operations, min and max
		wantErrs    [2]int
		wantMinLat  time.Duration
	}{
		// 100/s for 300 ms: 30 starts measured, each taking 5 ms.
		{"keeps up", 100, 16, 5 * time.Millisecond, false, [2]int{29, 31}, [2]int{0, 0}, 5 * time.Millisecond},
		// Each takes 50 ms but only 2 may run at once: the starts that find no slot are errors.
		{"cannot keep up", 200, 2, 50 * time.Millisecond, false, [2]int{4, 20}, [2]int{30, 58}, 50 * time.Millisecond},
		{"failing operations", 100, 16, time.Millisecond, true, [2]int{0, 0}, [2]int{29, 31}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runOpenLoop(context.Background(), o, "x", "ops/s", tt.rate, tt.maxInFlight, func(ctx context.Context) error {
				time.Sleep(tt.took)
				if tt.fail {
					return errors.New("no")
				}
				return nil
			})
			if n := len(r.lat); n < tt.wantOps[0] || n > tt.wantOps[1] {
				t.Errorf("recorded %d operations, want %d to %d", n, tt.wantOps[0], tt.wantOps[1])
			}
			if r.errs < tt.wantErrs[0] || r.errs > tt.wantErrs[1] {
				t.Errorf("%d errors, want %d to %d (first: %v)", r.errs, tt.wantErrs[0], tt.wantErrs[1], r.firstEr)
			}
			if len(r.lat) > 0 && r.lat[0] < tt.wantMinLat {
				t.Errorf("shortest latency %v, want at least %v (from the scheduled start)", r.lat[0], tt.wantMinLat)
			}
			if r.offered != tt.rate {
				t.Errorf("offered = %v, want %v", r.offered, tt.rate)
			}
		})
	}
}

func TestRunLoadRecordsOnlyTheMeasuredWindow(t *testing.T) {
	o := options{duration: 200 * time.Millisecond, warmup: 100 * time.Millisecond, concurrency: 2, maxOps: 1 << 20}
	r := runLoad(context.Background(), o, "x", "ops/s", func(int) op {
		return func(context.Context) error { time.Sleep(10 * time.Millisecond); return nil }
	})
	// 2 clients × 200 ms ÷ 10 ms = about 40 operations; the warm-up's 20 are not recorded.
	// Slow machines record fewer; more than 44 would mean the warm-up was counted.
	if n := len(r.lat); n < 15 || n > 44 {
		t.Errorf("recorded %d operations, want about 40", n)
	}
	if rate := r.rate(); rate < 75 || rate > 220 {
		t.Errorf("rate %.0f/s, want about 200/s", rate)
	}
}
