// Package passkey is the emulator's WebAuthn relying party: the options the Client API
// sends and the checks of the credentials that come back, with go-webauthn.
package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"example.com/passwordless/emulator/internal/state"
)

// RP is one relying party: an id (a domain, never an IP address) and the origins its
// pages are served from.
type RP struct {
	w *webauthn.WebAuthn
}

// timeout is how long the browser offers the ceremony (the options' timeout).
const timeout = 5 * time.Minute

// New returns the relying party rpID, with the origins whose ceremonies it accepts, and
// the top origins that may frame one (the apps framing the pre-built UI in a popup: a
// passkey used in that frame is a cross-origin ceremony).
func New(rpID, rpName string, origins, topOrigins []string) (*RP, error) {
	w, err := webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: rpName, RPOrigins: origins,
		RPAllowCrossOrigin: len(topOrigins) > 0, RPTopOrigins: topOrigins, RPTopOriginVerificationMode: protocol.TopOriginExplicitVerificationMode,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: false, Timeout: timeout},
			Registration: webauthn.TimeoutConfig{Enforce: false, Timeout: timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey relying party: %w", err)
	}
	return &RP{w: w}, nil
}

// User is whom a passkey is for: the WebAuthn user handle is the user id.
type User struct {
	ID, Name, DisplayName string
	Passkeys              []state.Passkey
}

func (u User) WebAuthnID() []byte          { return []byte(u.ID) }
func (u User) WebAuthnName() string        { return u.Name }
func (u User) WebAuthnDisplayName() string { return u.DisplayName }
func (u User) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.Passkeys))
	for _, p := range u.Passkeys {
		out = append(out, credential(p))
	}
	return out
}

func credential(p state.Passkey) webauthn.Credential {
	c := webauthn.Credential{ID: p.CredentialID, PublicKey: p.PublicKey, Authenticator: webauthn.Authenticator{SignCount: p.SignCount}}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// ErrCredential is a credential that fails the relying party's checks: a bad signature,
// another origin or relying party, another challenge, a malformed answer.
var ErrCredential = errors.New("the passkey's answer failed verification")

// Options are a ceremony's options for the browser (the bare WebAuthn JSON the browser
// SDK hands to navigator.credentials) and the session that checks the answer.
type Options struct {
	JSON    json.RawMessage
	Session []byte
}

// RegistrationOptions are the options to create a passkey for u: resident, user
// verification preferred, no attestation, the user's passkeys excluded.
func (rp *RP) RegistrationOptions(u User, attachment string) (Options, error) {
	sel := protocol.AuthenticatorSelection{
		RequireResidentKey: protocol.ResidentKeyRequired(),
		ResidentKey:        protocol.ResidentKeyRequirementRequired,
		UserVerification:   protocol.VerificationPreferred,
	}
	if attachment != "" {
		sel.AuthenticatorAttachment = protocol.AuthenticatorAttachment(attachment)
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.WebAuthnCredentials() {
		exclude = append(exclude, c.Descriptor())
	}
	creation, session, err := rp.w.BeginRegistration(u, webauthn.WithAuthenticatorSelection(sel),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation), webauthn.WithExclusions(exclude))
	if err != nil {
		return Options{}, fmt.Errorf("registration options: %w", err)
	}
	if creation.Response.CredentialExcludeList == nil {
		creation.Response.CredentialExcludeList = []protocol.CredentialDescriptor{} // the mobile SDKs need the key
	}
	return options(creation.Response, session)
}

// AuthenticationOptions are the options to sign in: with u's passkeys, or with any
// discoverable one when u is nil.
func (rp *RP) AuthenticationOptions(u *User) (Options, error) {
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	uv := webauthn.WithUserVerification(protocol.VerificationPreferred)
	if u == nil {
		assertion, session, err = rp.w.BeginDiscoverableLogin(uv)
	} else {
		assertion, session, err = rp.w.BeginLogin(u, uv)
	}
	if err != nil {
		return Options{}, fmt.Errorf("authentication options: %w", err)
	}
	if assertion.Response.AllowedCredentials == nil {
		assertion.Response.AllowedCredentials = []protocol.CredentialDescriptor{} // the mobile SDKs need the key
	}
	return options(assertion.Response, session)
}

func options(v any, session *webauthn.SessionData) (Options, error) {
	// The state layer keeps the expiry, by the emulator's clock; go-webauthn's would use
	// the wall clock.
	session.Expires = time.Time{}
	js, err := json.Marshal(v)
	if err != nil {
		return Options{}, fmt.Errorf("encode options: %w", err)
	}
	ss, err := json.Marshal(session)
	if err != nil {
		return Options{}, fmt.Errorf("encode session: %w", err)
	}
	return Options{JSON: js, Session: ss}, nil
}

func session(raw []byte) (webauthn.SessionData, error) {
	var s webauthn.SessionData
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("decode session: %w", err)
	}
	return s, nil
}

// Register checks a registration answer (the browser's RegistrationResponseJSON) against
// its session and returns the new passkey.
func (rp *RP) Register(rawSession []byte, u User, answer json.RawMessage) (state.Passkey, error) {
	s, err := session(rawSession)
	if err != nil {
		return state.Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return state.Passkey{}, fmt.Errorf("%w: %s", ErrCredential, describe(err))
	}
	c, err := rp.w.CreateCredential(u, s, parsed)
	if err != nil {
		return state.Passkey{}, fmt.Errorf("%w: %s", ErrCredential, describe(err))
	}
	p := state.Passkey{CredentialID: c.ID, PublicKey: c.PublicKey, SignCount: c.Authenticator.SignCount, AAGUID: aaguid(c.Authenticator.AAGUID)}
	for _, t := range c.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	return p, nil
}

// Assertion is a checked sign-in answer: which credential signed, and its counter (the
// state checks that it went up).
type Assertion struct {
	CredentialID []byte
	SignCount    uint32
}

// CredentialID reads which credential an authentication answer is from, before it is
// checked, so the caller can look the passkey up.
func CredentialID(answer json.RawMessage) ([]byte, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrCredential, describe(err))
	}
	return parsed.RawID, nil
}

// Authenticate checks an authentication answer against its session, signed by owner's
// passkey p.
func (rp *RP) Authenticate(rawSession []byte, owner User, p state.Passkey, answer json.RawMessage) (Assertion, error) {
	s, err := session(rawSession)
	if err != nil {
		return Assertion{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %s", ErrCredential, describe(err))
	}
	owner.Passkeys = []state.Passkey{p}
	if len(s.UserID) == 0 {
		_, err = rp.w.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if string(userHandle) != owner.ID {
				return nil, errors.New("the user handle is not the passkey's user")
			}
			return owner, nil
		}, s, parsed)
	} else {
		_, err = rp.w.ValidateLogin(owner, s, parsed)
	}
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %s", ErrCredential, describe(err))
	}
	return Assertion{CredentialID: parsed.RawID, SignCount: parsed.Response.AuthenticatorData.Counter}, nil
}

// describe is go-webauthn's error with its details, which say which check failed.
func describe(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return pe.Details + ": " + pe.DevInfo
	}
	return err.Error()
}

func aaguid(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
