package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// coseKey is a fresh P-256 public key as COSE_Key, base64url: what an authenticator makes.
func coseKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	b, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: raw[1:33], YCoord: raw[33:]})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestBatchEnrollPasskeys(t *testing.T) {
	env := newEnv(t)
	env.enrol("batch-1", "batch1@example.com")
	credA, credB := base64.RawURLEncoding.EncodeToString([]byte("credential-a")), base64.RawURLEncoding.EncodeToString([]byte("credential-b"))
	item := func(user, cred string) map[string]any {
		return map[string]any{"userId": user, "verificationMethod": "PASSKEY", "credentialId": cred, "credentialPublicKey": coseKey(t), "name": "Laptop", "transports": []string{"internal"}}
	}
	m := env.apiOK("POST", "/v1/users/authenticators", map[string]any{"authenticators": []any{
		item("batch-1", credA),
		item("batch-2", credB),
		map[string]any{"userId": "batch-3", "verificationMethod": "PASSKEY", "credentialId": "Y3JlZA", "credentialPublicKey": "bm90LWNvc2U"},
		map[string]any{"userId": "batch-4", "verificationMethod": "SMS", "credentialId": "Y3JlZA", "credentialPublicKey": coseKey(t)},
	}})
	if m["total"] != 4.0 || m["succeeded"] != 2.0 || m["failed"] != 2.0 || len(m["failures"].([]any)) != 2 {
		t.Fatalf("batch: %v", m)
	}
	auths := env.apiList("GET", "/v1/users/batch-1/authenticators")
	if len(auths) != 2 || auths[1]["verificationMethod"] != "PASSKEY" || auths[1]["isDefault"] != false {
		t.Fatalf("batch-1's authenticators: %v", auths)
	}
	cred, _ := auths[1]["webauthnCredential"].(map[string]any)
	if cred["credentialId"] != credA || cred["name"] != "Laptop" {
		t.Fatalf("webauthnCredential %v", cred)
	}
	if auths := env.apiList("GET", "/v1/users/batch-2/authenticators"); len(auths) != 1 || auths[0]["isDefault"] != true {
		t.Fatalf("a new user's passkey is the default: %v", auths)
	}

	// Again: the same credential for the same user is a no-op; for another user, a conflict.
	m = env.apiOK("POST", "/v1/users/authenticators", map[string]any{"authenticators": []any{item("batch-1", credA), item("batch-9", credB)}})
	failures := m["failures"].([]any)
	if m["succeeded"] != 1.0 || len(failures) != 1 || failures[0].(map[string]any)["errorCode"] != "conflict" || failures[0].(map[string]any)["userId"] != "batch-9" {
		t.Fatalf("again: %v", m)
	}
	if auths := env.apiList("GET", "/v1/users/batch-1/authenticators"); len(auths) != 2 {
		t.Fatalf("re-enrolled: %v", auths)
	}
	if auths := env.apiList("GET", "/v1/users/batch-9/authenticators"); len(auths) != 0 {
		t.Fatalf("the conflict enrolled something: %v", auths)
	}

	// The pre-built UI offers a passkey-only user their passkey, and no new address (that
	// would take an enrolled method's proof first).
	tr := env.apiOK("POST", "/v1/users/batch-2/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}})
	if tr["state"] != "CHALLENGE_REQUIRED" {
		t.Fatalf("track: %v", tr)
	}
	status, raw, _ := env.do("GET", "/challenge?token="+tr["token"].(string), nil, "")
	if status != 200 || !strings.Contains(string(raw), `data-passkey-button`) || strings.Contains(string(raw), `type="email"`) {
		t.Fatalf("pre-built UI for a passkey-only user: %d %s", status, raw)
	}

	for _, body := range []any{map[string]any{"authenticators": []any{}}, map[string]any{}, map[string]any{"authenticators": make([]any, 1001)}} {
		status, m := env.api("POST", "/v1/users/authenticators", body)
		wantError(t, status, m, 400, "invalid_request")
	}
}
