// Package softauthn is a software passkey authenticator for tests: it answers
// WebAuthn options JSON with the JSON a browser would send.
//
// It plays both the browser (it builds clientDataJSON and the L3 toJSON()
// shapes) and a platform authenticator (ES256 resident credentials, attestation
// "none", flags UP and UV, never backed up). Unlike a browser it does not check
// the origin against the RP id, so a test can present any origin to the
// relying party and see it refused there.
package softauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

const (
	publicKeyType = "public-key"
	algES256      = -7 // COSE algorithm identifier for ECDSA P-256 with SHA-256.

	// Authenticator data flags (WebAuthn §6.1).
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40

	credentialIDLength = 32
	aaguidLength       = 16

	// WebAuthn §5.4.3: a user handle is 1 to 64 bytes; browsers throw otherwise.
	maxUserHandleLength = 64

	// errExcluded is what Register returns when the options exclude a credential
	// it holds; a browser reports this as InvalidStateError.
	errExcluded = constError("softauthn: authenticator holds a credential in excludeCredentials")
	// errNoCredential is what Assert returns when it holds no usable credential;
	// a browser reports this as NotAllowedError.
	errNoCredential = constError("softauthn: no credential for this RP id")
)

// constError lets the sentinel errors be constants, so the package has no
// mutable globals.
type constError string

func (e constError) Error() string { return string(e) }

// Authenticator holds resident ES256 credentials. It is safe for concurrent
// use; create it with New.
type Authenticator struct {
	mu sync.Mutex
	// creds is in creation order, so the last match is the most recent.
	creds []*credential
}

type credential struct {
	id         []byte
	key        *ecdsa.PrivateKey
	rpID       string
	userHandle []byte
	signCount  uint32
}

// New returns an authenticator holding no credentials.
func New() *Authenticator {
	return &Authenticator{}
}

// CredentialIDs returns copies of the ids of the credentials it holds, oldest
// first.
func (a *Authenticator) CredentialIDs() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([][]byte, 0, len(a.creds))
	for _, c := range a.creds {
		ids = append(ids, bytes.Clone(c.id))
	}
	return ids
}

// creationOptions is the part of PublicKeyCredentialCreationOptionsJSON an
// authenticator acts on; the rest (timeout, attestation, hints...) is ignored.
type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	PubKeyCredParams   []credParam  `json:"pubKeyCredParams"`
	ExcludeCredentials []descriptor `json:"excludeCredentials"`
}

// requestOptions is the part of PublicKeyCredentialRequestOptionsJSON an
// authenticator acts on. userVerification is ignored: it always verifies.
type requestOptions struct {
	Challenge        string       `json:"challenge"`
	RPID             string       `json:"rpId"`
	AllowCredentials []descriptor `json:"allowCredentials"`
}

type credParam struct {
	Type string `json:"type"`
	Alg  int64  `json:"alg"`
}

type descriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type registrationResponse struct {
	ID                      string              `json:"id"`
	RawID                   string              `json:"rawId"`
	Type                    string              `json:"type"`
	Response                attestationResponse `json:"response"`
	ClientExtensionResults  struct{}            `json:"clientExtensionResults"`
	AuthenticatorAttachment string              `json:"authenticatorAttachment"`
}

type attestationResponse struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AttestationObject  string   `json:"attestationObject"`
	Transports         []string `json:"transports"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm"`
	PublicKey          string   `json:"publicKey"`
	AuthenticatorData  string   `json:"authenticatorData"`
}

type authenticationResponse struct {
	ID                      string            `json:"id"`
	RawID                   string            `json:"rawId"`
	Type                    string            `json:"type"`
	Response                assertionResponse `json:"response"`
	ClientExtensionResults  struct{}          `json:"clientExtensionResults"`
	AuthenticatorAttachment string            `json:"authenticatorAttachment"`
}

type assertionResponse struct {
	ClientDataJSON    string `json:"clientDataJSON"`
	AuthenticatorData string `json:"authenticatorData"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle"`
}

// clientData is CollectedClientData; the field order is the order browsers
// serialise it in.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// Register answers PublicKeyCredentialCreationOptionsJSON as
// navigator.credentials.create would at origin. It makes a new resident ES256
// credential for rp.id and user.id (replacing one it holds for the same pair,
// as passkey providers do) and returns the RegistrationResponseJSON.
//
// It refuses options that exclude a credential it holds, options that do not
// allow ES256, and malformed options. The options may also be wrapped as
// {"publicKey": ...}, the shape go-webauthn marshals a CredentialCreation in.
func (a *Authenticator) Register(optionsJSON []byte, origin string) ([]byte, error) {
	var opts creationOptions
	if err := decodeOptions(optionsJSON, &opts); err != nil {
		return nil, fmt.Errorf("softauthn: register: %w", err)
	}
	challenge, err := decodeChallenge(opts.Challenge)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: %w", err)
	}
	rpID, err := effectiveRPID(opts.RP.ID, origin)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: %w", err)
	}
	userHandle, err := decodeB64URL(opts.User.ID)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: user.id: %w", err)
	}
	if len(userHandle) == 0 || len(userHandle) > maxUserHandleLength {
		return nil, fmt.Errorf("softauthn: register: user.id is %d bytes, want 1 to %d", len(userHandle), maxUserHandleLength)
	}
	// An empty list means the browser's default, which includes ES256.
	if len(opts.PubKeyCredParams) > 0 && !slices.Contains(opts.PubKeyCredParams, credParam{Type: publicKeyType, Alg: algES256}) {
		return nil, errors.New("softauthn: register: pubKeyCredParams does not allow ES256 (-7)")
	}
	excluded := make([][]byte, 0, len(opts.ExcludeCredentials))
	for i, d := range opts.ExcludeCredentials {
		id, err := decodeB64URL(d.ID)
		if err != nil {
			return nil, fmt.Errorf("softauthn: register: excludeCredentials[%d].id: %w", i, err)
		}
		excluded = append(excluded, id)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: generate key: %w", err)
	}
	cred := &credential{
		id:         make([]byte, credentialIDLength),
		key:        key,
		rpID:       rpID,
		userHandle: userHandle,
	}
	if _, err := rand.Read(cred.id); err != nil {
		return nil, fmt.Errorf("softauthn: register: credential id: %w", err)
	}
	coseKey, err := coseES256Key(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: marshal public key: %w", err)
	}

	// Attested credential data (§6.5.2): an all-zero AAGUID, as "none"
	// attestation reports, then the id and the COSE key.
	authData := authenticatorData(rpID, flagUP|flagUV|flagAT, 0)
	authData = append(authData, make([]byte, aaguidLength)...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(cred.id)))
	authData = append(authData, cred.id...)
	authData = append(authData, coseKey...)

	// Attestation object {"fmt":"none","attStmt":{},"authData":...} with its
	// keys in CTAP2 canonical order (shorter first).
	attObj := cborMapHead(nil, 3)
	attObj = cborTextString(attObj, "fmt")
	attObj = cborTextString(attObj, "none")
	attObj = cborTextString(attObj, "attStmt")
	attObj = cborMapHead(attObj, 0)
	attObj = cborTextString(attObj, "authData")
	attObj = cborByteString(attObj, authData)

	cdj, err := clientDataJSON("webauthn.create", challenge, origin)
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: %w", err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range excluded {
		if c := a.find(rpID, id); c != nil {
			return nil, fmt.Errorf("%w: %s", errExcluded, b64(id))
		}
	}
	a.creds = slices.DeleteFunc(a.creds, func(c *credential) bool {
		return c.rpID == rpID && bytes.Equal(c.userHandle, userHandle)
	})
	a.creds = append(a.creds, cred)

	out, err := json.Marshal(registrationResponse{
		ID:    b64(cred.id),
		RawID: b64(cred.id),
		Type:  publicKeyType,
		Response: attestationResponse{
			ClientDataJSON:     b64(cdj),
			AttestationObject:  b64(attObj),
			Transports:         []string{"internal"},
			PublicKeyAlgorithm: algES256,
			PublicKey:          b64(spki),
			AuthenticatorData:  b64(authData),
		},
		AuthenticatorAttachment: "platform",
	})
	if err != nil {
		return nil, fmt.Errorf("softauthn: register: marshal response: %w", err)
	}
	return out, nil
}

// assertion holds the tampering AssertOptions ask for.
type assertion struct {
	rpID         *string
	signCount    *uint32
	badSignature bool
	challenge    *string
}

// AssertOption tampers with one assertion, so tests can check that a relying
// party refuses it. It never changes what the authenticator stores.
type AssertOption func(*assertion)

// WithRPID hashes rpID into authenticatorData instead of the options' rpId: a
// wrong RP id. The credential is still chosen by the options' rpId.
func WithRPID(rpID string) AssertOption {
	return func(as *assertion) { as.rpID = &rpID }
}

// WithSignCount uses n as the signature counter instead of incrementing the
// stored one, e.g. a counter regression as from a cloned authenticator.
func WithSignCount(n uint32) AssertOption {
	return func(as *assertion) { as.signCount = &n }
}

// WithBadSignature flips a bit of the signature. It flips the last byte, part
// of the S integer, so the DER stays well formed and only the check fails.
func WithBadSignature() AssertOption {
	return func(as *assertion) { as.badSignature = true }
}

// WithChallenge puts b64url, verbatim, in clientDataJSON instead of the
// options' challenge.
func WithChallenge(b64url string) AssertOption {
	return func(as *assertion) { as.challenge = &b64url }
}

// Assert answers PublicKeyCredentialRequestOptionsJSON as
// navigator.credentials.get would at origin and returns the
// AuthenticationResponseJSON. It uses the first credential named in
// allowCredentials that it holds for rpId or, when allowCredentials is empty,
// its most recent credential for rpId; it increments that credential's sign
// count and signs with it. Like Register it also accepts {"publicKey": ...}.
func (a *Authenticator) Assert(optionsJSON []byte, origin string, opts ...AssertOption) ([]byte, error) {
	var as assertion
	for _, o := range opts {
		if o != nil {
			o(&as)
		}
	}
	var req requestOptions
	if err := decodeOptions(optionsJSON, &req); err != nil {
		return nil, fmt.Errorf("softauthn: assert: %w", err)
	}
	challenge, err := decodeChallenge(req.Challenge)
	if err != nil {
		return nil, fmt.Errorf("softauthn: assert: %w", err)
	}
	if as.challenge != nil {
		challenge = *as.challenge
	}
	rpID, err := effectiveRPID(req.RPID, origin)
	if err != nil {
		return nil, fmt.Errorf("softauthn: assert: %w", err)
	}
	allowed := make([][]byte, 0, len(req.AllowCredentials))
	for i, d := range req.AllowCredentials {
		id, err := decodeB64URL(d.ID)
		if err != nil {
			return nil, fmt.Errorf("softauthn: assert: allowCredentials[%d].id: %w", i, err)
		}
		allowed = append(allowed, id)
	}
	cdj, err := clientDataJSON("webauthn.get", challenge, origin)
	if err != nil {
		return nil, fmt.Errorf("softauthn: assert: %w", err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	cred := a.pick(rpID, allowed)
	if cred == nil {
		return nil, fmt.Errorf("%w %q", errNoCredential, rpID)
	}
	count := cred.signCount + 1
	if as.signCount != nil {
		count = *as.signCount
	}
	hashedRPID := rpID
	if as.rpID != nil {
		hashedRPID = *as.rpID
	}
	authData := authenticatorData(hashedRPID, flagUP|flagUV, count)
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(slices.Concat(authData, cdHash[:]))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("softauthn: assert: sign: %w", err)
	}
	if as.badSignature {
		sig[len(sig)-1] ^= 0x01
	}

	out, err := json.Marshal(authenticationResponse{
		ID:    b64(cred.id),
		RawID: b64(cred.id),
		Type:  publicKeyType,
		Response: assertionResponse{
			ClientDataJSON:    b64(cdj),
			AuthenticatorData: b64(authData),
			Signature:         b64(sig),
			UserHandle:        b64(cred.userHandle),
		},
		AuthenticatorAttachment: "platform",
	})
	if err != nil {
		return nil, fmt.Errorf("softauthn: assert: marshal response: %w", err)
	}
	// Only a genuine assertion advances the stored counter: a tampered one
	// must not change what the next untampered assertion looks like.
	if as.signCount == nil {
		cred.signCount = count
	}
	return out, nil
}

// find returns the credential with id for rpID, or nil. a.mu must be held.
func (a *Authenticator) find(rpID string, id []byte) *credential {
	for _, c := range a.creds {
		if c.rpID == rpID && bytes.Equal(c.id, id) {
			return c
		}
	}
	return nil
}

// pick chooses the credential an assertion uses. a.mu must be held.
func (a *Authenticator) pick(rpID string, allowed [][]byte) *credential {
	if len(allowed) > 0 {
		for _, id := range allowed {
			if c := a.find(rpID, id); c != nil {
				return c
			}
		}
		return nil
	}
	for i := len(a.creds) - 1; i >= 0; i-- {
		if a.creds[i].rpID == rpID {
			return a.creds[i]
		}
	}
	return nil
}

// decodeOptions unmarshals options JSON into v, unwrapping {"publicKey": ...}
// first, since go-webauthn marshals CredentialCreation/CredentialAssertion so.
func decodeOptions(data []byte, v any) error {
	var wrapper struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(data, &wrapper); err != nil {
		return fmt.Errorf("decode options: %w", err)
	}
	if len(wrapper.PublicKey) > 0 && !bytes.Equal(wrapper.PublicKey, []byte("null")) {
		data = wrapper.PublicKey
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode options: %w", err)
	}
	return nil
}

// decodeChallenge checks the options' challenge and returns it as a browser
// puts it in clientDataJSON: the decoded bytes re-encoded as unpadded
// base64url, which is the given string when it was unpadded.
func decodeChallenge(s string) (string, error) {
	raw, err := decodeB64URL(s)
	if err != nil {
		return "", fmt.Errorf("challenge: %w", err)
	}
	if len(raw) == 0 {
		return "", errors.New("challenge is missing")
	}
	return b64(raw), nil
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("not base64url: %w", err)
	}
	return b, nil
}

func b64(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// effectiveRPID is rpID or, when the options leave it out, the origin's host,
// which is the default a browser applies.
func effectiveRPID(rpID, origin string) (string, error) {
	if rpID != "" {
		return rpID, nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("no rp id and origin %q does not parse: %w", origin, err)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("no rp id and origin %q has no host", origin)
	}
	return u.Hostname(), nil
}

// authenticatorData is rpIdHash || flags || signCount (§6.1), without
// attested credential data.
func authenticatorData(rpID string, flags byte, signCount uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	b := append(h[:], flags)
	return binary.BigEndian.AppendUint32(b, signCount)
}

// clientDataJSON serialises CollectedClientData without HTML escaping, as a
// browser does, and without the newline json.Encoder appends.
func clientDataJSON(typ, challenge, origin string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(clientData{Type: typ, Challenge: challenge, Origin: origin}); err != nil {
		return nil, fmt.Errorf("marshal client data: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// coseES256Key encodes pub as a COSE_Key (RFC 9053 §7.1.1):
// {1:2 (EC2), 3:-7 (ES256), -1:1 (P-256), -2:x, -3:y}, keys in canonical order.
func coseES256Key(pub *ecdsa.PublicKey) ([]byte, error) {
	point, err := pub.Bytes() // 0x04 || x || y, each coordinate 32 bytes
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	if len(point) != 65 {
		return nil, fmt.Errorf("encode public key: uncompressed point is %d bytes, want 65", len(point))
	}
	b := cborMapHead(nil, 5)
	b = cborInt(b, 1)
	b = cborInt(b, 2)
	b = cborInt(b, 3)
	b = cborInt(b, algES256)
	b = cborInt(b, -1)
	b = cborInt(b, 1)
	b = cborInt(b, -2)
	b = cborByteString(b, point[1:33])
	b = cborInt(b, -3)
	b = cborByteString(b, point[33:])
	return b, nil
}
