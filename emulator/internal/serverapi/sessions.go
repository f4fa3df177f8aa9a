package serverapi

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/session"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
)

// AccessTokenTTL is how long a session's access token is valid. Authsignal sets it per app
// client and documents no default; this is the emulator's choice.
const AccessTokenTTL = 15 * time.Minute

type createSessionRequest struct {
	ClientID string `json:"clientId"`
	Token    string `json:"token"`
	Action   string `json:"action"`
}

type sessionTokensResponse struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

// CreateSession serves POST /v1/sessions: a session for the user of a token whose challenge
// succeeded ("If the challenge associated with the client token was successful, it will
// return an access token and refresh token", docs: sdks/server/sessions).
func (a *API) CreateSession(w http.ResponseWriter, r *http.Request) error {
	var req createSessionRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.ClientID == "" || req.Token == "" {
		return httpjson.BadRequest("clientId and token are required.")
	}
	if err := httpjson.CheckLengths("clientId", req.ClientID, "token", req.Token); err != nil {
		return err
	}
	claims, err := a.tokens.Parse(req.Token)
	if err != nil {
		a.log.Info("session token rejected", "reason", token.Reason(err))
		return httpjson.BadRequest("The token is invalid or has expired.")
	}
	if req.Action != "" && req.Action != claims.Other.ActionCode {
		return httpjson.BadRequest("Action is invalid.")
	}
	act, err := a.store.Action(r.Context(), state.ActionKey{UserID: claims.Subject, ActionCode: claims.Other.ActionCode, IdempotencyKey: claims.Other.IdempotencyKey})
	if state.IsKind(err, state.NotFound) {
		return httpjson.BadRequest("The token is invalid or has expired.")
	}
	if err != nil {
		return err
	}
	if act.State != vocab.StateChallengeSucceeded {
		return httpjson.BadRequest("The token's challenge has not succeeded (state %s).", act.State)
	}
	st, err := a.store.CreateSession(r.Context(), state.NewSession{UserID: act.UserID, ClientID: req.ClientID, VerificationMethod: act.VerificationMethod})
	if err != nil {
		return err
	}
	return a.writeSessionTokens(w, r, st)
}

// writeSessionTokens signs the session's latest access token and answers it with the
// refresh token.
func (a *API) writeSessionTokens(w http.ResponseWriter, r *http.Request, st state.SessionTokens) error {
	signer, err := a.sessionKeys.Signer(r.Context())
	if err != nil {
		return err
	}
	now := a.now()
	access, err := signer.Sign(session.Claims{Issuer: a.baseURL(r) + "/v1", Subject: st.UserID, Audience: st.ClientID,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(AccessTokenTTL)), ID: st.AccessTokenID, SessionID: st.ID})
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, sessionTokensResponse{AccessToken: access, RefreshToken: st.RefreshToken})
}

// liveSession checks an access token and returns its claims and session: well signed,
// unexpired (unless expiredOK), of a session not revoked, and the session's latest token.
func (a *API) liveSession(r *http.Request, accessToken string, expiredOK bool) (*session.Claims, state.Session, error) {
	if accessToken == "" {
		return nil, state.Session{}, httpjson.BadRequest("accessToken is required.")
	}
	if err := httpjson.CheckLengths("accessToken", accessToken); err != nil {
		return nil, state.Session{}, err
	}
	signer, err := a.sessionKeys.Signer(r.Context())
	if err != nil {
		return nil, state.Session{}, err
	}
	claims, err := signer.Parse(accessToken)
	switch {
	case errors.Is(err, session.ErrExpired) && !expiredOK:
		return nil, state.Session{}, httpjson.BadRequest("The access token has expired.")
	case err != nil && !errors.Is(err, session.ErrExpired):
		return nil, state.Session{}, httpjson.BadRequest("The access token is invalid.")
	}
	se, err := a.store.Session(r.Context(), claims.SessionID)
	switch {
	case state.IsKind(err, state.NotFound):
		return nil, state.Session{}, httpjson.BadRequest("The access token is invalid.")
	case err != nil:
		return nil, state.Session{}, err
	case !se.RevokedAt.IsZero():
		return nil, state.Session{}, httpjson.BadRequest("The session has been revoked.")
	case se.AccessTokenID != claims.ID:
		return nil, state.Session{}, httpjson.BadRequest("The access token has been replaced: the session was refreshed.")
	}
	return claims, se, nil
}

type validateSessionRequest struct {
	AccessToken string   `json:"accessToken"`
	ClientIDs   []string `json:"clientIds"`
}

type validateSessionResponse struct {
	User               updatedUserResponse `json:"user"`
	ExpiresAt          int64               `json:"expiresAt"` // Unix seconds (docs: validate-session)
	VerificationMethod vocab.Method        `json:"verificationMethod,omitempty"`
}

// ValidateSession serves POST /v1/sessions/validate.
func (a *API) ValidateSession(w http.ResponseWriter, r *http.Request) error {
	var req validateSessionRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	claims, se, err := a.liveSession(r, req.AccessToken, false)
	if err != nil {
		return err
	}
	if len(req.ClientIDs) > 0 && !slices.Contains(req.ClientIDs, claims.Audience) {
		return httpjson.BadRequest("The access token was not issued for one of clientIds.")
	}
	resp := validateSessionResponse{User: updatedUserResponse{UserID: se.UserID}, ExpiresAt: claims.ExpiresAt.Unix(), VerificationMethod: se.VerificationMethod}
	u, _, err := a.store.User(r.Context(), se.UserID)
	if err != nil {
		return err
	}
	if u != nil {
		resp.User = updatedUserJSON(*u)
	}
	return httpjson.Write(w, http.StatusOK, resp)
}

type refreshSessionRequest struct {
	RefreshToken string `json:"refreshToken"`
}

// RefreshSession serves POST /v1/sessions/refresh: new tokens for old; the old ones stop
// working (docs: api-reference/server-api/refresh-session).
func (a *API) RefreshSession(w http.ResponseWriter, r *http.Request) error {
	var req refreshSessionRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return httpjson.BadRequest("refreshToken is required.")
	}
	if err := httpjson.CheckLengths("refreshToken", req.RefreshToken); err != nil {
		return err
	}
	st, err := a.store.RefreshSession(r.Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	return a.writeSessionTokens(w, r, st)
}

type revokeSessionRequest struct {
	AccessToken string `json:"accessToken"`
}

// RevokeSession serves POST /v1/sessions/revoke: 204, and the session's tokens are refused
// from then on. An expired access token still names its session.
func (a *API) RevokeSession(w http.ResponseWriter, r *http.Request) error {
	var req revokeSessionRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	_, se, err := a.liveSession(r, req.AccessToken, true)
	if err != nil {
		return err
	}
	if err := a.store.RevokeSession(r.Context(), se.ID); err != nil {
		return err
	}
	a.log.Info("session revoked", "session_id", se.ID, "user_id", se.UserID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type revokeUserSessionsRequest struct {
	UserID string `json:"userId"`
}

// RevokeUserSessions serves POST /v1/sessions/user/revoke: every session of the user ends.
func (a *API) RevokeUserSessions(w http.ResponseWriter, r *http.Request) error {
	var req revokeUserSessionsRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if err := vocab.ValidateUserID(req.UserID); err != nil {
		return httpjson.BadRequest("%s.", err)
	}
	if err := a.store.RevokeUserSessions(r.Context(), req.UserID); err != nil {
		return err
	}
	a.log.Info("user sessions revoked", "user_id", req.UserID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// JWKS serves GET /v1/client/public/{tenantId}/.well-known/jwks: the public key that
// verifies access tokens, without authentication (the path of Authsignal's example
// authorizers, api-example-lambdas auth/jwt-authorizer.ts).
func (a *API) JWKS(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("tenantId") != a.tenantID {
		return httpjson.NotFound("Tenant %q was not found.", r.PathValue("tenantId"))
	}
	signer, err := a.sessionKeys.Signer(r.Context())
	if err != nil {
		return err
	}
	body, err := signer.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(body)
	return nil
}
