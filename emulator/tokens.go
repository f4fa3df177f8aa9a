package emulator

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// actionClaims are the claims of the track/pre-built-page token, as the real service issues them.
type actionClaims struct {
	ActionCode     string `json:"actionCode"`
	IdempotencyKey string `json:"idempotencyKey"`
	Scope          string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// issueToken signs a fresh short-lived HS256 token for the action.
func (e *Emulator) issueToken(userID, actionCode, idempotencyKey, scope string) (string, error) {
	jti, err := e.newUUID()
	if err != nil {
		return "", err
	}
	now := e.now()
	claims := actionClaims{
		ActionCode:     actionCode,
		IdempotencyKey: idempotencyKey,
		Scope:          scope,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(e.limits.TokenTTL)),
			ID:        jti,
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(e.secretKey)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// parseToken verifies signature (HS256 only: "none" and other algorithms are refused),
// expiry and required claims, against the injected clock.
func (e *Emulator) parseToken(s string) (*actionClaims, error) {
	var c actionClaims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return e.secretKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(e.now),
	)
	if err != nil {
		return nil, fmt.Errorf("parse token: %w", err)
	}
	if c.Subject == "" || c.ActionCode == "" || c.IdempotencyKey == "" {
		return nil, errors.New("parse token: missing sub, actionCode or idempotencyKey")
	}
	return &c, nil
}
