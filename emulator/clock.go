package emulator

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Clock control for tests: POST /emulator/clock moves the emulator's notion of "now"
// forward by an offset added to the injected clock, so a test can expire codes, tokens
// and send windows without sleeping. The offset only grows (time never runs backwards
// for stored rows) until a reset sets it back to zero.

const (
	maxClockAdvance = 366 * 24 * time.Hour       // one step
	maxClockOffset  = 100 * 366 * 24 * time.Hour // in total: far from int64 overflow
)

// clockOffset is safe for concurrent use; handlers read it on every e.now().
type clockOffset struct{ ns atomic.Int64 }

func (c *clockOffset) get() time.Duration { return time.Duration(c.ns.Load()) }

// advance adds d (0 < d <= maxClockAdvance) and returns the new offset.
func (c *clockOffset) advance(d time.Duration) (time.Duration, error) {
	if d <= 0 || d > maxClockAdvance {
		return 0, badRequest("advance must be positive and at most 8784h (366 days), like \"11m\" or \"24h\".")
	}
	for {
		old := c.ns.Load()
		next := old + int64(d)
		if time.Duration(next) > maxClockOffset {
			return 0, badRequest("The clock offset would exceed about 100 years; POST /emulator/reset first.")
		}
		if c.ns.CompareAndSwap(old, next) {
			return time.Duration(next), nil
		}
	}
}

// withClockOffset wraps base so every reading includes the current offset.
func (e *Emulator) withClockOffset(base func() time.Time) func() time.Time {
	return func() time.Time { return base().Add(e.clock.get()) }
}

// resetClock sets the offset back to zero (POST /emulator/reset does, via resetState).
func (e *Emulator) resetClock() { e.clock.ns.Store(0) }

type clockRequest struct {
	Advance string `json:"advance"`
}

type clockResponse struct {
	Now    string `json:"now"`
	Offset string `json:"offset"`
}

func (e *Emulator) clockState() clockResponse {
	return clockResponse{Now: e.now().UTC().Format(time.RFC3339), Offset: e.clock.get().String()}
}

func (e *Emulator) handleGetClock(w http.ResponseWriter, r *http.Request) {
	e.writeJSON(w, http.StatusOK, e.clockState())
}

// handleAdvanceClock serves POST /emulator/clock {"advance": "11m"}.
func (e *Emulator) handleAdvanceClock(w http.ResponseWriter, r *http.Request) error {
	var req clockRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Advance == "" {
		return badRequest("advance is required: a Go duration like \"11m\", \"90s\" or \"24h\".")
	}
	d, err := time.ParseDuration(req.Advance)
	if err != nil {
		return badRequest("advance %q is not a duration like \"11m\", \"90s\" or \"24h\".", req.Advance)
	}
	offset, err := e.clock.advance(d)
	if err != nil {
		return err
	}
	e.log.Info("emulator clock advanced", "by", d.String(), "offset", offset.String())
	e.writeJSON(w, http.StatusOK, e.clockState())
	return nil
}
