package softauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

const testOrigin = "http://localhost:8080"

// testUser is the relying party's account record.
type testUser struct {
	id    []byte
	creds []webauthn.Credential
}

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return "alice" }
func (u *testUser) WebAuthnDisplayName() string                { return "Alice" }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// store replaces the stored record of c, or adds it, as an RP does after a
// ceremony.
func (u *testUser) store(c *webauthn.Credential) {
	for i := range u.creds {
		if bytes.Equal(u.creds[i].ID, c.ID) {
			u.creds[i] = *c
			return
		}
	}
	u.creds = append(u.creds, *c)
}

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	rp, err := webauthn.New(&webauthn.Config{
		RPID:          "localhost",
		RPDisplayName: "Test",
		RPOrigins:     []string{testOrigin},
	})
	if err != nil {
		t.Fatalf("webauthn.New: %v", err)
	}
	return rp
}

func newUser(id string) *testUser {
	return &testUser{id: []byte(id)}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// register runs a whole registration ceremony and stores the credential.
func register(t *testing.T, rp *webauthn.WebAuthn, a *Authenticator, u *testUser, opts ...webauthn.RegistrationOption) *webauthn.Credential {
	t.Helper()
	creation, session, err := rp.BeginRegistration(u, opts...)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	resp, err := a.Register(mustJSON(t, creation.Response), testOrigin)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("ParseCredentialCreationResponseBytes: %v\n%s", err, resp)
	}
	cred, err := rp.CreateCredential(u, *session, parsed)
	if err != nil {
		t.Fatalf("CreateCredential: %v", describe(err))
	}
	u.store(cred)
	return cred
}

// discoverableLogin runs a passkey login with the given tampering; it returns
// go-webauthn's verdict.
func discoverableLogin(t *testing.T, rp *webauthn.WebAuthn, a *Authenticator, u *testUser, origin string, opts ...AssertOption) (*webauthn.Credential, error) {
	t.Helper()
	assertion, session, err := rp.BeginDiscoverableLogin()
	if err != nil {
		t.Fatalf("BeginDiscoverableLogin: %v", err)
	}
	resp, err := a.Assert(mustJSON(t, assertion.Response), origin, opts...)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		t.Fatalf("ParseCredentialRequestResponseBytes: %v\n%s", err, resp)
	}
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		if !bytes.Equal(userHandle, u.id) {
			return nil, fmt.Errorf("user handle %q, want %q", userHandle, u.id)
		}
		return u, nil
	}
	return rp.ValidateDiscoverableLogin(handler, *session, parsed)
}

// describe includes go-webauthn's debug info, which is where it says e.g.
// which hash mismatched.
func describe(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %s (%s)", pe.Type, pe.Details, pe.DevInfo)
	}
	return err
}

func TestRegisterAndLogin(t *testing.T) {
	rp, a, u := newRP(t), New(), newUser("user-1")
	cred := register(t, rp, a, u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))

	ids := a.CredentialIDs()
	if len(ids) != 1 || !bytes.Equal(ids[0], cred.ID) {
		t.Fatalf("CredentialIDs = %x, want [%x]", ids, cred.ID)
	}
	if cred.AttestationFormat != "none" || cred.Authenticator.SignCount != 0 {
		t.Errorf("format %q sign count %d, want none 0", cred.AttestationFormat, cred.Authenticator.SignCount)
	}
	if !cred.Flags.UserPresent || !cred.Flags.UserVerified || cred.Flags.BackupEligible || cred.Flags.BackupState {
		t.Errorf("flags %+v, want UP UV and not BE BS", cred.Flags)
	}
	if !bytes.Equal(cred.Authenticator.AAGUID, make([]byte, 16)) {
		t.Errorf("AAGUID %x, want zero", cred.Authenticator.AAGUID)
	}
	if cred.Authenticator.Attachment != protocol.Platform {
		t.Errorf("attachment %q, want platform", cred.Authenticator.Attachment)
	}

	// Passkey login: no allowCredentials, the handler checks the user handle.
	got, err := discoverableLogin(t, rp, a, u, testOrigin)
	if err != nil {
		t.Fatalf("discoverable login: %v", describe(err))
	}
	if got.Authenticator.SignCount != 1 || got.Authenticator.CloneWarning {
		t.Errorf("after login 1: sign count %d clone warning %v, want 1 false", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
	}
	u.store(got)

	// Login with allowCredentials, as for a known user.
	assertion, session, err := rp.BeginLogin(u)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	resp, err := a.Assert(mustJSON(t, assertion.Response), testOrigin)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if !bytes.Equal(parsed.Response.UserHandle, u.id) {
		t.Errorf("user handle %q, want %q", parsed.Response.UserHandle, u.id)
	}
	got, err = rp.ValidateLogin(u, *session, parsed)
	if err != nil {
		t.Fatalf("ValidateLogin: %v", describe(err))
	}
	if got.Authenticator.SignCount != 2 || got.Authenticator.CloneWarning {
		t.Errorf("after login 2: sign count %d clone warning %v, want 2 false", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
	}
}

func TestTamperedAssertionRefused(t *testing.T) {
	rp := newRP(t)
	// A well-formed challenge the relying party never issued for this session.
	other := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name   string
		origin string
		opts   []AssertOption
		want   string // in go-webauthn's details or debug info
	}{
		{"bad signature", testOrigin, []AssertOption{WithBadSignature()}, "Error validating the assertion signature"},
		{"wrong RP id", testOrigin, []AssertOption{WithRPID("example.com")}, "RP Hash mismatch"},
		{"wrong origin", "https://evil.example", nil, "Error validating origin"},
		{"wrong port", "http://localhost:9999", nil, "Error validating origin"},
		{"other challenge", testOrigin, []AssertOption{WithChallenge(other)}, "Error validating challenge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, u := New(), newUser("user-1")
			register(t, rp, a, u)
			_, err := discoverableLogin(t, rp, a, u, tt.origin, tt.opts...)
			if err == nil {
				t.Fatal("go-webauthn accepted the tampered assertion")
			}
			if msg := describe(err).Error(); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to mention %q", msg, tt.want)
			}
			// Tampering is one-off: the next honest assertion passes.
			if _, err := discoverableLogin(t, rp, a, u, testOrigin); err != nil {
				t.Errorf("honest login after tampering: %v", describe(err))
			}
		})
	}
}

// go-webauthn does not refuse a counter that fails to increase: per §7.2
// step 17 that is RP policy. Authenticator.UpdateCounter sets CloneWarning and
// keeps the stored count instead.
func TestSignCountRegressionFlagged(t *testing.T) {
	rp := newRP(t)
	tests := []struct {
		name      string
		count     uint32 // stored count is 2 when the tampered login runs
		wantClone bool
		wantCount uint32
	}{
		{"lower", 1, true, 2},
		{"zero", 0, true, 2},
		{"equal", 2, true, 2},
		{"jump ahead", 10, false, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, u := New(), newUser("user-1")
			register(t, rp, a, u)
			for range 2 {
				got, err := discoverableLogin(t, rp, a, u, testOrigin)
				if err != nil {
					t.Fatalf("honest login: %v", describe(err))
				}
				u.store(got)
			}
			got, err := discoverableLogin(t, rp, a, u, testOrigin, WithSignCount(tt.count))
			if err != nil {
				t.Fatalf("go-webauthn refused sign count %d: %v", tt.count, describe(err))
			}
			if got.Authenticator.CloneWarning != tt.wantClone || got.Authenticator.SignCount != tt.wantCount {
				t.Errorf("clone warning %v sign count %d, want %v %d", got.Authenticator.CloneWarning, got.Authenticator.SignCount, tt.wantClone, tt.wantCount)
			}
		})
	}
}

func TestRegisterExcluded(t *testing.T) {
	rp, a, u := newRP(t), New(), newUser("user-1")
	cred := register(t, rp, a, u)

	creation, _, err := rp.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}))
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	if _, err := a.Register(mustJSON(t, creation.Response), testOrigin); !errors.Is(err, errExcluded) {
		t.Fatalf("Register with own credential excluded: err %v, want %v", err, errExcluded)
	}
	if ids := a.CredentialIDs(); len(ids) != 1 || !bytes.Equal(ids[0], cred.ID) {
		t.Errorf("refused registration changed credentials: %x", ids)
	}

	// Another authenticator does not hold the excluded credential.
	b := New()
	creation, session, err := rp.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}))
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	resp, err := b.Register(mustJSON(t, creation.Response), testOrigin)
	if err != nil {
		t.Fatalf("second authenticator: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if _, err := rp.CreateCredential(u, *session, parsed); err != nil {
		t.Fatalf("CreateCredential: %v", describe(err))
	}
}

// A resident credential for the same RP and user replaces the old one.
func TestRegisterReplacesSameUser(t *testing.T) {
	rp, a := newRP(t), New()
	first := register(t, rp, a, newUser("user-1"))
	other := register(t, rp, a, newUser("user-2"))
	second := register(t, rp, a, newUser("user-1"))
	ids := a.CredentialIDs()
	if len(ids) != 2 || !bytes.Equal(ids[0], other.ID) || !bytes.Equal(ids[1], second.ID) {
		t.Errorf("CredentialIDs = %x, want [%x %x] (first %x replaced)", ids, other.ID, second.ID, first.ID)
	}
}

func TestResponseShape(t *testing.T) {
	rp, a, u := newRP(t), New(), newUser("user-1")
	creation, _, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	resp, err := a.Register(mustJSON(t, creation.Response), testOrigin)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	var reg struct {
		ID                      string          `json:"id"`
		RawID                   string          `json:"rawId"`
		Type                    string          `json:"type"`
		ClientExtensionResults  json.RawMessage `json:"clientExtensionResults"`
		AuthenticatorAttachment string          `json:"authenticatorAttachment"`
		Response                struct {
			ClientDataJSON     string   `json:"clientDataJSON"`
			Transports         []string `json:"transports"`
			PublicKeyAlgorithm int      `json:"publicKeyAlgorithm"`
			PublicKey          string   `json:"publicKey"`
			AuthenticatorData  string   `json:"authenticatorData"`
		} `json:"response"`
	}
	if err := json.Unmarshal(resp, &reg); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if reg.ID != reg.RawID || reg.Type != "public-key" || string(reg.ClientExtensionResults) != "{}" || reg.AuthenticatorAttachment != "platform" {
		t.Errorf("top level %+v", reg)
	}
	if len(reg.Response.Transports) != 1 || reg.Response.Transports[0] != "internal" || reg.Response.PublicKeyAlgorithm != -7 {
		t.Errorf("transports %q algorithm %d", reg.Response.Transports, reg.Response.PublicKeyAlgorithm)
	}
	cdj, err := base64.RawURLEncoding.DecodeString(reg.Response.ClientDataJSON)
	if err != nil {
		t.Fatalf("clientDataJSON: %v", err)
	}
	want := `{"type":"webauthn.create","challenge":"` + creation.Response.Challenge.String() + `","origin":"` + testOrigin + `","crossOrigin":false}`
	if string(cdj) != want {
		t.Errorf("clientDataJSON\n got %s\nwant %s", cdj, want)
	}
	spki, err := base64.RawURLEncoding.DecodeString(reg.Response.PublicKey)
	if err != nil {
		t.Fatalf("publicKey: %v", err)
	}
	if pub, err := x509.ParsePKIXPublicKey(spki); err != nil {
		t.Errorf("publicKey is not SPKI: %v", err)
	} else if _, ok := pub.(*ecdsa.PublicKey); !ok {
		t.Errorf("publicKey is %T, want *ecdsa.PublicKey", pub)
	}
	if ad, err := base64.RawURLEncoding.DecodeString(reg.Response.AuthenticatorData); err != nil || len(ad) < 37 || ad[32] != flagUP|flagUV|flagAT {
		t.Errorf("authenticatorData %x (%v), want flags %#x", ad, err, flagUP|flagUV|flagAT)
	}
}

// A padded challenge decodes to the same bytes, so the browser's unpadded
// re-encoding still matches the RP's session.
func TestPaddedChallengeAndWrappedOptions(t *testing.T) {
	rp, a, u := newRP(t), New(), newUser("user-1")
	creation, session, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	opts := creation.Response
	padded := base64.URLEncoding.EncodeToString(opts.Challenge)
	if !strings.HasSuffix(padded, "=") {
		t.Fatalf("test needs a challenge whose encoding is padded, got %q", padded)
	}
	raw := bytes.Replace(mustJSON(t, creation), []byte(`"`+opts.Challenge.String()+`"`), []byte(`"`+padded+`"`), 1)
	resp, err := a.Register(raw, testOrigin) // {"publicKey": ...} as go-webauthn marshals it
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if _, err := rp.CreateCredential(u, *session, parsed); err != nil {
		t.Fatalf("CreateCredential: %v", describe(err))
	}
}

func TestBadInput(t *testing.T) {
	held := New()
	heldReg := `{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rp":{"id":"localhost","name":"T"},"user":{"id":"dXNlcg","name":"u","displayName":"U"}}`
	if _, err := held.Register([]byte(heldReg), testOrigin); err != nil {
		t.Fatalf("Register: %v", err)
	}
	tests := []struct {
		name   string
		assert bool // Assert instead of Register
		json   string
		origin string
	}{
		{"register not JSON", false, `{`, testOrigin},
		{"register JSON array", false, `[]`, testOrigin},
		{"register no challenge", false, `{"rp":{"id":"localhost"},"user":{"id":"dXNlcg"}}`, testOrigin},
		{"register challenge not base64url", false, `{"challenge":"a+b/","rp":{"id":"localhost"},"user":{"id":"dXNlcg"}}`, testOrigin},
		{"register challenge a number", false, `{"challenge":5,"rp":{"id":"localhost"},"user":{"id":"dXNlcg"}}`, testOrigin},
		{"register no user id", false, `{"challenge":"AAAA","rp":{"id":"localhost"},"user":{}}`, testOrigin},
		{"register user id too long", false, `{"challenge":"AAAA","rp":{"id":"localhost"},"user":{"id":"` + strings.Repeat("A", 88) + `"}}`, testOrigin},
		{"register no rp id nor origin host", false, `{"challenge":"AAAA","user":{"id":"dXNlcg"}}`, "not a url"},
		{"register RS256 only", false, `{"challenge":"AAAA","rp":{"id":"localhost"},"user":{"id":"dXNlcg"},"pubKeyCredParams":[{"type":"public-key","alg":-257}]}`, testOrigin},
		{"register bad exclude id", false, `{"challenge":"AAAA","rp":{"id":"localhost"},"user":{"id":"dXNlcg"},"excludeCredentials":[{"type":"public-key","id":"!"}]}`, testOrigin},
		{"assert not JSON", true, `nope`, testOrigin},
		{"assert no challenge", true, `{"rpId":"localhost"}`, testOrigin},
		{"assert bad allow id", true, `{"challenge":"AAAA","rpId":"localhost","allowCredentials":[{"type":"public-key","id":"!"}]}`, testOrigin},
		{"assert unknown allowed credential", true, `{"challenge":"AAAA","rpId":"localhost","allowCredentials":[{"type":"public-key","id":"AAAA"}]}`, testOrigin},
		{"assert other RP id", true, `{"challenge":"AAAA","rpId":"example.com"}`, testOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.assert {
				_, err = held.Assert([]byte(tt.json), tt.origin)
			} else {
				_, err = New().Register([]byte(tt.json), tt.origin)
			}
			if err == nil {
				t.Fatal("accepted bad input")
			}
		})
	}
	if _, err := New().Assert([]byte(`{"challenge":"AAAA","rpId":"localhost"}`), testOrigin); !errors.Is(err, errNoCredential) {
		t.Errorf("Assert with no credentials: %v, want %v", err, errNoCredential)
	}
}

// Without rpId a browser uses the origin's host, as go-webauthn's own RP id
// here is.
func TestRPIDDefaultsToOriginHost(t *testing.T) {
	rp, a, u := newRP(t), New(), newUser("user-1")
	creation, session, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	opts := creation.Response
	opts.RelyingParty.ID = ""
	resp, err := a.Register(mustJSON(t, opts), testOrigin)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	cred, err := rp.CreateCredential(u, *session, parsed)
	if err != nil {
		t.Fatalf("CreateCredential: %v", describe(err))
	}
	u.store(cred)

	assertion, session, err := rp.BeginLogin(u)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	req := assertion.Response
	req.RelyingPartyID = ""
	resp, err = a.Assert(mustJSON(t, req), testOrigin)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	pa, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if _, err := rp.ValidateLogin(u, *session, pa); err != nil {
		t.Fatalf("ValidateLogin: %v", describe(err))
	}
}
