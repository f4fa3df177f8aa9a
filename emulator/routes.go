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
	// he adapts a handler that returns its error, which writeErr then answers as JSON.
	he := func(f func(*Emulator, http.ResponseWriter, *http.Request) error) func(*Emulator) http.HandlerFunc {
		return func(e *Emulator) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if err := f(e, w, r); err != nil {
					e.writeErr(w, r, err)
				}
			}
		}
	}
	return []route{
		// Server API (HTTP Basic with the secret key; JSON in and out, errors included).
		{"POST", "/v1/challenge", true, he((*Emulator).handleChallenge)},
		{"POST", "/v1/verify", true, he((*Emulator).handleVerify)},
		{"POST", "/v1/claim", true, he((*Emulator).handleClaim)},
		{"GET", "/v1/challenges", true, he((*Emulator).handleGetChallenge)},
		{"POST", "/v1/challenges", true, he((*Emulator).handleGetChallenge)}, // the .NET and Java SDKs' form
		{"POST", "/v1/validate", true, he((*Emulator).handleValidate)},
		{"GET", "/v1/users", true, he((*Emulator).handleQueryUsers)},
		{"GET", "/v1/users/{userId}", true, he((*Emulator).handleGetUser)},
		{"PATCH", "/v1/users/{userId}", true, he((*Emulator).handleUpdateUser)},
		{"POST", "/v1/users/{userId}", true, he((*Emulator).handleUpdateUser)}, // the Ruby and Java SDKs' form
		{"DELETE", "/v1/users/{userId}", true, he((*Emulator).handleDeleteUser)},
		{"GET", "/v1/users/{userId}/authenticators", true, he((*Emulator).handleGetAuthenticators)},
		{"POST", "/v1/users/{userId}/authenticators", true, he((*Emulator).handleEnrollAuthenticator)},
		{"DELETE", "/v1/users/{userId}/authenticators/{userAuthenticatorId}", true, he((*Emulator).handleDeleteAuthenticator)},
		{"GET", "/v1/users/{userId}/actions", true, he((*Emulator).handleQueryActions)},
		{"POST", "/v1/users/{userId}/actions/{action}", true, he((*Emulator).handleTrack)},
		{"GET", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", true, he((*Emulator).handleGetAction)},
		{"PATCH", "/v1/users/{userId}/actions/{action}/{idempotencyKey}", true, he((*Emulator).handleUpdateAction)},

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
		{"GET", "/emulator/messages", false, he((*Emulator).handleListMessages)},
		{"GET", "/emulator/messages/latest", false, he((*Emulator).handleLatestMessage)},
		{"GET", "/emulator/events", false, he((*Emulator).handleEvents)},
		{"GET", "/static/outbox.js", false, h((*Emulator).handleOutboxJS)},
		{"DELETE", "/emulator/messages", false, he((*Emulator).handleDeleteMessages)},
		{"POST", "/emulator/reset", false, he((*Emulator).handleReset)},
		// Test controls: the clock offset (clock.go) and scoped deletes (users.go).
		{"GET", "/emulator/clock", false, h((*Emulator).handleGetClock)},
		{"POST", "/emulator/clock", false, he((*Emulator).handleAdvanceClock)},
		{"DELETE", "/emulator/users/{userId}", false, he((*Emulator).handleEmulatorDeleteUser)},
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
