package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// actionRecord is a stored action.
type actionRecord struct {
	UserID, ActionCode, IdempotencyKey, State string
	StateUpdatedAt, CreatedAt, UpdatedAt      time.Time
	VerificationMethod, VerifiedByAuthID      string
	RuleIDs, Rules                            string // JSON arrays
	RedirectURL                               string
	RedirectToSettings                        bool
	IPAddress, UserAgent, DeviceID            string
	Email, PhoneNumber, Username, Scope       string
	Custom, Locale, TrackResponse             string
	UIChallengeID                             string
}

const actionColumns = `user_id, action_code, idempotency_key, state, state_updated_at, created_at, updated_at, verification_method,
	verified_by_authenticator_id, rule_ids, rules, redirect_url, redirect_to_settings, ip_address, user_agent, device_id, email,
	phone_number, username, scope, custom, locale, track_response, ui_challenge_id`

func scanAction(row interface{ Scan(...any) error }) (*actionRecord, error) {
	var a actionRecord
	var su, ca, ua int64
	err := row.Scan(&a.UserID, &a.ActionCode, &a.IdempotencyKey, &a.State, &su, &ca, &ua, &a.VerificationMethod, &a.VerifiedByAuthID,
		&a.RuleIDs, &a.Rules, &a.RedirectURL, &a.RedirectToSettings, &a.IPAddress, &a.UserAgent, &a.DeviceID, &a.Email, &a.PhoneNumber,
		&a.Username, &a.Scope, &a.Custom, &a.Locale, &a.TrackResponse, &a.UIChallengeID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load action: %w", err)
	}
	a.StateUpdatedAt, a.CreatedAt, a.UpdatedAt = fromMS(su), fromMS(ca), fromMS(ua)
	return &a, nil
}

type rowQueryer interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func loadAction(ctx context.Context, q rowQueryer, userID, actionCode, idem string) (*actionRecord, error) {
	return scanAction(q.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM actions WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`, userID, actionCode, idem))
}

// insertActionIfAbsent stores a new action; an existing one with the same key is left alone.
func (e *Emulator) insertActionIfAbsent(ctx context.Context, tx *txn, a actionRecord) error {
	now := ms(e.now())
	if a.RuleIDs == "" {
		a.RuleIDs = "[]"
	}
	if a.Rules == "" {
		a.Rules = "[]"
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO actions(user_id, action_code, idempotency_key, state, state_updated_at, created_at, updated_at,
		verification_method, rule_ids, rules, redirect_url, redirect_to_settings, ip_address, user_agent, device_id, email, phone_number,
		username, scope, custom, locale, track_response)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(user_id, action_code, idempotency_key) DO NOTHING`,
		a.UserID, a.ActionCode, a.IdempotencyKey, a.State, now, now, now, a.VerificationMethod, a.RuleIDs, a.Rules, a.RedirectURL,
		a.RedirectToSettings, a.IPAddress, a.UserAgent, a.DeviceID, a.Email, a.PhoneNumber, a.Username, a.Scope, a.Custom, a.Locale, a.TrackResponse)
	if err != nil {
		return fmt.Errorf("insert action: %w", err)
	}
	return nil
}

// setActionState moves an action to state (only from onlyFrom when that is not ""),
// recording how it was verified. It reports whether a row changed.
func (e *Emulator) setActionState(ctx context.Context, tx *txn, userID, actionCode, idem, state, method, authID, onlyFrom string) error {
	_, err := e.updateActionState(ctx, tx, userID, actionCode, idem, state, method, authID, onlyFrom)
	return err
}

func (e *Emulator) updateActionState(ctx context.Context, tx *txn, userID, actionCode, idem, state, method, authID, onlyFrom string) (bool, error) {
	now := ms(e.now())
	q := `UPDATE actions SET state = ?, state_updated_at = ?, updated_at = ?,
		verification_method = CASE WHEN ? <> '' THEN ? ELSE verification_method END,
		verified_by_authenticator_id = CASE WHEN ? <> '' THEN ? ELSE verified_by_authenticator_id END
		WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`
	args := []any{state, now, now, method, method, authID, authID, userID, actionCode, idem}
	if onlyFrom != "" {
		q += ` AND state = ?`
		args = append(args, onlyFrom)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("update action state: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

type trackRequest struct {
	IdempotencyKey     string         `json:"idempotencyKey"`
	RedirectURL        string         `json:"redirectUrl"`
	RedirectToSettings bool           `json:"redirectToSettings"`
	IPAddress          string         `json:"ipAddress"`
	UserAgent          string         `json:"userAgent"`
	DeviceID           string         `json:"deviceId"`
	Email              string         `json:"email"`
	PhoneNumber        string         `json:"phoneNumber"`
	Username           string         `json:"username"`
	Scope              string         `json:"scope"`
	Custom             map[string]any `json:"custom"`
	ChallengeID        string         `json:"challengeId"`
	Locale             string         `json:"locale"`
	CustomDomain       string         `json:"customDomain"`
	Crypto             any            `json:"crypto"`
}

type trackResponse struct {
	State                       string   `json:"state"`
	IdempotencyKey              string   `json:"idempotencyKey"`
	URL                         string   `json:"url"`
	Token                       string   `json:"token"`
	IsEnrolled                  bool     `json:"isEnrolled"`
	EnrolledVerificationMethods []string `json:"enrolledVerificationMethods"`
	AllowedVerificationMethods  []string `json:"allowedVerificationMethods"`
	DefaultVerificationMethod   string   `json:"defaultVerificationMethod,omitempty"`
	RuleIDs                     []string `json:"ruleIds"`
}

type ruleRef struct {
	RuleID      string `json:"ruleId"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// pathAction reads and checks {userId} and {action}.
func pathAction(r *http.Request) (string, string, error) {
	userID, err := pathUserID(r)
	if err != nil {
		return "", "", err
	}
	action := r.PathValue("action")
	if err := ValidateActionCode(action); err != nil {
		return "", "", badRequest("action %q is not valid: %s.", action, err)
	}
	return userID, action, nil
}

func (e *Emulator) handleTrack(w http.ResponseWriter, r *http.Request) error {
	userID, actionCode, err := pathAction(r)
	if err != nil {
		return err
	}
	var req trackRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	resp, err := e.track(r.Context(), e.baseURLFor(r), userID, actionCode, req)
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, resp)
	return nil
}

func (e *Emulator) track(ctx context.Context, baseURL, userID, actionCode string, req trackRequest) (json.RawMessage, error) {
	var err error
	email, phone := "", ""
	if req.Email != "" {
		if email, err = checkEmail("email", req.Email); err != nil {
			return nil, err
		}
	}
	if req.PhoneNumber != "" {
		if phone, err = checkContactPhone("phoneNumber", req.PhoneNumber); err != nil {
			return nil, err
		}
	}
	if req.RedirectURL != "" {
		if err := validateRedirectURL(req.RedirectURL); err != nil {
			return nil, badRequest("%s.", err)
		}
	}
	if err := checkLengths(field{"idempotencyKey", req.IdempotencyKey}, field{"redirectUrl", req.RedirectURL}, field{"scope", req.Scope},
		field{"locale", req.Locale}, field{"ipAddress", req.IPAddress}, field{"userAgent", req.UserAgent}, field{"deviceId", req.DeviceID},
		field{"username", req.Username}); err != nil {
		return nil, err
	}
	custom, err := customJSON(req.Custom)
	if err != nil {
		return nil, err
	}
	forced, err := forcedState(req.Custom) // custom.emulatorForceState (force.go)
	if err != nil {
		return nil, err
	}
	idem := req.IdempotencyKey
	if idem == "" {
		if idem, err = e.newUUID(); err != nil {
			return nil, err
		}
	}
	// Signed before the transaction, which holds the emulator's one connection: the token
	// depends on nothing stored. A replayed key returns the stored answer and drops it.
	token, err := e.issueToken(tokenAction{UserID: userID, ActionCode: actionCode, IdempotencyKey: idem, Scope: req.Scope, Username: req.Username})
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	var newState, newRule string // of a new action, logged once committed
	err = e.inTx(ctx, func(tx *txn) error {
		// Same key again: the stored response, no re-evaluation. A key that belongs to an
		// action made by challenge/claim (no stored response) is kept for that action. The
		// transaction holds the write lock, so nothing can take the key after this check.
		if prev, err := loadAction(ctx, tx, userID, actionCode, idem); err == nil {
			if prev.TrackResponse == "" {
				return badRequest("idempotencyKey %q is already used by another action of this user.", idem)
			}
			out = json.RawMessage(prev.TrackResponse)
			return nil
		} else if !errors.Is(err, errNotFound) {
			return err
		}
		if err := e.ensureUser(ctx, tx, userID); err != nil {
			return err
		}
		user, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, userID)
		if err != nil {
			return err
		}
		enrolment := summarize(auths)
		isNewDevice := false
		if req.DeviceID != "" {
			// Remembering the device tells whether it is new: the insert happens only once.
			res, err := tx.ExecContext(ctx, `INSERT INTO seen_devices(user_id, device_id, first_seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, userID, req.DeviceID, ms(e.now()))
			if err != nil {
				return fmt.Errorf("remember device: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("remember device: %w", err)
			}
			isNewDevice = n == 1
		}
		ruleEmail, rulePhone := email, phone
		if ruleEmail == "" {
			ruleEmail = user.Email
		}
		if rulePhone == "" {
			rulePhone = user.PhoneNumber
		}
		state, rule := e.rules.Evaluate(RuleInput{ActionCode: actionCode, IPAddress: req.IPAddress, UserAgent: req.UserAgent, DeviceID: req.DeviceID,
			Email: ruleEmail, PhoneNumber: rulePhone, Username: req.Username, IsNewDevice: isNewDevice, IsEnrolled: enrolment.IsEnrolled, Custom: req.Custom})
		switch {
		case forced != "":
			state, rule = forced, forcedRule(forced) // test mode: no rule decides
		case state == StateChallengeRequired && !enrolment.IsEnrolled:
			// "If a user has no enrolled authenticators, the action will return ALLOW but
			// isEnrolled will be false" (docs: actions-rules/actions/getting-started).
			state = StateAllow
		}
		ruleIDs, rules := []string{}, []ruleRef{}
		if rule != nil {
			ruleIDs = append(ruleIDs, rule.ID)
			rules = append(rules, ruleRef{RuleID: rule.ID, Name: rule.Name, Description: rule.Description})
		}
		resp := trackResponse{State: state, IdempotencyKey: idem, URL: baseURL + "/challenge?token=" + token, Token: token,
			IsEnrolled: enrolment.IsEnrolled, EnrolledVerificationMethods: enrolment.EnrolledVerificationMethods,
			AllowedVerificationMethods: allowedVerificationMethods, DefaultVerificationMethod: enrolment.DefaultVerificationMethod, RuleIDs: ruleIDs}
		respJSON, err := json.Marshal(resp)
		if err != nil {
			return fmt.Errorf("encode track response: %w", err)
		}
		ruleIDsJSON, _ := json.Marshal(ruleIDs)
		rulesJSON, _ := json.Marshal(rules)
		if err := e.insertActionIfAbsent(ctx, tx, actionRecord{UserID: userID, ActionCode: actionCode, IdempotencyKey: idem, State: state,
			RuleIDs: string(ruleIDsJSON), Rules: string(rulesJSON), RedirectURL: req.RedirectURL, RedirectToSettings: req.RedirectToSettings,
			IPAddress: req.IPAddress, UserAgent: req.UserAgent, DeviceID: req.DeviceID, Email: email, PhoneNumber: phone, Username: req.Username,
			Scope: req.Scope, Custom: custom, Locale: req.Locale, TrackResponse: string(respJSON)}); err != nil {
			return err
		}
		out, newState, newRule = respJSON, state, strings.Join(ruleIDs, ",")
		return nil
	})
	if err == nil && newState != "" {
		e.log.Info("action tracked", "user_id", userID, "action", actionCode, "state", newState, "rule", newRule)
	}
	return out, err
}

type actionResponse struct {
	State              string          `json:"state"`
	StateUpdatedAt     string          `json:"stateUpdatedAt"`
	CreatedAt          string          `json:"createdAt"`
	VerificationMethod string          `json:"verificationMethod,omitempty"`
	RuleIDs            json.RawMessage `json:"ruleIds"`
	Rules              json.RawMessage `json:"rules"`
	Output             map[string]any  `json:"output"`
}

func (a *actionRecord) api() actionResponse {
	return actionResponse{State: a.State, StateUpdatedAt: isoTime(a.StateUpdatedAt), CreatedAt: isoTime(a.CreatedAt),
		VerificationMethod: a.VerificationMethod, RuleIDs: json.RawMessage(a.RuleIDs), Rules: json.RawMessage(a.Rules), Output: map[string]any{}}
}

func (e *Emulator) handleGetAction(w http.ResponseWriter, r *http.Request) error {
	userID, actionCode, err := pathAction(r)
	if err != nil {
		return err
	}
	idem := r.PathValue("idempotencyKey")
	a, err := loadAction(r.Context(), e.db, userID, actionCode, idem)
	if errors.Is(err, errNotFound) {
		return notFound("Action %s/%s of user %q was not found.", actionCode, idem, userID)
	}
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, a.api())
	return nil
}

type updateActionRequest struct {
	State string `json:"state"`
}

func (e *Emulator) handleUpdateAction(w http.ResponseWriter, r *http.Request) error {
	userID, actionCode, err := pathAction(r)
	if err != nil {
		return err
	}
	idem := r.PathValue("idempotencyKey")
	var req updateActionRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.State == "" {
		return badRequest("state is required.")
	}
	if !allStates[req.State] {
		return badRequest("state %q is not a valid action state.", req.State)
	}
	ctx := r.Context()
	var a *actionRecord
	err = e.inTx(ctx, func(tx *txn) error {
		ok, err := e.updateActionState(ctx, tx, userID, actionCode, idem, req.State, "", "", "")
		if err != nil {
			return err
		}
		if !ok {
			return notFound("Action %s/%s of user %q was not found.", actionCode, idem, userID)
		}
		a, err = loadAction(ctx, tx, userID, actionCode, idem)
		return err
	})
	if err != nil {
		return err
	}
	e.log.Info("action state updated", "user_id", userID, "action", actionCode, "state", req.State)
	e.writeJSON(w, http.StatusOK, a.api())
	return nil
}

type actionSummary struct {
	ActionCode                string `json:"actionCode"`
	IdempotencyKey            string `json:"idempotencyKey"`
	CreatedAt                 string `json:"createdAt"`
	UpdatedAt                 string `json:"updatedAt"`
	State                     string `json:"state"`
	StateUpdatedAt            string `json:"stateUpdatedAt"`
	VerificationMethod        string `json:"verificationMethod,omitempty"`
	VerifiedByAuthenticatorID string `json:"verifiedByAuthenticatorId,omitempty"`
	IPAddress                 string `json:"ipAddress,omitempty"`
	UserAgent                 string `json:"userAgent,omitempty"`
}

func (e *Emulator) handleQueryActions(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	where := []string{"user_id = ?"}
	args := []any{userID}
	if codes := q.Get("codes"); codes != "" {
		var marks []string
		for _, c := range strings.Split(codes, ",") {
			c = strings.TrimSpace(c)
			if err := ValidateActionCode(c); err != nil {
				return badRequest("codes: %q is not a valid action code.", c)
			}
			marks, args = append(marks, "?"), append(args, c)
		}
		where = append(where, "action_code IN ("+strings.Join(marks, ",")+")")
	}
	if from := q.Get("fromDate"); from != "" {
		t, err := time.Parse(time.RFC3339Nano, from)
		if err != nil {
			if t, err = time.Parse("2006-01-02", from); err != nil {
				return badRequest("fromDate must be an ISO 8601 date or time, like 2024-05-01T00:00:00Z.")
			}
		}
		where, args = append(where, "created_at >= ?"), append(args, ms(t))
	}
	if state := q.Get("state"); state != "" {
		if !allStates[state] {
			return badRequest("state %q is not a valid action state.", state)
		}
		where, args = append(where, "state = ?"), append(args, state)
	}
	rows, err := e.db.QueryContext(r.Context(), `SELECT `+actionColumns+` FROM actions WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at DESC, rowid DESC LIMIT 1000`, args...)
	if err != nil {
		return fmt.Errorf("query actions: %w", err)
	}
	defer rows.Close()
	out := []actionSummary{}
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			return err
		}
		out = append(out, actionSummary{ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey, CreatedAt: isoTime(a.CreatedAt), UpdatedAt: isoTime(a.UpdatedAt),
			State: a.State, StateUpdatedAt: isoTime(a.StateUpdatedAt), VerificationMethod: a.VerificationMethod, VerifiedByAuthenticatorID: a.VerifiedByAuthID,
			IPAddress: a.IPAddress, UserAgent: a.UserAgent})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query actions: %w", err)
	}
	e.writeJSON(w, http.StatusOK, out)
	return nil
}

type validateRequest struct {
	Token  string `json:"token"`
	UserID string `json:"userId"`
	Action string `json:"action"`
}

type validateResponse struct {
	IsValid            bool   `json:"isValid"`
	State              string `json:"state,omitempty"`
	StateUpdatedAt     string `json:"stateUpdatedAt,omitempty"`
	UserID             string `json:"userId,omitempty"`
	Action             string `json:"action,omitempty"`
	ActionCode         string `json:"actionCode,omitempty"`
	IdempotencyKey     string `json:"idempotencyKey,omitempty"`
	VerificationMethod string `json:"verificationMethod,omitempty"`
	Error              string `json:"error,omitempty"`
}

// handleValidate checks a token and reports its action's current state. isValid is true
// only when that state is CHALLENGE_SUCCEEDED; a genuine token of an action in any other
// state answers isValid false with the action's details, as the SDKs' integration tests
// see the real service do. A bad, tampered or expired token, or one for another user or
// action, is 200 {"isValid": false} too; only a missing token is a 400.
func (e *Emulator) handleValidate(w http.ResponseWriter, r *http.Request) error {
	var req validateRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Token == "" {
		return badRequest("token is required.")
	}
	claims, err := e.parseToken(req.Token)
	if err != nil {
		e.log.Info("token rejected", "reason", tokenErrorReason(err))
		e.writeJSON(w, http.StatusOK, validateResponse{IsValid: false})
		return nil
	}
	switch {
	case req.UserID != "" && req.UserID != claims.Subject:
		e.writeJSON(w, http.StatusOK, validateResponse{IsValid: false, Error: "User is invalid."})
		return nil
	case req.Action != "" && req.Action != claims.Other.ActionCode:
		e.writeJSON(w, http.StatusOK, validateResponse{IsValid: false, Error: "Action is invalid."})
		return nil
	}
	a, err := loadAction(r.Context(), e.db, claims.Subject, claims.Other.ActionCode, claims.Other.IdempotencyKey)
	if errors.Is(err, errNotFound) {
		e.writeJSON(w, http.StatusOK, validateResponse{IsValid: false})
		return nil
	}
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, validateResponse{IsValid: a.State == StateChallengeSucceeded, State: a.State, StateUpdatedAt: isoTime(a.StateUpdatedAt),
		UserID: a.UserID, Action: a.ActionCode, ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey, VerificationMethod: a.VerificationMethod})
	return nil
}

// tokenErrorReason names why a token failed without echoing it.
func tokenErrorReason(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "expired"):
		return "expired"
	case strings.Contains(s, "signature"):
		return "bad signature"
	case strings.Contains(s, "signing method"):
		return "wrong algorithm"
	case strings.Contains(s, "malformed"):
		return "malformed"
	}
	return "invalid"
}
