package emulator

import (
	"net/http"

	"example.com/passwordless/emulator/internal/admin"
	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/outbox"
	"example.com/passwordless/emulator/internal/pages"
	"example.com/passwordless/emulator/internal/prebuiltui"
	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/serverapi"
	"example.com/passwordless/emulator/internal/session"
	"example.com/passwordless/emulator/internal/testcontrols"
)

// route is one entry of the emulator's HTTP surface. The table is the single source of
// truth: it builds the muxes, and the OpenAPI test checks it against /emulator/openapi.json.
type route struct {
	method  string // GET, POST, PATCH, DELETE
	path    string // net/http pattern path, e.g. "/v1/users/{userId}"
	api     bool   // part of the Server API: Basic auth with the secret key, JSON errors
	handler http.HandlerFunc
}

// routeTable is the whole HTTP surface of the emulator.
func (e *Emulator) routeTable(rs *rules.Rules, rnd *random.Source, limits Limits) ([]route, error) {
	p, err := pages.New(e.log)
	if err != nil {
		return nil, err
	}
	api := serverapi.New(serverapi.Deps{Store: e.store, Tokens: e.tokens, SessionKeys: session.NewKeys(e.store.SigningKey, e.clock.Now),
		TenantID: e.tenantID, Now: e.clock.Now, Log: e.log, BaseURL: e.baseURLFor})
	ui := prebuiltui.New(e.store, e.tokens, p, e.log, e.clock.Now, limits.CodeTTL)
	ob := outbox.New(e.store, e.hub, p, e.log)
	ad := admin.New(e.store, rs, p, rnd, e.log, e.clock.Now, limits.MaxAttempts)
	tc := testcontrols.New(e.store, e.clock, e.log)
	// j adapts a handler that returns its error, which is answered as JSON.
	j := func(f func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
		return httpjson.Handle(e.log, f)
	}
	return []route{
		// Server API (HTTP Basic with the secret key; JSON in and out, errors included).
		{"POST", "/v1/challenge", true, j(api.Challenge)},
		{"POST", "/v1/verify", true, j(api.Verify)},
		{"POST", "/v1/claim", true, j(api.Claim)},
		{"GET", "/v1/challenges", true, j(api.GetChallenge)},
		{"POST", "/v1/challenges", true, j(api.GetChallenge)}, // the .NET and Java SDKs' form
		{"POST", "/v1/validate", true, j(api.Validate)},
		{"GET", "/v1/users", true, j(api.QueryUsers)},
		{"GET", "/v1/users/{userId}", true, j(api.GetUser)},
		{"PATCH", "/v1/users/{userId}", true, j(api.UpdateUser)},
		{"POST", "/v1/users/{userId}", true, j(api.UpdateUser)}, // the Ruby and Java SDKs' form
		{"DELETE", "/v1/users/{userId}", true, j(api.DeleteUser)},
		{"GET", "/v1/users/{userId}/authenticators", true, j(api.GetAuthenticators)},
		{"POST", "/v1/users/{userId}/authenticators", true, j(api.EnrollAuthenticator)},
		{"DELETE", "/v1/users/{userId}/authenticators/{userAuthenticatorId}", true, j(api.DeleteAuthenticator)},
		{"GET", "/v1/users/{userId}/actions", true, j(api.QueryActions)},
		{"POST", "/v1/users/{userId}/actions/{action}", true, j(api.Track)},
		{"GET", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", true, j(api.GetAction)},
		{"PATCH", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", true, j(api.UpdateAction)},
		{"GET", "/v1/users/{userId}/devices", true, j(api.GetDevices)},
		{"PATCH", "/v1/users/{userId}/devices/{deviceId}", true, j(api.UpdateDevice)},
		{"POST", "/v1/users/{userId}/devices/{deviceId}/invalidate", true, j(api.InvalidateDevice)},
		{"GET", "/v1/authenticators", true, j(api.AuthenticatorConfigurations)},
		{"POST", "/v1/sessions", true, j(api.CreateSession)},
		{"POST", "/v1/sessions/validate", true, j(api.ValidateSession)},
		{"POST", "/v1/sessions/refresh", true, j(api.RefreshSession)},
		{"POST", "/v1/sessions/revoke", true, j(api.RevokeSession)},
		{"POST", "/v1/sessions/user/revoke", true, j(api.RevokeUserSessions)},
		// The public keys of sessions' access tokens: no secret key, like the real JWKS URL.
		{"GET", "/v1/client/public/{tenantId}/.well-known/jwks", false, j(api.JWKS)},

		// Local tooling: no auth (a development tool on loopback; see README).
		{"GET", "/healthz", false, e.handleHealthz},
		{"GET", "/readyz", false, e.handleReadyz},
		{"GET", "/emulator/openapi.json", false, handleOpenAPI},
		// The pre-built UI (the token in the query or form authenticates each step).
		{"GET", "/challenge", false, ui.ChoosePage},
		{"POST", "/challenge/send", false, ui.Send},
		{"POST", "/challenge/enroll", false, ui.Enroll},
		{"GET", "/challenge/code", false, ui.CodePage},
		{"POST", "/challenge/verify", false, ui.Verify},
		{"POST", "/challenge/cancel", false, ui.Cancel},
		// The outbox.
		{"GET", "/outbox", false, ob.Page},
		{"GET", "/emulator/messages", false, j(ob.ListMessages)},
		{"GET", "/emulator/messages/latest", false, j(ob.LatestMessage)},
		{"GET", "/emulator/events", false, j(ob.Events)},
		{"GET", "/static/outbox.js", false, ob.Script},
		{"DELETE", "/emulator/messages", false, j(ob.DeleteMessages)},
		// Test controls.
		{"POST", "/emulator/reset", false, j(tc.Reset)},
		{"GET", "/emulator/clock", false, j(tc.GetClock)},
		{"POST", "/emulator/clock", false, j(tc.AdvanceClock)},
		{"DELETE", "/emulator/users/{userId}", false, j(tc.DeleteUser)},
		{"GET", "/emulator/export", false, j(tc.Export)},
		// Webhooks sent.
		{"GET", "/emulator/webhooks", false, j(e.webhooks.ListDeliveries)},
		// Admin pages.
		{"GET", "/admin", false, ad.Dashboard},
		{"POST", "/admin/review", false, ad.Review},
		{"GET", "/admin/users", false, ad.Users},
		{"GET", "/admin/users/{userId}", false, ad.User},
		{"GET", "/admin/actions", false, ad.Actions},
		{"GET", "/admin/challenges", false, ad.Challenges},
		{"GET", "/admin/rules", false, ad.Rules},
		{"GET", "/{$}", false, handleRoot},
	}, nil
}

// routes builds the handler for the whole surface from routeTable.
func (e *Emulator) routes(secretKey []byte, rs *rules.Rules, rnd *random.Source, limits Limits) (http.Handler, error) {
	table, err := e.routeTable(rs, rnd, limits)
	if err != nil {
		return nil, err
	}
	e.table = table
	api := http.NewServeMux()
	mux := http.NewServeMux()
	for _, rt := range table {
		pattern := rt.method + " " + rt.path
		if rt.api {
			api.HandleFunc(pattern, rt.handler)
		} else {
			mux.HandleFunc(pattern, rt.handler)
		}
	}
	mux.Handle("/v1/", httpjson.RequireKey(secretKey, httpjson.Fallback(api)))
	return httpjson.Recover(e.log, securityHeaders(e.guardLocal(httpjson.Fallback(mux)))), nil
}

func (e *Emulator) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// handleReadyz is 200 "ready" when the database answers a query on its schema in time, else
// 503 (closed, busy or failing), so orchestrators and test harnesses can wait on it.
func (e *Emulator) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := e.store.Ready(r.Context()); err != nil {
		e.log.Warn("readiness check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database unavailable"))
		return
	}
	w.Write([]byte("ready"))
}

func handleRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/outbox", http.StatusSeeOther)
}
