package emulator

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

// signedInToken signs userID in by email (challenge, verify, claim) and returns the action
// token of the succeeded challenge, which is what POST /v1/sessions takes.
func (env *testEnv) signedInToken(userID, email string) string {
	env.t.Helper()
	id := env.challengeEmail(email)
	if v := env.verify(id, env.lastCode(email)); v["isVerified"] != true {
		env.t.Fatalf("verify: %v", v)
	}
	claim := env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": userID})
	return claim["token"].(string)
}

func (env *testEnv) createSession(clientID, tok string) (access, refresh string) {
	env.t.Helper()
	m := env.apiOK("POST", "/v1/sessions", map[string]any{"clientId": clientID, "token": tok})
	return m["accessToken"].(string), m["refreshToken"].(string)
}

// The whole life of a session, as an integrator's backend sees it through the API.
func TestSessionLifecycle(t *testing.T) {
	env := newEnv(t)
	tok := env.signedInToken("sess-user", "sess@example.com")
	access, refresh := env.createSession("web", tok)

	m := env.apiOK("POST", "/v1/sessions/validate", map[string]any{"accessToken": access, "clientIds": []string{"web", "ios"}})
	user, _ := m["user"].(map[string]any)
	if user["userId"] != "sess-user" || m["verificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("validate: %v", m)
	}
	if want := env.clock.Now().Add(15 * time.Minute).Unix(); m["expiresAt"] != float64(want) {
		t.Fatalf("expiresAt %v, want %d (Unix seconds)", m["expiresAt"], want)
	}
	status, m := env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": access, "clientIds": []string{"ios"}})
	wantError(t, status, m, 400, "invalid_request")

	// Refresh: new tokens, and the old access and refresh tokens stop working.
	m = env.apiOK("POST", "/v1/sessions/refresh", map[string]any{"refreshToken": refresh})
	access2, refresh2 := m["accessToken"].(string), m["refreshToken"].(string)
	if access2 == access || refresh2 == refresh {
		t.Fatal("refresh returned the same tokens")
	}
	env.apiOK("POST", "/v1/sessions/validate", map[string]any{"accessToken": access2})
	status, m = env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": access})
	wantError(t, status, m, 400, "invalid_request")

	// The old refresh token again: a stolen copy; the session is revoked, new tokens too.
	status, m = env.api("POST", "/v1/sessions/refresh", map[string]any{"refreshToken": refresh})
	wantError(t, status, m, 400, "invalid_request")
	status, m = env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": access2})
	wantError(t, status, m, 400, "invalid_request")
	if !strings.Contains(m["errorDescription"].(string), "revoked") {
		t.Fatalf("after reuse: %v", m)
	}
	status, m = env.api("POST", "/v1/sessions/refresh", map[string]any{"refreshToken": refresh2})
	wantError(t, status, m, 400, "invalid_request")
}

func TestSessionRevocationAndExpiry(t *testing.T) {
	env := newEnv(t)
	tok := env.signedInToken("rev-user", "rev@example.com")
	a1, _ := env.createSession("web", tok)
	a2, r2 := env.createSession("web", tok)
	a3, _ := env.createSession("web", env.signedInToken("other-user", "other@example.com"))

	if status, _, _ := env.do("POST", "/v1/sessions/revoke", map[string]any{"accessToken": a1}, testKey); status != 204 {
		t.Fatalf("revoke: %d", status)
	}
	status, m := env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": a1})
	wantError(t, status, m, 400, "invalid_request")
	env.apiOK("POST", "/v1/sessions/validate", map[string]any{"accessToken": a2}) // another session of the same user lives

	if status, _, _ := env.do("POST", "/v1/sessions/user/revoke", map[string]any{"userId": "rev-user"}, testKey); status != 204 {
		t.Fatalf("revoke user: %d", status)
	}
	for _, tok := range []string{a2} {
		status, m := env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": tok})
		wantError(t, status, m, 400, "invalid_request")
	}
	status, m = env.api("POST", "/v1/sessions/refresh", map[string]any{"refreshToken": r2})
	wantError(t, status, m, 400, "invalid_request")
	env.apiOK("POST", "/v1/sessions/validate", map[string]any{"accessToken": a3}) // other users keep theirs

	env.clock.Advance(16 * time.Minute)
	status, m = env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": a3})
	wantError(t, status, m, 400, "invalid_request")
	if !strings.Contains(m["errorDescription"].(string), "expired") {
		t.Fatalf("expired: %v", m)
	}
	// Deleting the user ends their sessions.
	a4, _ := env.createSession("web", env.signedInToken("gone-user", "gone@example.com"))
	env.apiOK("DELETE", "/v1/users/gone-user", nil)
	status, m = env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": a4})
	wantError(t, status, m, 400, "invalid_request")
}

func TestCreateSessionRefusals(t *testing.T) {
	env := newEnv(t)
	good := env.signedInToken("cs-user", "cs@example.com")
	// An action still awaiting its challenge: a token, but no success.
	env.enrol("cs-user2", "cs2@example.com")
	tr := env.apiOK("POST", "/v1/users/cs-user2/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}})
	if tr["state"] != "CHALLENGE_REQUIRED" {
		t.Fatalf("track: %v", tr)
	}
	tests := []struct {
		name string
		body map[string]any
	}{
		{"no clientId", map[string]any{"token": good}},
		{"no token", map[string]any{"clientId": "web"}},
		{"not a token", map[string]any{"clientId": "web", "token": "nope"}},
		{"another action", map[string]any{"clientId": "web", "token": good, "action": "withdrawal"}},
		{"challenge not succeeded", map[string]any{"clientId": "web", "token": tr["token"]}},
		{"clientId too long", map[string]any{"clientId": strings.Repeat("c", 256), "token": good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := env.api("POST", "/v1/sessions", tt.body)
			wantError(t, status, m, 400, "invalid_request")
		})
	}
	env.apiOK("POST", "/v1/sessions", map[string]any{"clientId": "web", "token": good, "action": "signInWithEmail"})
}

// The access token verifies with the published JWKS alone, as an API gateway would do it.
func TestAccessTokenVerifiesWithTheJWKS(t *testing.T) {
	env := newEnv(t)
	access, _ := env.createSession("web", env.signedInToken("jwks-user", "jwks@example.com"))
	status, raw, h := env.do("GET", "/v1/client/public/"+DevTenantID+"/.well-known/jwks", nil, "")
	if status != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("jwks: %d %s", status, raw)
	}
	var set struct {
		Keys []struct{ Kty, Alg, Kid, N, E string } `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" || set.Keys[0].Alg != "RS256" {
		t.Fatalf("jwks: %s (%v)", raw, err)
	}
	k := set.Keys[0]
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}

	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWS", access)
	}
	var header, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(hb, &header)
	json.Unmarshal(cb, &claims)
	if header["alg"] != "RS256" || header["kid"] != k.Kid {
		t.Fatalf("header %v, want RS256 with kid %s", header, k.Kid)
	}
	if claims["sub"] != "jwks-user" || claims["aud"] != "web" {
		t.Fatalf("claims %v, want sub jwks-user and aud web", claims)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the JWKS does not verify the access token: %v", err)
	}
	// A token whose signature is altered is refused by validate too.
	tampered := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(append(sig[:len(sig)-1], sig[len(sig)-1]^1))
	status, m := env.api("POST", "/v1/sessions/validate", map[string]any{"accessToken": tampered})
	wantError(t, status, m, 400, "invalid_request")
}

// The signing key is stored: a file-backed emulator restarted keeps accepting its tokens.
func TestSessionsSurviveARestart(t *testing.T) {
	path := t.TempDir() + "/emulator.db"
	env := newEnv(t, func(c *Config) { c.DBPath = path })
	access, _ := env.createSession("web", env.signedInToken("restart-user", "restart@example.com"))
	env.srv.Close()
	if err := env.emu.Close(); err != nil {
		t.Fatal(err)
	}
	again := newEnv(t, func(c *Config) { c.DBPath = path; c.Now = env.clock.Now })
	again.apiOK("POST", "/v1/sessions/validate", map[string]any{"accessToken": access})
}

// A refresh token lives 30 days; after that it is refused, even unused.
func TestRefreshTokenExpires(t *testing.T) {
	env := newEnv(t)
	_, refresh := env.createSession("web", env.signedInToken("old-user", "old@example.com"))
	env.clock.Advance(31 * 24 * time.Hour)
	status, m := env.api("POST", "/v1/sessions/refresh", map[string]any{"refreshToken": refresh})
	wantError(t, status, m, 400, "invalid_request")
	if !strings.Contains(m["errorDescription"].(string), "expired") {
		t.Fatalf("an old refresh token: %v", m)
	}
}
