package emulator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/token"
)

func TestAuthAndRouting(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		name       string
		method     string
		path       string
		key        string
		wantStatus int
		wantCode   string
	}{
		{"no key", "GET", "/v1/users/u1", "", 401, "unauthorized"},
		{"wrong key", "GET", "/v1/users/u1", "nope", 401, "unauthorized"},
		{"key prefix", "GET", "/v1/users/u1", testKey[:5], 401, "unauthorized"},
		{"unknown route is 401 first", "GET", "/v1/nothing", "", 401, "unauthorized"},
		{"unknown route", "GET", "/v1/nothing", testKey, 404, "invalid_request"},
		{"sessions need the key", "POST", "/v1/sessions", "", 401, "unauthorized"},
		{"the JWKS of another tenant", "GET", "/v1/client/public/nobody/.well-known/jwks", "", 404, "invalid_request"},
		{"wrong method", "PUT", "/v1/users/u1", testKey, 405, "invalid_request"},
		{"wrong method on challenge", "GET", "/v1/challenge", testKey, 405, "invalid_request"},
		{"unknown action", "GET", "/v1/users/u1/actions/withdrawal/nope", testKey, 404, "invalid_request"},
		{"unknown route outside /v1", "GET", "/nothing", "", 404, "invalid_request"},
		{"unknown tooling route", "POST", "/emulator/nothing", "", 404, "invalid_request"},
		{"wrong method on a page", "DELETE", "/outbox", "", 405, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw, h := env.do(tt.method, tt.path, nil, tt.key)
			if h.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", h.Get("Content-Type"))
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("body not JSON: %s", raw)
			}
			wantError(t, status, m, tt.wantStatus, tt.wantCode)
			if tt.wantStatus == 401 && m["errorDescription"] != httpjson.UnauthorizedDescription {
				t.Fatalf("401 description %q", m["errorDescription"])
			}
		})
	}
	status, raw, _ := env.do("GET", "/healthz", nil, "")
	if status != 200 || string(raw) != "ok" {
		t.Fatalf("healthz: %d %q", status, raw)
	}
}

func TestBodyErrors(t *testing.T) {
	env := newEnv(t)
	huge := `{"action":"` + strings.Repeat("a", httpjson.MaxBodyBytes) + `"}`
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		{"empty body", "/v1/challenge", "", 400, "invalid_request", "empty"},
		{"malformed", "/v1/challenge", `{"action":`, 400, "invalid_request", "not valid JSON"},
		{"syntax", "/v1/verify", `{action}`, 400, "invalid_request", "not valid JSON"},
		{"array", "/v1/verify", `[]`, 400, "invalid_request", "JSON object"},
		{"string", "/v1/claim", `"x"`, 400, "invalid_request", "JSON object"},
		{"two objects", "/v1/validate", `{}{}`, 400, "invalid_request", "single JSON object"},
		{"wrong type", "/v1/challenge", `{"verificationMethod":5}`, 400, "invalid_request", `"verificationMethod" must be of type string`},
		{"wrong type custom", "/v1/challenge", `{"verificationMethod":"SMS","custom":"x"}`, 400, "invalid_request", `"custom" must be of type object`},
		{"wrong bool", "/v1/claim", `{"challengeId":"c","userId":"u","skipVerificationCheck":"yes"}`, 400, "invalid_request", "boolean"},
		{"huge", "/v1/challenge", huge, 413, "invalid_request", "larger than"},
		{"track wrong type", "/v1/users/u1/actions/withdrawal", `{"custom":[1]}`, 400, "invalid_request", "object"},
		{"validate null token", "/v1/validate", `{"token":null}`, 400, "invalid_request", "token is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := env.api("POST", tt.path, tt.body)
			wantError(t, status, m, tt.wantStatus, tt.wantCode)
			if !strings.Contains(m["errorDescription"].(string), tt.wantDesc) {
				t.Fatalf("description %q lacks %q", m["errorDescription"], tt.wantDesc)
			}
		})
	}
	// Unknown fields are ignored (SDK forward compatibility).
	m := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signInWithSms", "phoneNumber": "+447700900123", "somethingNew": map[string]any{"x": 1}})
	if m["challengeId"] == "" {
		t.Fatal("no challengeId")
	}
}

func TestChallengeValidation(t *testing.T) {
	env := newEnv(t)
	base := func(kv ...any) map[string]any {
		m := map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": "ann@example.com"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name     string
		body     map[string]any
		wantDesc string
	}{
		{"no method", base("verificationMethod", nil), "verificationMethod is required"},
		{"unknown method", base("verificationMethod", "CARRIER_PIGEON"), "not a known verification method"},
		{"unsupported method", base("verificationMethod", "PASSKEY"), "not supported"},
		{"no action", base("action", nil), "action is required"},
		{"bad action", base("action", "sign in"), "action"},
		{"long action", base("action", strings.Repeat("a", 65)), "action"},
		{"no email", base("email", nil), "email is required"},
		{"bad email", base("email", "not-an-email"), "email is not valid"},
		{"display name email", base("email", "Ann <ann@example.com>"), "email is not valid"},
		{"dotless domain", base("email", "ann@localhost"), "email is not valid"},
		{"sms no phone", base("verificationMethod", "SMS"), "phoneNumber is required"},
		{"sms bad phone", base("verificationMethod", "SMS", "phoneNumber", "07700900123"), "E.164"},
		{"whatsapp short phone", base("verificationMethod", "WHATSAPP", "phoneNumber", "+12345"), "E.164"},
		{"bad smsChannel", base("verificationMethod", "SMS", "phoneNumber", "+447700900123", "smsChannel", "PIGEON"), "smsChannel"},
		{"bad userId", base("userId", " padded "), "userId"},
		{"long locale", base("locale", strings.Repeat("x", 36)), "locale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := env.api("POST", "/v1/challenge", tt.body)
			wantError(t, status, m, 400, "invalid_request")
			if !strings.Contains(m["errorDescription"].(string), tt.wantDesc) {
				t.Fatalf("description %q lacks %q", m["errorDescription"], tt.wantDesc)
			}
		})
	}
	if msgs := env.messages(""); len(msgs) != 0 {
		t.Fatalf("invalid requests sent %d messages", len(msgs))
	}
}

func TestChallengeVerifyClaim(t *testing.T) {
	env := newEnv(t)
	// Email: challenge, verify, claim.
	resp := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": "Ann@Example.com", "locale": "en-GB"})
	id := resp["challengeId"].(string)
	if resp["idempotencyKey"] == "" || resp["expiresAt"].(float64) != float64(env.clock.Now().Add(DefaultLimits().CodeTTL).Unix()) {
		t.Fatalf("challenge response %v", resp)
	}
	msgs := env.messages("ann@example.com")
	if len(msgs) != 1 || msgs[0].Channel != "EMAIL" || msgs[0].Subject == "" || !strings.Contains(msgs[0].Body, msgs[0].Code) || len(msgs[0].Code) != 6 {
		t.Fatalf("outbox %+v", msgs)
	}
	// Not completed yet: no verificationMethod ("can be used to determine if the challenge
	// has been successfully completed", docs: get-challenge).
	got := env.apiOK("GET", "/v1/challenges?challengeId="+id, nil)
	if got["challengeId"] != id || got["verificationMethod"] != nil || got["email"] != "ann@example.com" || got["action"] != "signInWithEmail" {
		t.Fatalf("get challenge %v", got)
	}
	// Claim before verify is refused.
	status, m := env.api("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": "user-1"})
	wantError(t, status, m, 400, "invalid_request")

	v := env.verify(id, msgs[0].Code)
	if v["isVerified"] != true || v["email"] != "ann@example.com" || v["verificationMethod"] != "EMAIL_OTP" || v["failureReason"] != nil {
		t.Fatalf("verify %v", v)
	}
	// Completed: the lookup now names the method, by GET and by the POST form of .NET and Java.
	if got := env.apiOK("GET", "/v1/challenges?challengeId="+id, nil); got["verificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("get verified challenge %v", got)
	}
	if got := env.apiOK("POST", "/v1/challenges", map[string]any{"challengeId": id}); got["challengeId"] != id || got["verificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("POST /v1/challenges %v", got)
	}
	c := env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": "user-1"})
	if c["token"] == "" || c["verificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("claim %v", c)
	}
	// The claim token validates to the sign-in action, succeeded.
	val := env.apiOK("POST", "/v1/validate", map[string]any{"token": c["token"]})
	if val["isValid"] != true || val["state"] != "CHALLENGE_SUCCEEDED" || val["action"] != "signInWithEmail" || val["actionCode"] != "signInWithEmail" || val["userId"] != "user-1" {
		t.Fatalf("validate claim token %v", val)
	}
	// Claim binds; it enrols nothing (the docs do not say it does): the app must enrol.
	user := env.apiOK("GET", "/v1/users/user-1", nil)
	if user["isEnrolled"] != false || len(user["enrolledVerificationMethods"].([]any)) != 0 {
		t.Fatalf("user after claim %v", user)
	}
	if auths := env.apiList("GET", "/v1/users/user-1/authenticators"); len(auths) != 0 {
		t.Fatalf("authenticators after claim %v", auths)
	}
	// The claimed sign-in action keeps its idempotencyKey: tracking with it is refused and
	// changes nothing.
	key := resp["idempotencyKey"].(string)
	status, m = env.api("POST", "/v1/users/user-1/actions/signInWithEmail", map[string]any{"idempotencyKey": key})
	wantError(t, status, m, 400, "invalid_request")
	if a := env.apiOK("GET", "/v1/users/user-1/actions/signInWithEmail/"+key, nil); a["state"] != "CHALLENGE_SUCCEEDED" {
		t.Fatalf("the claimed action after a track with its key: %v", a)
	}
	// Claiming again by the same user is fine; another user is refused.
	env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": "user-1"})
	status, m = env.api("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": "user-2"})
	wantError(t, status, m, 400, "invalid_request")
	// A verified challenge cannot be re-sent.
	status, m = env.api("POST", "/v1/challenge", map[string]any{"challengeId": id})
	wantError(t, status, m, 400, "invalid_request")

	// SMS via the WhatsApp channel, claimed with skipVerificationCheck.
	resp = env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "smsChannel": "WHATSAPP", "action": "signInWithSms", "phoneNumber": "+447700900123", "locale": "es-ES"})
	wa := env.messages("+447700900123")
	if len(wa) != 1 || wa[0].Channel != "WHATSAPP" || !strings.Contains(wa[0].Body, "tu código") {
		t.Fatalf("whatsapp outbox %+v", wa)
	}
	env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": resp["challengeId"], "userId": "user-2", "skipVerificationCheck": true})
	if a := env.apiList("GET", "/v1/users/user-2/actions"); len(a) != 1 || a[0]["state"] != StateChallengeRequired {
		t.Fatalf("an unverified claim records its action as still challenged: %v", a)
	}

	// Errors.
	tests := []struct {
		name, method, path string
		body               any
		wantStatus         int
		wantCode           string
	}{
		{"verify unknown", "POST", "/v1/verify", map[string]any{"challengeId": "nope", "verificationCode": "123456"}, 404, "invalid_request"},
		{"verify no id", "POST", "/v1/verify", map[string]any{"verificationCode": "123456"}, 400, "invalid_request"},
		{"verify no code", "POST", "/v1/verify", map[string]any{"challengeId": id}, 400, "invalid_request"},
		{"claim unknown", "POST", "/v1/claim", map[string]any{"challengeId": "nope", "userId": "u"}, 404, "invalid_request"},
		{"claim no user", "POST", "/v1/claim", map[string]any{"challengeId": id}, 400, "invalid_request"},
		{"resend unknown", "POST", "/v1/challenge", map[string]any{"challengeId": "nope"}, 404, "invalid_request"},
		{"get challenge no query", "GET", "/v1/challenges", nil, 400, "invalid_request"},
		{"get challenge bad method", "GET", "/v1/challenges?userId=u&verificationMethod=X", nil, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := env.api(tt.method, tt.path, tt.body)
			wantError(t, status, m, tt.wantStatus, tt.wantCode)
		})
	}
	// No match is an empty answer, as Authsignal's own examples expect (they read challengeId unchecked).
	if got := env.apiOK("GET", "/v1/challenges?challengeId=nope", nil); len(got) != 0 {
		t.Fatalf("get unknown challenge %v", got)
	}
	// Lookup by user.
	if got := env.apiOK("GET", "/v1/challenges?userId=user-2&action=signInWithSms", nil); got["smsChannel"] != "WHATSAPP" {
		t.Fatalf("get by user %v", got)
	}
}

func TestChallengeForKnownUserRecordsAction(t *testing.T) {
	env := newEnv(t)
	resp := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "addPhone", "phoneNumber": "+15005550006", "userId": "u7", "idempotencyKey": "k7"})
	a := env.apiOK("GET", "/v1/users/u7/actions/addPhone/k7", nil)
	if a["state"] != "CHALLENGE_REQUIRED" {
		t.Fatalf("action %v", a)
	}
	env.verify(resp["challengeId"].(string), env.lastCode("+15005550006"))
	if a := env.apiOK("GET", "/v1/users/u7/actions/addPhone/k7", nil); a["state"] != "CHALLENGE_SUCCEEDED" || a["verificationMethod"] != "SMS" {
		t.Fatalf("action after verify %v", a)
	}
	status, m := env.api("POST", "/v1/claim", map[string]any{"challengeId": resp["challengeId"], "userId": "someone-else"})
	wantError(t, status, m, 400, "invalid_request")
}

func TestUsersAndAuthenticators(t *testing.T) {
	env := newEnv(t)
	// PATCH creates and updates; omitted fields stay.
	u := env.apiOK("PATCH", "/v1/users/u1", map[string]any{"email": "Bea@Example.com", "username": "bea", "custom": map[string]any{"tier": "gold"}})
	if u["userId"] != "u1" || u["email"] != "bea@example.com" || u["username"] != "bea" || u["custom"].(map[string]any)["tier"] != "gold" {
		t.Fatalf("patch %v", u)
	}
	u = env.apiOK("PATCH", "/v1/users/u1", map[string]any{"displayName": "Bea B", "phoneNumber": "+447700900999", "phoneNumberVerified": true})
	if u["email"] != "bea@example.com" || u["displayName"] != "Bea B" || u["phoneNumber"] != "+447700900999" {
		t.Fatalf("patch 2 %v", u)
	}
	got := env.apiOK("GET", "/v1/users/u1", nil)
	if got["isEnrolled"] != false || got["phoneNumberVerified"] != true || got["emailVerified"] != false || len(got["allowedVerificationMethods"].([]any)) != 6 {
		t.Fatalf("get %v", got)
	}
	for _, tt := range []struct {
		name string
		body any
	}{
		{"bad email", map[string]any{"email": "x"}},
		{"phone too long", map[string]any{"phoneNumber": strings.Repeat("1", 33)}},
		{"phone with a control character", map[string]any{"phoneNumber": "+4477\n00900999"}},
		{"custom not object", map[string]any{"custom": []int{1}}},
		{"emailVerified not bool", map[string]any{"emailVerified": "yes"}},
		{"empty body", ""},
	} {
		t.Run("patch "+tt.name, func(t *testing.T) {
			status, m := env.api("PATCH", "/v1/users/u1", tt.body)
			wantError(t, status, m, 400, "invalid_request")
		})
	}

	// Enrol: new form and the older oobChannel form.
	a1 := env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+447700900999"})
	auth1 := a1["authenticator"].(map[string]any)
	if auth1["verificationMethod"] != "SMS" || auth1["userId"] != "u1" || auth1["isDefault"] != true || auth1["userAuthenticatorId"] == "" {
		t.Fatalf("enrol %v", a1)
	}
	a2 := env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"oobChannel": "EMAIL_OTP", "email": "bea@example.com", "isDefault": true})
	auth2 := a2["authenticator"].(map[string]any)
	if auth2["verificationMethod"] != "EMAIL_OTP" || auth2["isDefault"] != true {
		t.Fatalf("enrol oob %v", a2)
	}
	// Same again returns the existing one.
	again := env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+447700900999"})
	if again["authenticator"].(map[string]any)["userAuthenticatorId"] != auth1["userAuthenticatorId"] {
		t.Fatal("duplicate enrolment created a new authenticator")
	}
	got = env.apiOK("GET", "/v1/users/u1", nil)
	if got["isEnrolled"] != true || got["defaultVerificationMethod"] != "EMAIL_OTP" || len(got["enrolledVerificationMethods"].([]any)) != 2 {
		t.Fatalf("enrolled user %v", got)
	}
	for _, tt := range []struct {
		name string
		body any
	}{
		{"no method", map[string]any{"email": "a@b.co"}},
		{"unsupported", map[string]any{"verificationMethod": "PASSKEY"}},
		{"email missing", map[string]any{"verificationMethod": "EMAIL_OTP"}},
		{"phone invalid", map[string]any{"verificationMethod": "WHATSAPP", "phoneNumber": "+0123"}},
	} {
		t.Run("enrol "+tt.name, func(t *testing.T) {
			status, m := env.api("POST", "/v1/users/u1/authenticators", tt.body)
			wantError(t, status, m, 400, "invalid_request")
		})
	}
	// Delete the default: the other one becomes default.
	env.apiOK("DELETE", "/v1/users/u1/authenticators/"+auth2["userAuthenticatorId"].(string), nil)
	auths := env.apiList("GET", "/v1/users/u1/authenticators")
	if len(auths) != 1 || auths[0]["isDefault"] != true {
		t.Fatalf("after delete %v", auths)
	}
	status, m := env.api("DELETE", "/v1/users/u1/authenticators/nope", nil)
	wantError(t, status, m, 404, "invalid_request")
	if ghost := env.apiList("GET", "/v1/users/ghost/authenticators"); len(ghost) != 0 {
		t.Fatalf("authenticators of an unknown user: %v", ghost)
	}
	if ghost := env.apiOK("GET", "/v1/users/ghost", nil); ghost["isEnrolled"] != false {
		t.Fatalf("unknown user: %v, want isEnrolled false", ghost)
	}

	// Query users.
	env.apiOK("PATCH", "/v1/users/u2", map[string]any{"email": "cy@example.com"})
	env.apiOK("PATCH", "/v1/users/u3", map[string]any{"username": "dee"})
	q := env.apiOK("GET", "/v1/users?email=BEA@example.com", nil)
	if users := q["users"].([]any); len(users) != 1 || users[0].(map[string]any)["userId"] != "u1" {
		t.Fatalf("query by email %v", q)
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		env.apiOK("PATCH", "/v1/users/"+id, map[string]any{"email": "shared@example.com"})
	}
	q = env.apiOK("GET", "/v1/users?email=shared@example.com&limit=2", nil)
	if users := q["users"].([]any); len(users) != 2 || q["lastEvaluatedUserId"] != "s2" {
		t.Fatalf("page 1 %v", q)
	}
	q = env.apiOK("GET", "/v1/users?email=shared@example.com&limit=2&lastEvaluatedUserId=s2", nil)
	if users := q["users"].([]any); len(users) != 1 || q["lastEvaluatedUserId"] != nil {
		t.Fatalf("page 2 %v", q)
	}
	status, m = env.api("GET", "/v1/users?email=shared@example.com&limit=abc", nil)
	wantError(t, status, m, 400, "invalid_request")

	// Delete user: gone, with its authenticators.
	if d := env.apiOK("DELETE", "/v1/users/u1", nil); d["success"] != true {
		t.Fatalf("delete %v", d)
	}
	if u := env.apiOK("GET", "/v1/users/u1", nil); u["isEnrolled"] != false || u["email"] != nil {
		t.Fatalf("deleted user still known: %v", u)
	}
	if auths := env.apiList("GET", "/v1/users/u1/authenticators"); len(auths) != 0 {
		t.Fatalf("deleted user's authenticators remain: %v", auths)
	}
	// Deleting again (or a user never seen) succeeds: GET answers any user id, so does DELETE.
	if d := env.apiOK("DELETE", "/v1/users/u1", nil); d["success"] != true {
		t.Fatalf("delete again %v", d)
	}
}

func TestTrackAndActions(t *testing.T) {
	env := newEnv(t)
	env.enrol("u1", "u1@example.com")
	env.enrol("u2", "u2@example.com")
	track := func(user, action string, body map[string]any) map[string]any {
		t.Helper()
		return env.apiOK("POST", "/v1/users/"+user+"/actions/"+action, body)
	}
	tests := []struct {
		name      string
		action    string
		body      map[string]any
		wantState string
		wantRule  string
	}{
		{"small withdrawal", "withdrawal", map[string]any{"custom": map[string]any{"amount": 50.5}}, "ALLOW", ""},
		{"threshold is allowed", "withdrawal", map[string]any{"custom": map[string]any{"amount": 1000}}, "ALLOW", ""},
		{"medium withdrawal", "withdrawal", map[string]any{"custom": map[string]any{"amount": 1500.25}}, "CHALLENGE_REQUIRED", "challenge-withdrawal"},
		{"large withdrawal", "withdrawal", map[string]any{"custom": map[string]any{"amount": 10000.01}}, "BLOCK", "block-large-withdrawal"},
		{"string amount does not match", "withdrawal", map[string]any{"custom": map[string]any{"amount": "20000"}}, "ALLOW", ""},
		{"other action", "signIn", map[string]any{"custom": map[string]any{"amount": 20000}}, "ALLOW", ""},
		{"empty body", "withdrawal", nil, "ALLOW", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if tt.body == nil {
				m = env.apiOK("POST", "/v1/users/u1/actions/"+tt.action, "")
			} else {
				m = track("u1", tt.action, tt.body)
			}
			if m["state"] != tt.wantState {
				t.Fatalf("state %v, want %s", m["state"], tt.wantState)
			}
			ids := m["ruleIds"].([]any)
			if (tt.wantRule == "" && len(ids) != 0) || (tt.wantRule != "" && (len(ids) != 1 || ids[0] != tt.wantRule)) {
				t.Fatalf("ruleIds %v, want %q", ids, tt.wantRule)
			}
			for _, k := range []string{"idempotencyKey", "url", "token"} {
				if s, _ := m[k].(string); s == "" {
					t.Fatalf("%s missing: %v", k, m)
				}
			}
			if !strings.HasPrefix(m["url"].(string), env.srv.URL+"/challenge?token=") {
				t.Fatalf("url %v", m["url"])
			}
			for _, k := range []string{"isEnrolled", "enrolledVerificationMethods", "allowedVerificationMethods"} {
				if _, ok := m[k]; !ok {
					t.Fatalf("%s missing: %v", k, m)
				}
			}
		})
	}

	// Idempotency: same key, same response, no re-evaluation.
	first := track("u2", "withdrawal", map[string]any{"idempotencyKey": "w-1", "custom": map[string]any{"amount": 1500}, "redirectUrl": "https://app.example/cb", "ipAddress": "198.51.100.1", "userAgent": "UA/1", "deviceId": "dev-1"})
	second := track("u2", "withdrawal", map[string]any{"idempotencyKey": "w-1", "custom": map[string]any{"amount": 5}})
	if first["token"] != second["token"] || second["state"] != "CHALLENGE_REQUIRED" || first["idempotencyKey"] != "w-1" {
		t.Fatalf("idempotency: %v vs %v", first, second)
	}
	a := env.apiOK("GET", "/v1/users/u2/actions/withdrawal/w-1", nil)
	rules := a["rules"].([]any)
	if a["state"] != "CHALLENGE_REQUIRED" || a["createdAt"] == "" || a["stateUpdatedAt"] == "" || len(rules) != 1 || rules[0].(map[string]any)["ruleId"] != "challenge-withdrawal" || rules[0].(map[string]any)["name"] == "" {
		t.Fatalf("get action %v", a)
	}
	if _, ok := a["output"]; !ok {
		t.Fatalf("output missing %v", a)
	}
	// PATCH.
	a = env.apiOK("PATCH", "/v1/users/u2/actions/withdrawal/w-1", map[string]any{"state": "REVIEW_SUCCEEDED"})
	if a["state"] != "REVIEW_SUCCEEDED" {
		t.Fatalf("patch %v", a)
	}
	// Query.
	track("u2", "signIn", map[string]any{"idempotencyKey": "s-1"})
	list := env.apiList("GET", "/v1/users/u2/actions")
	if len(list) != 2 || list[0]["actionCode"] != "signIn" {
		t.Fatalf("query all %v", list)
	}
	list = env.apiList("GET", "/v1/users/u2/actions?codes=withdrawal&state=REVIEW_SUCCEEDED&fromDate=2025-01-01T00:00:00Z")
	if len(list) != 1 || list[0]["idempotencyKey"] != "w-1" || list[0]["ipAddress"] != "198.51.100.1" || list[0]["userAgent"] != "UA/1" {
		t.Fatalf("query filtered %v", list)
	}
	if l := env.apiList("GET", "/v1/users/u2/actions?fromDate=2030-01-01"); len(l) != 0 {
		t.Fatalf("query future %v", l)
	}

	errs := []struct {
		name, method, path string
		body               any
		wantStatus         int
		wantCode           string
	}{
		{"track bad action", "POST", "/v1/users/u1/actions/bad%20action", map[string]any{}, 400, "invalid_request"},
		{"track long action", "POST", "/v1/users/u1/actions/" + strings.Repeat("x", 65), map[string]any{}, 400, "invalid_request"},
		{"track bad email", "POST", "/v1/users/u1/actions/signIn", map[string]any{"email": "nope"}, 400, "invalid_request"},
		{"track unprintable phone", "POST", "/v1/users/u1/actions/signIn", map[string]any{"phoneNumber": "12\x00"}, 400, "invalid_request"},
		{"track javascript redirect", "POST", "/v1/users/u1/actions/signIn", map[string]any{"redirectUrl": "javascript:alert(1)"}, 400, "invalid_request"},
		{"track relative redirect", "POST", "/v1/users/u1/actions/signIn", map[string]any{"redirectUrl": "/cb"}, 400, "invalid_request"},
		{"get unknown action", "GET", "/v1/users/u2/actions/withdrawal/nope", nil, 404, "invalid_request"},
		{"patch unknown action", "PATCH", "/v1/users/u2/actions/withdrawal/nope", map[string]any{"state": "ALLOW"}, 404, "invalid_request"},
		{"patch bad state", "PATCH", "/v1/users/u2/actions/withdrawal/w-1", map[string]any{"state": "MAYBE"}, 400, "invalid_request"},
		{"patch no state", "PATCH", "/v1/users/u2/actions/withdrawal/w-1", map[string]any{}, 400, "invalid_request"},
		{"query bad state", "GET", "/v1/users/u2/actions?state=NOPE", nil, 400, "invalid_request"},
		{"query bad date", "GET", "/v1/users/u2/actions?fromDate=yesterday", nil, 400, "invalid_request"},
		{"query bad codes", "GET", "/v1/users/u2/actions?codes=a,b%20c", nil, 400, "invalid_request"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			status, m := env.api(tt.method, tt.path, tt.body)
			wantError(t, status, m, tt.wantStatus, tt.wantCode)
		})
	}
}

func TestTrackReportsEnrolmentAndNewDevice(t *testing.T) {
	rulesFile := writeRules(t, `{"rules":[
		{"id":"new-device","actionCode":"*","conditions":[{"field":"isNewDevice","op":"eq","value":true},{"field":"isEnrolled","op":"eq","value":true}],"outcome":"CHALLENGE_REQUIRED"},
		{"id":"corp","actionCode":"login","conditions":[{"field":"emailDomain","op":"eq","value":"corp.example"}],"outcome":"REVIEW_REQUIRED"}
	]}`)
	env := newEnv(t, func(c *Config) { c.RulesFile = rulesFile })
	m := env.apiOK("POST", "/v1/users/u1/actions/login", map[string]any{"deviceId": "d1"})
	if m["state"] != "ALLOW" || m["isEnrolled"] != false || len(m["enrolledVerificationMethods"].([]any)) != 0 || m["defaultVerificationMethod"] != nil {
		t.Fatalf("unenrolled %v", m)
	}
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "u1@corp.example"})
	m = env.apiOK("POST", "/v1/users/u1/actions/login", map[string]any{"deviceId": "d1"})
	if m["state"] != "REVIEW_REQUIRED" || m["isEnrolled"] != true || m["defaultVerificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("known device, corp email from user %v", m)
	}
	m = env.apiOK("POST", "/v1/users/u1/actions/login", map[string]any{"deviceId": "d2"})
	if m["state"] != "CHALLENGE_REQUIRED" || m["ruleIds"].([]any)[0] != "new-device" {
		t.Fatalf("new device %v", m)
	}
}

func TestValidateTokens(t *testing.T) {
	env := newEnv(t)
	env.enrol("u1", "u1@example.com")
	m := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"idempotencyKey": "k1", "custom": map[string]any{"amount": 2000}})
	tok := m["token"].(string)
	other, err := New(Config{SecretKey: "another-key", DBPath: ":memory:", Now: env.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wrongKey, _ := other.tokens.Issue(token.Action{UserID: "u1", ActionCode: "withdrawal", IdempotencyKey: "k1"})
	otherTenant, _ := newEnv(t, func(c *Config) { c.TenantID = "another-tenant"; c.Now = env.clock.Now }).emu.tokens.Issue(token.Action{UserID: "u1", ActionCode: "withdrawal", IdempotencyKey: "k1"})
	parts := strings.Split(tok, ".")
	noneToken := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	unknownAction, _ := env.emu.tokens.Issue(token.Action{UserID: "u1", ActionCode: "withdrawal", IdempotencyKey: "no-such-key"})

	// A genuine token reports its action, whatever the state; isValid is true only once
	// the challenge succeeded (the SDKs' integration tests assert isValid false for a
	// CHALLENGE_REQUIRED token; docs: "True if the challenge was completed successfully").
	genuine := func(t *testing.T, v map[string]any, state string) {
		t.Helper()
		if v["isValid"] != (state == StateChallengeSucceeded) || v["state"] != state || v["userId"] != "u1" || v["action"] != "withdrawal" ||
			v["actionCode"] != "withdrawal" || v["idempotencyKey"] != "k1" || v["stateUpdatedAt"] == nil {
			t.Fatalf("validate of a %s action: %v", state, v)
		}
	}
	genuine(t, env.apiOK("POST", "/v1/validate", map[string]any{"token": tok}), StateChallengeRequired)
	genuine(t, env.apiOK("POST", "/v1/validate", map[string]any{"token": tok, "userId": "u1", "action": "withdrawal"}), StateChallengeRequired)

	tests := []struct {
		name      string
		body      map[string]any
		wantError string // the "error" the mocks of the Python and Ruby SDKs show
	}{
		{"wrong user", map[string]any{"token": tok, "userId": "u2"}, "User is invalid."},
		{"wrong action", map[string]any{"token": tok, "action": "signIn"}, "Action is invalid."},
		{"tampered payload", map[string]any{"token": tampered}, ""},
		{"alg none", map[string]any{"token": noneToken}, ""},
		{"wrong key", map[string]any{"token": wrongKey}, ""},
		{"another tenant's token", map[string]any{"token": otherTenant}, ""},
		{"garbage", map[string]any{"token": "not.a.jwt"}, ""},
		{"unknown action", map[string]any{"token": unknownAction}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := env.apiOK("POST", "/v1/validate", tt.body)
			if v["isValid"] != false || v["state"] != nil || v["userId"] != nil || v["idempotencyKey"] != nil {
				t.Fatalf("a token that is not genuine must say nothing of an action: %v", v)
			}
			if got, _ := v["error"].(string); got != tt.wantError {
				t.Fatalf("error %q, want %q", got, tt.wantError)
			}
		})
	}
	// Validate reports the current state: failed, then succeeded.
	env.apiOK("PATCH", "/v1/users/u1/actions/withdrawal/k1", map[string]any{"state": StateChallengeFailed})
	genuine(t, env.apiOK("POST", "/v1/validate", map[string]any{"token": tok}), StateChallengeFailed)
	env.apiOK("PATCH", "/v1/users/u1/actions/withdrawal/k1", map[string]any{"state": StateChallengeSucceeded})
	genuine(t, env.apiOK("POST", "/v1/validate", map[string]any{"token": tok}), StateChallengeSucceeded)
	// Expired.
	env.clock.Advance(DefaultLimits().TokenTTL + time.Second)
	if v := env.apiOK("POST", "/v1/validate", map[string]any{"token": tok}); v["isValid"] != false || v["state"] != nil {
		t.Fatalf("expired token: %v", v)
	}
	status, m2 := env.api("POST", "/v1/validate", map[string]any{})
	wantError(t, status, m2, 400, "invalid_request")
}

// The tenant's authenticators are the methods the emulator implements, all active.
func TestAuthenticatorConfigurations(t *testing.T) {
	env := newEnv(t)
	list := env.apiList("GET", "/v1/authenticators")
	var methods []string
	for _, a := range list {
		if a["isActive"] != true || a["authenticatorId"] == "" {
			t.Fatalf("configuration %v", a)
		}
		methods = append(methods, a["verificationMethod"].(string))
	}
	if strings.Join(methods, ",") != "EMAIL_OTP,SMS,WHATSAPP,AUTHENTICATOR_APP,EMAIL_MAGIC_LINK,PASSKEY" {
		t.Fatalf("methods %v", methods)
	}
	status, _, _ := env.do("GET", "/v1/authenticators", nil, "")
	if status != 401 {
		t.Fatalf("without the key: %d", status)
	}
}
