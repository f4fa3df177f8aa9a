package emulator

import (
	"context"
	"net/http"
	"time"
)

// route is one entry of the emulator's HTTP surface. The table below is the single
// source of truth: it builds the muxes, and the OpenAPI test checks it against
// /emulator/openapi.json.
type route struct {
	method  string // GET, POST, PATCH, DELETE
	path    string // net/http pattern path, e.g. "/v1/users/{userId}"
	api     bool   // part of the Server API: Basic auth with the secret key, JSON errors
	handler func(*Emulator) http.HandlerFunc
}

// routeTable is the whole HTTP surface of the emulator.
func routeTable() []route {
	// h adapts a method value so the table can be built before an Emulator exists.
	h := func(f func(*Emulator, http.ResponseWriter, *http.Request)) func(*Emulator) http.HandlerFunc {
		return func(e *Emulator) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { f(e, w, r) }
		}
	}
	return []route{
		// Server API (HTTP Basic with the secret key; JSON in and out, errors included).
		{"POST", "/v1/challenge", true, h((*Emulator).handleChallenge)},
		{"POST", "/v1/verify", true, h((*Emulator).handleVerify)},
		{"POST", "/v1/claim", true, h((*Emulator).handleClaim)},
		{"GET", "/v1/challenges", true, h((*Emulator).handleGetChallenge)},
		{"POST", "/v1/challenges", true, h((*Emulator).handleGetChallenge)}, // the .NET and Java SDKs' form
		{"POST", "/v1/validate", true, h((*Emulator).handleValidate)},
		{"GET", "/v1/users", true, h((*Emulator).handleQueryUsers)},
		{"GET", "/v1/users/{userId}", true, h((*Emulator).handleGetUser)},
		{"PATCH", "/v1/users/{userId}", true, h((*Emulator).handleUpdateUser)},
		{"POST", "/v1/users/{userId}", true, h((*Emulator).handleUpdateUser)}, // the Ruby and Java SDKs' form
		{"DELETE", "/v1/users/{userId}", true, h((*Emulator).handleDeleteUser)},
		{"GET", "/v1/users/{userId}/authenticators", true, h((*Emulator).handleGetAuthenticators)},
		{"POST", "/v1/users/{userId}/authenticators", true, h((*Emulator).handleEnrollAuthenticator)},
		{"DELETE", "/v1/users/{userId}/authenticators/{userAuthenticatorId}", true, h((*Emulator).handleDeleteAuthenticator)},
		{"GET", "/v1/users/{userId}/actions", true, h((*Emulator).handleQueryActions)},
		{"POST", "/v1/users/{userId}/actions/{action}", true, h((*Emulator).handleTrack)},
		{"GET", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", true, h((*Emulator).handleGetAction)},
		{"PATCH", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", true, h((*Emulator).handleUpdateAction)},

		// Local tooling: no auth (a development tool on loopback; see README).
		{"GET", "/healthz", false, h((*Emulator).handleHealthz)},
		{"GET", "/readyz", false, h((*Emulator).handleReadyz)},
		{"GET", "/emulator/openapi.json", false, h((*Emulator).handleOpenAPI)},
		// Pre-built challenge page (the token in the query/form authenticates each step).
		{"GET", "/challenge", false, h((*Emulator).handleChallengePage)},
		{"POST", "/challenge/send", false, h((*Emulator).handleChallengeSend)},
		{"POST", "/challenge/enroll", false, h((*Emulator).handleChallengeEnroll)},
		{"GET", "/challenge/code", false, h((*Emulator).handleChallengeCodePage)},
		{"POST", "/challenge/verify", false, h((*Emulator).handleChallengeVerify)},
		{"POST", "/challenge/cancel", false, h((*Emulator).handleChallengeCancel)},
		// Outbox, admin, reset.
		{"GET", "/outbox", false, h((*Emulator).handleOutboxPage)},
		{"GET", "/emulator/messages", false, h((*Emulator).handleListMessages)},
		{"GET", "/emulator/messages/latest", false, h((*Emulator).handleLatestMessage)},
		{"GET", "/emulator/events", false, h((*Emulator).handleEvents)},
		{"GET", "/static/outbox.js", false, h((*Emulator).handleOutboxJS)},
		{"DELETE", "/emulator/messages", false, h((*Emulator).handleDeleteMessages)},
		{"POST", "/emulator/reset", false, h((*Emulator).handleReset)},
		// Test controls: the clock offset (clock.go) and scoped deletes (users.go).
		{"GET", "/emulator/clock", false, h((*Emulator).handleGetClock)},
		{"POST", "/emulator/clock", false, h((*Emulator).handleAdvanceClock)},
		{"DELETE", "/emulator/users/{userId}", false, h((*Emulator).handleEmulatorDeleteUser)},
		{"GET", "/admin", false, h((*Emulator).handleAdmin)},
		{"POST", "/admin/review", false, h((*Emulator).handleAdminReview)},
		{"GET", "/admin/users", false, h((*Emulator).handleAdminUsers)},
		{"GET", "/admin/users/{userId}", false, h((*Emulator).handleAdminUser)},
		{"GET", "/admin/actions", false, h((*Emulator).handleAdminActions)},
		{"GET", "/admin/challenges", false, h((*Emulator).handleAdminChallenges)},
		{"GET", "/admin/rules", false, h((*Emulator).handleAdminRules)},
		{"GET", "/{$}", false, h((*Emulator).handleRoot)},
	}
}

// routes builds the handler for the whole surface from routeTable.
func (e *Emulator) routes() http.Handler {
	api := http.NewServeMux()
	mux := http.NewServeMux()
	for _, rt := range routeTable() {
		pattern := rt.method + " " + rt.path
		if rt.api {
			api.HandleFunc(pattern, rt.handler(e))
		} else {
			mux.HandleFunc(pattern, rt.handler(e))
		}
	}
	mux.Handle("/v1/", e.requireAPIKey(e.jsonFallback(api)))
	return e.recoverer(securityHeaders(e.guardLocal(e.jsonFallback(mux))))
}

func (e *Emulator) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// readyTimeout bounds the readiness probe: with one database connection a long
// transaction holds it, and a probe should report that rather than queue behind it.
const readyTimeout = time.Second

// handleReadyz is 200 "ready" when the database answers a query on its schema in time, else
// 503 (closed, busy or failing), so orchestrators and test harnesses can wait on it.
func (e *Emulator) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var one int
	// A query on the schema, not SELECT 1: an empty replacement of an in-memory database
	// answers SELECT 1 but has lost every table.
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&one); err != nil {
		e.log.Warn("readiness check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database unavailable"))
		return
	}
	w.Write([]byte("ready"))
}

func (e *Emulator) handleRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/outbox", http.StatusSeeOther)
}
