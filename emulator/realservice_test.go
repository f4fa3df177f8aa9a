package emulator

// Behaviours of the real service that integrators meet when they switch from the emulator,
// each with its source (README.md, "Sources"). Validate, challenges and errors are in
// api_test.go beside the rest of their endpoints.

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestUnenrolledUserIsAllowed(t *testing.T) {
	env := newEnv(t)
	big := map[string]any{"amount": 1500} // the built-in rules challenge it
	tests := []struct {
		name         string
		enrol        bool
		custom       map[string]any
		wantState    string
		wantEnrolled bool
	}{
		// "If a user has no enrolled authenticators, the action will return ALLOW but
		// isEnrolled will be false" (docs: actions-rules/actions/getting-started).
		{"no authenticator", false, big, StateAllow, false},
		{"enrolled", true, big, StateChallengeRequired, true},
		// BLOCK and REVIEW do not need an authenticator.
		{"blocked without one", false, map[string]any{"amount": 20000}, StateBlock, false},
		// The test hook still reaches the pre-built UI's enrolment.
		{"forced", false, map[string]any{"amount": 1500, ForceStateField: StateChallengeRequired}, StateChallengeRequired, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "user-" + string(rune('a'+i))
			if tt.enrol {
				env.enrol(user, user+"@example.com")
			}
			m := env.apiOK("POST", "/v1/users/"+user+"/actions/withdrawal", map[string]any{"custom": tt.custom})
			if m["state"] != tt.wantState || m["isEnrolled"] != tt.wantEnrolled {
				t.Fatalf("track: state %v isEnrolled %v, want %s %v", m["state"], m["isEnrolled"], tt.wantState, tt.wantEnrolled)
			}
			a := env.apiOK("GET", "/v1/users/"+user+"/actions/withdrawal/"+m["idempotencyKey"].(string), nil)
			if a["state"] != tt.wantState {
				t.Fatalf("stored action %v", a)
			}
		})
	}
}

func TestContactPhonesNeedNotBeE164(t *testing.T) {
	env := newEnv(t)
	// The Go SDK's integration test tracks with "1234567890"; the Go and Python ones
	// update a user to "9876543210" and read it back unchanged.
	env.apiOK("POST", "/v1/users/u1/actions/signIn", map[string]any{"phoneNumber": "1234567890"})
	if u := env.apiOK("PATCH", "/v1/users/u1", map[string]any{"phoneNumber": "9876543210"}); u["phoneNumber"] != "9876543210" {
		t.Fatalf("update %v", u)
	}
	if u := env.apiOK("GET", "/v1/users/u1", nil); u["phoneNumber"] != "9876543210" {
		t.Fatalf("get %v", u)
	}
	if q := env.apiOK("GET", "/v1/users?phoneNumber=9876543210", nil); len(q["users"].([]any)) != 1 {
		t.Fatalf("query %v", q)
	}
	// Sending a code still needs E.164.
	for _, tt := range []struct{ name, path string }{{"challenge", "/v1/challenge"}, {"enrol", "/v1/users/u1/authenticators"}} {
		status, m := env.api("POST", tt.path, map[string]any{"verificationMethod": "SMS", "action": "signIn", "phoneNumber": "9876543210"})
		wantError(t, status, m, 400, "invalid_request")
		if !strings.Contains(m["errorDescription"].(string), "E.164") {
			t.Fatalf("%s: %v", tt.name, m)
		}
	}
}

func TestUpdateUserFields(t *testing.T) {
	env := newEnv(t)
	env.enrol("u1", "old@example.com")
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+447700900001"})
	body := map[string]any{"email": "new@example.com", "emailVerified": true, "phoneNumber": "+447700900002", "phoneNumberVerified": false,
		"username": "ann", "displayName": "Ann A", "custom": map[string]any{"foo": "bar"}}
	// PATCH, and the POST the Ruby and Java SDKs send: the same answer (the Node SDK's
	// integration test asserts the verified flags in it).
	for _, method := range []string{"PATCH", "POST"} {
		u := env.apiOK(method, "/v1/users/u1", body)
		if u["userId"] != "u1" || u["email"] != "new@example.com" || u["emailVerified"] != true || u["phoneNumber"] != "+447700900002" ||
			u["phoneNumberVerified"] != false || u["username"] != "ann" || u["displayName"] != "Ann A" || u["custom"].(map[string]any)["foo"] != "bar" {
			t.Fatalf("%s: %v", method, u)
		}
	}
	// A verified new email moves the email OTP authenticator; an unverified phone leaves SMS alone.
	auths := env.apiList("GET", "/v1/users/u1/authenticators")
	if auths[0]["email"] != "new@example.com" || auths[1]["phoneNumber"] != "+447700900001" {
		t.Fatalf("authenticators %v", auths)
	}
	env.apiOK("PATCH", "/v1/users/u1", map[string]any{"phoneNumber": "+447700900002", "phoneNumberVerified": true, "defaultVerificationMethod": "SMS"})
	if u := env.apiOK("GET", "/v1/users/u1", nil); u["defaultVerificationMethod"] != "SMS" {
		t.Fatalf("default %v", u)
	}
	if auths := env.apiList("GET", "/v1/users/u1/authenticators"); auths[1]["phoneNumber"] != "+447700900002" || auths[1]["isDefault"] != true {
		t.Fatalf("authenticators %v", auths)
	}
	status, m := env.api("PATCH", "/v1/users/u1", map[string]any{"defaultVerificationMethod": "WHATSAPP"})
	wantError(t, status, m, 400, "invalid_request")
}

func TestDeleteUserKeepsActionsUnlessAsked(t *testing.T) {
	env := newEnv(t)
	for _, u := range []string{"keep", "drop"} {
		env.enrol(u, u+"@example.com")
		env.apiOK("POST", "/v1/users/"+u+"/actions/withdrawal", map[string]any{"idempotencyKey": "k", "custom": map[string]any{"amount": 5}})
	}
	// "If true, the user's action data will also be deleted" (docs: delete-user).
	env.apiOK("DELETE", "/v1/users/keep", nil)
	env.apiOK("DELETE", "/v1/users/drop?actions=true", nil)
	for _, u := range []string{"keep", "drop"} {
		if got := env.apiOK("GET", "/v1/users/"+u, nil); got["isEnrolled"] != false || got["email"] != nil {
			t.Fatalf("%s after delete: %v", u, got)
		}
		if q := env.apiOK("GET", "/v1/users?email="+u+"@example.com", nil); len(q["users"].([]any)) != 0 {
			t.Fatalf("%s still found by email: %v", u, q)
		}
	}
	if a := env.apiOK("GET", "/v1/users/keep/actions/withdrawal/k", nil); a["state"] != StateAllow {
		t.Fatalf("kept action %v", a)
	}
	status, m := env.api("GET", "/v1/users/drop/actions/withdrawal/k", nil)
	wantError(t, status, m, 404, "invalid_request")
	status, m = env.api("DELETE", "/v1/users/keep?actions=maybe", nil)
	wantError(t, status, m, 400, "invalid_request")
}

func TestQueryUsers(t *testing.T) {
	env := newEnv(t)
	env.enrol("u1", "ann@example.com")
	env.apiOK("PATCH", "/v1/users/u1", map[string]any{"username": "ann", "displayName": "Ann"})
	tr := env.apiOK("POST", "/v1/users/u1/actions/signIn", map[string]any{})
	// The item fields of the SDKs' types and of the docs' example.
	for _, q := range []string{"email=ann@example.com", "username=ann", "token=" + tr["token"].(string)} {
		resp := env.apiOK("GET", "/v1/users?"+q, nil)
		users := resp["users"].([]any)
		if len(users) != 1 {
			t.Fatalf("%s: %v", q, resp)
		}
		u := users[0].(map[string]any)
		if u["userId"] != "u1" || u["email"] != "ann@example.com" || u["emailVerified"] != true || u["phoneNumberVerified"] != false ||
			u["username"] != "ann" || u["displayName"] != "Ann" || u["isEnrolled"] != true || u["createdAt"] == nil ||
			len(u["enrolledVerificationMethods"].([]any)) != 1 {
			t.Fatalf("%s: item %v", q, u)
		}
		if p, _ := resp["tokenPayload"].(map[string]any); strings.HasPrefix(q, "token=") != (p != nil) || (p != nil && p["sub"] != "u1") {
			t.Fatalf("%s: tokenPayload %v", q, resp["tokenPayload"])
		}
	}
	for _, q := range []string{"", "limit=5", "token=garbage"} {
		status, m := env.api("GET", "/v1/users?"+q, nil)
		wantError(t, status, m, 400, "invalid_request")
	}
}

func TestTokenClaimsLayout(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.TenantID = "tenant-42" })
	tr := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"idempotencyKey": "k1", "username": "ann", "scope": "add:authenticators"})
	parts := strings.Split(tr["token"].(string), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %v", tr["token"])
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	// The TokenPayload of Authsignal's client SDKs: registered claims at the top, the
	// action's details under "other".
	other, _ := claims["other"].(map[string]any)
	if claims["sub"] != "u1" || claims["aud"] != "tenant-42" || claims["iat"] == nil || claims["exp"] == nil ||
		claims["scope"] != "read:authenticators add:authenticators" || other == nil {
		t.Fatalf("claims %s", raw)
	}
	want := map[string]any{"tenantId": "tenant-42", "publishableKey": "tenant-42", "userId": "u1", "actionCode": "withdrawal", "idempotencyKey": "k1", "username": "ann"}
	for k, v := range want {
		if other[k] != v {
			t.Fatalf("other.%s = %v, want %v (%s)", k, other[k], v, raw)
		}
	}
	if _, flat := claims["actionCode"]; flat {
		t.Fatalf("the action code belongs under other: %s", raw)
	}
}
