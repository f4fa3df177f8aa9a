package state

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
)

// Origin says who started a challenge.
type Origin string

// The origins of challenges.
const (
	OriginAPI      Origin = "api" // the Server API's challenge
	OriginPrebuilt Origin = "ui"  // the pre-built UI, for a tracked action
)

// Challenge is a stored challenge: a code sent, waiting to be verified.
type Challenge struct {
	ID                 string
	Origin             Origin
	IdempotencyKey     string
	ActionCode         string
	VerificationMethod vocab.Method
	SMSChannel         string
	Channel            vocab.Channel
	Email              string
	PhoneNumber        string
	UserID             string // "" for an anonymous challenge
	ClaimedUserID      string
	AuthenticatorID    string // the pre-built UI's chosen authenticator; "" when enrolling a new one
	NewAuthenticatorID string // the id a new address gets once its code is verified; "" = a fresh one
	Scope              string
	Locale             string
	ExpiresAt          time.Time
	Attempts           int
	VerifiedAt         time.Time // zero: not verified

	codeHash []byte // nil once used
}

// Recipient is the address the code went to.
func (c Challenge) Recipient() string {
	if c.Channel == vocab.ChannelEmail {
		return c.Email
	}
	return c.PhoneNumber
}

// Verified reports whether the right code was given.
func (c Challenge) Verified() bool { return !c.VerifiedAt.IsZero() }

// ChallengeStatus is where a challenge stands, as the admin pages show it.
type ChallengeStatus string

// The challenge statuses.
const (
	StatusPending    ChallengeStatus = "PENDING"
	StatusVerified   ChallengeStatus = "VERIFIED"
	StatusClaimed    ChallengeStatus = "CLAIMED"
	StatusUsed       ChallengeStatus = "USED"
	StatusExpired    ChallengeStatus = "EXPIRED"
	StatusNoAttempts ChallengeStatus = "FAILED (no attempts left)"
)

// Status names where a challenge stands at now, checked in the same order as verify.
func (c Challenge) Status(now time.Time, maxAttempts int) ChallengeStatus {
	switch {
	case c.Attempts >= maxAttempts:
		return StatusNoAttempts
	case c.Verified() && c.ClaimedUserID != "":
		return StatusClaimed
	case c.Verified():
		return StatusVerified
	case c.codeHash == nil && c.VerificationMethod != vocab.MethodAuthenticatorApp: // an app's codes are not stored
		return StatusUsed
	case !now.Before(c.ExpiresAt):
		return StatusExpired
	}
	return StatusPending
}

const challengeColumns = `challenge_id, origin, idempotency_key, action_code, verification_method, sms_channel, channel,
	email, phone_number, user_id, claimed_user_id, authenticator_id, scope, locale, code_hash, expires_at, attempts, verified_at, new_authenticator_id`

func scanChallenge(row interface{ Scan(...any) error }) (*Challenge, error) {
	var c Challenge
	var expires int64
	var verified sql.NullInt64
	err := row.Scan(&c.ID, &c.Origin, &c.IdempotencyKey, &c.ActionCode, &c.VerificationMethod, &c.SMSChannel, &c.Channel,
		&c.Email, &c.PhoneNumber, &c.UserID, &c.ClaimedUserID, &c.AuthenticatorID, &c.Scope, &c.Locale, &c.codeHash, &expires, &c.Attempts, &verified, &c.NewAuthenticatorID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	if err != nil {
		return nil, fmt.Errorf("load challenge: %w", err)
	}
	c.ExpiresAt, c.VerifiedAt = fromMS(expires), nullTime(verified)
	return &c, nil
}

func loadChallenge(ctx context.Context, q queryer, id string, origin Origin) (*Challenge, error) {
	return scanChallenge(q.QueryRowContext(ctx, `SELECT `+challengeColumns+` FROM challenges WHERE challenge_id = ? AND origin = ?`, id, origin))
}

// loadAPIChallenge is loadChallenge of an API challenge, refusing an unknown id.
func loadAPIChallenge(ctx context.Context, tx *txn, id string) (*Challenge, error) {
	c, err := loadChallenge(ctx, tx, id, OriginAPI)
	if errors.Is(err, errNoRow) {
		return nil, refuse(NotFound, "Challenge %q was not found.", id)
	}
	return c, err
}

// codeHash binds the code to its challenge, so equal codes of two challenges hash differently.
func codeHash(challengeID, code string) []byte {
	h := sha256.Sum256([]byte(challengeID + ":" + code))
	return h[:]
}

// deliverable refuses a recipient that always fails delivery (test mode), before anything
// is generated, stored or sent.
func (s *Store) deliverable(channel vocab.Channel, recipient string) error {
	if s.codes.Undeliverable(recipient) {
		what := "SMS"
		switch channel {
		case vocab.ChannelEmail:
			what = "email"
		case vocab.ChannelWhatsApp:
			what = "WhatsApp message"
		}
		return refuse(Undeliverable, "The %s could not be delivered: the provider refused it (emulator test recipient that always fails).", what)
	}
	return nil
}

// NewChallenge is a code to send: to Email for EMAIL_OTP, else to PhoneNumber (both
// normalized). With a UserID, the challenge is also an action of that user.
type NewChallenge struct {
	Method                         vocab.Method
	ActionCode                     string
	Email, PhoneNumber             string
	SMSChannel                     string // "", DEFAULT, SMS or WHATSAPP
	IdempotencyKey                 string // "" = a fresh one
	UserID                         string
	Scope, Locale                  string
	IPAddress, UserAgent, DeviceID string
	Custom                         map[string]any
}

// CreateChallenge sends a code and records the challenge.
func (s *Store) CreateChallenge(ctx context.Context, n NewChallenge) (Challenge, error) {
	custom, err := customJSON(n.Custom)
	if err != nil {
		return Challenge{}, err
	}
	channel := vocab.DeliveryChannel(n.Method, n.SMSChannel)
	c := Challenge{Origin: OriginAPI, IdempotencyKey: n.IdempotencyKey, ActionCode: n.ActionCode, VerificationMethod: n.Method, SMSChannel: n.SMSChannel,
		Channel: channel, Email: n.Email, PhoneNumber: n.PhoneNumber, UserID: n.UserID, Scope: n.Scope, Locale: n.Locale}
	if err := s.deliverable(channel, c.Recipient()); err != nil {
		return Challenge{}, err
	}
	if c.ID, err = s.random.UUID(); err != nil {
		return Challenge{}, err
	}
	if c.IdempotencyKey == "" {
		if c.IdempotencyKey, err = s.random.UUID(); err != nil {
			return Challenge{}, err
		}
	}
	code, err := s.codes.Code(c.Recipient()) // a test recipient's fixed code, else random
	if err != nil {
		return Challenge{}, err
	}
	now := s.now()
	c.ExpiresAt = now.Add(s.limits.CodeTTL)
	err = s.inTxSending(ctx, func(tx *txn) error {
		if err := s.sendCode(ctx, tx, c.ID, channel, c.Recipient(), n.Locale, code); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO challenges(challenge_id, origin, idempotency_key, action_code, verification_method, sms_channel, channel,
			email, phone_number, user_id, scope, locale, ip_address, user_agent, device_id, custom, code_hash, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Origin, c.IdempotencyKey, c.ActionCode, c.VerificationMethod, c.SMSChannel, channel, c.Email, c.PhoneNumber, c.UserID, c.Scope, c.Locale,
			n.IPAddress, n.UserAgent, n.DeviceID, string(custom), codeHash(c.ID, code), ms(c.ExpiresAt), ms(now)); err != nil {
			return fmt.Errorf("insert challenge: %w", err)
		}
		if n.UserID == "" {
			return nil
		}
		// A challenge for a known user is an action of that user, as in the real service.
		if _, err := s.ensureUser(ctx, tx, n.UserID); err != nil {
			return err
		}
		return s.insertActionIfAbsent(ctx, tx, Action{
			ActionKey: ActionKey{UserID: n.UserID, ActionCode: n.ActionCode, IdempotencyKey: c.IdempotencyKey}, State: vocab.StateChallengeRequired,
			IPAddress: n.IPAddress, UserAgent: n.UserAgent, DeviceID: n.DeviceID, Email: n.Email, PhoneNumber: n.PhoneNumber,
			Scope: n.Scope, Custom: custom, Locale: n.Locale,
		})
	})
	if err != nil {
		return Challenge{}, err
	}
	s.log.Info("challenge created", "challenge_id", c.ID, "method", n.Method, "action", n.ActionCode)
	return c, nil
}

// Resend names a challenge to send a fresh code for; Method and ActionCode, when given,
// must match it, and Locale replaces its language.
type Resend struct {
	ChallengeID string
	Method      vocab.Method
	ActionCode  string
	Locale      string
}

// ResendChallenge issues a fresh code for an existing challenge: new expiry, attempts
// reset, the old code stops working. It counts against the send limit like any send.
func (s *Store) ResendChallenge(ctx context.Context, r Resend) (Challenge, error) {
	var c *Challenge
	err := s.inTxSending(ctx, func(tx *txn) error {
		var err error
		if c, err = loadAPIChallenge(ctx, tx, r.ChallengeID); err != nil {
			return err
		}
		switch {
		case r.Method != "" && r.Method != c.VerificationMethod:
			return refuse(Invalid, "verificationMethod does not match the challenge (%s).", c.VerificationMethod)
		case r.ActionCode != "" && r.ActionCode != c.ActionCode:
			return refuse(Invalid, "action does not match the challenge.")
		case c.Verified() || c.ClaimedUserID != "":
			return refuse(Invalid, "The challenge is already verified; start a new challenge instead.")
		}
		if err := s.deliverable(c.Channel, c.Recipient()); err != nil {
			return err
		}
		code, err := s.codes.Code(c.Recipient())
		if err != nil {
			return err
		}
		if r.Locale != "" {
			c.Locale = r.Locale
		}
		if err := s.sendCode(ctx, tx, c.ID, c.Channel, c.Recipient(), c.Locale, code); err != nil {
			return err
		}
		c.ExpiresAt, c.Attempts = s.now().Add(s.limits.CodeTTL), 0
		if _, err := tx.ExecContext(ctx, `UPDATE challenges SET code_hash = ?, expires_at = ?, attempts = 0 WHERE challenge_id = ?`,
			codeHash(c.ID, code), ms(c.ExpiresAt), c.ID); err != nil {
			return fmt.Errorf("resend challenge: %w", err)
		}
		return nil
	})
	if err != nil {
		return Challenge{}, err
	}
	s.log.Info("challenge re-sent", "challenge_id", c.ID)
	return *c, nil
}

// Verification is the result of one attempt at a code.
type Verification struct {
	Verified      bool
	FailureReason vocab.FailureReason
	Refused       string // the right code, refused by the action.verify webhook: nothing changed
	AttemptsLeft  int
	Challenge     Challenge // as it stands after the attempt
}

// verifyCode checks one attempt inside tx. Writes are serialized by the committer and the
// attempt counter only moves by a conditional UPDATE, so concurrent attempts never make
// more than MaxAttempts wrong ones, and the right code succeeds once.
func (s *Store) verifyCode(ctx context.Context, tx *txn, c *Challenge, code string) (Verification, error) {
	max := s.limits.MaxAttempts
	switch {
	case c.Attempts >= max:
		return Verification{FailureReason: vocab.FailureMaxAttemptsReached, Challenge: *c}, nil
	case c.Verified() || c.codeHash == nil || !s.now().Before(c.ExpiresAt):
		return Verification{FailureReason: vocab.FailureInvalidOrExpired, AttemptsLeft: max - c.Attempts, Challenge: *c}, nil
	}
	if subtle.ConstantTimeCompare(codeHash(c.ID, code), c.codeHash) == 1 {
		now := s.now()
		res, err := tx.ExecContext(ctx, `UPDATE challenges SET verified_at = ?, code_hash = NULL WHERE challenge_id = ? AND code_hash IS NOT NULL AND attempts < ?`,
			ms(now), c.ID, max)
		if err != nil {
			return Verification{}, fmt.Errorf("mark challenge verified: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return Verification{FailureReason: vocab.FailureInvalidOrExpired, Challenge: *c}, nil
		}
		c.VerifiedAt, c.codeHash = fromMS(ms(now)), nil
		return Verification{Verified: true, Challenge: *c}, nil
	}
	return s.countWrongAttempt(ctx, tx, c)
}

// countWrongAttempt records a wrong code for c, and says whether it was the last allowed.
func (s *Store) countWrongAttempt(ctx context.Context, tx *txn, c *Challenge) (Verification, error) {
	max := s.limits.MaxAttempts
	res, err := tx.ExecContext(ctx, `UPDATE challenges SET attempts = attempts + 1 WHERE challenge_id = ? AND attempts = ?`, c.ID, c.Attempts)
	if err != nil {
		return Verification{}, fmt.Errorf("count attempt: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		// Someone else moved the counter first; report conservatively.
		return Verification{FailureReason: vocab.FailureInvalidOrExpired, Challenge: *c}, nil
	}
	c.Attempts++
	v := Verification{FailureReason: vocab.FailureInvalidOrExpired, AttemptsLeft: max - c.Attempts, Challenge: *c}
	if c.Attempts >= max {
		v.FailureReason = vocab.FailureMaxAttemptsReached
	}
	return v, nil
}

// Verify checks a code of an API challenge. A challenge for a user settles that user's
// action: CHALLENGE_SUCCEEDED on the right code, CHALLENGE_FAILED when the attempts run out.
func (s *Store) Verify(ctx context.Context, challengeID, code string) (Verification, error) {
	if s.verifyAction != nil {
		if pre, err := loadChallenge(ctx, s.db, challengeID, OriginAPI); err == nil {
			refused, err := s.approveSuccess(ctx, pre, code, "")
			if err != nil || refused != "" {
				return Verification{Refused: refused, Challenge: *pre}, err
			}
		}
	}
	var v Verification
	err := s.inTx(ctx, func(tx *txn) error {
		c, err := loadAPIChallenge(ctx, tx, challengeID)
		if err != nil {
			return err
		}
		if v, err = s.verifyCode(ctx, tx, c, code); err != nil {
			return err
		}
		if c.UserID == "" {
			return nil
		}
		k := ActionKey{UserID: c.UserID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey}
		switch {
		case v.Verified:
			_, err = s.moveAction(ctx, tx, k, vocab.StateChallengeSucceeded, c.VerificationMethod, "", vocab.StateChallengeRequired)
		case v.FailureReason == vocab.FailureMaxAttemptsReached:
			_, err = s.moveAction(ctx, tx, k, vocab.StateChallengeFailed, "", "", vocab.StateChallengeRequired)
		}
		return err
	})
	if err != nil {
		return Verification{}, err
	}
	s.log.Info("code checked", "challenge_id", challengeID, "verified", v.Verified, "failure", v.FailureReason)
	return v, nil
}

// Claimed is the result of Claim.
type Claimed struct {
	Token  string
	Method vocab.Method
}

// Claim binds a (verified) anonymous challenge to a user, creating the user if new, and
// records the challenge's action as CHALLENGE_SUCCEEDED (CHALLENGE_REQUIRED when claimed
// unverified). It enrols nothing: the docs do not say that claim does, so an app that
// needs the address as an authenticator enrols it.
func (s *Store) Claim(ctx context.Context, challengeID, userID string, skipVerificationCheck bool) (Claimed, error) {
	var c *Challenge
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		if c, err = loadAPIChallenge(ctx, tx, challengeID); err != nil {
			return err
		}
		switch {
		case c.ClaimedUserID != "" && c.ClaimedUserID != userID:
			return refuse(Invalid, "The challenge was already claimed by another user.")
		case c.UserID != "" && c.UserID != userID:
			return refuse(Invalid, "The challenge was created for another user.")
		case !c.Verified() && !skipVerificationCheck:
			return refuse(Invalid, "The challenge has not been verified; verify it first or set skipVerificationCheck.")
		}
		if _, err := s.ensureUser(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE challenges SET claimed_user_id = ? WHERE challenge_id = ?`, userID, c.ID); err != nil {
			return fmt.Errorf("claim challenge: %w", err)
		}
		k := ActionKey{UserID: userID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey}
		state := vocab.StateChallengeRequired
		if c.Verified() {
			state = vocab.StateChallengeSucceeded
		}
		if err := s.insertActionIfAbsent(ctx, tx, Action{ActionKey: k, State: state, Email: c.Email, PhoneNumber: c.PhoneNumber, Scope: c.Scope, Locale: c.Locale}); err != nil {
			return err
		}
		if state == vocab.StateChallengeSucceeded {
			_, err = s.moveAction(ctx, tx, k, state, c.VerificationMethod, "", "")
		}
		return err
	})
	if err != nil {
		return Claimed{}, err
	}
	tok, err := s.tokens.Issue(token.Action{UserID: userID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey, Scope: c.Scope})
	if err != nil {
		return Claimed{}, err
	}
	s.log.Info("challenge claimed", "challenge_id", c.ID, "user_id", userID)
	return Claimed{Token: tok, Method: c.VerificationMethod}, nil
}

// ChallengeQuery finds an API challenge by id, or a user's latest (optionally of an action
// and a method): every non-empty field must match.
type ChallengeQuery struct {
	ID, UserID, ActionCode string
	Method                 vocab.Method
}

// FindChallenge returns the newest matching API challenge, or nil.
func (s *Store) FindChallenge(ctx context.Context, q ChallengeQuery) (*Challenge, error) {
	where := []string{"origin = +?"}
	args := []any{OriginAPI}
	add := func(cond string, v string, n int) {
		if v != "" {
			where = append(where, cond)
			for range n {
				args = append(args, v)
			}
		}
	}
	add("challenge_id = +?", q.ID, 1)
	add("(user_id = +? OR claimed_user_id = +?)", q.UserID, 2)
	add("action_code = +?", q.ActionCode, 1)
	add("verification_method = +?", string(q.Method), 1)
	c, err := scanChallenge(s.db.QueryRowContext(ctx, `SELECT `+challengeColumns+` FROM challenges WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, rowid DESC LIMIT 1`, args...))
	if errors.Is(err, errNoRow) {
		return nil, nil
	}
	return c, err
}
