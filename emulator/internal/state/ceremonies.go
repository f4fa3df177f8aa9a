package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// Passkey ceremonies: the WebAuthn options the Client API sent, kept until an answer
// comes back. Checking the answer's signature is the passkey package's work; the state
// takes the ceremony (once only), checks the sign count and settles the action, all in
// one transaction.

// CeremonyKind is what a ceremony makes: a new passkey or a sign-in with one.
type CeremonyKind string

// The kinds of ceremony.
const (
	CeremonyRegistration   CeremonyKind = "registration"
	CeremonyAuthentication CeremonyKind = "authentication"
)

// Ceremony is a WebAuthn ceremony in flight.
type Ceremony struct {
	ID   string
	Kind CeremonyKind
	// The action it is for. A discoverable sign-in knows only the action code until the
	// passkey says whose it is (UserID "").
	ActionKey
	Session   []byte // go-webauthn's session data; nil until the options are sent
	ExpiresAt time.Time
}

// ceremonyTTL is how long options stay answerable, as long as a track token lives.
const ceremonyTTL = 10 * time.Minute

// StartCeremony stores a new ceremony; its id is the Client API's challengeId.
func (s *Store) StartCeremony(ctx context.Context, kind CeremonyKind, k ActionKey, session []byte) (Ceremony, error) {
	id, err := s.random.UUID()
	if err != nil {
		return Ceremony{}, err
	}
	now := s.now()
	c := Ceremony{ID: id, Kind: kind, ActionKey: k, Session: session, ExpiresAt: fromMS(ms(now.Add(ceremonyTTL)))}
	err = s.inTx(ctx, func(tx *txn) error {
		// Expired ones are dropped here, so the table holds only what is in flight.
		if _, err := tx.ExecContext(ctx, `DELETE FROM ceremonies WHERE expires_at <= ?`, ms(now)); err != nil {
			return fmt.Errorf("drop expired ceremonies: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ceremonies(ceremony_id, kind, user_id, action_code, idempotency_key, session, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Kind, c.UserID, c.ActionCode, c.IdempotencyKey, session, ms(c.ExpiresAt), ms(now)); err != nil {
			return fmt.Errorf("insert ceremony: %w", err)
		}
		return nil
	})
	return c, err
}

// SetCeremonySession stores the options sent for a ceremony started without them (a
// discoverable sign-in's challenge comes before its options).
func (s *Store) SetCeremonySession(ctx context.Context, id string, kind CeremonyKind, session []byte) error {
	return s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE ceremonies SET session = ? WHERE ceremony_id = ? AND kind = ? AND session IS NULL AND expires_at > ?`,
			session, id, kind, ms(s.now()))
		if err != nil {
			return fmt.Errorf("update ceremony: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return refuse(NotFound, "Challenge %q was not found, has expired or has its options already.", id)
		}
		return nil
	})
}

// FindCeremony returns a ceremony in flight of kind.
func (s *Store) FindCeremony(ctx context.Context, id string, kind CeremonyKind) (Ceremony, error) {
	return s.loadCeremony(ctx, s.db, id, kind)
}

// loadCeremony reads a ceremony in flight of kind: not found, used or expired are refusals.
func (s *Store) loadCeremony(ctx context.Context, q queryer, id string, kind CeremonyKind) (Ceremony, error) {
	var c Ceremony
	var expires int64
	err := q.QueryRowContext(ctx, `SELECT ceremony_id, kind, user_id, action_code, idempotency_key, session, expires_at
		FROM ceremonies WHERE ceremony_id = ? AND kind = ?`, id, kind).
		Scan(&c.ID, &c.Kind, &c.UserID, &c.ActionCode, &c.IdempotencyKey, &c.Session, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Ceremony{}, refuse(NotFound, "Challenge %q was not found or was used already.", id)
	}
	if err != nil {
		return Ceremony{}, fmt.Errorf("load ceremony: %w", err)
	}
	c.ExpiresAt = fromMS(expires)
	if !s.now().Before(c.ExpiresAt) {
		return Ceremony{}, refuse(NotFound, "Challenge %q has expired.", id)
	}
	return c, nil
}

// DropCeremony ends a ceremony whose answer failed its checks: its challenge is not
// answerable twice.
func (s *Store) DropCeremony(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *txn) error { return takeCeremony(ctx, tx, id) })
}

// takeCeremony deletes the ceremony; a second taker (a replayed answer) is refused.
func takeCeremony(ctx context.Context, tx *txn, id string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM ceremonies WHERE ceremony_id = ?`, id)
	if err != nil {
		return fmt.Errorf("take ceremony: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return refuse(NotFound, "Challenge %q was used already.", id)
	}
	return nil
}

// PasskeyOwner is a stored passkey with its authenticator.
type PasskeyOwner struct {
	Authenticator Authenticator
	Passkey       Passkey
}

// PasskeyByCredential finds a passkey by its credential id.
func (s *Store) PasskeyByCredential(ctx context.Context, credentialID []byte) (PasskeyOwner, error) {
	var authID, transports string
	var p Passkey
	err := s.db.QueryRowContext(ctx, `SELECT authenticator_id, credential_id, public_key, sign_count, aaguid, name, transports
		FROM passkeys WHERE credential_id = ?`, credentialID).Scan(&authID, &p.CredentialID, &p.PublicKey, &p.SignCount, &p.AAGUID, &p.Name, &transports)
	if errors.Is(err, sql.ErrNoRows) {
		return PasskeyOwner{}, refuse(NotFound, "This passkey is not known: it may have been removed.")
	}
	if err != nil {
		return PasskeyOwner{}, fmt.Errorf("find passkey: %w", err)
	}
	if err := json.Unmarshal([]byte(transports), &p.Transports); err != nil {
		return PasskeyOwner{}, fmt.Errorf("find passkey: %w", err)
	}
	a, err := scanAuthenticator(s.db.QueryRowContext(ctx, `SELECT `+authenticatorColumns+` FROM authenticators WHERE authenticator_id = ?`, authID))
	if err != nil {
		return PasskeyOwner{}, fmt.Errorf("find passkey's authenticator: %w", err)
	}
	return PasskeyOwner{Authenticator: a, Passkey: p}, nil
}

// NewPasskey is a passkey the Client API registered, for the action of its ceremony.
type NewPasskey struct {
	CeremonyID string
	Passkey
	MayAdd bool // the token's scope has add:authenticators
}

// AddPasskey enrols the passkey for the ceremony's action and settles that action as
// CHALLENGE_SUCCEEDED by PASSKEY.
func (s *Store) AddPasskey(ctx context.Context, k ActionKey, n NewPasskey) (Authenticator, error) {
	var a Authenticator
	err := s.inTx(ctx, func(tx *txn) error {
		c, err := s.ceremonyFor(ctx, tx, n.CeremonyID, CeremonyRegistration, k)
		if err != nil {
			return err
		}
		if err := takeCeremony(ctx, tx, c.ID); err != nil {
			return err
		}
		action, err := clientAction(ctx, tx, k)
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, k.UserID)
		if err != nil {
			return err
		}
		if len(auths) > 0 && !n.MayAdd {
			return refuse(Forbidden, "The user is already enrolled: adding a passkey needs a token with the add:authenticators scope.")
		}
		if err := s.enrollPasskey(ctx, tx, PasskeyEnrolment{UserID: k.UserID, Passkey: n.Passkey}); err != nil {
			return err
		}
		owner, err := passkeyAuthenticator(ctx, tx, n.CredentialID, k.UserID)
		if err != nil {
			return err
		}
		a = owner
		if _, err := s.moveAction(ctx, tx, k, vocab.StateChallengeSucceeded, vocab.MethodPasskey, a.ID, action.State); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE authenticators SET last_verified_at = ? WHERE authenticator_id = ?`, ms(s.now()), a.ID)
		return err
	})
	if err != nil {
		return Authenticator{}, err
	}
	s.log.Info("passkey added", "user_id", k.UserID, "action", k.ActionCode, "authenticator_id", a.ID)
	return a, nil
}

// passkeyAuthenticator is the authenticator of a user's credential.
func passkeyAuthenticator(ctx context.Context, tx *txn, credentialID []byte, userID string) (Authenticator, error) {
	a, err := scanAuthenticator(tx.QueryRowContext(ctx, `SELECT `+authenticatorColumns+` FROM authenticators
		WHERE authenticator_id = (SELECT authenticator_id FROM passkeys WHERE credential_id = ?) AND user_id = ?`, credentialID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return Authenticator{}, refuse(Conflict, "This passkey belongs to another user.")
	}
	return a, err
}

// ceremonyFor loads a ceremony in flight of kind and checks that it is for k's action (a
// discoverable sign-in's is for any user).
func (s *Store) ceremonyFor(ctx context.Context, tx *txn, id string, kind CeremonyKind, k ActionKey) (*Ceremony, error) {
	c, err := s.loadCeremony(ctx, tx, id, kind)
	if err != nil {
		return nil, err
	}
	if c.UserID != "" && c.ActionKey != k {
		return nil, refuse(Invalid, "Challenge %q belongs to another action.", id)
	}
	return &c, nil
}

// PasskeyAssertion is a passkey sign-in whose signature the passkey package checked.
type PasskeyAssertion struct {
	CeremonyID   string
	CredentialID []byte
	SignCount    uint32
	// Action is the token's action (a sign-in with a token); nil for a discoverable
	// sign-in, which records a new action of the passkey's user under ActionCode.
	Action   *ActionKey
	DeviceID string // the browser's, recorded on the new action
}

// PasskeySignedIn is a settled passkey sign-in.
type PasskeySignedIn struct {
	Action        ActionKey
	Authenticator Authenticator
	User          User
}

// SignInWithPasskey takes the ceremony, checks that the sign count went up (a cloned
// authenticator repeats or lowers it) and settles the action as CHALLENGE_SUCCEEDED by
// PASSKEY: the token's, or a new one for a discoverable sign-in.
func (s *Store) SignInWithPasskey(ctx context.Context, p PasskeyAssertion) (PasskeySignedIn, error) {
	key, err := s.random.UUID() // a new action's idempotency key
	if err != nil {
		return PasskeySignedIn{}, err
	}
	var out PasskeySignedIn
	err = s.inTx(ctx, func(tx *txn) error {
		var want ActionKey
		if p.Action != nil {
			want = *p.Action
		}
		c, err := s.ceremonyFor(ctx, tx, p.CeremonyID, CeremonyAuthentication, want)
		if err != nil {
			return err
		}
		if err := takeCeremony(ctx, tx, c.ID); err != nil {
			return err
		}
		var authID string
		var stored uint32
		err = tx.QueryRowContext(ctx, `SELECT authenticator_id, sign_count FROM passkeys WHERE credential_id = ?`, p.CredentialID).Scan(&authID, &stored)
		if errors.Is(err, sql.ErrNoRows) {
			return refuse(NotFound, "This passkey is not known: it may have been removed.")
		}
		if err != nil {
			return fmt.Errorf("find passkey: %w", err)
		}
		// WebAuthn §6.1.1: a counter that does not go up (unless the authenticator keeps
		// none: both zero) signals a cloned authenticator.
		if (stored != 0 || p.SignCount != 0) && p.SignCount <= stored {
			return refuse(Invalid, "The passkey's signature counter went from %d to %d: the authenticator may be cloned.", stored, p.SignCount)
		}
		a, err := scanAuthenticator(tx.QueryRowContext(ctx, `SELECT `+authenticatorColumns+` FROM authenticators WHERE authenticator_id = ?`, authID))
		if err != nil {
			return fmt.Errorf("find passkey's authenticator: %w", err)
		}
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE passkeys SET sign_count = ? WHERE credential_id = ?`, p.SignCount, p.CredentialID); err != nil {
			return fmt.Errorf("update sign count: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET last_verified_at = ? WHERE authenticator_id = ?`, now, authID); err != nil {
			return fmt.Errorf("touch authenticator: %w", err)
		}
		var k ActionKey
		if p.Action != nil {
			if a.UserID != p.Action.UserID {
				return refuse(Invalid, "This passkey belongs to another user.")
			}
			k = *p.Action
			action, err := clientAction(ctx, tx, k)
			if err != nil {
				return err
			}
			if _, err := s.moveAction(ctx, tx, k, vocab.StateChallengeSucceeded, vocab.MethodPasskey, authID, action.State); err != nil {
				return err
			}
		} else {
			k = ActionKey{UserID: a.UserID, ActionCode: c.ActionCode, IdempotencyKey: key}
			if err := s.insertActionIfAbsent(ctx, tx, Action{ActionKey: k, State: vocab.StateChallengeRequired, DeviceID: p.DeviceID}); err != nil {
				return err
			}
			if _, err := s.moveAction(ctx, tx, k, vocab.StateChallengeSucceeded, vocab.MethodPasskey, authID, vocab.StateChallengeRequired); err != nil {
				return err
			}
		}
		u, err := loadUser(ctx, tx, a.UserID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		a.LastVerifiedAt = fromMS(now)
		out = PasskeySignedIn{Action: k, Authenticator: a, User: *u}
		return nil
	})
	if err != nil {
		return PasskeySignedIn{}, err
	}
	s.log.Info("passkey sign-in", "user_id", out.Action.UserID, "action", out.Action.ActionCode, "authenticator_id", out.Authenticator.ID)
	return out, nil
}
