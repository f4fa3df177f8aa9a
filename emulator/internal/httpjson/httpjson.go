// Package httpjson is the Server API's JSON over HTTP: answers, errors with the documented
// error codes, request bodies, and JSON answers for unknown routes and panics.
package httpjson

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20 // 1 MiB

// Error codes. Only those the real API documents (docs.authsignal.com/sdks/server/error-handling);
// the HTTP status says the rest (404 unknown, 405 method, 413 too large). Where the docs
// give no code, emulator/README.md ("Errors") says which one the emulator answers.
const (
	CodeInvalidRequest       = "invalid_request"       // 400, 404, 405, 413: the request's fault
	CodeUnauthorized         = "unauthorized"          // 401: wrong secret key or region; 403: a token's scope
	CodeExpiredToken         = "expired_token"         // 401: the Client API's token has expired (the browser SDK calls onTokenExpired)
	CodeInvalidCredential    = "invalid_credential"    // 400: a passkey the emulator does not know, or whose proof fails
	CodeTooManyRequests      = "too_many_requests"     // 429: a send limit
	CodeInvalidConfiguration = "invalid_configuration" // 5xx: the tenant (here: the emulator or its provider) cannot serve it
)

// Error is an error with its HTTP status and API error code.
type Error struct {
	Status      int
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// BadRequest is a 400 invalid_request.
func BadRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

// NotFound is a 404 invalid_request.
func NotFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

// Internal is the answer to a failure of the emulator itself (its database, say).
func Internal(status int, description string) *Error {
	return &Error{Status: status, Code: CodeInvalidConfiguration, Description: description}
}

// TooManyRequests is a 429 too_many_requests.
func TooManyRequests(format string, args ...any) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Description: fmt.Sprintf(format, args...)}
}

// From is err as an Error: itself, a state refusal by its kind, or nil for anything else.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var r *state.Error
	if !errors.As(err, &r) {
		return nil
	}
	switch r.Kind {
	case state.NotFound:
		return &Error{Status: http.StatusNotFound, Code: CodeInvalidRequest, Description: r.Description}
	case state.Limited:
		return &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Description: r.Description}
	case state.Undeliverable:
		return &Error{Status: http.StatusBadGateway, Code: CodeInvalidConfiguration, Description: r.Description}
	case state.Forbidden:
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Description: r.Description}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: r.Description}
}

// CheckLengths refuses the first field longer than its vocab.MaxLength; it takes pairs
// of a field's JSON name and its value.
func CheckLengths(nameValues ...string) error {
	if len(nameValues)%2 != 0 {
		panic("CheckLengths: a name without a value") // a programming error
	}
	for i := 0; i < len(nameValues); i += 2 {
		name, value := nameValues[i], nameValues[i+1]
		max, ok := vocab.MaxLength(name)
		if !ok {
			panic("CheckLengths: no maximum length for " + name) // a programming error
		}
		if len(value) > max {
			return BadRequest("%s is longer than %d characters.", name, max)
		}
	}
	return nil
}

// Write encodes v and writes it with status. Encoding happens first, so a failure writes
// nothing and is returned (then Handle answers a 500).
func Write(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	WriteEncoded(w, status, body)
	return nil
}

// WriteEncoded writes body, JSON already encoded, with status.
func WriteEncoded(w http.ResponseWriter, status int, body []byte) {
	// Exactly this, no charset: the Python SDK decodes only bodies of this exact type.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
	w.Write([]byte{'\n'})
}

func writeError(w http.ResponseWriter, e *Error) {
	// A map of strings always encodes.
	_ = Write(w, e.Status, map[string]string{"error": e.Code, "errorCode": e.Code, "errorDescription": e.Description})
}

// WriteError answers err as the API's JSON error; an unexpected one is logged and becomes a 500.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if e := From(err); e != nil {
		writeError(w, e)
		return
	}
	log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, Internal(http.StatusInternalServerError, "The emulator failed to handle the request; see its log."))
}

// Handle adapts a handler that returns its error, answering the error as JSON.
func Handle(log *slog.Logger, f func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			WriteError(w, r, log, err)
		}
	}
}

// Decode decodes a JSON object body into dst. Unknown fields are ignored (SDKs may be
// newer than the emulator). When optional is true an empty body means "{}".
func Decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidRequest, Description: fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes)}
		}
		return BadRequest("The request body could not be read.")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return nil
		}
		return BadRequest("The request body is empty; a JSON object is required.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("The request body must be a single JSON object.")
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return BadRequest("The request body must be a JSON object.")
		}
		return BadRequest("Field %q must be of type %s.", typeErr.Field, vocab.JSONType(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return BadRequest("The request body is not valid JSON (at byte %d).", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("The request body is not valid JSON (it ends early).")
	default:
		return BadRequest("The request body is not valid JSON.")
	}
}

// Fallback serves mux, answering unknown routes with JSON 404 and known paths with the
// wrong method with JSON 405 (the mux's defaults are plain text, which SDKs cannot read).
func Fallback(mux *http.ServeMux) http.Handler {
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
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidRequest,
				Description: fmt.Sprintf("Method %s is not allowed here; use %s.", r.Method, strings.Join(allowed, " or "))})
			return
		}
		writeError(w, NotFound("No route %s %s.", r.Method, r.URL.Path))
	})
}

// Recover turns a panic into a JSON 500 and logs it with the stack.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, Internal(http.StatusInternalServerError, "The emulator hit an unexpected error; see its log."))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// RequireKey checks HTTP Basic auth: the secret key as username, any (normally empty) password.
func RequireKey(secretKey []byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, ok := r.BasicAuth()
		if !ok || !constantTimeEqual(user, secretKey) {
			w.Header().Set("WWW-Authenticate", `Basic realm="authsignal-emulator"`)
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Description: UnauthorizedDescription})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// UnauthorizedDescription is the real service's sentence for a wrong key.
const UnauthorizedDescription = "The request is unauthorized. Check that your API key and region base URL are correctly configured."

func constantTimeEqual(s string, key []byte) bool {
	return subtle.ConstantTimeCompare([]byte(s), key) == 1
}

// UserAuthenticator is the APIs' authenticator: the Server API's UserAuthenticator, which
// the Client API answers too, with the address masked.
type UserAuthenticator struct {
	UserAuthenticatorID string       `json:"userAuthenticatorId"`
	UserID              string       `json:"userId"`
	VerificationMethod  vocab.Method `json:"verificationMethod"`
	Email               string       `json:"email,omitempty"`
	PhoneNumber         string       `json:"phoneNumber,omitempty"`
	CreatedAt           string       `json:"createdAt"`
	VerifiedAt          string       `json:"verifiedAt,omitempty"`
	LastVerifiedAt      string       `json:"lastVerifiedAt,omitempty"`
	IsDefault           bool         `json:"isDefault"`
	// A passkey's credential (the SDKs' WebauthnCredential type).
	WebauthnCredential *WebauthnCredential `json:"webauthnCredential,omitempty"`
}

// WebauthnCredential is a passkey authenticator's credential.
type WebauthnCredential struct {
	CredentialID string   `json:"credentialId"` // base64url, without padding
	DeviceID     string   `json:"deviceId"`
	Name         string   `json:"name"`
	AAGUID       string   `json:"aaguid,omitempty"`
	Transports   []string `json:"transports,omitempty"`
}

// Authenticator is a's answer, with its passkey's credential when p is not nil, and its
// email or phone number masked when masked is true.
func Authenticator(a state.Authenticator, p *state.Passkey, masked bool) UserAuthenticator {
	j := UserAuthenticator{UserAuthenticatorID: a.ID, UserID: a.UserID, VerificationMethod: a.Method, Email: a.Email, PhoneNumber: a.PhoneNumber,
		CreatedAt: vocab.FormatTime(a.CreatedAt), VerifiedAt: vocab.FormatOptionalTime(a.VerifiedAt), LastVerifiedAt: vocab.FormatOptionalTime(a.LastVerifiedAt), IsDefault: a.IsDefault}
	if masked {
		j.Email, j.PhoneNumber = vocab.MaskEmail(a.Email), vocab.MaskPhone(a.PhoneNumber)
	}
	if p != nil {
		j.WebauthnCredential = &WebauthnCredential{CredentialID: base64.RawURLEncoding.EncodeToString(p.CredentialID), Name: p.Name,
			AAGUID: p.AAGUID, Transports: p.Transports}
	}
	return j
}

// Authenticators is the list answer of a user's authenticators, passkeys by authenticator id.
func Authenticators(auths []state.Authenticator, passkeys map[string]state.Passkey, masked bool) []UserAuthenticator {
	out := make([]UserAuthenticator, 0, len(auths))
	for _, au := range auths {
		var p *state.Passkey
		if pk, ok := passkeys[au.ID]; ok {
			p = &pk
		}
		out = append(out, Authenticator(au, p, masked))
	}
	return out
}
