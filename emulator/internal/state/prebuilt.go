package state

import (
	"context"
	"errors"
	"fmt"

	"example.com/passwordless/emulator/internal/vocab"
)

// The pre-built UI's operations: an action awaiting its challenge, the code sent for it,
// and its settlement. Each write re-checks, inside its transaction, that the action still
// awaits its challenge. The Client API (client.go) runs the same code steps on actions
// its tokens name, with its own rule for which actions it may challenge.

// surface is who runs an action's challenge: they differ in which actions they may challenge.
type surface struct {
	name string // in logs
	load func(ctx context.Context, q queryer, k ActionKey) (*Action, error)
}

var prebuiltSurface = surface{name: "pre-built UI", load: awaiting}

// Page is what the pre-built UI shows for an action awaiting its challenge.
type Page struct {
	Action         Action
	Authenticators []Authenticator // those a code can be sent to, and authenticator apps
	HasPasskey     bool            // the user has a passkey, which the page's script can use
	Pending        *Challenge      // the code in flight, or nil
	PendingTOTP    *TOTPEnrolment  // the authenticator app being added, or nil
}

// awaiting loads an action that must still await its challenge (or was allowed).
func awaiting(ctx context.Context, q queryer, k ActionKey) (*Action, error) {
	a, err := loadAction(ctx, q, k)
	if errors.Is(err, errNoRow) {
		return nil, actionNotFound(k)
	}
	if err != nil {
		return nil, err
	}
	// An allowed action opens too: its user enrols (none yet) or sees their methods, as
	// a track url of a non-challenge outcome does in the real pre-built UI.
	if a.State != vocab.StateChallengeRequired && a.State != vocab.StateAllow {
		return nil, refuse(Conflict, "This action is not waiting for a challenge (its state is %s).", a.State)
	}
	return a, nil
}

// pendingChallenge returns the action's code in flight, or nil.
func pendingChallenge(ctx context.Context, q queryer, a *Action) (*Challenge, error) {
	if a.PageChallengeID == "" {
		return nil, nil
	}
	c, err := loadChallenge(ctx, q, a.PageChallengeID, OriginPrebuilt)
	if errors.Is(err, errNoRow) {
		return nil, nil
	}
	return c, err
}

// Page returns an action awaiting its challenge, the user's authenticators and the code in flight.
func (s *Store) Page(ctx context.Context, k ActionKey) (Page, error) {
	a, err := awaiting(ctx, s.db, k)
	if err != nil {
		return Page{}, err
	}
	all, err := listAuthenticators(ctx, s.db, k.UserID)
	if err != nil {
		return Page{}, err
	}
	c, err := pendingChallenge(ctx, s.db, a)
	if err != nil {
		return Page{}, err
	}
	p := Page{Action: *a, Pending: c}
	if p.PendingTOTP, err = pendingTOTPEnrolment(ctx, s.db, c); err != nil {
		return Page{}, err
	}
	for _, au := range all {
		switch {
		case au.Method.IsOTP() || au.Method == vocab.MethodAuthenticatorApp || au.Method == vocab.MethodEmailMagicLink:
			p.Authenticators = append(p.Authenticators, au)
		case au.Method == vocab.MethodPasskey:
			p.HasPasskey = true
		}
	}
	return p, nil
}

// PageRecipient is where the pre-built UI sends a code: one of the user's authenticators,
// or (for a user with none) a new address, enrolled once its code is verified.
type PageRecipient struct {
	AuthenticatorID    string
	Method             vocab.Method // of a new address
	Email, PhoneNumber string       // normalized
	LinkBase           string       // the emulator's base URL, for a magic link
}

// SendPageCode sends a code for an action awaiting its challenge; it replaces any code in flight.
func (s *Store) SendPageCode(ctx context.Context, k ActionKey, to PageRecipient) error {
	return s.inTxSending(ctx, func(tx *txn) error {
		a, err := awaiting(ctx, tx, k)
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, k.UserID)
		if err != nil {
			return err
		}
		if to.AuthenticatorID != "" {
			for _, au := range auths {
				if au.ID == to.AuthenticatorID && au.Method == vocab.MethodAuthenticatorApp {
					_, err := s.startTOTPChallenge(ctx, tx, a, au.ID, "")
					return err
				}
				if au.ID == to.AuthenticatorID && au.Method == vocab.MethodEmailMagicLink {
					_, err := s.sendMagicLink(ctx, tx, a, au.ID, "", au.Email, to.LinkBase)
					return err
				}
				if au.ID == to.AuthenticatorID && au.Method.IsOTP() {
					_, err := s.startPageChallenge(ctx, tx, a, au.ID, au.Method, au.Email, au.PhoneNumber)
					return err
				}
			}
			return refuse(Invalid, "Choose one of your methods.")
		}
		if len(auths) > 0 { // a passkey too: a new address needs a proof by an enrolled method first
			return refuse(Invalid, "You already have a verification method; choose it.")
		}
		_, err = s.startPageChallenge(ctx, tx, a, "", to.Method, to.Email, to.PhoneNumber)
		return err
	})
}

// startPageChallenge creates a pre-built UI challenge for the action and sends its code.
// authID is "" when enrolling a new email or phone.
func (s *Store) startPageChallenge(ctx context.Context, tx *txn, a *Action, authID string, m vocab.Method, email, phone string) (string, error) {
	return s.startActionChallenge(ctx, tx, a, authID, "", m, email, phone)
}

// startActionChallenge creates a challenge for the action and sends its code; it becomes
// the action's code in flight. newAuthID is the id a new address will be enrolled with.
func (s *Store) startActionChallenge(ctx context.Context, tx *txn, a *Action, authID, newAuthID string, m vocab.Method, email, phone string) (string, error) {
	id, err := s.random.UUID()
	if err != nil {
		return "", err
	}
	channel := vocab.DeliveryChannel(m, "")
	c := Challenge{Channel: channel, Email: email, PhoneNumber: phone}
	// The same test-mode rules as the API: failing recipients, then fixed codes.
	if err := s.deliverable(channel, c.Recipient()); err != nil {
		return "", err
	}
	code, err := s.codes.Code(c.Recipient())
	if err != nil {
		return "", err
	}
	if err := s.sendCode(ctx, tx, id, channel, c.Recipient(), a.Locale, code); err != nil {
		return "", err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO challenges(challenge_id, origin, idempotency_key, action_code, verification_method, channel,
		email, phone_number, user_id, authenticator_id, new_authenticator_id, locale, code_hash, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, OriginPrebuilt, a.IdempotencyKey, a.ActionCode, m, channel, email, phone, a.UserID, authID, newAuthID, a.Locale, codeHash(id, code),
		ms(now.Add(s.limits.CodeTTL)), ms(now)); err != nil {
		return "", fmt.Errorf("insert action challenge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE actions SET ui_challenge_id = ?, updated_at = ? WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		id, ms(now), a.UserID, a.ActionCode, a.IdempotencyKey); err != nil {
		return "", fmt.Errorf("link action challenge: %w", err)
	}
	return id, nil
}

// PageVerification is the result of a code typed into the pre-built UI.
type PageVerification struct {
	Verification
	Action  Action
	Pending *Challenge  // the code it was checked against; nil when none was in flight
	Settled vocab.State // the action's new state, or "" while it still awaits its challenge
}

// VerifyPageCode checks a code. Right: the action succeeds (a new address is enrolled
// first). MaxAttempts wrong: the action fails.
func (s *Store) VerifyPageCode(ctx context.Context, k ActionKey, code string) (PageVerification, error) {
	return s.verifyActionCode(ctx, k, code, prebuiltSurface)
}

// verifyActionCode checks a code against the action's code in flight. Right: the action
// succeeds (a new address is enrolled first). MaxAttempts wrong: an action that was
// challenged fails.
func (s *Store) verifyActionCode(ctx context.Context, k ActionKey, code string, by surface) (PageVerification, error) {
	if s.verifyAction != nil {
		if a, err := by.load(ctx, s.db, k); err == nil {
			if c, err := pendingChallenge(ctx, s.db, a); err == nil && c != nil {
				refused, err := s.approveSuccess(ctx, c, code, c.AuthenticatorID)
				if err != nil || refused != "" {
					return PageVerification{Verification: Verification{Refused: refused, Challenge: *c}, Action: *a, Pending: c}, err
				}
			}
		}
	}
	var out PageVerification
	err := s.inTx(ctx, func(tx *txn) error {
		a, err := by.load(ctx, tx, k)
		if err != nil {
			return err
		}
		out.Action = *a
		c, err := pendingChallenge(ctx, tx, a)
		if err != nil || c == nil {
			return err
		}
		check := s.verifyCode
		if c.VerificationMethod == vocab.MethodAuthenticatorApp {
			check = s.verifyTOTP
		}
		if out.Verification, err = check(ctx, tx, c, code); err != nil {
			return err
		}
		out.Pending = &out.Verification.Challenge
		switch {
		case out.Verified:
			authID := c.AuthenticatorID
			switch {
			case authID == "" && c.VerificationMethod == vocab.MethodAuthenticatorApp:
				if authID, err = s.enrollTOTP(ctx, tx, a.UserID, c); err != nil {
					return err
				}
			case authID == "":
				auth, err := s.enrollAuthenticator(ctx, tx, a.UserID, c.NewAuthenticatorID, c.VerificationMethod, c.Email, c.PhoneNumber, false)
				if err != nil {
					return err
				}
				authID = auth.ID
				if err := setUserContactVerified(ctx, tx, a.UserID, c.Email, c.PhoneNumber); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET last_verified_at = ? WHERE authenticator_id = ?`, ms(s.now()), authID); err != nil {
				return fmt.Errorf("touch authenticator: %w", err)
			}
			out.Settled = vocab.StateChallengeSucceeded
			return s.settlePage(ctx, tx, a, out.Settled, c.VerificationMethod, authID)
		case out.FailureReason == vocab.FailureMaxAttemptsReached && a.State == vocab.StateChallengeRequired:
			out.Settled = vocab.StateChallengeFailed
			return s.settlePage(ctx, tx, a, out.Settled, "", "")
		}
		return nil
	})
	if err != nil {
		return PageVerification{}, err
	}
	if out.Settled != "" {
		s.log.Info(by.name+" finished", "user_id", k.UserID, "action", k.ActionCode, "state", out.Settled)
	}
	return out, nil
}

// CancelPage fails an action awaiting its challenge: the person gave up.
func (s *Store) CancelPage(ctx context.Context, k ActionKey) (Action, error) {
	var a *Action
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		if a, err = awaiting(ctx, tx, k); err != nil {
			return err
		}
		if a.State != vocab.StateChallengeRequired {
			return nil // an allowed action stays allowed: the person only leaves the page
		}
		return s.settlePage(ctx, tx, a, vocab.StateChallengeFailed, "", "")
	})
	if err != nil {
		return Action{}, err
	}
	s.log.Info("pre-built UI cancelled", "user_id", k.UserID, "action", k.ActionCode)
	return *a, nil
}

// settlePage settles the action (only from the state it was loaded in, in this
// transaction) and drops the code in flight.
func (s *Store) settlePage(ctx context.Context, tx *txn, a *Action, to vocab.State, m vocab.Method, authID string) error {
	ok, err := s.moveAction(ctx, tx, a.ActionKey, to, m, authID, a.State)
	if err != nil {
		return err
	}
	if !ok {
		return refuse(Conflict, "This action was settled meanwhile.")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE actions SET ui_challenge_id = '' WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		a.UserID, a.ActionCode, a.IdempotencyKey); err != nil {
		return fmt.Errorf("clear pre-built UI challenge: %w", err)
	}
	a.State = to
	return nil
}
