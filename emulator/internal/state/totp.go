package state

import (
	"cmp"
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"example.com/passwordless/emulator/internal/vocab"
)

// Authenticator apps: TOTP (RFC 6238) with pquerna/otp, 6 digits, 30-second steps,
// SHA-1 (what every authenticator app reads from an otpauth URI), on the emulator's clock.
// A code is accepted one step early or late (clock drift), and each step's code once.
// Checking a code is a challenge of the action like a sent code, without a message: the
// same attempt limit applies.

// totpIssuer is the issuer an authenticator app shows beside the account.
const totpIssuer = "Authsignal emulator"

var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is an authenticator app being added: what the person scans or types.
type TOTPEnrolment struct {
	ChallengeID     string
	AuthenticatorID string // the id it gets once a first code is right
	URI             string // otpauth://totp/…
	Secret          string // base32
}

// StartClientTOTP starts adding an authenticator app for the Client API's action (the
// user's first authenticator, or with the add:authenticators scope).
func (s *Store) StartClientTOTP(ctx context.Context, k ActionKey, mayAdd bool) (TOTPEnrolment, error) {
	return s.startTOTP(ctx, k, clientSurface, mayAdd)
}

// StartPageTOTP starts adding an authenticator app from the pre-built UI, for a user with
// no authenticator (as its email and phone enrolment).
func (s *Store) StartPageTOTP(ctx context.Context, k ActionKey) (TOTPEnrolment, error) {
	return s.startTOTP(ctx, k, prebuiltSurface, false)
}

func (s *Store) startTOTP(ctx context.Context, k ActionKey, by surface, mayAdd bool) (TOTPEnrolment, error) {
	secret, err := s.random.Bytes(20)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	var out TOTPEnrolment
	if out.AuthenticatorID, err = s.random.UUID(); err != nil {
		return TOTPEnrolment{}, err
	}
	err = s.inTx(ctx, func(tx *txn) error {
		a, err := by.load(ctx, tx, k)
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, k.UserID)
		if err != nil {
			return err
		}
		if len(auths) > 0 && !mayAdd {
			return refuse(Forbidden, "The user is already enrolled: adding an authenticator app needs a token with the add:authenticators scope.")
		}
		for _, au := range auths {
			if au.Method == vocab.MethodAuthenticatorApp {
				return refuse(Invalid, "The user has an authenticator app already; remove it before adding another.")
			}
		}
		u, err := loadUser(ctx, tx, k.UserID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: cmp.Or(u.Email, u.Username, u.PhoneNumber, u.ID), Secret: secret})
		if err != nil {
			return fmt.Errorf("make TOTP key: %w", err)
		}
		out.URI, out.Secret = key.URL(), key.Secret()
		if out.ChallengeID, err = s.startTOTPChallenge(ctx, tx, a, "", out.AuthenticatorID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO totp_enrolments(challenge_id, secret, uri) VALUES (?, ?, ?)`, out.ChallengeID, out.Secret, out.URI); err != nil {
			return fmt.Errorf("insert TOTP enrolment: %w", err)
		}
		return nil
	})
	return out, err
}

// startTOTPChallenge makes the action's code in flight a check of an authenticator app:
// authID's, or (authID "") the one being added as newAuthID. Nothing is sent.
func (s *Store) startTOTPChallenge(ctx context.Context, tx *txn, a *Action, authID, newAuthID string) (string, error) {
	id, err := s.random.UUID()
	if err != nil {
		return "", err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO challenges(challenge_id, origin, idempotency_key, action_code, verification_method, channel,
		user_id, authenticator_id, new_authenticator_id, locale, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`,
		id, OriginPrebuilt, a.IdempotencyKey, a.ActionCode, vocab.MethodAuthenticatorApp, a.UserID, authID, newAuthID, a.Locale,
		ms(now.Add(s.limits.CodeTTL)), ms(now)); err != nil {
		return "", fmt.Errorf("insert TOTP challenge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE actions SET ui_challenge_id = ?, updated_at = ? WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		id, ms(now), a.UserID, a.ActionCode, a.IdempotencyKey); err != nil {
		return "", fmt.Errorf("link TOTP challenge: %w", err)
	}
	return id, nil
}

// VerifyClientTOTP checks an authenticator app's code for the Client API's action: the
// app being added, or else the user's enrolled one (a check of it starts here when none
// is in flight: the SDK has no challenge call for apps).
func (s *Store) VerifyClientTOTP(ctx context.Context, k ActionKey, code string) (ClientVerification, error) {
	a, err := clientAction(ctx, s.db, k)
	if err != nil {
		return ClientVerification{}, err
	}
	c, err := pendingChallenge(ctx, s.db, a)
	if err != nil {
		return ClientVerification{}, err
	}
	if c == nil || c.VerificationMethod != vocab.MethodAuthenticatorApp {
		err := s.inTx(ctx, func(tx *txn) error {
			a, err := clientAction(ctx, tx, k)
			if err != nil {
				return err
			}
			var authID string
			err = tx.QueryRowContext(ctx, `SELECT authenticator_id FROM authenticators WHERE user_id = +? AND verification_method = +? ORDER BY created_at LIMIT 1`,
				k.UserID, vocab.MethodAuthenticatorApp).Scan(&authID)
			if errors.Is(err, sql.ErrNoRows) {
				return refuse(Invalid, "The user has no authenticator app: add one first.")
			}
			if err != nil {
				return fmt.Errorf("find authenticator app: %w", err)
			}
			_, err = s.startTOTPChallenge(ctx, tx, a, authID, "")
			return err
		})
		if err != nil {
			return ClientVerification{}, err
		}
	}
	return s.VerifyClientCode(ctx, k, vocab.MethodAuthenticatorApp, code)
}

// verifyTOTP checks one attempt at an app's code inside tx, with verifyCode's limits.
func (s *Store) verifyTOTP(ctx context.Context, tx *txn, c *Challenge, code string) (Verification, error) {
	max, now := s.limits.MaxAttempts, s.now()
	switch {
	case c.Attempts >= max:
		return Verification{FailureReason: vocab.FailureMaxAttemptsReached, Challenge: *c}, nil
	case c.Verified() || !now.Before(c.ExpiresAt):
		return Verification{FailureReason: vocab.FailureInvalidOrExpired, AttemptsLeft: max - c.Attempts, Challenge: *c}, nil
	}
	enrolling := c.AuthenticatorID == ""
	var secret string
	lastStep := int64(-1)
	var err error
	if enrolling {
		err = tx.QueryRowContext(ctx, `SELECT secret FROM totp_enrolments WHERE challenge_id = ?`, c.ID).Scan(&secret)
	} else {
		err = tx.QueryRowContext(ctx, `SELECT secret, last_step FROM totp_secrets WHERE authenticator_id = ?`, c.AuthenticatorID).Scan(&secret, &lastStep)
	}
	if err != nil {
		return Verification{}, fmt.Errorf("load TOTP secret: %w", err)
	}
	step, ok := matchTOTP(secret, code, now, lastStep)
	if !ok {
		return s.countWrongAttempt(ctx, tx, c)
	}
	res, err := tx.ExecContext(ctx, `UPDATE challenges SET verified_at = ? WHERE challenge_id = ? AND verified_at IS NULL AND attempts < ?`, ms(now), c.ID, max)
	if err != nil {
		return Verification{}, fmt.Errorf("mark challenge verified: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return Verification{FailureReason: vocab.FailureInvalidOrExpired, Challenge: *c}, nil
	}
	if enrolling {
		_, err = tx.ExecContext(ctx, `UPDATE totp_enrolments SET step = ? WHERE challenge_id = ?`, step, c.ID)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE totp_secrets SET last_step = ? WHERE authenticator_id = ?`, step, c.AuthenticatorID)
	}
	if err != nil {
		return Verification{}, fmt.Errorf("record TOTP step: %w", err)
	}
	c.VerifiedAt = fromMS(ms(now))
	return Verification{Verified: true, Challenge: *c}, nil
}

// matchTOTP finds the step within one of now whose code is code, later than lastStep (a
// step's code works once), comparing in constant time.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	if len(code) != otp.DigitsSix.Length() {
		return 0, false
	}
	current := now.Unix() / int64(totpOpts.Period)
	matched, found := int64(0), false
	for step := current - int64(totpOpts.Skew); step <= current+int64(totpOpts.Skew); step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*int64(totpOpts.Period), 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > lastStep && !found {
			matched, found = step, true
		}
	}
	return matched, found
}

// enrollTOTP enrols the authenticator app whose first code was right, with its secret and
// the step that code was for.
func (s *Store) enrollTOTP(ctx context.Context, tx *txn, userID string, c *Challenge) (string, error) {
	var secret string
	var step int64
	if err := tx.QueryRowContext(ctx, `SELECT secret, step FROM totp_enrolments WHERE challenge_id = ?`, c.ID).Scan(&secret, &step); err != nil {
		return "", fmt.Errorf("load TOTP enrolment: %w", err)
	}
	a, err := s.enrollAuthenticator(ctx, tx, userID, c.NewAuthenticatorID, vocab.MethodAuthenticatorApp, "", "", false)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO totp_secrets(authenticator_id, secret, last_step) VALUES (?, ?, ?)`, a.ID, secret, step); err != nil {
		return "", fmt.Errorf("insert TOTP secret: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM totp_enrolments WHERE challenge_id = ?`, c.ID); err != nil {
		return "", fmt.Errorf("drop TOTP enrolment: %w", err)
	}
	return a.ID, nil
}

// EnrollTOTP enrols an authenticator app the server vouches for (the Server API's
// enrolment with an otpUri), as verified.
func (s *Store) EnrollTOTP(ctx context.Context, userID, otpURI string, isDefault bool) (Authenticator, error) {
	secret, err := totpSecret(otpURI)
	if err != nil {
		return Authenticator{}, refuse(Invalid, "otpUri: %s.", err)
	}
	var a Authenticator
	err = s.inTx(ctx, func(tx *txn) error {
		if _, err := s.ensureUser(ctx, tx, userID); err != nil {
			return err
		}
		existing, err := listAuthenticators(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, au := range existing {
			if au.Method == vocab.MethodAuthenticatorApp {
				return refuse(Invalid, "The user has an authenticator app already.")
			}
		}
		if a, err = s.enrollAuthenticator(ctx, tx, userID, "", vocab.MethodAuthenticatorApp, "", "", isDefault); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO totp_secrets(authenticator_id, secret) VALUES (?, ?)`, a.ID, secret)
		return err
	})
	return a, err
}

// pendingTOTPEnrolment is the app being added by challenge c, or nil.
func pendingTOTPEnrolment(ctx context.Context, q queryer, c *Challenge) (*TOTPEnrolment, error) {
	if c == nil || c.VerificationMethod != vocab.MethodAuthenticatorApp || c.AuthenticatorID != "" {
		return nil, nil
	}
	e := TOTPEnrolment{ChallengeID: c.ID, AuthenticatorID: c.NewAuthenticatorID}
	err := q.QueryRowContext(ctx, `SELECT secret, uri FROM totp_enrolments WHERE challenge_id = ?`, c.ID).Scan(&e.Secret, &e.URI)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load TOTP enrolment: %w", err)
	}
	return &e, nil
}

// totpSecret is an otpauth URI's secret, checked to be usable.
func totpSecret(uri string) (string, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil || key.Type() != "totp" || key.Secret() == "" {
		return "", errors.New("it must be an otpauth://totp/… URI with a secret")
	}
	if _, err := totp.GenerateCodeCustom(key.Secret(), time.Unix(0, 0), totpOpts); err != nil {
		return "", errors.New("its secret is not valid base32")
	}
	return key.Secret(), nil
}

// totpURI is an exported authenticator app's URI: the secret is what matters.
func totpURI(secret string) string {
	return "otpauth://totp/" + url.PathEscape(totpIssuer) + "?issuer=" + url.QueryEscape(totpIssuer) + "&secret=" + secret
}
