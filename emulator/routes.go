package emulator

import (
	"net/http"

	"example.com/passwordless/emulator/internal/admin"
	"example.com/passwordless/emulator/internal/callconnect"
	"example.com/passwordless/emulator/internal/clientapi"
	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/outbox"
	"example.com/passwordless/emulator/internal/pages"
	"example.com/passwordless/emulator/internal/prebuiltui"
	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/serverapi"
	"example.com/passwordless/emulator/internal/session"
	"example.com/passwordless/emulator/internal/testcontrols"
	"example.com/passwordless/emulator/internal/vocab"
)

// route is one entry of the emulator's HTTP surface. The table is the single source of
// truth: it builds the muxes, and the OpenAPI test checks it against /emulator/openapi.json.
type route struct {
	method  string // GET, POST, PATCH, DELETE
	path    string // net/http pattern path, e.g. "/v1/users/{userId}"
	auth    auth   // who may call it
	handler http.HandlerFunc
}

// auth is how a route authenticates its callers.
type auth int

const (
	public      auth = iota // tooling, pages and the JWKS: none (a development tool on loopback)
	secretKey               // the Server API: HTTP Basic with the secret key, JSON errors
	callConnect             // the Call Connect API: HTTP Basic with its own secret key
	client                  // the Client API: a token or the tenant id (clientapi checks), CORS for the client origins
)

// routeTable is the whole HTTP surface of the emulator.
func (e *Emulator) routeTable(rs *rules.Rules, rnd *random.Source, limits Limits) ([]route, error) {
	p, err := pages.New(e.log)
	if err != nil {
		return nil, err
	}
	api := serverapi.New(serverapi.Deps{Store: e.store, Tokens: e.tokens, SessionKeys: session.NewKeys(e.store.SigningKey, e.clock.Now),
		TenantID: e.tenantID, Now: e.clock.Now, Log: e.log, BaseURL: e.baseURLFor})
	ui := prebuiltui.New(e.store, e.tokens, p, e.log, e.clock.Now, limits.CodeTTL, e.clientOrigins, e.baseURLFor, e.appName)
	ob := outbox.New(e.store, e.hub, p, e.log)
	calls := callconnect.New(e.store, e.log, e.baseURLFor)
	capi := clientapi.New(clientapi.Deps{Store: e.store, Tokens: e.tokens, RPID: e.rpID, RPName: "Authsignal emulator", TenantID: e.tenantID,
		Origins: e.clientOrigins, BaseURL: e.baseURLFor, Log: e.log, Now: e.clock.Now})
	c := capi.Handle
	ad := admin.New(e.store, rs, p, rnd, e.log, e.clock.Now, limits.MaxAttempts, e.webhooks)
	tc := testcontrols.New(e.store, e.clock, e.log)
	// j adapts a handler that returns its error, which is answered as JSON.
	j := func(f func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
		return httpjson.Handle(e.log, f)
	}
	return []route{
		// Server API (HTTP Basic with the secret key; JSON in and out, errors included).
		{"POST", "/v1/challenge", secretKey, j(api.Challenge)},
		{"POST", "/v1/verify", secretKey, j(api.Verify)},
		{"POST", "/v1/claim", secretKey, j(api.Claim)},
		{"GET", "/v1/challenges", secretKey, j(api.GetChallenge)},
		{"POST", "/v1/challenges", secretKey, j(api.GetChallenge)}, // the .NET and Java SDKs' form
		{"POST", "/v1/validate", secretKey, j(api.Validate)},
		{"GET", "/v1/users", secretKey, j(api.QueryUsers)},
		{"GET", "/v1/users/{userId}", secretKey, j(api.GetUser)},
		{"PATCH", "/v1/users/{userId}", secretKey, j(api.UpdateUser)},
		{"POST", "/v1/users/{userId}", secretKey, j(api.UpdateUser)}, // the Ruby and Java SDKs' form
		{"DELETE", "/v1/users/{userId}", secretKey, j(api.DeleteUser)},
		{"GET", "/v1/users/{userId}/authenticators", secretKey, j(api.GetAuthenticators)},
		{"POST", "/v1/users/{userId}/authenticators", secretKey, j(api.EnrollAuthenticator)},
		{"DELETE", "/v1/users/{userId}/authenticators/{userAuthenticatorId}", secretKey, j(api.DeleteAuthenticator)},
		{"GET", "/v1/users/{userId}/actions", secretKey, j(api.QueryActions)},
		{"POST", "/v1/users/{userId}/actions/{action}", secretKey, j(api.Track)},
		{"GET", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", secretKey, j(api.GetAction)},
		{"PATCH", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", secretKey, j(api.UpdateAction)},
		{"POST", "/v1/users/authenticators", secretKey, j(api.BatchEnroll)},
		{"GET", "/v1/users/{userId}/devices", secretKey, j(api.GetDevices)},
		{"PATCH", "/v1/users/{userId}/devices/{deviceId}", secretKey, j(api.UpdateDevice)},
		{"POST", "/v1/users/{userId}/devices/{deviceId}/invalidate", secretKey, j(api.InvalidateDevice)},
		{"GET", "/v1/authenticators", secretKey, j(api.AuthenticatorConfigurations)},
		{"POST", "/v1/sessions", secretKey, j(api.CreateSession)},
		{"POST", "/v1/sessions/validate", secretKey, j(api.ValidateSession)},
		{"POST", "/v1/sessions/refresh", secretKey, j(api.RefreshSession)},
		{"POST", "/v1/sessions/revoke", secretKey, j(api.RevokeSession)},
		{"POST", "/v1/sessions/user/revoke", secretKey, j(api.RevokeUserSessions)},
		// Client API (a token from track or a verified challenge, or the tenant id; CORS).
		{"OPTIONS", "/v1/client/", client, capi.Preflight},
		{"POST", "/v1/client/user-authenticators/email-otp", client, c(capi.EnrollOTP(vocab.MethodEmailOTP))},
		{"POST", "/v1/client/user-authenticators/sms", client, c(capi.EnrollOTP(vocab.MethodSMS))},
		{"POST", "/v1/client/challenge/email-otp", client, c(capi.ChallengeOTP(vocab.MethodEmailOTP))},
		{"POST", "/v1/client/challenge/sms", client, c(capi.ChallengeOTP(vocab.MethodSMS))},
		{"POST", "/v1/client/challenge/whatsapp", client, c(capi.ChallengeOTP(vocab.MethodWhatsApp))},
		{"POST", "/v1/client/verify/email-otp", client, c(capi.VerifyOTP(vocab.MethodEmailOTP))},
		{"POST", "/v1/client/verify/sms", client, c(capi.VerifyOTP(vocab.MethodSMS))},
		{"POST", "/v1/client/verify/whatsapp", client, c(capi.VerifyOTP(vocab.MethodWhatsApp))},
		{"POST", "/v1/client/user-authenticators/totp", client, c(capi.EnrollTOTP)},
		{"POST", "/v1/client/verify/totp", client, c(capi.VerifyOTP(vocab.MethodAuthenticatorApp))},
		{"POST", "/v1/client/user-authenticators/email-magic-link", client, c(capi.EnrollMagicLink)},
		{"POST", "/v1/client/challenge/email-magic-link", client, c(capi.ChallengeMagicLink)},
		{"POST", "/v1/client/verify/email-magic-link/finalize", client, c(capi.FinalizeMagicLink)},
		{"GET", "/v1/client/user-authenticators", client, c(capi.Authenticators)},
		{"POST", "/v1/client/user-authenticators/passkey/registration-options", client, c(capi.RegistrationOptions)},
		{"POST", "/v1/client/user-authenticators/passkey", client, c(capi.AddPasskey)},
		{"GET", "/v1/client/user-authenticators/passkey", client, c(capi.PasskeyLookup)},
		{"POST", "/v1/client/challenge", client, c(capi.Challenge)},
		{"POST", "/v1/client/user-authenticators/passkey/authentication-options", client, c(capi.AuthenticationOptions)},
		{"POST", "/v1/client/verify/passkey", client, c(capi.VerifyPasskey)},
		// The public keys of sessions' access tokens: no secret key, like the real JWKS URL.
		{"GET", "/v1/client/public/{tenantId}/.well-known/jwks", public, j(api.JWKS)},

		// Call Connect (HTTP Basic with its own secret key).
		{"POST", "/call/start", callConnect, j(calls.Start)},
		{"POST", "/call/finish", callConnect, j(calls.Finish)},

		// Local tooling: no auth (a development tool on loopback; see README).
		{"GET", "/healthz", public, e.handleHealthz},
		{"GET", "/readyz", public, e.handleReadyz},
		{"GET", "/emulator/openapi.json", public, handleOpenAPI},
		{"GET", "/favicon.svg", public, pages.Favicon},
		{"GET", "/static/theme.css", public, pages.Theme},
		{"GET", "/static/emulator.css", public, pages.Stylesheet},
		// The pre-built UI (the token in the query or form authenticates each step).
		{"GET", "/challenge", public, ui.Headers(ui.ChoosePage)},
		{"POST", "/challenge/send", public, ui.Headers(ui.Send)},
		{"POST", "/challenge/enroll", public, ui.Headers(ui.Enroll)},
		{"GET", "/challenge/code", public, ui.Headers(ui.CodePage)},
		{"POST", "/challenge/verify", public, ui.Headers(ui.Verify)},
		{"POST", "/challenge/cancel", public, ui.Headers(ui.Cancel)},
		{"GET", "/challenge/done", public, ui.Headers(ui.Done)},
		{"GET", "/static/prebuilt.js", public, prebuiltui.Script},
		{"GET", "/magic-link/{challengeId}", public, ui.Headers(ui.LinkPage)},
		{"POST", "/magic-link/{challengeId}", public, ui.Headers(ui.OpenLink)},
		// The outbox.
		{"GET", "/outbox", public, ob.Page},
		{"GET", "/emulator/messages", public, j(ob.ListMessages)},
		{"GET", "/emulator/messages/latest", public, j(ob.LatestMessage)},
		{"GET", "/emulator/events", public, j(ob.Events)},
		{"GET", "/static/outbox.js", public, ob.Script},
		{"DELETE", "/emulator/messages", public, j(ob.DeleteMessages)},
		// Test controls.
		{"POST", "/emulator/reset", public, j(tc.Reset)},
		{"GET", "/emulator/clock", public, j(tc.GetClock)},
		{"POST", "/emulator/clock", public, j(tc.AdvanceClock)},
		{"DELETE", "/emulator/users/{userId}", public, j(tc.DeleteUser)},
		{"GET", "/emulator/export", public, j(tc.Export)},
		{"GET", "/emulator/calls/{referenceId}", public, j(calls.GetCall)},
		// Webhooks sent.
		{"GET", "/emulator/webhooks", public, j(e.webhooks.ListDeliveries)},
		// Admin pages.
		{"GET", "/admin", public, ad.Dashboard},
		{"POST", "/admin/review", public, ad.Review},
		{"GET", "/admin/users", public, ad.Users},
		{"GET", "/admin/users/{userId}", public, ad.User},
		{"GET", "/admin/actions", public, ad.Actions},
		{"GET", "/admin/challenges", public, ad.Challenges},
		{"GET", "/admin/rules", public, ad.Rules},
		{"GET", "/admin/webhooks", public, ad.Webhooks},
		{"GET", "/{$}", public, handleRoot},
	}, nil
}

// routes builds the handler for the whole surface from routeTable.
func (e *Emulator) routes(key, callKey []byte, rs *rules.Rules, rnd *random.Source, limits Limits) (http.Handler, error) {
	table, err := e.routeTable(rs, rnd, limits)
	if err != nil {
		return nil, err
	}
	e.table = table
	api, calls, clients, mux := http.NewServeMux(), http.NewServeMux(), http.NewServeMux(), http.NewServeMux()
	for _, rt := range table {
		pattern := rt.method + " " + rt.path
		switch rt.auth {
		case secretKey:
			api.HandleFunc(pattern, rt.handler)
		case callConnect:
			calls.HandleFunc(pattern, rt.handler)
		case client:
			clients.HandleFunc(pattern, rt.handler)
		default:
			mux.HandleFunc(pattern, rt.handler)
		}
	}
	mux.Handle("/v1/", httpjson.RequireKey(key, httpjson.Fallback(api)))
	mux.Handle("/call/", httpjson.RequireKey(callKey, httpjson.Fallback(calls)))
	mux.Handle("/v1/client/", httpjson.Fallback(clients))
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
