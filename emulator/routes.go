package emulator

import "net/http"

// routes is the whole HTTP surface of the emulator.
func (e *Emulator) routes() http.Handler {
	// Server API: HTTP Basic with the secret key; JSON in and out, errors included.
	api := http.NewServeMux()
	api.HandleFunc("POST /v1/challenge", e.handleChallenge)
	api.HandleFunc("POST /v1/verify", e.handleVerify)
	api.HandleFunc("POST /v1/claim", e.handleClaim)
	api.HandleFunc("GET /v1/challenges", e.handleGetChallenge)
	api.HandleFunc("POST /v1/validate", e.handleValidate)
	api.HandleFunc("GET /v1/users", e.handleQueryUsers)
	api.HandleFunc("GET /v1/users/{userId}", e.handleGetUser)
	api.HandleFunc("PATCH /v1/users/{userId}", e.handleUpdateUser)
	api.HandleFunc("DELETE /v1/users/{userId}", e.handleDeleteUser)
	api.HandleFunc("GET /v1/users/{userId}/authenticators", e.handleGetAuthenticators)
	api.HandleFunc("POST /v1/users/{userId}/authenticators", e.handleEnrollAuthenticator)
	api.HandleFunc("DELETE /v1/users/{userId}/authenticators/{userAuthenticatorId}", e.handleDeleteAuthenticator)
	api.HandleFunc("GET /v1/users/{userId}/actions", e.handleQueryActions)
	api.HandleFunc("POST /v1/users/{userId}/actions/{action}", e.handleTrack)
	api.HandleFunc("GET /v1/users/{userId}/actions/{action}/{idempotencyKey}", e.handleGetAction)
	api.HandleFunc("PATCH /v1/users/{userId}/actions/{action}/{idempotencyKey}", e.handleUpdateAction)

	// Local tooling: no auth (a development tool on loopback; see README).
	mux := http.NewServeMux()
	mux.Handle("/v1/", e.requireAPIKey(e.apiFallback(api)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	})
	// Pre-built challenge page (the token in the query/form authenticates each step).
	mux.HandleFunc("GET /challenge", e.handleChallengePage)
	mux.HandleFunc("POST /challenge/send", e.handleChallengeSend)
	mux.HandleFunc("POST /challenge/enroll", e.handleChallengeEnroll)
	mux.HandleFunc("GET /challenge/code", e.handleChallengeCodePage)
	mux.HandleFunc("POST /challenge/verify", e.handleChallengeVerify)
	mux.HandleFunc("POST /challenge/cancel", e.handleChallengeCancel)
	// Outbox, admin, reset.
	mux.HandleFunc("GET /outbox", e.handleOutboxPage)
	mux.HandleFunc("GET /emulator/messages", e.handleListMessages)
	mux.HandleFunc("DELETE /emulator/messages", e.handleDeleteMessages)
	mux.HandleFunc("POST /emulator/reset", e.handleReset)
	mux.HandleFunc("GET /admin", e.handleAdmin)
	mux.HandleFunc("POST /admin/review", e.handleAdminReview)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/outbox", http.StatusSeeOther)
	})
	return e.recoverer(securityHeaders(mux))
}
