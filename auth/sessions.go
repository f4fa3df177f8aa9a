// Package auth issues and verifies the app's session tokens: HS256 JWTs whose
// jti is a row in the store, so signing out (revoking the row) ends the
// session even though the token itself stays well-formed until it expires.
// It also signs short-lived values (the pending sign-in cookie) with the same
// key, separated from sessions by their audience.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/passwordless/store"
)

// Defaults used when SessionConfig leaves a field empty.
const (
	DefaultIssuer     = "passwordless"
	DefaultAudience   = "passwordless-session"
	DefaultSessionTTL = 12 * time.Hour
)

// MinKeyLen is the shortest HMAC key accepted: 32 bytes, the output size of
// SHA-256.
const MinKeyLen = 32

// ErrInvalidSession means a token did not verify, for whatever reason
// (malformed, bad signature, wrong algorithm/issuer/audience, expired,
// revoked, unknown). The cause is wrapped too; callers treat any of them as
// "not signed in".
var ErrInvalidSession = errors.New("invalid session")

// signingMethod is the only algorithm issued and accepted.
var signingMethod = jwt.SigningMethodHS256

// SessionStore is the part of the store that sessions need.
type SessionStore interface {
	CreateSession(ctx context.Context, s store.Session) error
	GetSession(ctx context.Context, id string) (store.Session, error)
	RevokeSession(ctx context.Context, id string) error
}

// SessionConfig configures Sessions. Key must be at least MinKeyLen bytes
// (see LoadOrCreateKey); empty Issuer, Audience and TTL take the defaults
// above; Now nil means time.Now; Rand nil means crypto/rand.
type SessionConfig struct {
	Key              []byte
	Issuer, Audience string
	TTL              time.Duration
	Now              func() time.Time
	Rand             io.Reader
}

// Sessions issues, verifies and revokes session tokens. Safe for concurrent use.
type Sessions struct {
	store    SessionStore
	key      []byte
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	rand     io.Reader
}

// Claims are what a verified session token says.
type Claims struct {
	SessionID string    // the jti, the store's session id
	UserID    string    // the sub
	SignedIn  time.Time // when the session began: the sign-in, a challenge completed then
	ExpiresAt time.Time
}

// NewSessions returns Sessions backed by st. A key shorter than MinKeyLen is
// not rejected here (the signature has no error) but makes every Issue,
// Verify, SignValue and VerifyValue fail.
func NewSessions(st SessionStore, cfg SessionConfig) *Sessions {
	s := &Sessions{
		store:    st,
		key:      append([]byte(nil), cfg.Key...),
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ttl:      cfg.TTL,
		now:      cfg.Now,
		rand:     cfg.Rand,
	}
	if s.issuer == "" {
		s.issuer = DefaultIssuer
	}
	if s.audience == "" {
		s.audience = DefaultAudience
	}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s
}

func (s *Sessions) checkKey() error {
	if len(s.key) < MinKeyLen {
		return fmt.Errorf("session key is %d bytes, need at least %d", len(s.key), MinKeyLen)
	}
	return nil
}

// Issue starts a new session for userID: a fresh random jti stored in the
// store, and the signed token carrying it. Call it on every sign-in, so a
// session id is never reused (no fixation).
func (s *Sessions) Issue(ctx context.Context, userID string) (token string, expires time.Time, err error) {
	if err := s.checkKey(); err != nil {
		return "", time.Time{}, fmt.Errorf("issue session: %w", err)
	}
	if userID == "" {
		return "", time.Time{}, errors.New("issue session: empty user id")
	}
	jti, err := newTokenID(s.rand)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue session: %w", err)
	}
	// JWT times have one-second precision; truncate so the token and the
	// store agree exactly.
	now := s.now().UTC().Truncate(time.Second)
	expires = now.Add(s.ttl)
	claims := jwt.RegisteredClaims{
		ID:        jti,
		Subject:   userID,
		Issuer:    s.issuer,
		Audience:  jwt.ClaimStrings{s.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(expires),
	}
	token, err = jwt.NewWithClaims(signingMethod, claims).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue session: sign: %w", err)
	}
	if err := s.store.CreateSession(ctx, store.Session{ID: jti, UserID: userID, CreatedAt: now, ExpiresAt: expires}); err != nil {
		return "", time.Time{}, fmt.Errorf("issue session: %w", err)
	}
	return token, expires, nil
}

// Verify checks the token (HS256 only, signature, issuer, audience, iat, exp
// required and in the future by the injected clock) and then the store: the
// session must exist, belong to the token's subject, be unrevoked and
// unexpired. Every failure wraps ErrInvalidSession.
func (s *Sessions) Verify(ctx context.Context, token string) (Claims, error) {
	rc, err := s.parse(token, s.audience, true)
	if err != nil {
		return Claims{}, invalid(err)
	}
	if rc.ID == "" || rc.Subject == "" {
		return Claims{}, invalid(errors.New("token has no jti or sub"))
	}
	sess, err := s.store.GetSession(ctx, rc.ID)
	if err != nil {
		return Claims{}, invalid(err)
	}
	switch {
	case sess.UserID != rc.Subject:
		return Claims{}, invalid(errors.New("session belongs to another user"))
	case sess.RevokedAt != nil:
		return Claims{}, invalid(errors.New("session revoked"))
	case !s.now().Before(sess.ExpiresAt):
		return Claims{}, invalid(errors.New("session expired"))
	}
	return Claims{SessionID: rc.ID, UserID: rc.Subject, SignedIn: sess.CreatedAt.UTC(), ExpiresAt: rc.ExpiresAt.Time.UTC()}, nil
}

// Revoke ends the session the token names. The token must be genuine (our
// signature, issuer and audience) but may be expired; revoking an already
// revoked or unknown session succeeds, so signing out twice is harmless.
// A token that is not genuine gives an error wrapping ErrInvalidSession.
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	rc, err := s.parse(token, s.audience, false)
	if err != nil {
		return fmt.Errorf("revoke session: %w", invalid(err))
	}
	if rc.ID == "" {
		return fmt.Errorf("revoke session: %w", invalid(errors.New("token has no jti")))
	}
	if err := s.store.RevokeSession(ctx, rc.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// SignValue returns a token carrying value for purpose (its audience), valid
// for ttl. A token signed for one purpose never verifies for another, nor as
// a session.
func (s *Sessions) SignValue(purpose, value string, ttl time.Duration) (string, error) {
	if err := s.checkPurpose(purpose); err != nil {
		return "", fmt.Errorf("sign value: %w", err)
	}
	if value == "" {
		return "", errors.New("sign value: empty value")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("sign value: ttl must be positive, got %s", ttl)
	}
	now := s.now().UTC().Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		Subject:   value,
		Issuer:    s.issuer,
		Audience:  jwt.ClaimStrings{purpose},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	token, err := jwt.NewWithClaims(signingMethod, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign value: %w", err)
	}
	return token, nil
}

// VerifyValue returns the value of a token made by SignValue for the same
// purpose, if it is genuine and unexpired. Failures wrap ErrInvalidSession.
func (s *Sessions) VerifyValue(purpose, token string) (string, error) {
	if err := s.checkPurpose(purpose); err != nil {
		return "", fmt.Errorf("verify value: %w", err)
	}
	rc, err := s.parse(token, purpose, true)
	if err != nil {
		return "", fmt.Errorf("verify value: %w", invalid(err))
	}
	if rc.Subject == "" {
		return "", fmt.Errorf("verify value: %w", invalid(errors.New("token has no value")))
	}
	return rc.Subject, nil
}

func (s *Sessions) checkPurpose(purpose string) error {
	if err := s.checkKey(); err != nil {
		return err
	}
	if purpose == "" {
		return errors.New("empty purpose")
	}
	if purpose == s.audience {
		return fmt.Errorf("purpose %q is the session audience", purpose)
	}
	return nil
}

// parse verifies the token's signature (HS256 only), issuer and audience;
// with checkTimes also iat and a required, unexpired exp (by the injected
// clock). Without it (Revoke) the times are not looked at.
func (s *Sessions) parse(token, audience string, checkTimes bool) (*jwt.RegisteredClaims, error) {
	if err := s.checkKey(); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{signingMethod.Alg()}),
		// Strict base64: one token has exactly one encoding.
		jwt.WithStrictDecoding(),
	}
	if checkTimes {
		opts = append(opts,
			jwt.WithIssuer(s.issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(s.now),
		)
	} else {
		opts = append(opts, jwt.WithoutClaimsValidation())
	}
	var rc jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &rc, func(*jwt.Token) (any, error) { return s.key, nil }, opts...)
	if err != nil {
		return nil, err
	}
	// When claims validation was skipped (Revoke), check who the token is
	// from by hand. The audience must be exactly ours either way: the library
	// accepts a token listing several audiences, which we never issue.
	if !checkTimes && rc.Issuer != s.issuer {
		return nil, jwt.ErrTokenInvalidIssuer
	}
	if len(rc.Audience) != 1 || rc.Audience[0] != audience {
		return nil, jwt.ErrTokenInvalidAudience
	}
	return &rc, nil
}

func invalid(cause error) error {
	return fmt.Errorf("%w: %w", ErrInvalidSession, cause)
}

// newTokenID returns 16 random bytes, hex encoded.
func newTokenID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
