package state

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// Session is one session made by POST /v1/sessions: a user signed in to one app client.
type Session struct {
	ID                 string
	UserID             string
	ClientID           string
	VerificationMethod vocab.Method
	AccessTokenID      string // the jti of the session's latest access token, the only valid one
	CreatedAt          time.Time
	RevokedAt          time.Time // zero while the session lives
}

// RefreshTokenTTL is how long a refresh token can be exchanged. Authsignal sets token
// lifetimes per app client and documents no default; this is the emulator's choice.
const RefreshTokenTTL = 30 * 24 * time.Hour

// SessionTokens are a session with its latest access token's id and a fresh refresh token
// (returned once, stored only as its hash).
type SessionTokens struct {
	Session
	RefreshToken string
}

// SigningKey returns the key that signs access tokens, made (and kept) on first use.
func (s *Store) SigningKey(ctx context.Context) (*rsa.PrivateKey, error) {
	var der []byte
	err := s.db.QueryRowContext(ctx, `SELECT private_key FROM signing_keys ORDER BY created_at LIMIT 1`).Scan(&der)
	if errors.Is(err, sql.ErrNoRows) {
		// Go ignores any other source of randomness for RSA keys (crypto/rsa.GenerateKey).
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("make signing key: %w", err)
		}
		if der, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return nil, fmt.Errorf("make signing key: %w", err)
		}
		kid, err := s.random.UUID()
		if err != nil {
			return nil, err
		}
		// Two first uses at once: the first insert wins, and both read it back.
		err = s.inTx(ctx, func(tx *txn) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys(kid, private_key, created_at)
				SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys)`, kid, der, ms(s.now()))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
		return s.SigningKey(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("load signing key: not an RSA key")
	}
	return key, nil
}

// NewSession is what CreateSession needs: the user and how they verified, for one client.
type NewSession struct {
	UserID, ClientID   string
	VerificationMethod vocab.Method
}

// CreateSession starts a session and issues its first refresh token.
func (s *Store) CreateSession(ctx context.Context, n NewSession) (SessionTokens, error) {
	id, err := s.random.UUID()
	if err != nil {
		return SessionTokens{}, err
	}
	out := SessionTokens{Session: Session{ID: id, UserID: n.UserID, ClientID: n.ClientID, VerificationMethod: n.VerificationMethod,
		CreatedAt: fromMS(ms(s.now()))}}
	err = s.inTx(ctx, func(tx *txn) error {
		if _, err := s.ensureUser(ctx, tx, n.UserID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions(session_id, user_id, client_id, verification_method, created_at)
			VALUES (?, ?, ?, ?, ?)`, id, n.UserID, n.ClientID, n.VerificationMethod, ms(out.CreatedAt)); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return s.rotateTokens(ctx, tx, &out)
	})
	if err != nil {
		return SessionTokens{}, err
	}
	s.log.Info("session created", "session_id", id, "user_id", n.UserID, "client_id", n.ClientID)
	return out, nil
}

// rotateTokens gives the session a new access token id and a new refresh token: earlier
// access tokens of the session are no longer valid ("revoking any previously issued
// tokens", docs: api-reference/server-api/refresh-session).
func (s *Store) rotateTokens(ctx context.Context, tx *txn, st *SessionTokens) error {
	var err error
	if st.AccessTokenID, err = s.random.UUID(); err != nil {
		return err
	}
	raw, err := s.random.Bytes(32)
	if err != nil {
		return err
	}
	st.RefreshToken = hex.EncodeToString(raw)
	now := s.now()
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET access_jti = ? WHERE session_id = ?`, st.AccessTokenID, st.ID); err != nil {
		return fmt.Errorf("rotate session tokens: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens(token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		refreshHash(st.RefreshToken), st.ID, ms(now), ms(now.Add(RefreshTokenTTL))); err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	return nil
}

func refreshHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

const sessionColumns = `session_id, user_id, client_id, verification_method, access_jti, created_at, revoked_at`

func scanSession(row interface{ Scan(...any) error }) (*Session, error) {
	var se Session
	var created int64
	var revoked sql.NullInt64
	err := row.Scan(&se.ID, &se.UserID, &se.ClientID, &se.VerificationMethod, &se.AccessTokenID, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	se.CreatedAt, se.RevokedAt = fromMS(created), nullTime(revoked)
	return &se, nil
}

// Session returns a session, revoked ones included.
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	se, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE session_id = ?`, id))
	if errors.Is(err, errNoRow) {
		return Session{}, refuse(NotFound, "The session was not found.")
	}
	if err != nil {
		return Session{}, err
	}
	return *se, nil
}

// RefreshSession exchanges a refresh token, once, for new tokens of its session. A refresh
// token used a second time is a stolen copy or a client's bug: the session is revoked.
func (s *Store) RefreshSession(ctx context.Context, refreshToken string) (SessionTokens, error) {
	var out SessionTokens
	revokedForReuse := false
	err := s.inTx(ctx, func(tx *txn) error {
		var sessionID string
		var expires int64
		var used sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?`,
			refreshHash(refreshToken)).Scan(&sessionID, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return refuse(Invalid, "The refresh token is invalid.")
		}
		if err != nil {
			return fmt.Errorf("find refresh token: %w", err)
		}
		se, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE session_id = ?`, sessionID))
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case !se.RevokedAt.IsZero():
			return refuse(Invalid, "The session has been revoked.")
		case used.Valid:
			revokedForReuse = true
			_, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ? WHERE session_id = ?`, ms(now), sessionID)
			return err
		case ms(now) >= expires:
			return refuse(Invalid, "The refresh token has expired.")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?`, ms(now), refreshHash(refreshToken)); err != nil {
			return fmt.Errorf("use refresh token: %w", err)
		}
		out.Session = *se
		return s.rotateTokens(ctx, tx, &out)
	})
	if err != nil {
		return SessionTokens{}, err
	}
	if revokedForReuse {
		s.log.Warn("refresh token used twice: session revoked")
		return SessionTokens{}, refuse(Invalid, "The refresh token has already been used; the session has been revoked.")
	}
	return out, nil
}

// RevokeSession ends a session: its access and refresh tokens are no longer accepted.
func (s *Store) RevokeSession(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL`, ms(s.now()), id)
		return err
	})
}

// RevokeUserSessions ends every session of a user.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string) error {
	return s.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, ms(s.now()), userID)
		return err
	})
}
