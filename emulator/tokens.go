package emulator

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// actionClaims are the claims of the track/claim/pre-built-page token, laid out as the real
// service's: sub, aud (a single string), iat, exp and scope at the top, the action's details
// nested under "other" (the TokenPayload type of Authsignal's client SDKs; the server SDKs
// read other.userId, other.actionCode and other.idempotencyKey when they verified tokens).
type actionClaims struct {
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti,omitempty"`
	Scope     string           `json:"scope"`
	Other     tokenOther       `json:"other"`
}

// The jwt.Claims methods, so golang-jwt checks expiry and audience.
func (c actionClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c actionClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c actionClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c actionClaims) GetIssuer() (string, error)                   { return "", nil }
func (c actionClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c actionClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

type tokenOther struct {
	TenantID       string `json:"tenantId"`
	PublishableKey string `json:"publishableKey"`
	UserID         string `json:"userId"`
	ActionCode     string `json:"actionCode"`
	IdempotencyKey string `json:"idempotencyKey"`
	Username       string `json:"username,omitempty"`
}

// tokenAction is what a token names: one action of one user.
type tokenAction struct {
	UserID, ActionCode, IdempotencyKey string
	Scope                              string // the scopes asked for, space-separated; read:authenticators is always granted
	Username                           string
}

// defaultScope is every token's scope: "By default the only scope is read:authenticators"
// (docs: api-reference/server-api/track-action).
const defaultScope = "read:authenticators"

// tokenScope adds the default scope to the requested ones, each once.
func tokenScope(requested string) string {
	scopes := []string{defaultScope}
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return strings.Join(scopes, " ")
}

// issueToken signs a fresh short-lived HS256 token for the action, with the secret key
// (as the older server SDKs expected when they verified tokens themselves).
func (e *Emulator) issueToken(a tokenAction) (string, error) {
	jti, err := e.newUUID()
	if err != nil {
		return "", err
	}
	now := e.now()
	claims := actionClaims{
		Scope: tokenScope(a.Scope),
		Other: tokenOther{TenantID: e.tenantID, PublishableKey: e.tenantID, UserID: a.UserID, ActionCode: a.ActionCode,
			IdempotencyKey: a.IdempotencyKey, Username: a.Username},
		Subject:   a.UserID,
		Audience:  e.tenantID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(e.limits.TokenTTL)),
		ID:        jti,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(e.secretKey)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// parseToken verifies signature (HS256 only: "none" and other algorithms are refused),
// expiry, audience and required claims, against the injected clock.
func (e *Emulator) parseToken(s string) (*actionClaims, error) {
	var c actionClaims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return e.secretKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(e.tenantID),
		jwt.WithTimeFunc(e.now),
	)
	if err != nil {
		return nil, fmt.Errorf("parse token: %w", err)
	}
	if c.Subject == "" || c.Other.UserID != c.Subject || c.Other.ActionCode == "" || c.Other.IdempotencyKey == "" {
		return nil, errors.New("parse token: missing sub, other.userId, other.actionCode or other.idempotencyKey")
	}
	return &c, nil
}
