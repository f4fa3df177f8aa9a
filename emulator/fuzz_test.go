package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzEndpoints are the JSON endpoints that take a body.
var fuzzEndpoints = []struct{ method, path string }{
	{"POST", "/v1/challenge"},
	{"POST", "/v1/verify"},
	{"POST", "/v1/claim"},
	{"POST", "/v1/validate"},
	{"POST", "/v1/users/fuzz-user/actions/withdrawal"},
	{"PATCH", "/v1/users/fuzz-user"},
	{"POST", "/v1/users/fuzz-user/authenticators"},
	{"PATCH", "/v1/users/fuzz-user/actions/withdrawal/fuzz-key"},
}

func FuzzAPIBodies(f *testing.F) {
	env := newEnv(f)
	env.apiOK("POST", "/v1/users/fuzz-user/actions/withdrawal", map[string]any{"idempotencyKey": "fuzz-key"})
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `1`, `{"a":`, `{}{}`, "\xff\xfe", `{"verificationMethod":"EMAIL_OTP","action":"signIn","email":"f@example.com"}`,
		`{"verificationMethod":"SMS","action":"signIn","phoneNumber":"+447700900123","custom":{"x":[1,{"y":null}]}}`,
		`{"challengeId":"nope","verificationCode":"123456"}`, `{"challengeId":"x","userId":"u","skipVerificationCheck":true}`,
		`{"token":"a.b.c","userId":1}`, `{"custom":{"amount":1e400}}`, `{"custom":{"amount":-1.5,"deep":{"a":{"b":{"c":[]}}}}}`,
		`{"email":null,"phoneNumber":"","custom":null}`, `{"email":"ünïcode@exämple.com","username":"👩‍💻"}`,
		`{"oobChannel":"SMS","phoneNumber":"+15005550006","isDefault":"yes"}`, `{"state":"REVIEW_SUCCEEDED"}`, `{"state":7}`,
		`{"redirectUrl":"javascript:alert(1)"}`, `{"idempotencyKey":"` + strings.Repeat("k", 300) + `"}`,
	}
	for i, s := range seeds {
		for e := range fuzzEndpoints {
			f.Add(uint8((i+e)%len(fuzzEndpoints)), []byte(s))
		}
	}
	h := env.emu.Handler()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := fuzzEndpoints[int(which)%len(fuzzEndpoints)]
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		req.SetBasicAuth(testKey, "")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d %s", ep.method, ep.path, body, rec.Code, rec.Body)
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s %q: not JSON: %s", ep.method, ep.path, body, rec.Body)
		}
		if rec.Code >= 400 {
			var m map[string]any
			json.Unmarshal(rec.Body.Bytes(), &m)
			if m["error"] == nil || m["errorCode"] == nil || m["errorDescription"] == nil || rec.Code == http.StatusOK {
				t.Fatalf("error shape %s", rec.Body)
			}
		}
	})
}
