// Package clientapi is the emulator's Client API (/v1/client/…): what Authsignal's browser
// and mobile SDKs call, with a track token or the tenant id, for one-time codes and passkeys.
package clientapi

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/passkey"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/token"
)

// API serves the Client API.
type API struct {
	store    *state.Store
	tokens   *token.Issuer
	rpID     string
	rpName   string
	tenantID string
	origins  []string                   // the web origins allowed to call it from a browser (CORS) and to run passkey ceremonies
	self     func(*http.Request) string // the emulator's own base URL: the pre-built UI runs ceremonies too
	log      *slog.Logger
	now      func() time.Time
}

// Deps are what the Client API needs.
type Deps struct {
	Store    *state.Store
	Tokens   *token.Issuer
	RPID     string // the passkeys' relying party: a domain, never an IP address
	RPName   string
	TenantID string
	Origins  []string
	BaseURL  func(*http.Request) string
	Log      *slog.Logger
	Now      func() time.Time
}

// New returns the Client API.
func New(d Deps) *API {
	return &API{store: d.Store, tokens: d.Tokens, rpID: d.RPID, rpName: d.RPName, tenantID: d.TenantID, origins: d.Origins,
		self: d.BaseURL, log: d.Log, now: d.Now}
}

// relyingParty is the passkeys' relying party for a request: the configured origins and
// the emulator's own (its base URL follows the request when no public URL is set).
func (a *API) relyingParty(r *http.Request) (*passkey.RP, error) {
	return passkey.New(a.rpID, a.rpName, append(slices.Clone(a.origins), originOf(a.self(r))), a.origins)
}

// scopeAdd lets a token add an authenticator for a user who has one already.
const scopeAdd = "add:authenticators"

// caller is who a request comes from: a token's action, or (Basic) only the tenant.
type caller struct {
	action *state.ActionKey
	scope  []string
	claims *token.Claims
}

func (c caller) mayAdd() bool { return slices.Contains(c.scope, scopeAdd) }

// errNoToken is a call that needs a token made with the tenant id only.
var errNoToken = &httpjson.Error{Status: http.StatusUnauthorized, Code: httpjson.CodeUnauthorized,
	Description: "This call needs a token (Authorization: Bearer) from track or from a verified challenge."}

// authenticate reads the Authorization header: "Bearer <token>" (a track or access token)
// or "Basic base64(tenantId)", with or without the trailing colon (the browser SDK sends
// none; the docs and the iOS SDK send it, the iOS SDK in the URL-safe alphabet).
func (a *API) authenticate(r *http.Request) (caller, error) {
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	value = strings.TrimSpace(value)
	switch strings.ToLower(scheme) {
	case "bearer":
		claims, err := a.tokens.Parse(value)
		if errors.Is(err, jwt.ErrTokenExpired) {
			return caller{}, &httpjson.Error{Status: http.StatusUnauthorized, Code: httpjson.CodeExpiredToken, Description: "The token has expired."}
		}
		if err != nil {
			a.log.Info("client API: token rejected", "reason", token.Reason(err))
			return caller{}, &httpjson.Error{Status: http.StatusUnauthorized, Code: httpjson.CodeUnauthorized, Description: "The token is invalid."}
		}
		k := state.ActionKey{UserID: claims.Subject, ActionCode: claims.Other.ActionCode, IdempotencyKey: claims.Other.IdempotencyKey}
		return caller{action: &k, scope: strings.Fields(claims.Scope), claims: claims}, nil
	case "basic":
		if tenant, ok := decodeTenant(value); ok && tenant == a.tenantID {
			return caller{}, nil
		}
	}
	return caller{}, &httpjson.Error{Status: http.StatusUnauthorized, Code: httpjson.CodeUnauthorized,
		Description: "Send Authorization: Bearer with a token, or Basic with the tenant id."}
}

func decodeTenant(v string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return strings.TrimSuffix(string(b), ":"), true
		}
	}
	return "", false
}

// Handle adapts a Client API handler: CORS for the allowed origins, the caller, and
// errors as the SDKs read them (a body with "error").
func (a *API) Handle(f Handler) http.HandlerFunc {
	return httpjson.Handle(a.log, func(w http.ResponseWriter, r *http.Request) error {
		a.cors(w, r)
		c, err := a.authenticate(r)
		if err != nil {
			return err
		}
		return f(w, r, c)
	})
}

// Preflight answers a CORS preflight of any Client API path. The browser SDK sends
// Authorization and Content-Type: application/json on every call, so every call has one.
func (a *API) Preflight(w http.ResponseWriter, r *http.Request) {
	if a.cors(w, r) {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// cors allows the request's origin when it is one of the configured ones; it reports
// whether it did.
func (a *API) cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(a.origins, origin) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	return true
}

// accessToken is the token a verified challenge answers with: for the same action, so
// the app's validate finds it succeeded, and with add:authenticators, since the person has
// just proved who they are (docs: api-reference/client-api/overview).
func (a *API) accessToken(k state.ActionKey, c caller, username string) (string, error) {
	scope := []string{scopeAdd}
	if c.claims != nil {
		scope = append(strings.Fields(c.claims.Scope), scopeAdd)
		if username == "" {
			username = c.claims.Other.Username
		}
	}
	return a.tokens.Issue(token.Action{UserID: k.UserID, ActionCode: k.ActionCode, IdempotencyKey: k.IdempotencyKey,
		Scope: strings.Join(scope, " "), Username: username})
}

// needToken is the caller's action, or errNoToken.
func needToken(c caller) (state.ActionKey, error) {
	if c.action == nil {
		return state.ActionKey{}, errNoToken
	}
	return *c.action, nil
}

// originOf is the scheme://host[:port] of a URL, for the allowed origins.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
