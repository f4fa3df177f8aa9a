package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a server-side record of a signed-in session; ID is the JWT's jti.
// RevokedAt is nil while the session is live.
type Session struct {
	ID, UserID           string
	CreatedAt, ExpiresAt time.Time
	RevokedAt            *time.Time
}

// CreateSession stores a new session. ID, UserID and ExpiresAt are required;
// a zero CreatedAt means now.
func (s *Store) CreateSession(ctx context.Context, sess Session) error {
	if sess.ID == "" || sess.UserID == "" || sess.ExpiresAt.IsZero() {
		return errors.New("create session: id, user id and expiry are required")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = s.now()
	}
	var revoked sql.NullInt64
	if sess.RevokedAt != nil {
		revoked = sql.NullInt64{Int64: toDB(*sess.RevokedAt), Valid: true}
	}
	_, err := s.e.writer().ExecContext(ctx, s.q.insertSession, sess.ID, sess.UserID, toDB(sess.CreatedAt), toDB(sess.ExpiresAt), revoked)
	if err != nil {
		return fmt.Errorf("create session for user %s: %w", sess.UserID, err)
	}
	return nil
}

// GetSession returns the session with this id (revoked or expired ones too),
// or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (Session, error) {
	var sess Session
	var created, expires int64
	var revoked sql.NullInt64
	err := s.e.reader().QueryRowContext(ctx, s.q.getSession, id).Scan(&sess.ID, &sess.UserID, &created, &expires, &revoked)
	if err != nil {
		// The id is a jti, a bearer secret's identifier: keep it out of errors.
		return Session{}, fmt.Errorf("get session: %w", notFound(err))
	}
	sess.CreatedAt, sess.ExpiresAt = fromDB(created), fromDB(expires)
	if revoked.Valid {
		t := fromDB(revoked.Int64)
		sess.RevokedAt = &t
	}
	return sess, nil
}

// RevokeSession marks the session revoked now. Revoking an already revoked
// session succeeds and keeps the first revocation time; an unknown id gives
// ErrNotFound.
func (s *Store) RevokeSession(ctx context.Context, id string) error {
	res, err := s.e.writer().ExecContext(ctx, s.q.revokeSession, toDB(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	n, err := affected(res, "revoke session")
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var exists int
	if err := s.e.writer().QueryRowContext(ctx, s.q.sessionExists, id).Scan(&exists); err != nil {
		return fmt.Errorf("revoke session: %w", notFound(err))
	}
	return nil
}
