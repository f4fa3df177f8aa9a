package authsignal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode string
		wantDesc string
	}{
		{"errorCode wins over error", 401, `{"error":"Unauthorized","errorCode":"unauthorized","errorDescription":"Check your key."}`, "unauthorized", "Check your key."},
		{"error alone", 400, `{"error":"invalid_request","errorDescription":"email is invalid"}`, "invalid_request", "email is invalid"},
		{"errorCode alone", 429, `{"errorCode":"too_many_requests"}`, "too_many_requests", "Too Many Requests"},
		{"gateway message", 403, `{"message":"Forbidden"}`, "", "Forbidden"},
		{"HTML body", 502, "<html>\n  <body>Bad   gateway</body>\n</html>\n", "", "<html> <body>Bad gateway</body> </html>"},
		{"plain text", 503, "upstream connect error\n", "", "upstream connect error"},
		{"empty body", 500, "", "", "Internal Server Error"},
		{"long body is cut", 500, strings.Repeat("é", 300), "", strings.Repeat("é", 100)},
		{"secret echoed back is scrubbed", 400, "bad key " + testSecret, "", "bad key [redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, tt.status, tt.body)
			_, err := rec.client(WithMaxRetries(0)).GetUser(context.Background(), "u1")
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Code != tt.wantCode || apiErr.Description != tt.wantDesc {
				t.Errorf("got {%d %q %q}, want {%d %q %q}", apiErr.StatusCode, apiErr.Code, apiErr.Description, tt.status, tt.wantCode, tt.wantDesc)
			}
			if len(apiErr.Description) > maxSnippetBytes {
				t.Errorf("description is %d bytes, want at most %d", len(apiErr.Description), maxSnippetBytes)
			}
			msg := err.Error()
			if strings.Contains(msg, testSecret) {
				t.Errorf("Error() leaks the secret: %s", msg)
			}
			if !strings.Contains(msg, "GET /users/{userId}") || !strings.Contains(msg, fmt.Sprint(tt.status)) {
				t.Errorf("Error() = %q, want the call and the status", msg)
			}
		})
	}
}

func TestErrorStringHasNoTokens(t *testing.T) {
	const token = "eyJhbGciOiJIUzI1NiJ9.payload.signature"
	rec := newRecorder(t, http.StatusBadRequest, `{"error":"invalid_request","errorDescription":"The token is invalid."}`)
	_, err := rec.client().Validate(context.Background(), ValidateRequest{Token: token, UserID: "u1"})
	if err == nil {
		t.Fatal("want an error")
	}
	if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, testSecret) {
		t.Errorf("Error() leaks a credential: %s", msg)
	}
	want := "authsignal: POST /validate: status 400 invalid_request: The token is invalid."
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestIsCodeAndIsStatus(t *testing.T) {
	base := &Error{StatusCode: 429, Code: ErrorCodeTooManyRequests}
	wrapped := fmt.Errorf("send code: %w", base)
	tests := []struct {
		name       string
		err        error
		code       string
		status     int
		wantCode   bool
		wantStatus bool
	}{
		{"direct", base, "too_many_requests", 429, true, true},
		{"wrapped", wrapped, "too_many_requests", 429, true, true},
		{"other code and status", wrapped, "invalid_request", 400, false, false},
		{"nil", nil, "", 0, false, false},
		{"not an *Error", errors.New("boom"), "", 0, false, false},
		{"empty code matches a body without one", &Error{StatusCode: 502}, "", 502, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsCode(tt.err, tt.code); got != tt.wantCode {
				t.Errorf("IsCode = %v, want %v", got, tt.wantCode)
			}
			if got := IsStatus(tt.err, tt.status); got != tt.wantStatus {
				t.Errorf("IsStatus = %v, want %v", got, tt.wantStatus)
			}
		})
	}
}

func TestErrorStringWithoutOp(t *testing.T) {
	e := &Error{StatusCode: 404, Code: "not_found", Description: "No such user"}
	if got, want := e.Error(), "authsignal: status 404 not_found: No such user"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
