package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseRules(f *testing.F) {
	f.Add([]byte(defaultRulesJSON))
	f.Add([]byte(`{"rules":[{"id":"a","conditions":[{"field":"custom.x","op":"in","value":[1,"a",true]}],"outcome":"BLOCK"}]}`))
	f.Add([]byte(`{"rules":[{"id":"a","actionCode":"*","priority":-3,"outcome":"REVIEW_REQUIRED"}],"defaultOutcome":"BLOCK"}`))
	f.Add([]byte(`{"rules":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"rules":[{"id":"a","conditions":[{"field":"custom.a.b","op":"gt","value":1e308}],"outcome":"ALLOW"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules(data)
		if err != nil {
			if rs != nil {
				t.Fatal("rules returned with an error")
			}
			return
		}
		// Whatever parsed must evaluate without panicking and give a known outcome.
		inputs := []RuleInput{{}, {ActionCode: "withdrawal", Custom: map[string]any{"amount": 5000.0, "a": map[string]any{"b": 2.0}, "x": "a"}}, {ActionCode: "a", Email: "x@y.z", IsNewDevice: true, IsEnrolled: true}}
		for _, in := range inputs {
			if got, _ := rs.Evaluate(in); !ruleOutcomes[got] {
				t.Fatalf("outcome %q", got)
			}
		}
	})
}

func FuzzValidateEmail(f *testing.F) {
	for _, s := range []string{"a@example.com", "A.B+tag@sub.example.co.uk", "", "@", "a@b", "a@@b.com", "Ann <a@b.com>", "a@b.com ", "a@.com", "a@b..com", "a@-b.com", "ünï@example.com", "a\x00@b.com", `"a b"@c.com`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateEmail(s) != nil {
			return
		}
		// Anything accepted is a plain single-@ address with a dotted domain, parseable by net/mail.
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || strings.Contains(domain, "@") || !strings.Contains(domain, ".") || strings.ContainsAny(s, " <>\"") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzValidatePhone(f *testing.F) {
	for _, s := range []string{"+447700900123", "+15005550006", "+1234567", "+123456789012345", "+1234567890123456", "447700900123", "+0123456789", "+44 7700 900123", "", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidatePhone(s) != nil {
			return
		}
		if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' || strings.Trim(s[1:], "0123456789") != "" {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzValidateActionCode(f *testing.F) {
	for _, s := range []string{"withdrawal", "signInWithEmail", "a", strings.Repeat("a", 64), strings.Repeat("a", 65), "", "a b", "a/b", "ä", "a-b_c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateActionCode(s) != nil {
			return
		}
		if len(s) < 1 || len(s) > 64 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Fatalf("accepted %q", s)
		}
	})
}

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
