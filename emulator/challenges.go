package emulator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type challengeRequest struct {
	VerificationMethod string         `json:"verificationMethod"`
	Action             string         `json:"action"`
	Email              string         `json:"email"`
	PhoneNumber        string         `json:"phoneNumber"`
	SMSChannel         string         `json:"smsChannel"`
	IdempotencyKey     string         `json:"idempotencyKey"`
	UserID             string         `json:"userId"`
	Scope              string         `json:"scope"`
	Locale             string         `json:"locale"`
	IPAddress          string         `json:"ipAddress"`
	UserAgent          string         `json:"userAgent"`
	DeviceID           string         `json:"deviceId"`
	Custom             map[string]any `json:"custom"`
	ChallengeID        string         `json:"challengeId"`
}

type challengeResponse struct {
	ChallengeID    string `json:"challengeId"`
	IdempotencyKey string `json:"idempotencyKey"`
	ExpiresAt      int64  `json:"expiresAt"`
}

// challengeRow is a stored challenge.
type challengeRow struct {
	ID, Origin, IdempotencyKey, ActionCode, VerificationMethod, SMSChannel, Channel string
	Email, PhoneNumber, UserID, ClaimedUserID, AuthenticatorID, Scope, Locale       string
	CodeHash                                                                        []byte
	ExpiresAt                                                                       time.Time
	Attempts                                                                        int
	VerifiedAt                                                                      sql.NullInt64
}

func (c *challengeRow) recipient() string {
	if c.Channel == ChannelEmail {
		return c.Email
	}
	return c.PhoneNumber
}

const challengeColumns = `challenge_id, origin, idempotency_key, action_code, verification_method, sms_channel, channel,
	email, phone_number, user_id, claimed_user_id, authenticator_id, scope, locale, code_hash, expires_at, attempts, verified_at`

func scanChallenge(row interface{ Scan(...any) error }) (*challengeRow, error) {
	var c challengeRow
	var expires int64
	err := row.Scan(&c.ID, &c.Origin, &c.IdempotencyKey, &c.ActionCode, &c.VerificationMethod, &c.SMSChannel, &c.Channel,
		&c.Email, &c.PhoneNumber, &c.UserID, &c.ClaimedUserID, &c.AuthenticatorID, &c.Scope, &c.Locale, &c.CodeHash, &expires, &c.Attempts, &c.VerifiedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load challenge: %w", err)
	}
	c.ExpiresAt = fromMS(expires)
	return &c, nil
}

func loadChallenge(ctx context.Context, tx *txn, id, origin string) (*challengeRow, error) {
	return scanChallenge(tx.QueryRowContext(ctx, `SELECT `+challengeColumns+` FROM challenges WHERE challenge_id = ? AND origin = ?`, id, origin))
}

// codeHash binds the code to its challenge, so equal codes of two challenges hash differently.
func codeHash(challengeID, code string) []byte {
	h := sha256.Sum256([]byte(challengeID + ":" + code))
	return h[:]
}

// deliveryChannel maps a verification method (and smsChannel) to the outbox channel.
func deliveryChannel(method, smsChannel string) string {
	switch {
	case method == MethodEmailOTP:
		return ChannelEmail
	case method == MethodWhatsApp || smsChannel == "WHATSAPP":
		return ChannelWhatsApp
	default:
		return ChannelSMS
	}
}

func checkOTPMethod(field, m string) error {
	switch {
	case m == "":
		return badRequest("%s is required (SMS, EMAIL_OTP or WHATSAPP).", field)
	case m == MethodSMS || m == MethodEmailOTP || m == MethodWhatsApp:
		return nil
	case allVerificationMethods[m]:
		return badRequest("%s %s is not supported by the emulator here; use SMS, EMAIL_OTP or WHATSAPP.", field, m)
	default:
		return badRequest("%s %q is not a known verification method.", field, m)
	}
}

func customJSON(custom map[string]any) (string, error) {
	if custom == nil {
		return "", nil
	}
	b, err := json.Marshal(custom)
	if err != nil {
		return "", badRequest("custom could not be stored: %s.", err)
	}
	return string(b), nil
}

func (e *Emulator) handleChallenge(w http.ResponseWriter, r *http.Request) error {
	var req challengeRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	var resp *challengeResponse
	var err error
	if req.ChallengeID != "" {
		resp, err = e.resendChallenge(r.Context(), req)
	} else {
		resp, err = e.createChallenge(r.Context(), req)
	}
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, resp)
	return nil
}

func (e *Emulator) createChallenge(ctx context.Context, req challengeRequest) (*challengeResponse, error) {
	if err := checkOTPMethod("verificationMethod", req.VerificationMethod); err != nil {
		return nil, err
	}
	if req.Action == "" {
		return nil, badRequest("action is required.")
	}
	if err := ValidateActionCode(req.Action); err != nil {
		return nil, badRequest("action %s.", strings.TrimPrefix(err.Error(), "action code "))
	}
	email, phone, err := checkRecipient(req.VerificationMethod, req.Email, req.PhoneNumber)
	if err != nil {
		return nil, err
	}
	switch req.SMSChannel {
	case "", "DEFAULT", "SMS", "WHATSAPP":
	default:
		return nil, badRequest("smsChannel %q is not one of DEFAULT, SMS, WHATSAPP.", req.SMSChannel)
	}
	if req.UserID != "" {
		if err := validateUserID(req.UserID); err != nil {
			return nil, badRequest("%s.", err)
		}
	}
	if err := checkLengths(field{"idempotencyKey", req.IdempotencyKey}, field{"scope", req.Scope}, field{"locale", req.Locale},
		field{"ipAddress", req.IPAddress}, field{"userAgent", req.UserAgent}, field{"deviceId", req.DeviceID}); err != nil {
		return nil, err
	}
	custom, err := customJSON(req.Custom)
	if err != nil {
		return nil, err
	}
	// A magic failing recipient (force.go) fails before anything is generated, stored or sent.
	// email+phone: exactly one of them is set.
	if err := deliveryFailure(deliveryChannel(req.VerificationMethod, req.SMSChannel), email+phone); err != nil {
		return nil, err
	}
	id, err := e.newUUID()
	if err != nil {
		return nil, err
	}
	idem := req.IdempotencyKey
	if idem == "" {
		if idem, err = e.newUUID(); err != nil {
			return nil, err
		}
	}
	code, err := e.codeFor(email + phone) // a test recipient's fixed code, else random (seed.go)
	if err != nil {
		return nil, err
	}
	channel := deliveryChannel(req.VerificationMethod, req.SMSChannel)
	recipient := email
	if channel != ChannelEmail {
		recipient = phone
	}
	now := e.now()
	expires := now.Add(e.limits.CodeTTL)
	err = e.inTx(ctx, func(tx *txn) error {
		if err := e.sendCode(ctx, tx, id, channel, recipient, req.Locale, code); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO challenges(challenge_id, origin, idempotency_key, action_code, verification_method, sms_channel, channel,
			email, phone_number, user_id, scope, locale, ip_address, user_agent, device_id, custom, code_hash, expires_at, created_at)
			VALUES (?, 'api', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, idem, req.Action, req.VerificationMethod, req.SMSChannel, channel, email, phone, req.UserID, req.Scope, req.Locale,
			req.IPAddress, req.UserAgent, req.DeviceID, custom, codeHash(id, code), ms(expires), ms(now)); err != nil {
			return fmt.Errorf("insert challenge: %w", err)
		}
		if req.UserID == "" {
			return nil
		}
		// A challenge for a known user is an action of that user, as in the real service.
		if err := e.ensureUser(ctx, tx, req.UserID); err != nil {
			return err
		}
		return e.insertActionIfAbsent(ctx, tx, actionRecord{
			UserID: req.UserID, ActionCode: req.Action, IdempotencyKey: idem, State: StateChallengeRequired,
			IPAddress: req.IPAddress, UserAgent: req.UserAgent, DeviceID: req.DeviceID, Email: email, PhoneNumber: phone,
			Scope: req.Scope, Custom: custom, Locale: req.Locale,
		})
	})
	if err != nil {
		return nil, err
	}
	e.log.Info("challenge created", "challenge_id", id, "method", req.VerificationMethod, "action", req.Action)
	return &challengeResponse{ChallengeID: id, IdempotencyKey: idem, ExpiresAt: expires.Unix()}, nil
}

// resendChallenge issues a fresh code for an existing challenge: new expiry, attempts reset,
// the old code stops working. It counts against the send limit like any send.
func (e *Emulator) resendChallenge(ctx context.Context, req challengeRequest) (*challengeResponse, error) {
	var resp *challengeResponse
	err := e.inTx(ctx, func(tx *txn) error {
		c, err := loadChallenge(ctx, tx, req.ChallengeID, "api")
		if errors.Is(err, errNotFound) {
			return notFound("Challenge %q was not found.", req.ChallengeID)
		}
		if err != nil {
			return err
		}
		if req.VerificationMethod != "" && req.VerificationMethod != c.VerificationMethod {
			return badRequest("verificationMethod does not match the challenge (%s).", c.VerificationMethod)
		}
		if req.Action != "" && req.Action != c.ActionCode {
			return badRequest("action does not match the challenge.")
		}
		if c.VerifiedAt.Valid || c.ClaimedUserID != "" {
			return badRequest("The challenge is already verified; start a new challenge instead.")
		}
		if err := deliveryFailure(c.Channel, c.recipient()); err != nil {
			return err
		}
		code, err := e.codeFor(c.recipient())
		if err != nil {
			return err
		}
		locale := c.Locale
		if req.Locale != "" {
			locale = req.Locale
		}
		if err := e.sendCode(ctx, tx, c.ID, c.Channel, c.recipient(), locale, code); err != nil {
			return err
		}
		expires := e.now().Add(e.limits.CodeTTL)
		if _, err := tx.ExecContext(ctx, `UPDATE challenges SET code_hash = ?, expires_at = ?, attempts = 0 WHERE challenge_id = ?`,
			codeHash(c.ID, code), ms(expires), c.ID); err != nil {
			return fmt.Errorf("resend challenge: %w", err)
		}
		resp = &challengeResponse{ChallengeID: c.ID, IdempotencyKey: c.IdempotencyKey, ExpiresAt: expires.Unix()}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.log.Info("challenge re-sent", "challenge_id", resp.ChallengeID)
	return resp, nil
}

type verifyRequest struct {
	ChallengeID      string `json:"challengeId"`
	VerificationCode string `json:"verificationCode"`
}

type verifyResponse struct {
	IsVerified         bool   `json:"isVerified"`
	Email              string `json:"email,omitempty"`
	PhoneNumber        string `json:"phoneNumber,omitempty"`
	VerificationMethod string `json:"verificationMethod,omitempty"`
	FailureReason      string `json:"failureReason,omitempty"`
}

// verifyOutcome is the result of one attempt.
type verifyOutcome struct {
	Verified      bool
	FailureReason string
	AttemptsLeft  int
	Challenge     *challengeRow
}

// verifyCode checks one attempt inside tx. Transactions are immediate (write lock at BEGIN),
// and the attempt counter only moves by a conditional UPDATE, so concurrent attempts are
// serialized: never more than MaxAttempts wrong ones, and the right code succeeds once.
func (e *Emulator) verifyCode(ctx context.Context, tx *txn, c *challengeRow, code string) (verifyOutcome, error) {
	out := verifyOutcome{Challenge: c}
	max := e.limits.MaxAttempts
	switch {
	case c.Attempts >= max:
		out.FailureReason = FailureMaxAttemptsReached
		return out, nil
	case c.VerifiedAt.Valid || c.CodeHash == nil || !e.now().Before(c.ExpiresAt):
		out.FailureReason = FailureInvalidOrExpired
		out.AttemptsLeft = max - c.Attempts
		return out, nil
	}
	if subtle.ConstantTimeCompare(codeHash(c.ID, code), c.CodeHash) == 1 {
		res, err := tx.ExecContext(ctx, `UPDATE challenges SET verified_at = ?, code_hash = NULL WHERE challenge_id = ? AND code_hash IS NOT NULL AND attempts < ?`,
			ms(e.now()), c.ID, max)
		if err != nil {
			return out, fmt.Errorf("mark challenge verified: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			out.FailureReason = FailureInvalidOrExpired
			return out, nil
		}
		out.Verified = true
		return out, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE challenges SET attempts = attempts + 1 WHERE challenge_id = ? AND attempts = ?`, c.ID, c.Attempts)
	if err != nil {
		return out, fmt.Errorf("count attempt: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		// Someone else moved the counter first; report conservatively.
		out.FailureReason = FailureInvalidOrExpired
		return out, nil
	}
	c.Attempts++
	out.AttemptsLeft = max - c.Attempts
	if c.Attempts >= max {
		out.FailureReason = FailureMaxAttemptsReached
	} else {
		out.FailureReason = FailureInvalidOrExpired
	}
	return out, nil
}

func (e *Emulator) handleVerify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.ChallengeID == "" {
		return badRequest("challengeId is required.")
	}
	if req.VerificationCode == "" {
		return badRequest("verificationCode is required.")
	}
	ctx := r.Context()
	var resp verifyResponse
	err := e.inTx(ctx, func(tx *txn) error {
		c, err := loadChallenge(ctx, tx, req.ChallengeID, "api")
		if errors.Is(err, errNotFound) {
			return notFound("Challenge %q was not found.", req.ChallengeID)
		}
		if err != nil {
			return err
		}
		out, err := e.verifyCode(ctx, tx, c, req.VerificationCode)
		if err != nil {
			return err
		}
		if !out.Verified {
			resp = verifyResponse{FailureReason: out.FailureReason}
			if out.FailureReason == FailureMaxAttemptsReached && c.UserID != "" {
				return e.setActionState(ctx, tx, c.UserID, c.ActionCode, c.IdempotencyKey, StateChallengeFailed, "", "", StateChallengeRequired)
			}
			return nil
		}
		resp = verifyResponse{IsVerified: true, Email: c.Email, PhoneNumber: c.PhoneNumber, VerificationMethod: c.VerificationMethod}
		if c.UserID != "" {
			return e.setActionState(ctx, tx, c.UserID, c.ActionCode, c.IdempotencyKey, StateChallengeSucceeded, c.VerificationMethod, "", StateChallengeRequired)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.log.Info("code checked", "challenge_id", req.ChallengeID, "verified", resp.IsVerified, "failure", resp.FailureReason)
	e.writeJSON(w, http.StatusOK, resp)
	return nil
}

type claimRequest struct {
	ChallengeID           string `json:"challengeId"`
	UserID                string `json:"userId"`
	SkipVerificationCheck bool   `json:"skipVerificationCheck"`
}

type claimResponse struct {
	Token              string `json:"token"`
	VerificationMethod string `json:"verificationMethod"`
}

// handleClaim binds a (verified) anonymous challenge to a user, creating the user if new, and
// records the challenge's action as CHALLENGE_SUCCEEDED (CHALLENGE_REQUIRED when claimed
// unverified). It enrols nothing: the docs do not say that claim does, so an app that needs
// the address as an authenticator enrols it (POST /v1/users/{userId}/authenticators).
func (e *Emulator) handleClaim(w http.ResponseWriter, r *http.Request) error {
	var req claimRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.ChallengeID == "" {
		return badRequest("challengeId is required.")
	}
	if err := validateUserID(req.UserID); err != nil {
		return badRequest("%s.", err)
	}
	ctx := r.Context()
	var c *challengeRow
	err := e.inTx(ctx, func(tx *txn) error {
		var err error
		c, err = loadChallenge(ctx, tx, req.ChallengeID, "api")
		if errors.Is(err, errNotFound) {
			return notFound("Challenge %q was not found.", req.ChallengeID)
		}
		if err != nil {
			return err
		}
		switch {
		case c.ClaimedUserID != "" && c.ClaimedUserID != req.UserID:
			return badRequest("The challenge was already claimed by another user.")
		case c.UserID != "" && c.UserID != req.UserID:
			return badRequest("The challenge was created for another user.")
		case !c.VerifiedAt.Valid && !req.SkipVerificationCheck:
			return badRequest("The challenge has not been verified; verify it first or set skipVerificationCheck.")
		}
		if err := e.ensureUser(ctx, tx, req.UserID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE challenges SET claimed_user_id = ? WHERE challenge_id = ?`, req.UserID, c.ID); err != nil {
			return fmt.Errorf("claim challenge: %w", err)
		}
		state := StateChallengeRequired
		if c.VerifiedAt.Valid {
			state = StateChallengeSucceeded
		}
		if err := e.insertActionIfAbsent(ctx, tx, actionRecord{UserID: req.UserID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey,
			State: state, Email: c.Email, PhoneNumber: c.PhoneNumber, Scope: c.Scope, Locale: c.Locale}); err != nil {
			return err
		}
		if state == StateChallengeSucceeded {
			return e.setActionState(ctx, tx, req.UserID, c.ActionCode, c.IdempotencyKey, state, c.VerificationMethod, "", "")
		}
		return nil
	})
	if err != nil {
		return err
	}
	token, err := e.issueToken(tokenAction{UserID: req.UserID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey, Scope: c.Scope})
	if err != nil {
		return err
	}
	e.log.Info("challenge claimed", "challenge_id", c.ID, "user_id", req.UserID)
	e.writeJSON(w, http.StatusOK, claimResponse{Token: token, VerificationMethod: c.VerificationMethod})
	return nil
}

type getChallengeResponse struct {
	ChallengeID        string `json:"challengeId,omitempty"`
	ExpiresAt          int64  `json:"expiresAt,omitempty"`
	VerificationMethod string `json:"verificationMethod,omitempty"`
	SMSChannel         string `json:"smsChannel,omitempty"`
	PhoneNumber        string `json:"phoneNumber,omitempty"`
	Email              string `json:"email,omitempty"`
	Action             string `json:"action,omitempty"`
}

// getChallengeQuery is what GET /v1/challenges filters on (the query), or the body of the
// POST form the .NET and Java SDKs send.
type getChallengeQuery struct {
	ChallengeID        string `json:"challengeId"`
	UserID             string `json:"userId"`
	Action             string `json:"action"`
	VerificationMethod string `json:"verificationMethod"`
}

// handleGetChallenge finds a challenge by id, or the latest one of a user (optionally by
// action and method). No match is an empty object, not a 404: the SDKs type every field
// as optional and Authsignal's own examples read challengeId from the answer unchecked.
func (e *Emulator) handleGetChallenge(w http.ResponseWriter, r *http.Request) error {
	var f getChallengeQuery
	if r.Method == http.MethodPost {
		if err := decodeBody(w, r, &f, true); err != nil {
			return err
		}
	}
	q := r.URL.Query()
	for _, p := range []struct {
		dst  *string
		name string
	}{{&f.ChallengeID, "challengeId"}, {&f.UserID, "userId"}, {&f.Action, "action"}, {&f.VerificationMethod, "verificationMethod"}} {
		if *p.dst == "" {
			*p.dst = q.Get(p.name)
		}
	}
	if f.ChallengeID == "" && f.UserID == "" {
		return badRequest("challengeId or userId is required.")
	}
	if f.VerificationMethod != "" && !allVerificationMethods[f.VerificationMethod] {
		return badRequest("verificationMethod %q is not a known verification method.", f.VerificationMethod)
	}
	where := []string{"origin = 'api'"}
	var args []any
	add := func(cond, v string) {
		if v != "" {
			where = append(where, cond)
			args = append(args, v)
		}
	}
	add("challenge_id = ?", f.ChallengeID)
	add("(user_id = ? OR claimed_user_id = ?)", f.UserID)
	if f.UserID != "" {
		args = append(args, f.UserID) // the second placeholder
	}
	add("action_code = ?", f.Action)
	add("verification_method = ?", f.VerificationMethod)
	row := e.db.QueryRowContext(r.Context(), `SELECT `+challengeColumns+` FROM challenges WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at DESC, rowid DESC LIMIT 1`, args...)
	c, err := scanChallenge(row)
	if errors.Is(err, errNotFound) {
		e.writeJSON(w, http.StatusOK, getChallengeResponse{})
		return nil
	}
	if err != nil {
		return err
	}
	resp := getChallengeResponse{ChallengeID: c.ID, ExpiresAt: c.ExpiresAt.Unix(), SMSChannel: c.SMSChannel, PhoneNumber: c.PhoneNumber,
		Email: c.Email, Action: c.ActionCode}
	if c.VerifiedAt.Valid {
		// "The verification method used to complete the challenge. This field can be used to
		// determine if the challenge has been successfully completed" (docs: get-challenge).
		resp.VerificationMethod = c.VerificationMethod
	}
	e.writeJSON(w, http.StatusOK, resp)
	return nil
}
