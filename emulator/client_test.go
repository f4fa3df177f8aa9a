package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/internal/softauthn"
)

// The Client API, driven as the browser SDK drives it, with a software authenticator
// for passkeys (emulator/internal/softauthn) instead of a browser.

const appOrigin = "http://localhost:3000"

func newClientEnv(t *testing.T) *testEnv {
	return newEnv(t, func(c *Config) { c.ClientOrigins = []string{appOrigin} })
}

// client calls the Client API with an Authorization header value ("" = none), as the
// browser SDK does (always Content-Type: application/json), from the app's origin.
func (env *testEnv) client(method, path string, body any, authorization string) (int, map[string]any, http.Header) {
	env.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			env.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, env.srv.URL+path, r)
	if err != nil {
		env.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", appOrigin)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		env.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			env.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// clientOK is client that requires a 200.
func (env *testEnv) clientOK(method, path string, body any, authorization string) map[string]any {
	env.t.Helper()
	status, m, _ := env.client(method, path, body, authorization)
	if status != http.StatusOK {
		env.t.Fatalf("%s %s: %d %v", method, path, status, m)
	}
	return m
}

func bearer(tok string) string { return "Bearer " + tok }

// tenantBasic is the browser SDK's header: base64 of the tenant id, no colon.
var tenantBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(DevTenantID))

// trackToken tracks an action and returns its token.
func (env *testEnv) trackToken(userID, action string, attrs map[string]any) string {
	env.t.Helper()
	if attrs == nil {
		attrs = map[string]any{}
	}
	return env.apiOK("POST", "/v1/users/"+userID+"/actions/"+action, attrs)["token"].(string)
}

// validated validates a token with the Server API, as the app's server does.
func (env *testEnv) validated(tok string) map[string]any {
	env.t.Helper()
	return env.apiOK("POST", "/v1/validate", map[string]any{"token": tok})
}

func TestClientAPIAuthorization(t *testing.T) {
	env := newClientEnv(t)
	tok := env.trackToken("u-auth", "signIn", nil)
	body := map[string]any{"action": "signInWithPasskey"}
	for _, c := range []struct {
		name, authorization string
		status              int
		code                string
	}{
		{"tenant id, no colon (browser SDK)", tenantBasic, 200, ""},
		{"tenant id with colon (docs)", "Basic " + base64.StdEncoding.EncodeToString([]byte(DevTenantID+":")), 200, ""},
		{"tenant id, URL alphabet, unpadded (iOS SDK)", "Basic " + base64.RawURLEncoding.EncodeToString([]byte(DevTenantID+":")), 200, ""},
		{"a track token", bearer(tok), 200, ""},
		{"no header", "", 401, "unauthorized"},
		{"another tenant", "Basic " + base64.StdEncoding.EncodeToString([]byte("other-tenant")), 401, "unauthorized"},
		{"the secret key is not the tenant id", "Basic " + base64.StdEncoding.EncodeToString([]byte(testKey+":")), 401, "unauthorized"},
		{"a forged token", bearer(tok[:len(tok)-4] + "AAAA"), 401, "unauthorized"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, m, _ := env.client("POST", "/v1/client/challenge", body, c.authorization)
			if c.code == "" {
				if status != 200 || m["challengeId"] == "" {
					t.Fatalf("%d %v, want a challenge", status, m)
				}
				return
			}
			wantError(t, status, m, c.status, c.code)
		})
	}
	t.Run("an expired token is expired_token, which makes the SDK call onTokenExpired", func(t *testing.T) {
		env.clock.Advance(DefaultLimits().TokenTTL + time.Second)
		status, m, _ := env.client("POST", "/v1/client/challenge/email-otp", nil, bearer(tok))
		wantError(t, status, m, 401, "expired_token")
	})
	t.Run("calls for a user need a token, not the tenant id", func(t *testing.T) {
		status, m, _ := env.client("POST", "/v1/client/user-authenticators/email-otp", map[string]any{"email": "a@example.com"}, tenantBasic)
		wantError(t, status, m, 401, "unauthorized")
	})
}

func TestClientAPICORS(t *testing.T) {
	env := newClientEnv(t)
	preflight := func(origin string) http.Header {
		req, _ := http.NewRequest("OPTIONS", env.srv.URL+"/v1/client/verify/email-otp", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := env.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("preflight: %d", resp.StatusCode)
		}
		return resp.Header
	}
	h := preflight(appOrigin)
	if h.Get("Access-Control-Allow-Origin") != appOrigin || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight from the app's origin: %v", h)
	}
	if h := preflight("http://evil.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", h)
	}
	_, _, h = env.client("POST", "/v1/client/challenge", map[string]any{"action": "signIn"}, tenantBasic)
	if h.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("a call from the app's origin has no Access-Control-Allow-Origin: %v", h)
	}
}

func TestClientAPIEmailOTPEnrolsThenAddsWithScope(t *testing.T) {
	env := newClientEnv(t)
	const user, email, phone = "u-otp", "otp@example.com", "+447700900123"
	tok := env.trackToken(user, "signUp", nil)

	enrolled := env.clientOK("POST", "/v1/client/user-authenticators/email-otp", map[string]any{"email": email}, bearer(tok))
	if enrolled["userId"] != user || enrolled["userAuthenticatorId"] == "" {
		t.Fatalf("enrol: %v", enrolled)
	}
	code := env.lastCode(email)
	wrong := env.clientOK("POST", "/v1/client/verify/email-otp", map[string]any{"verificationCode": wrongCode(code)}, bearer(tok))
	if wrong["isVerified"] != false || wrong["failureReason"] != "CODE_INVALID_OR_EXPIRED" || wrong["accessToken"] != nil {
		t.Fatalf("wrong code: %v", wrong)
	}
	ok := env.clientOK("POST", "/v1/client/verify/email-otp", map[string]any{"verificationCode": code}, bearer(tok))
	access, _ := ok["accessToken"].(string)
	ua, _ := ok["userAuthenticator"].(map[string]any)
	if ok["isVerified"] != true || access == "" || ua["userAuthenticatorId"] != enrolled["userAuthenticatorId"] || ua["email"] != "o…@example.com" {
		t.Fatalf("right code: %v", ok)
	}
	v := env.validated(access)
	if v["state"] != "CHALLENGE_SUCCEEDED" || v["isValid"] != true || v["verificationMethod"] != "EMAIL_OTP" || v["action"] != "signUp" {
		t.Fatalf("validate the access token: %v", v)
	}
	if auths := env.apiList("GET", "/v1/users/"+user+"/authenticators"); len(auths) != 1 || auths[0]["email"] != email {
		t.Fatalf("authenticators after enrolment: %v", auths)
	}

	// Enrolled now: a plain track token may not add a phone; the access token (or a
	// token tracked with add:authenticators) may.
	plain := env.trackToken(user, "addPhone", nil)
	status, m, _ := env.client("POST", "/v1/client/user-authenticators/sms", map[string]any{"phoneNumber": phone}, bearer(plain))
	wantError(t, status, m, 403, "unauthorized")
	if msgs := env.messages(phone); len(msgs) != 0 {
		t.Fatalf("a refused enrolment sent %d messages", len(msgs))
	}
	env.clientOK("POST", "/v1/client/user-authenticators/sms", map[string]any{"phoneNumber": phone}, bearer(access))
	sms := env.clientOK("POST", "/v1/client/verify/sms", map[string]any{"verificationCode": env.lastCode(phone)}, bearer(access))
	if sms["isVerified"] != true {
		t.Fatalf("verify sms: %v", sms)
	}
	scoped := env.trackToken(user, "addPhone", map[string]any{"scope": "add:authenticators"})
	env.clientOK("POST", "/v1/client/user-authenticators/sms", map[string]any{"phoneNumber": "+447700900124"}, bearer(scoped))

	// A challenge of the enrolled email, for a new action.
	step := env.trackToken(user, "withdraw", nil)
	env.clientOK("POST", "/v1/client/challenge/email-otp", nil, bearer(step))
	if out := env.clientOK("POST", "/v1/client/verify/email-otp", map[string]any{"verificationCode": env.lastCode(email)}, bearer(step)); out["isVerified"] != true {
		t.Fatalf("challenge of the enrolled email: %v", out)
	}
	status, m, _ = env.client("POST", "/v1/client/verify/whatsapp", map[string]any{"verificationCode": "123456"}, bearer(step))
	wantError(t, status, m, 400, "invalid_request")
}

func TestClientAPIRefusesActionsThatCannotBeChallenged(t *testing.T) {
	env := newClientEnv(t)
	env.enrol("u-blocked", "blocked@example.com")
	env.registerPasskey(softauthn.New(), env.trackToken("u-blocked", "addPasskey", map[string]any{"scope": "add:authenticators"}))
	tok := env.trackToken("u-blocked", "withdraw", map[string]any{"scope": "add:authenticators"})
	env.apiOK("PATCH", "/v1/users/u-blocked/actions/withdraw/"+env.tokenKey(tok), map[string]any{"state": "BLOCK"})
	status, m, _ := env.client("POST", "/v1/client/challenge/email-otp", nil, bearer(tok))
	wantError(t, status, m, 400, "invalid_request")
	if msgs := env.messages("blocked@example.com"); len(msgs) != 0 {
		t.Fatalf("a blocked action sent a code")
	}
	for _, path := range []string{"user-authenticators/passkey/registration-options", "user-authenticators/passkey/authentication-options"} {
		status, m, _ := env.client("POST", "/v1/client/"+path, map[string]any{}, bearer(tok))
		wantError(t, status, m, 400, "invalid_request")
	}
}

// tokenKey is the idempotency key a token names.
func (env *testEnv) tokenKey(tok string) string {
	env.t.Helper()
	c, err := env.emu.tokens.Parse(tok)
	if err != nil {
		env.t.Fatal(err)
	}
	return c.Other.IdempotencyKey
}

// registerPasskey adds a passkey for user with a token, as passkey.signUp does.
func (env *testEnv) registerPasskey(a *softauthn.Authenticator, tok string) map[string]any {
	env.t.Helper()
	opts := env.clientOK("POST", "/v1/client/user-authenticators/passkey/registration-options", map[string]any{"username": "pk@example.com", "authenticatorAttachment": "platform"}, bearer(tok))
	raw, _ := json.Marshal(opts["options"])
	cred, err := a.Register(raw, appOrigin)
	if err != nil {
		env.t.Fatalf("register: %v", err)
	}
	return env.clientOK("POST", "/v1/client/user-authenticators/passkey",
		map[string]any{"challengeId": opts["challengeId"], "registrationCredential": json.RawMessage(cred), "conditionalCreate": false}, bearer(tok))
}

// discoverableOptions starts a sign-in without a token, as passkey.signIn({action}) does.
func (env *testEnv) discoverableOptions(action string) (challengeID string, options []byte) {
	env.t.Helper()
	id := env.clientOK("POST", "/v1/client/challenge", map[string]any{"action": action}, tenantBasic)["challengeId"].(string)
	opts := env.clientOK("POST", "/v1/client/user-authenticators/passkey/authentication-options", map[string]any{"challengeId": id}, tenantBasic)
	if opts["challengeId"] != id {
		env.t.Fatalf("options for another challenge: %v", opts)
	}
	raw, _ := json.Marshal(opts["options"])
	return id, raw
}

func TestClientAPIPasskeySignUpAndSignIn(t *testing.T) {
	env := newClientEnv(t)
	a := softauthn.New()
	const user = "u-passkey"
	tok := env.trackToken(user, "addPasskey", nil)
	added := env.registerPasskey(a, tok)
	if added["isVerified"] != true || added["userId"] != user || added["userAuthenticatorId"] == "" {
		t.Fatalf("add passkey: %v", added)
	}
	v := env.validated(added["accessToken"].(string))
	if v["state"] != "CHALLENGE_SUCCEEDED" || v["verificationMethod"] != "PASSKEY" || v["userId"] != user {
		t.Fatalf("validate after sign-up: %v", v)
	}
	auths := env.apiList("GET", "/v1/users/"+user+"/authenticators")
	credID := base64.RawURLEncoding.EncodeToString(a.CredentialIDs()[0])
	if len(auths) != 1 || auths[0]["verificationMethod"] != "PASSKEY" || auths[0]["webauthnCredential"].(map[string]any)["credentialId"] != credID {
		t.Fatalf("authenticators: %v", auths)
	}

	if status, raw, _ := env.do("GET", "/admin/users/"+user, nil, ""); status != 200 || !strings.Contains(string(raw), "credential "+credID+", sign count 0") {
		t.Fatalf("the admin page does not show the passkey: %d %s", status, raw)
	}

	id, opts := env.discoverableOptions("signInWithPasskey")
	answer, err := a.Assert(opts, appOrigin)
	if err != nil {
		t.Fatal(err)
	}
	in := env.clientOK("POST", "/v1/client/verify/passkey", map[string]any{"challengeId": id, "authenticationCredential": json.RawMessage(answer), "deviceId": "dev-1"}, tenantBasic)
	if in["isVerified"] != true || in["userId"] != user || in["userAuthenticatorId"] != added["userAuthenticatorId"] {
		t.Fatalf("sign in: %v", in)
	}
	v = env.validated(in["accessToken"].(string))
	if v["state"] != "CHALLENGE_SUCCEEDED" || v["verificationMethod"] != "PASSKEY" || v["userId"] != user || v["action"] != "signInWithPasskey" {
		t.Fatalf("validate after sign-in: %v", v)
	}

	// With a track token: the user's passkeys are offered, and the token's action succeeds.
	step := env.trackToken(user, "withdraw", nil)
	o := env.clientOK("POST", "/v1/client/user-authenticators/passkey/authentication-options", map[string]any{}, bearer(step))
	raw, _ := json.Marshal(o["options"])
	if !strings.Contains(string(raw), credID) {
		t.Fatalf("options with a token do not allow the user's passkey: %s", raw)
	}
	answer, _ = a.Assert(raw, appOrigin)
	env.clientOK("POST", "/v1/client/verify/passkey", map[string]any{"challengeId": o["challengeId"], "authenticationCredential": json.RawMessage(answer)}, bearer(step))
	if v := env.validated(step); v["state"] != "CHALLENGE_SUCCEEDED" || v["verificationMethod"] != "PASSKEY" {
		t.Fatalf("the track token's action after a passkey: %v", v)
	}

	// isAvailableOnDevice's lookup.
	if status, _, _ := env.client("GET", "/v1/client/user-authenticators/passkey?credentialIds="+credID, nil, tenantBasic); status != 200 {
		t.Fatalf("lookup of a known passkey: %d", status)
	}
	if status, _, _ := env.client("GET", "/v1/client/user-authenticators/passkey?credentialIds=bm9wZQ", nil, tenantBasic); status != 404 {
		t.Fatalf("lookup of an unknown passkey: %d", status)
	}

	// Deleting the authenticator removes the credential: it no longer signs in.
	env.apiOK("DELETE", "/v1/users/"+user+"/authenticators/"+added["userAuthenticatorId"].(string), nil)
	id, opts = env.discoverableOptions("signInWithPasskey")
	answer, _ = a.Assert(opts, appOrigin)
	status, m, _ := env.client("POST", "/v1/client/verify/passkey", map[string]any{"challengeId": id, "authenticationCredential": json.RawMessage(answer)}, tenantBasic)
	wantError(t, status, m, 400, "invalid_credential")
	if status, _, _ := env.client("GET", "/v1/client/user-authenticators/passkey?credentialIds="+credID, nil, tenantBasic); status != 404 {
		t.Fatalf("lookup of a deleted passkey: %d", status)
	}
}

func TestClientAPIPasskeyRefusals(t *testing.T) {
	env := newClientEnv(t)
	a := softauthn.New()
	env.registerPasskey(a, env.trackToken("u-refusals", "addPasskey", nil))
	signIn := func(opts ...softauthn.AssertOption) (id string, options, answer []byte) {
		id, options = env.discoverableOptions("signInWithPasskey")
		answer, err := a.Assert(options, appOrigin, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return id, options, answer
	}
	verify := func(id string, answer []byte) (int, map[string]any) {
		status, m, _ := env.client("POST", "/v1/client/verify/passkey", map[string]any{"challengeId": id, "authenticationCredential": json.RawMessage(answer)}, tenantBasic)
		return status, m
	}
	// One sign-in first, so the stored counter is above zero (a counter of zero on both
	// sides is an authenticator that keeps none, which WebAuthn allows).
	if id, _, answer := signIn(); func() int { s, _ := verify(id, answer); return s }() != 200 {
		t.Fatal("the first sign-in failed")
	}
	for _, c := range []struct {
		name string
		opts []softauthn.AssertOption
	}{
		{"a bad signature", []softauthn.AssertOption{softauthn.WithBadSignature()}},
		{"another relying party", []softauthn.AssertOption{softauthn.WithRPID("example.com")}},
		{"another challenge", []softauthn.AssertOption{softauthn.WithChallenge(base64.RawURLEncoding.EncodeToString([]byte("not the challenge sent")))}},
		{"a counter that went back", []softauthn.AssertOption{softauthn.WithSignCount(0)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, options, answer := signIn(c.opts...)
			status, m := verify(id, answer)
			wantError(t, status, m, 400, "invalid_credential")
			// The refused answer used the challenge up: not even a good one passes now.
			good, err := a.Assert(options, appOrigin)
			if err != nil {
				t.Fatal(err)
			}
			status, m = verify(id, good)
			wantError(t, status, m, 404, "invalid_request")
		})
	}
	t.Run("another origin", func(t *testing.T) {
		id, o := env.discoverableOptions("signInWithPasskey")
		answer, _ := a.Assert(o, "http://evil.example")
		status, m := verify(id, answer)
		wantError(t, status, m, 400, "invalid_credential")
	})
	t.Run("a replayed answer", func(t *testing.T) {
		id, _, answer := signIn()
		if status, m := verify(id, answer); status != 200 {
			t.Fatalf("first use: %d %v", status, m)
		}
		status, m := verify(id, answer)
		wantError(t, status, m, 404, "invalid_request")
	})
	t.Run("a scope-less token for an enrolled user cannot add a passkey", func(t *testing.T) {
		status, m, _ := env.client("POST", "/v1/client/user-authenticators/passkey/registration-options", map[string]any{}, bearer(env.trackToken("u-refusals", "addAnother", nil)))
		wantError(t, status, m, 403, "unauthorized")
	})
	t.Run("the same authenticator cannot register twice for the user", func(t *testing.T) {
		tok := env.trackToken("u-refusals", "addAnother", map[string]any{"scope": "add:authenticators"})
		opts := env.clientOK("POST", "/v1/client/user-authenticators/passkey/registration-options", map[string]any{}, bearer(tok))
		raw, _ := json.Marshal(opts["options"])
		if _, err := a.Register(raw, appOrigin); err == nil {
			t.Fatalf("the options do not exclude the user's passkey: %s", raw)
		}
	})
}

// The user's authenticators through the Client API, masked; a WhatsApp challenge of an
// enrolled number; and the send limit as the SDK's too_many_requests.
func TestClientAPIAuthenticatorsWhatsAppAndLimits(t *testing.T) {
	env := newClientEnv(t)
	const user, phone = "u-wa", "+447700900777"
	env.apiOK("POST", "/v1/users/"+user+"/authenticators", map[string]any{"verificationMethod": "WHATSAPP", "phoneNumber": phone})
	tok := env.trackToken(user, "withdraw", nil)

	status, raw, _ := env.do("GET", "/v1/client/user-authenticators", nil, "")
	if status != 401 {
		t.Fatalf("authenticators without a token: %d %s", status, raw)
	}
	req, _ := http.NewRequest("GET", env.srv.URL+"/v1/client/user-authenticators", nil)
	req.Header.Set("Authorization", bearer(tok))
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("authenticators: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if len(list) != 1 || list[0]["verificationMethod"] != "WHATSAPP" || list[0]["phoneNumber"] != "+44…77" {
		t.Fatalf("authenticators, masked: %v", list)
	}

	env.clientOK("POST", "/v1/client/challenge/whatsapp", nil, bearer(tok))
	msgs := env.messages(phone)
	if len(msgs) != 1 || msgs[0].Channel != "WHATSAPP" {
		t.Fatalf("the WhatsApp code: %+v", msgs)
	}
	if v := env.clientOK("POST", "/v1/client/verify/whatsapp", map[string]any{"verificationCode": msgs[0].Code}, bearer(tok)); v["isVerified"] != true {
		t.Fatalf("verify whatsapp: %v", v)
	}
	if v := env.validated(tok); v["verificationMethod"] != "WHATSAPP" || v["state"] != "CHALLENGE_SUCCEEDED" {
		t.Fatalf("validate: %v", v)
	}

	// SMS and WhatsApp share a limit of 6 per window: the seventh is too_many_requests.
	for i := 0; i < DefaultLimits().SMSPerWindow-1; i++ {
		env.clientOK("POST", "/v1/client/challenge/whatsapp", nil, bearer(tok))
	}
	status, m, _ := env.client("POST", "/v1/client/challenge/whatsapp", nil, bearer(tok))
	wantError(t, status, m, 429, "too_many_requests")
}
