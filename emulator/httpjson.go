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

// Error codes of the real API.
const (
	codeInvalidRequest  = "invalid_request"
	codeUnauthorized    = "unauthorized"
	codeNotFound        = "not_found"
	codeTooManyRequests = "too_many_requests"
	codeRequestTooLarge = "request_too_large"
	codeMethodNotAllow  = "method_not_allowed"
	codeInternal        = "internal_error"
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
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Description: fmt.Sprintf(format, args...)}
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
		body = []byte(`{"error":"internal_error","errorCode":"internal_error","errorDescription":"The emulator could not encode its response."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
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
	e.writeAPIError(w, &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Description: "The emulator failed to handle the request; see its log."})
}

// decodeBody decodes a JSON object body into dst. Unknown fields are ignored (SDKs may be
// newer than the emulator). When optional is true an empty body means "{}".
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeRequestTooLarge, Description: fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes)}
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

// apiFallback serves the /v1 mux, answering unknown routes with JSON 404 and
// known paths with the wrong method with JSON 405 (the mux's defaults are plain text).
func (e *Emulator) apiFallback(mux *http.ServeMux) http.Handler {
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
			e.writeAPIError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllow, Description: fmt.Sprintf("Method %s is not allowed here; use %s.", r.Method, strings.Join(allowed, " or "))})
			return
		}
		e.writeAPIError(w, notFound("No route %s %s.", r.Method, r.URL.Path))
	})
}

// recoverer turns a panic into a 500 (JSON on /v1, text elsewhere) and logs it with the stack.
func (e *Emulator) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				e.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/emulator/") {
					e.writeAPIError(w, &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Description: "The emulator hit an unexpected error; see its log."})
					return
				}
				http.Error(w, "Internal error; see the emulator log.", http.StatusInternalServerError)
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
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
		// Set before routing, so 404s, 405s, /v1 errors and panics carry it too.
		h.Set(versionHeader, buildVersion())
		next.ServeHTTP(w, r)
	})
}
