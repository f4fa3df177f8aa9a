// Package session signs and checks the access tokens of Authsignal sessions: RS256 JWTs whose
// public keys the emulator publishes as a JWKS.
package session

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are an access token's claims. aud is the app client's id and sub the user's
// (docs: users/session-management); sid names the session, so that revoking it ends the
// token before it expires, and jti tells the latest token of a session from earlier ones.
type Claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti"`
	SessionID string           `json:"sid"`
}

// The jwt.Claims methods, so that golang-jwt checks the expiry.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c Claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c Claims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c Claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c Claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c Claims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Audience}, nil }

// Signer signs access tokens with one RSA key and checks them against it.
type Signer struct {
	key *rsa.PrivateKey
	kid string
	now func() time.Time
}

// NewSigner returns a signer with key; the key id is derived from the public key, so the
// same key always has the same kid.
func NewSigner(key *rsa.PrivateKey, now func() time.Time) *Signer {
	sum := sha256.Sum256(key.N.Bytes())
	return &Signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12]), now: now}
}

// KeyID is the kid of the signer's key, in every token's header and in the JWKS.
func (s *Signer) KeyID() string { return s.kid }

// Sign returns the signed token for c.
func (s *Signer) Sign(c Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return signed, nil
}

// ErrExpired is Parse's error for a well-signed token past its expiry.
var ErrExpired = errors.New("the access token has expired")

// Parse checks the signature (RS256 with this key only), the kid and the expiry against the
// injected clock, and returns the claims; an expired token's claims come with ErrExpired.
func (s *Signer) Parse(token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.kid {
			return nil, errors.New("unknown kid")
		}
		return &s.key.PublicKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return &c, ErrExpired // well signed: revoking it still makes sense
	}
	if err != nil {
		return nil, fmt.Errorf("parse access token: %w", err)
	}
	if c.Subject == "" || c.Audience == "" || c.SessionID == "" || c.ID == "" {
		return nil, errors.New("parse access token: missing sub, aud, sid or jti")
	}
	return &c, nil
}

// JWKS is the key set that verifies the signer's tokens, as JSON (RFC 7517).
func (s *Signer) JWKS() ([]byte, error) {
	type jwk struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	pub := s.key.PublicKey
	k := jwk{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: s.kid,
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
	return json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{k}})
}

// Keys holds the signer, made from the stored key on first use: most runs of the emulator
// never create a session, and making an RSA key takes a noticeable moment.
type Keys struct {
	load func(context.Context) (*rsa.PrivateKey, error)
	now  func() time.Time

	mu     sync.Mutex
	signer *Signer
}

// NewKeys returns keys that load (or make) the signing key with load.
func NewKeys(load func(context.Context) (*rsa.PrivateKey, error), now func() time.Time) *Keys {
	return &Keys{load: load, now: now}
}

// Signer returns the signer, loading its key the first time.
func (k *Keys) Signer(ctx context.Context) (*Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.signer == nil {
		key, err := k.load(ctx)
		if err != nil {
			return nil, err
		}
		k.signer = NewSigner(key, k.now)
	}
	return k.signer, nil
}
