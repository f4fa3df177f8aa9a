package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"example.com/passwordless/emulator/internal/vocab"
)

// Passkey is a PASSKEY authenticator's credential.
type Passkey struct {
	CredentialID []byte
	PublicKey    []byte // COSE_Key
	SignCount    uint32
	AAGUID       string
	Name         string
	Transports   []string
}

// PasskeyEnrolment is one item of a batch enrolment: a passkey made elsewhere, for a user.
type PasskeyEnrolment struct {
	UserID string
	Passkey
}

// EnrolmentFailure is why one item of a batch was not enrolled.
type EnrolmentFailure struct {
	Index       int
	Kind        Kind
	Description string
}

// BatchEnrollPasskeys enrols each item on its own: a failing one changes nothing and the
// others still go in. Enrolling a user's credential again is a no-op; a credential another
// user has is a conflict (docs: api-reference/server-api/batch-enroll-verified-authenticators).
func (s *Store) BatchEnrollPasskeys(ctx context.Context, items []PasskeyEnrolment) ([]EnrolmentFailure, error) {
	var failures []EnrolmentFailure
	err := s.inTx(ctx, func(tx *txn) error {
		for i, it := range items {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT item`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			staged := len(tx.events)
			err := s.enrollPasskey(ctx, tx, it)
			var refusal *Error
			switch {
			case errors.As(err, &refusal):
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO item`); err != nil {
					return fmt.Errorf("roll back an item: %w", err)
				}
				tx.events = tx.events[:staged]
				failures = append(failures, EnrolmentFailure{Index: i, Kind: refusal.Kind, Description: refusal.Description})
			case err != nil:
				return err
			}
			if _, err := tx.ExecContext(ctx, `RELEASE item`); err != nil {
				return fmt.Errorf("release an item: %w", err)
			}
		}
		return nil
	})
	return failures, err
}

func (s *Store) enrollPasskey(ctx context.Context, tx *txn, it PasskeyEnrolment) error {
	var owner string
	err := tx.QueryRowContext(ctx, `SELECT a.user_id FROM passkeys p JOIN authenticators a USING (authenticator_id) WHERE p.credential_id = ?`,
		it.CredentialID).Scan(&owner)
	switch {
	case err == nil && owner == it.UserID:
		return nil // already enrolled: idempotent
	case err == nil:
		return refuse(Conflict, "Credential already exists for a different user.")
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("find credential: %w", err)
	}
	if _, err := s.ensureUser(ctx, tx, it.UserID); err != nil {
		return err
	}
	existing, err := listAuthenticators(ctx, tx, it.UserID)
	if err != nil {
		return err
	}
	id, err := s.random.UUID()
	if err != nil {
		return err
	}
	now := fromMS(ms(s.now()))
	a := Authenticator{ID: id, UserID: it.UserID, Method: vocab.MethodPasskey, IsDefault: len(existing) == 0, CreatedAt: now, VerifiedAt: now}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authenticators(authenticator_id, user_id, verification_method, is_default, created_at, verified_at)
		VALUES (?, ?, ?, ?, ?, ?)`, a.ID, a.UserID, a.Method, a.IsDefault, ms(now), ms(now)); err != nil {
		return fmt.Errorf("insert authenticator: %w", err)
	}
	transports, err := json.Marshal(nonNil(it.Transports))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO passkeys(authenticator_id, credential_id, public_key, sign_count, aaguid, name, transports)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.ID, it.CredentialID, it.PublicKey, it.SignCount, it.AAGUID, it.Name, string(transports)); err != nil {
		return fmt.Errorf("insert passkey: %w", err)
	}
	tx.events = append(tx.events, authenticatorCreated(a))
	return nil
}

// Passkeys returns the credentials of a user's passkeys, by authenticator id.
func (s *Store) Passkeys(ctx context.Context, userID string) (map[string]Passkey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.authenticator_id, p.credential_id, p.public_key, p.sign_count, p.aaguid, p.name, p.transports
		FROM passkeys p JOIN authenticators a USING (authenticator_id) WHERE a.user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	defer rows.Close()
	out := map[string]Passkey{}
	for rows.Next() {
		var id, transports string
		var p Passkey
		if err := rows.Scan(&id, &p.CredentialID, &p.PublicKey, &p.SignCount, &p.AAGUID, &p.Name, &transports); err != nil {
			return nil, fmt.Errorf("scan passkey: %w", err)
		}
		if err := json.Unmarshal([]byte(transports), &p.Transports); err != nil {
			return nil, fmt.Errorf("scan passkey: %w", err)
		}
		out[id] = p
	}
	return out, rows.Err()
}
