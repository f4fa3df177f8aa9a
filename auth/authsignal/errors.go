package authsignal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes the Server API documents in errorCode (and error)
// (https://docs.authsignal.com/sdks/server/error-handling). The HTTP status tells the
// rest: an unknown challenge or action is a 404, for instance.
const (
	ErrorCodeInvalidRequest       = "invalid_request"       // an invalid parameter or input (400, and 404 for an unknown id)
	ErrorCodeUnauthorized         = "unauthorized"          // 401: wrong secret key, or the key of another region
	ErrorCodeTooManyRequests      = "too_many_requests"     // 429: a rate limit
	ErrorCodeInvalidConfiguration = "invalid_configuration" // the tenant's set-up cannot serve the request
	ErrorCodeInvalidCredential    = "invalid_credential"    // a credential (e.g. a passkey) that is not the user's
)

// Error is a non-2xx answer from the Server API.
//
// The service answers `{"error": "...", "errorCode": "...", "errorDescription": "..."}`;
// Code is errorCode, or error when errorCode is absent. When the body is not that
// JSON (a proxy's HTML page, say), Code is "" and Description is a short, trimmed
// snippet of the body, or the status text when the body is empty.
type Error struct {
	StatusCode  int    // HTTP status
	Code        string // e.g. "invalid_request"; "" when the body carried none
	Description string // human-readable detail from the service

	op string // "POST /challenge": which call failed (route template, no user data)
}

// Error describes the failure. It never contains the secret key or any token:
// it is built from the status, the route template and the service's description.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("authsignal: ")
	if e.op != "" {
		b.WriteString(e.op)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "status %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// IsCode reports whether err is (or wraps) an *Error with the given Code,
// e.g. IsCode(err, ErrorCodeTooManyRequests).
func IsCode(err error, code string) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// IsStatus reports whether err is (or wraps) an *Error with the given HTTP
// status, e.g. IsStatus(err, http.StatusTooManyRequests).
func IsStatus(err error, status int) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.StatusCode == status
}

// errorBody is the JSON error shape; Message covers gateways that answer
// {"message": "..."} before the request reaches the API.
type errorBody struct {
	Error            string `json:"error"`
	ErrorCode        string `json:"errorCode"`
	ErrorDescription string `json:"errorDescription"`
	Message          string `json:"message"`
}

// newError decodes an error response. secret is scrubbed from anything taken
// from the body, in case a misbehaving proxy echoes the request back.
func newError(op string, status int, body []byte, secret string) *Error {
	e := &Error{StatusCode: status, op: op}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil {
		e.Code = eb.ErrorCode
		if e.Code == "" {
			e.Code = eb.Error
		}
		e.Description = eb.ErrorDescription
		if e.Description == "" {
			e.Description = eb.Message
		}
	} else {
		e.Description = snippet(body)
	}
	if e.Description == "" {
		e.Description = http.StatusText(status)
	}
	e.Code = scrub(e.Code, secret)
	e.Description = scrub(e.Description, secret)
	return e
}

// snippet returns the start of body as one trimmed line of valid UTF-8.
func snippet(body []byte) string {
	if len(body) > maxSnippetBytes {
		body = body[:maxSnippetBytes]
	}
	// Dropping invalid bytes also drops a rune split by the cut above.
	s := strings.ToValidUTF8(string(body), "")
	return strings.Join(strings.Fields(s), " ")
}

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}
