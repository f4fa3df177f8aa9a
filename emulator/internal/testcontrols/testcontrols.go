// Package testcontrols are the emulator's test controls: a clock tests move forward, fixed
// codes, forced outcomes, failing recipients, scoped deletes, export and reset.
package testcontrols

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// Clock is the emulator's clock: the injected one plus an offset that POST /emulator/clock
// moves forward, so a test can expire codes, tokens and send windows without sleeping.
// The offset only grows (time never runs backwards for stored rows) until Reset.
type Clock struct {
	base   func() time.Time
	offset atomic.Int64 // nanoseconds
}

const (
	maxClockAdvance = 366 * 24 * time.Hour       // one step
	maxClockOffset  = 100 * 366 * 24 * time.Hour // in total: far from int64 overflow
)

// NewClock returns a clock at base's time, with no offset.
func NewClock(base func() time.Time) *Clock { return &Clock{base: base} }

// Now is the injected clock's time plus the offset.
func (c *Clock) Now() time.Time { return c.base().Add(c.Offset()) }

// Offset is how far the clock has been moved.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Advance adds d (0 < d <= 366 days) and returns the new offset.
func (c *Clock) Advance(d time.Duration) (time.Duration, error) {
	if d <= 0 || d > maxClockAdvance {
		return 0, httpjson.BadRequest("advance must be positive and at most 8784h (366 days), like \"11m\" or \"24h\".")
	}
	for {
		old := c.offset.Load()
		next := old + int64(d)
		if time.Duration(next) > maxClockOffset {
			return 0, httpjson.BadRequest("The clock offset would exceed about 100 years; POST /emulator/reset first.")
		}
		if c.offset.CompareAndSwap(old, next) {
			return time.Duration(next), nil
		}
	}
}

// Reset sets the offset back to zero.
func (c *Clock) Reset() { c.offset.Store(0) }

// Forced outcomes, like the magic values of providers' test modes. They are all listed
// here, kept few, and documented in emulator/README.md ("Forced outcomes").
//
//   - track with custom.emulatorForceState = ALLOW | BLOCK | REVIEW_REQUIRED |
//     CHALLENGE_REQUIRED answers that state without evaluating the rules; ruleIds is
//     ["emulator-force"] so the outcome is visibly synthetic.
//   - a code to any address at fail.example.com, or to +15555550199, fails as a provider
//     (email or SMS gateway) failure would: 502 invalid_configuration, nothing stored or sent.
const (
	ForceStateField    = "emulatorForceState"
	ForcedRuleID       = "emulator-force"
	FailingEmailDomain = "fail.example.com"
	FailingPhoneNumber = "+15555550199"
)

// ForcedRule reads custom.emulatorForceState: nil when absent, else the synthetic rule
// that decides its state.
func ForcedRule(custom map[string]any) (*rules.Rule, error) {
	v, ok := custom[ForceStateField]
	if !ok {
		return nil, nil
	}
	s, _ := v.(string)
	if !rules.IsOutcome(vocab.State(s)) {
		return nil, httpjson.BadRequest("custom.%s must be one of ALLOW, BLOCK, REVIEW_REQUIRED, CHALLENGE_REQUIRED (got %s).", ForceStateField, jsonish(v))
	}
	return &rules.Rule{ID: ForcedRuleID, Name: "Forced by the emulator", Outcome: vocab.State(s),
		Description: fmt.Sprintf("custom.%s forced %s (emulator test mode); no rule was evaluated.", ForceStateField, s)}, nil
}

// jsonish renders a decoded JSON value for an error message.
func jsonish(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

// IsFailingRecipient reports whether delivery to this (normalized) email or phone always fails.
func IsFailingRecipient(recipient string) bool {
	if recipient == FailingPhoneNumber {
		return true
	}
	_, domain, ok := strings.Cut(recipient, "@")
	return ok && strings.EqualFold(domain, FailingEmailDomain)
}

// Codes decides each code sent: a test recipient's fixed code, else a random one. A
// seeded emulator's codes are predictable: tests only.
type Codes struct {
	fixed  map[string]string // normalized recipient → code
	random *random.Source
}

// NewCodes returns random codes from r, with no fixed ones yet.
func NewCodes(r *random.Source) *Codes { return &Codes{fixed: map[string]string{}, random: r} }

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// Add validates in (recipient → code) and adds it; where names the source in errors.
func (c *Codes) Add(in map[string]string, where string) error {
	for r, code := range in {
		n, err := normalizeTestRecipient(r)
		if err != nil {
			return fmt.Errorf("emulator: %s: recipient %q: %v", where, r, err)
		}
		if !sixDigits.MatchString(code) {
			return fmt.Errorf("emulator: %s: recipient %q: code %q must be exactly 6 digits", where, r, code)
		}
		if IsFailingRecipient(n) {
			return fmt.Errorf("emulator: %s: recipient %q always fails delivery (see emulator/README.md, \"Forced outcomes\"); it cannot have a fixed code", where, r)
		}
		if prev, ok := c.fixed[n]; ok && prev != code {
			return fmt.Errorf("emulator: %s: recipient %q has two different fixed codes", where, r)
		}
		c.fixed[n] = code
	}
	return nil
}

// normalizeTestRecipient lower-cases an email or trims a phone number and validates it.
func normalizeTestRecipient(s string) (string, error) {
	n := vocab.NormalizeRecipient(s)
	if strings.Contains(n, "@") {
		if err := vocab.ValidateEmail(n); err != nil {
			return "", err
		}
		return n, nil
	}
	if err := vocab.ValidatePhone(n); err != nil {
		return "", errors.New("not an email address, and " + err.Error())
	}
	return n, nil
}

// Code is the code to send to recipient (normalized as stored).
func (c *Codes) Code(recipient string) (string, error) {
	if code, ok := c.fixed[recipient]; ok {
		return code, nil
	}
	return c.random.Code()
}

// Undeliverable reports whether delivery to recipient always fails.
func (c *Codes) Undeliverable(recipient string) bool { return IsFailingRecipient(recipient) }

// Controls serves the test controls' endpoints.
type Controls struct {
	store *state.Store
	clock *Clock
	log   *slog.Logger
}

// New returns the endpoints of the test controls over store and clock.
func New(store *state.Store, clock *Clock, log *slog.Logger) *Controls {
	return &Controls{store: store, clock: clock, log: log}
}

type clockRequest struct {
	Advance string `json:"advance"`
}

type clockResponse struct {
	Now    string `json:"now"`
	Offset string `json:"offset"`
}

func (c *Controls) clockState() clockResponse {
	return clockResponse{Now: c.clock.Now().UTC().Format(time.RFC3339), Offset: c.clock.Offset().String()}
}

// GetClock serves GET /emulator/clock: the emulator's now and its offset.
func (c *Controls) GetClock(w http.ResponseWriter, r *http.Request) error {
	return httpjson.Write(w, http.StatusOK, c.clockState())
}

// AdvanceClock serves POST /emulator/clock {"advance": "11m"}.
func (c *Controls) AdvanceClock(w http.ResponseWriter, r *http.Request) error {
	var req clockRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Advance == "" {
		return httpjson.BadRequest("advance is required: a Go duration like \"11m\", \"90s\" or \"24h\".")
	}
	d, err := time.ParseDuration(req.Advance)
	if err != nil {
		return httpjson.BadRequest("advance %q is not a duration like \"11m\", \"90s\" or \"24h\".", req.Advance)
	}
	offset, err := c.clock.Advance(d)
	if err != nil {
		return err
	}
	c.log.Info("emulator clock advanced", "by", d.String(), "offset", offset.String())
	return httpjson.Write(w, http.StatusOK, c.clockState())
}

// Reset serves POST /emulator/reset: every row deleted, the seed file re-applied, the
// clock's offset back to zero.
func (c *Controls) Reset(w http.ResponseWriter, r *http.Request) error {
	if err := c.store.Reset(r.Context()); err != nil {
		return err
	}
	c.clock.Reset()
	c.log.Info("emulator state reset")
	return httpjson.Write(w, http.StatusOK, map[string]bool{"success": true})
}

// DeleteUser serves DELETE /emulator/users/{userId}: one user with everything of theirs
// (state.Store.DeleteUserData), every other user left alone.
func (c *Controls) DeleteUser(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("userId")
	if err := vocab.ValidateUserID(userID); err != nil {
		return httpjson.BadRequest("%s.", err)
	}
	if err := c.store.DeleteUserData(r.Context(), userID); err != nil {
		return err
	}
	c.log.Info("user and their data deleted", "user_id", userID)
	return httpjson.Write(w, http.StatusOK, map[string]bool{"success": true})
}

// Export serves GET /emulator/export: the whole state in the seed file's format, which
// -import (or -seed-file) reads back.
func (c *Controls) Export(w http.ResponseWriter, r *http.Request) error {
	seed, err := c.store.Export(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="emulator-export.json"`)
	return httpjson.Write(w, http.StatusOK, seed)
}
