// Package token signs and checks the action tokens of track, claim and the pre-built UI.
package token

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are a token's claims, laid out as the real service's: sub, aud (a single string),
// iat, exp and scope at the top, the action's details nested under "other" (the
// TokenPayload type of Authsignal's client SDKs; the server SDKs read other.userId,
// other.actionCode and other.idempotencyKey when they verified tokens themselves).
type Claims struct {
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti,omitempty"`
	Scope     string           `json:"scope"`
	Other     Other            `json:"other"`
}

// The jwt.Claims methods, so golang-jwt checks expiry and audience.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c Claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c Claims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c Claims) GetIssuer() (string, error)                   { return "", nil }
func (c Claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c Claims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Audience}, nil }

// Other is the "other" claim: the tenant and the action the token names.
type Other struct {
	TenantID       string `json:"tenantId"`
	PublishableKey string `json:"publishableKey"`
	UserID         string `json:"userId"`
	ActionCode     string `json:"actionCode"`
	IdempotencyKey string `json:"idempotencyKey"`
	Username       string `json:"username,omitempty"`
}

// Action is what a token names: one action of one user.
type Action struct {
	UserID, ActionCode, IdempotencyKey string
	Scope                              string // the scopes asked for, space-separated; read:authenticators is always granted
	Username                           string
}

// defaultScope is every token's scope: "By default the only scope is read:authenticators"
// (docs: api-reference/server-api/track-action).
const defaultScope = "read:authenticators"

// Issuer signs and checks one tenant's tokens: HS256 with the secret key (as the older
// server SDKs expected when they verified tokens themselves).
type Issuer struct {
	key      []byte
	tenantID string
	ttl      time.Duration
	now      func() time.Time
	newID    func() (string, error)
}

// NewIssuer returns an issuer of tokens that live ttl; newID makes each token's jti.
func NewIssuer(secretKey []byte, tenantID string, ttl time.Duration, now func() time.Time, newID func() (string, error)) *Issuer {
	return &Issuer{key: secretKey, tenantID: tenantID, ttl: ttl, now: now, newID: newID}
}

// Issue signs a fresh token for the action.
func (i *Issuer) Issue(a Action) (string, error) {
	jti, err := i.newID()
	if err != nil {
		return "", err
	}
	now := i.now()
	claims := Claims{
		Scope: scope(a.Scope),
		Other: Other{TenantID: i.tenantID, PublishableKey: i.tenantID, UserID: a.UserID, ActionCode: a.ActionCode,
			IdempotencyKey: a.IdempotencyKey, Username: a.Username},
		Subject:   a.UserID,
		Audience:  i.tenantID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
		ID:        jti,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Parse verifies the signature (HS256 only: "none" and other algorithms are refused),
// expiry, audience and the required claims, against the injected clock.
func (i *Issuer) Parse(s string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return i.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(i.tenantID),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil {
		return nil, fmt.Errorf("parse token: %w", err)
	}
	if c.Subject == "" || c.Other.UserID != c.Subject || c.Other.ActionCode == "" || c.Other.IdempotencyKey == "" {
		return nil, errors.New("parse token: missing sub, other.userId, other.actionCode or other.idempotencyKey")
	}
	return &c, nil
}

// Reason names why Parse refused a token, for logs, without echoing the token.
func Reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid): // a wrong key or algorithm ("none" included)
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "invalid"
}

// scope adds the default scope to the requested ones, each once.
func scope(requested string) string {
	scopes := []string{defaultScope}
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return strings.Join(scopes, " ")
}
