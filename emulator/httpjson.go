package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
)

const maxBodyBytes = 1 << 20 // 1 MiB

// Error codes. Only those the real API documents (docs.authsignal.com/sdks/server/error-handling);
// the HTTP status says the rest (404 unknown, 405 method, 413 too large). Where the docs
// give no code, README.md ("Errors") says which one the emulator answers.
const (
	codeInvalidRequest       = "invalid_request"       // 400, 404, 405, 413: the request's fault
	codeUnauthorized         = "unauthorized"          // 401: wrong secret key or region
	codeTooManyRequests      = "too_many_requests"     // 429: a send limit
	codeInvalidConfiguration = "invalid_configuration" // 5xx: the tenant (here: the emulator or its provider) cannot serve it
	codeInvalidCredential    = "invalid_credential"    // a credential that is not the user's (passkeys, later)
)

const unauthorizedDescription = "The request is unauthorized. Check that your API key and region base URL are correctly configured."

// apiError is an error with its HTTP status and API error code.
type apiError struct {
	Status      int
	Code        string
	Description string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Description }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

// internalError is the answer to a failure of the emulator itself (its database, say).
func internalError(status int, description string) *apiError {
	return &apiError{Status: status, Code: codeInvalidConfiguration, Description: description}
}

func tooManyRequests(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: codeTooManyRequests, Description: fmt.Sprintf(format, args...)}
}

// writeJSON writes v as JSON with status. Encoding happens first, so a failure never sends half a body.
func (e *Emulator) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		e.log.Error("encode response", "err", err)
		status = http.StatusInternalServerError
		body = []byte(`{"error":"invalid_configuration","errorCode":"invalid_configuration","errorDescription":"The emulator could not encode its response."}`)
	}
	// Exactly this, no charset: the Python SDK decodes only bodies of this exact type.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func (e *Emulator) writeAPIError(w http.ResponseWriter, ae *apiError) {
	e.writeJSON(w, ae.Status, map[string]string{"error": ae.Code, "errorCode": ae.Code, "errorDescription": ae.Description})
}

// writeErr turns any error into the API's JSON error; unexpected errors are logged and become a 500.
func (e *Emulator) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		e.writeAPIError(w, ae)
		return
	}
	e.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	e.writeAPIError(w, internalError(http.StatusInternalServerError, "The emulator failed to handle the request; see its log."))
}

// decodeBody decodes a JSON object body into dst. Unknown fields are ignored (SDKs may be
// newer than the emulator). When optional is true an empty body means "{}".
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeInvalidRequest, Description: fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes)}
		}
		return badRequest("The request body could not be read.")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return nil
		}
		return badRequest("The request body is empty; a JSON object is required.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(dst); err != nil {
		return jsonDecodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("The request body must be a single JSON object.")
	}
	return nil
}

func jsonDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("The request body must be a JSON object.")
		}
		return badRequest("Field %q must be of type %s.", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return badRequest("The request body is not valid JSON (at byte %d).", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("The request body is not valid JSON (it ends early).")
	default:
		return badRequest("The request body is not valid JSON.")
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "int", "int64", "float64", "uint", "int32":
		return "number"
	}
	return kind
}

// requireAPIKey checks HTTP Basic auth: the secret key as username, any (normally empty) password.
func (e *Emulator) requireAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), e.secretKey) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="authsignal-emulator"`)
			e.writeAPIError(w, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Description: unauthorizedDescription})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// jsonFallback serves mux, answering unknown routes with JSON 404 and known paths with
// the wrong method with JSON 405 (the mux's defaults are plain text, which SDKs cannot read).
func (e *Emulator) jsonFallback(mux *http.ServeMux) http.Handler {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allowed []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			e.writeAPIError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: codeInvalidRequest, Description: fmt.Sprintf("Method %s is not allowed here; use %s.", r.Method, strings.Join(allowed, " or "))})
			return
		}
		e.writeAPIError(w, notFound("No route %s %s.", r.Method, r.URL.Path))
	})
}

// recoverer turns a panic into a JSON 500 and logs it with the stack.
func (e *Emulator) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				e.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				e.writeAPIError(w, internalError(http.StatusInternalServerError, "The emulator hit an unexpected error; see its log."))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets conservative headers on every response. The pages use no scripts.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin: no Referer (with the page's token in its URL) ever leaves for the app,
		// while the pages' own form posts keep their Origin, which guardLocal checks
		// (no-referrer would make browsers send "Origin: null" on them).
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
		// Set before routing, so 404s, 405s, /v1 errors and panics carry it too.
		h.Set(versionHeader, buildVersion())
		next.ServeHTTP(w, r)
	})
}
