package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
)

// ActionKey names one action: a user's action code with its idempotency key.
type ActionKey struct {
	UserID, ActionCode, IdempotencyKey string
}

// RuleRef is a rule as an action records it.
type RuleRef struct {
	RuleID      string `json:"ruleId"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Action is a stored action.
type Action struct {
	ActionKey
	State                     vocab.State
	StateUpdatedAt            time.Time
	CreatedAt                 time.Time
	UpdatedAt                 time.Time
	VerificationMethod        vocab.Method
	VerifiedByAuthenticatorID string
	RuleIDs                   []string
	Rules                     []RuleRef
	RedirectURL               string
	RedirectToSettings        bool
	IPAddress                 string
	UserAgent                 string
	DeviceID                  string
	Email                     string
	PhoneNumber               string
	Username                  string
	Scope                     string
	Custom                    json.RawMessage // a JSON object, or nil
	Locale                    string
	PageChallengeID           string // the pre-built UI's code in flight

	trackResult string // the stored answer of Track (JSON); "" for actions made otherwise
}

const actionColumns = `user_id, action_code, idempotency_key, state, state_updated_at, created_at, updated_at, verification_method,
	verified_by_authenticator_id, rule_ids, rules, redirect_url, redirect_to_settings, ip_address, user_agent, device_id, email,
	phone_number, username, scope, custom, locale, track_response, ui_challenge_id`

func scanAction(row interface{ Scan(...any) error }) (*Action, error) {
	var a Action
	var su, ca, ua int64
	var ruleIDs, rulesJSON, custom string
	err := row.Scan(&a.UserID, &a.ActionCode, &a.IdempotencyKey, &a.State, &su, &ca, &ua, &a.VerificationMethod, &a.VerifiedByAuthenticatorID,
		&ruleIDs, &rulesJSON, &a.RedirectURL, &a.RedirectToSettings, &a.IPAddress, &a.UserAgent, &a.DeviceID, &a.Email, &a.PhoneNumber,
		&a.Username, &a.Scope, &custom, &a.Locale, &a.trackResult, &a.PageChallengeID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	if err != nil {
		return nil, fmt.Errorf("load action: %w", err)
	}
	a.StateUpdatedAt, a.CreatedAt, a.UpdatedAt = fromMS(su), fromMS(ca), fromMS(ua)
	if err := json.Unmarshal([]byte(ruleIDs), &a.RuleIDs); err != nil {
		return nil, fmt.Errorf("load action: rule ids: %w", err)
	}
	if err := json.Unmarshal([]byte(rulesJSON), &a.Rules); err != nil {
		return nil, fmt.Errorf("load action: rules: %w", err)
	}
	if custom != "" {
		a.Custom = json.RawMessage(custom)
	}
	return &a, nil
}

func loadAction(ctx context.Context, q queryer, k ActionKey) (*Action, error) {
	return scanAction(q.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM actions WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		k.UserID, k.ActionCode, k.IdempotencyKey))
}

func actionNotFound(k ActionKey) *Error {
	return refuse(NotFound, "Action %s/%s of user %q was not found.", k.ActionCode, k.IdempotencyKey, k.UserID)
}

// insertActionIfAbsent stores a new action; an existing one with the same key is left alone.
func (s *Store) insertActionIfAbsent(ctx context.Context, tx *txn, a Action) error {
	now := ms(s.now())
	ruleIDs, err := json.Marshal(nonNil(a.RuleIDs))
	if err != nil {
		return fmt.Errorf("insert action: %w", err)
	}
	rulesJSON, err := json.Marshal(nonNil(a.Rules))
	if err != nil {
		return fmt.Errorf("insert action: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO actions(user_id, action_code, idempotency_key, state, state_updated_at, created_at, updated_at,
		verification_method, rule_ids, rules, redirect_url, redirect_to_settings, ip_address, user_agent, device_id, email, phone_number,
		username, scope, custom, locale, track_response)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(user_id, action_code, idempotency_key) DO NOTHING`,
		a.UserID, a.ActionCode, a.IdempotencyKey, a.State, now, now, now, a.VerificationMethod, ruleIDs, rulesJSON, a.RedirectURL,
		a.RedirectToSettings, a.IPAddress, a.UserAgent, a.DeviceID, a.Email, a.PhoneNumber, a.Username, a.Scope, string(a.Custom), a.Locale, a.trackResult)
	if err != nil {
		return fmt.Errorf("insert action: %w", err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// moveAction sets an action's state (only from onlyFrom when that is not ""), recording
// how it was verified, and reports whether it changed.
func (s *Store) moveAction(ctx context.Context, tx *txn, k ActionKey, to vocab.State, m vocab.Method, authID string, onlyFrom vocab.State) (bool, error) {
	now := ms(s.now())
	q := `UPDATE actions SET state = ?, state_updated_at = ?, updated_at = ?,
		verification_method = CASE WHEN ? <> '' THEN ? ELSE verification_method END,
		verified_by_authenticator_id = CASE WHEN ? <> '' THEN ? ELSE verified_by_authenticator_id END
		WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`
	args := []any{to, now, now, m, m, authID, authID, k.UserID, k.ActionCode, k.IdempotencyKey}
	if onlyFrom != "" {
		q += ` AND state = ?`
		args = append(args, onlyFrom)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("update action state: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 1 && to == vocab.StateChallengeSucceeded {
		// The action's device is now an authenticated one (and no longer invalidated).
		if _, err := tx.ExecContext(ctx, `UPDATE seen_devices SET authenticated_at = ?1,
			last_verification_method = CASE WHEN ?2 <> '' THEN ?2 ELSE last_verification_method END, invalidated_at = NULL
			WHERE user_id = ?3 AND device_id = (SELECT device_id FROM actions WHERE user_id = ?3 AND action_code = ?4 AND idempotency_key = ?5)`,
			now, m, k.UserID, k.ActionCode, k.IdempotencyKey); err != nil {
			return false, fmt.Errorf("update device: %w", err)
		}
	}
	return n == 1, nil
}

// Track is what track records about an action: its key (an empty IdempotencyKey gets a
// fresh one) and the context the rules look at.
type Track struct {
	ActionKey
	BaseURL                        string // of the pre-built UI link in the answer
	RedirectURL                    string
	RedirectToSettings             bool
	IPAddress, UserAgent, DeviceID string
	Email, PhoneNumber, Username   string // normalized
	Scope, Locale                  string
	Custom                         map[string]any
	Forced                         *rules.Rule // test mode: this rule decides, none is evaluated
}

// TrackResult is track's answer, stored with the action so that a replayed idempotency key
// gets the same answer. Its JSON is the API's.
type TrackResult struct {
	State                       vocab.State    `json:"state"`
	IdempotencyKey              string         `json:"idempotencyKey"`
	URL                         string         `json:"url"`
	Token                       string         `json:"token"`
	IsEnrolled                  bool           `json:"isEnrolled"`
	EnrolledVerificationMethods []vocab.Method `json:"enrolledVerificationMethods"`
	AllowedVerificationMethods  []vocab.Method `json:"allowedVerificationMethods"`
	DefaultVerificationMethod   vocab.Method   `json:"defaultVerificationMethod,omitempty"`
	RuleIDs                     []string       `json:"ruleIds"`

	// JSON is this answer as stored and as the API sends it, so it is encoded once.
	JSON []byte `json:"-"`
}

// Track evaluates the rules for a new action and records it, or returns the stored answer
// for a key seen before (without evaluating again).
func (s *Store) Track(ctx context.Context, t Track) (TrackResult, error) {
	custom, err := customJSON(t.Custom)
	if err != nil {
		return TrackResult{}, err
	}
	if t.IdempotencyKey == "" {
		if t.IdempotencyKey, err = s.random.UUID(); err != nil {
			return TrackResult{}, err
		}
	}
	// Signed before the transaction, which holds the database's one connection: the token
	// depends on nothing stored. A replayed key returns the stored answer and drops it.
	tok, err := s.tokens.Issue(token.Action{UserID: t.UserID, ActionCode: t.ActionCode, IdempotencyKey: t.IdempotencyKey, Scope: t.Scope, Username: t.Username})
	if err != nil {
		return TrackResult{}, err
	}
	var out TrackResult
	fresh := false
	err = s.inTx(ctx, func(tx *txn) error {
		// Same key again: the stored answer, no re-evaluation. A key that belongs to an
		// action made by challenge or claim (no stored answer) is kept for that action. The
		// transaction holds the write lock, so nothing can take the key after this check.
		if prev, err := loadAction(ctx, tx, t.ActionKey); err == nil {
			if prev.trackResult == "" {
				return refuse(Invalid, "idempotencyKey %q is already used by another action of this user.", t.IdempotencyKey)
			}
			out.JSON = []byte(prev.trackResult)
			return json.Unmarshal(out.JSON, &out)
		} else if !errors.Is(err, errNoRow) {
			return err
		}
		user, err := s.ensureUser(ctx, tx, t.UserID)
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, t.UserID)
		if err != nil {
			return err
		}
		enrolment := summarize(auths)
		isNewDevice := false
		if t.DeviceID != "" {
			// Remembering the device tells whether it is new: the insert happens only once, and
			// the no-op update only for an invalidated device, which counts as new again.
			res, err := tx.ExecContext(ctx, `INSERT INTO seen_devices(user_id, device_id, first_seen_at) VALUES (?, ?, ?)
				ON CONFLICT(user_id, device_id) DO UPDATE SET invalidated_at = invalidated_at WHERE invalidated_at IS NOT NULL`, t.UserID, t.DeviceID, ms(s.now()))
			if err != nil {
				return fmt.Errorf("remember device: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("remember device: %w", err)
			}
			isNewDevice = n == 1
		}
		ruleEmail, rulePhone := t.Email, t.PhoneNumber
		if ruleEmail == "" {
			ruleEmail = user.Email
		}
		if rulePhone == "" {
			rulePhone = user.PhoneNumber
		}
		state, rule := s.rules.Evaluate(rules.Input{ActionCode: t.ActionCode, IPAddress: t.IPAddress, UserAgent: t.UserAgent, DeviceID: t.DeviceID,
			Email: ruleEmail, PhoneNumber: rulePhone, Username: t.Username, IsNewDevice: isNewDevice, IsEnrolled: enrolment.IsEnrolled, Custom: t.Custom})
		switch {
		case t.Forced != nil:
			state, rule = t.Forced.Outcome, t.Forced
		case state == vocab.StateChallengeRequired && !enrolment.IsEnrolled:
			// "If a user has no enrolled authenticators, the action will return ALLOW but
			// isEnrolled will be false" (docs: actions-rules/actions/getting-started).
			state = vocab.StateAllow
		}
		a := Action{ActionKey: t.ActionKey, State: state, RedirectURL: t.RedirectURL, RedirectToSettings: t.RedirectToSettings,
			IPAddress: t.IPAddress, UserAgent: t.UserAgent, DeviceID: t.DeviceID, Email: t.Email, PhoneNumber: t.PhoneNumber,
			Username: t.Username, Scope: t.Scope, Custom: custom, Locale: t.Locale}
		if rule != nil {
			a.RuleIDs = []string{rule.ID}
			a.Rules = []RuleRef{{RuleID: rule.ID, Name: rule.Name, Description: rule.Description}}
		}
		out = TrackResult{State: state, IdempotencyKey: t.IdempotencyKey, URL: t.BaseURL + "/challenge?token=" + tok, Token: tok,
			IsEnrolled: enrolment.IsEnrolled, EnrolledVerificationMethods: enrolment.Methods, AllowedVerificationMethods: vocab.AllowedMethods,
			DefaultVerificationMethod: enrolment.DefaultMethod, RuleIDs: nonNil(a.RuleIDs)}
		stored, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode track result: %w", err)
		}
		a.trackResult, out.JSON = string(stored), stored
		fresh = true
		return s.insertActionIfAbsent(ctx, tx, a)
	})
	if err != nil {
		return TrackResult{}, err
	}
	if fresh {
		s.log.Info("action tracked", "user_id", t.UserID, "action", t.ActionCode, "state", out.State, "rule", strings.Join(out.RuleIDs, ","))
	}
	return out, nil
}

// customJSON stores a custom object compactly ("" for none).
func customJSON(custom map[string]any) (json.RawMessage, error) {
	if custom == nil {
		return nil, nil
	}
	b, err := json.Marshal(custom)
	if err != nil {
		return nil, refuse(Invalid, "custom could not be stored: %s.", err)
	}
	return b, nil
}

// Action returns one action.
func (s *Store) Action(ctx context.Context, k ActionKey) (Action, error) {
	a, err := loadAction(ctx, s.db, k)
	if errors.Is(err, errNoRow) {
		return Action{}, actionNotFound(k)
	}
	if err != nil {
		return Action{}, err
	}
	return *a, nil
}

// SetActionState sets an action's state, whatever it was (the API's update action).
func (s *Store) SetActionState(ctx context.Context, k ActionKey, to vocab.State) (Action, error) {
	var a *Action
	err := s.inTx(ctx, func(tx *txn) error {
		ok, err := s.moveAction(ctx, tx, k, to, "", "", "")
		if err != nil {
			return err
		}
		if !ok {
			return actionNotFound(k)
		}
		a, err = loadAction(ctx, tx, k)
		return err
	})
	if err != nil {
		return Action{}, err
	}
	s.log.Info("action state updated", "user_id", k.UserID, "action", k.ActionCode, "state", to)
	return *a, nil
}

// Review settles an action held for review (to REVIEW_SUCCEEDED or REVIEW_FAILED) and
// reports whether it was still waiting.
func (s *Store) Review(ctx context.Context, k ActionKey, to vocab.State) (bool, error) {
	if to != vocab.StateReviewSucceeded && to != vocab.StateReviewFailed {
		return false, refuse(Invalid, "A review ends in REVIEW_SUCCEEDED or REVIEW_FAILED, not %s.", to)
	}
	changed := false
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		changed, err = s.moveAction(ctx, tx, k, to, "", "", vocab.StateReviewRequired)
		return err
	})
	if err == nil && changed {
		s.log.Info("review decided", "user_id", k.UserID, "action", k.ActionCode, "state", to)
	}
	return changed, err
}

// ActionQuery filters a user's actions: every set field must match.
type ActionQuery struct {
	UserID      string
	ActionCodes []string
	From        time.Time // created at or after; zero = any time
	State       vocab.State
	Limit       int
}

// Actions returns a user's matching actions, newest first.
func (s *Store) Actions(ctx context.Context, q ActionQuery) ([]Action, error) {
	where := []string{"user_id = +?"}
	args := []any{q.UserID}
	if len(q.ActionCodes) > 0 {
		marks := make([]string, len(q.ActionCodes))
		for i, c := range q.ActionCodes {
			marks[i], args = "+?", append(args, c)
		}
		where = append(where, "action_code IN ("+strings.Join(marks, ",")+")")
	}
	if !q.From.IsZero() {
		where, args = append(where, "created_at >= +?"), append(args, ms(q.From))
	}
	if q.State != "" {
		where, args = append(where, "state = +?"), append(args, q.State)
	}
	actions, err := queryAll(ctx, s.db, func(rows *sql.Rows) (*Action, error) { return scanAction(rows) },
		`SELECT `+actionColumns+` FROM actions WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at DESC, rowid DESC LIMIT +?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("query actions: %w", err)
	}
	out := make([]Action, len(actions))
	for i, a := range actions {
		out[i] = *a
	}
	return out, nil
}
