package clientapi

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/passkey"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// Passkeys through the Client API (the browser SDK's passkey module): registration with a
// token, sign-in with a token or discoverable with the tenant id, and the lookup behind
// isAvailableOnDevice. Options are answered as {challengeId, options}, options being the
// bare WebAuthn JSON the SDK hands to the browser.

type optionsResponse struct {
	ChallengeID string          `json:"challengeId"`
	Options     json.RawMessage `json:"options"`
}

type registrationOptionsRequest struct {
	Username                string `json:"username"`
	DisplayName             string `json:"displayName"`
	AuthenticatorAttachment string `json:"authenticatorAttachment"`
}

// passkeyUser is the token's user as the relying party sees them, with their passkeys.
func (a *API) passkeyUser(r *http.Request, userID, username, displayName string) (passkey.User, error) {
	u, _, err := a.store.User(r.Context(), userID)
	if err != nil {
		return passkey.User{}, err
	}
	if username == "" && u != nil {
		username = cmp.Or(u.Username, u.Email, u.PhoneNumber)
	}
	if displayName == "" && u != nil {
		displayName = u.DisplayName
	}
	username = cmp.Or(username, userID)
	pks, err := a.store.Passkeys(r.Context(), userID)
	if err != nil {
		return passkey.User{}, err
	}
	out := passkey.User{ID: userID, Name: username, DisplayName: cmp.Or(displayName, username)}
	for _, p := range pks {
		out.Passkeys = append(out.Passkeys, p)
	}
	return out, nil
}

// RegistrationOptions serves POST /v1/client/user-authenticators/passkey/registration-options.
func (a *API) RegistrationOptions(w http.ResponseWriter, r *http.Request, c caller) error {
	k, err := needToken(c)
	if err != nil {
		return err
	}
	var req registrationOptionsRequest
	if err := httpjson.Decode(w, r, &req, true); err != nil {
		return err
	}
	switch req.AuthenticatorAttachment {
	case "", "platform", "cross-platform":
	default:
		return httpjson.BadRequest("authenticatorAttachment must be platform or cross-platform.")
	}
	if err := httpjson.CheckLengths("username", req.Username, "displayName", req.DisplayName); err != nil {
		return err
	}
	if err := a.store.CheckClientAction(r.Context(), k); err != nil {
		return err
	}
	auths, err := a.store.Authenticators(r.Context(), k.UserID)
	if err != nil {
		return err
	}
	// Refused here already, so the browser does not make a passkey that cannot be added.
	if len(auths) > 0 && !c.mayAdd() {
		return &httpjson.Error{Status: http.StatusForbidden, Code: httpjson.CodeUnauthorized,
			Description: "The user is already enrolled: adding a passkey needs a token with the add:authenticators scope."}
	}
	u, err := a.passkeyUser(r, k.UserID, req.Username, req.DisplayName)
	if err != nil {
		return err
	}
	rp, err := a.relyingParty(r)
	if err != nil {
		return err
	}
	opts, err := rp.RegistrationOptions(u, req.AuthenticatorAttachment)
	if err != nil {
		return err
	}
	cer, err := a.store.StartCeremony(r.Context(), state.CeremonyRegistration, k, opts.Session)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, optionsResponse{ChallengeID: cer.ID, Options: opts.JSON})
}

type addPasskeyRequest struct {
	ChallengeID            string          `json:"challengeId"`
	RegistrationCredential json.RawMessage `json:"registrationCredential"`
	ConditionalCreate      bool            `json:"conditionalCreate"`
}

type addPasskeyResponse struct {
	IsVerified          bool                        `json:"isVerified"`
	AccessToken         string                      `json:"accessToken,omitempty"`
	UserAuthenticatorID string                      `json:"userAuthenticatorId,omitempty"`
	UserID              string                      `json:"userId,omitempty"`
	UserAuthenticator   *httpjson.UserAuthenticator `json:"userAuthenticator,omitempty"`
}

// AddPasskey serves POST /v1/client/user-authenticators/passkey: the new credential is
// checked against its options, stored, and the token's action succeeds.
func (a *API) AddPasskey(w http.ResponseWriter, r *http.Request, c caller) error {
	k, err := needToken(c)
	if err != nil {
		return err
	}
	var req addPasskeyRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.ChallengeID == "" || len(req.RegistrationCredential) == 0 {
		return httpjson.BadRequest("challengeId and registrationCredential are required.")
	}
	cer, err := a.store.FindCeremony(r.Context(), req.ChallengeID, state.CeremonyRegistration)
	if err != nil {
		return err
	}
	if cer.ActionKey != k {
		return httpjson.BadRequest("This challenge belongs to another action.")
	}
	u, err := a.passkeyUser(r, k.UserID, "", "")
	if err != nil {
		return err
	}
	rp, err := a.relyingParty(r)
	if err != nil {
		return err
	}
	p, err := rp.Register(cer.Session, u, req.RegistrationCredential)
	if err != nil {
		return a.credentialRefused(r, cer.ID, err)
	}
	au, err := a.store.AddPasskey(r.Context(), k, state.NewPasskey{CeremonyID: cer.ID, Passkey: p, MayAdd: c.mayAdd()})
	var refusal *state.Error
	if errors.As(err, &refusal) {
		// The refusal rolled the taking of the ceremony back: its challenge is used all the same.
		if dropErr := a.store.DropCeremony(r.Context(), cer.ID); dropErr != nil && !state.IsKind(dropErr, state.NotFound) {
			return dropErr
		}
	}
	if err != nil {
		return err
	}
	tok, err := a.accessToken(k, c, "")
	if err != nil {
		return err
	}
	j := httpjson.Authenticator(au, &p, true)
	return httpjson.Write(w, http.StatusOK, addPasskeyResponse{IsVerified: true, AccessToken: tok, UserAuthenticatorID: au.ID, UserID: k.UserID, UserAuthenticator: &j})
}

// credentialRefused ends the ceremony of an answer that failed its checks (its
// challenge is not answerable twice) and answers invalid_credential.
func (a *API) credentialRefused(r *http.Request, ceremonyID string, err error) error {
	if !errors.Is(err, passkey.ErrCredential) {
		return err
	}
	a.log.Info("client API: passkey refused", "challenge_id", ceremonyID, "reason", err.Error())
	if dropErr := a.store.DropCeremony(r.Context(), ceremonyID); dropErr != nil && !state.IsKind(dropErr, state.NotFound) {
		return dropErr
	}
	return &httpjson.Error{Status: http.StatusBadRequest, Code: httpjson.CodeInvalidCredential, Description: "The passkey could not be verified: " + err.Error()}
}

type challengeRequest struct {
	Action string `json:"action"`
}

// Challenge serves POST /v1/client/challenge {action}: the start of a passkey sign-in
// with the tenant id only, before anyone knows who is signing in.
func (a *API) Challenge(w http.ResponseWriter, r *http.Request, c caller) error {
	var req challengeRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if err := vocab.ValidateActionCode(req.Action); err != nil {
		return httpjson.BadRequest("action: %s", err)
	}
	cer, err := a.store.StartCeremony(r.Context(), state.CeremonyAuthentication, state.ActionKey{ActionCode: req.Action}, nil)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, challengeResponse{ChallengeID: cer.ID})
}

type authenticationOptionsRequest struct {
	ChallengeID string `json:"challengeId"`
}

// defaultSignInAction names a discoverable sign-in started without POST /client/challenge
// (the SDK's signIn() with no action). [The real service's name for it is not documented.]
const defaultSignInAction = "signInWithPasskey"

// AuthenticationOptions serves POST /v1/client/user-authenticators/passkey/authentication-options:
// with a token, the token's user's passkeys; with the tenant id, any discoverable one.
func (a *API) AuthenticationOptions(w http.ResponseWriter, r *http.Request, c caller) error {
	var req authenticationOptionsRequest
	if err := httpjson.Decode(w, r, &req, true); err != nil {
		return err
	}
	var user *passkey.User
	if c.action != nil {
		if err := a.store.CheckClientAction(r.Context(), *c.action); err != nil {
			return err
		}
		u, err := a.passkeyUser(r, c.action.UserID, "", "")
		if err != nil {
			return err
		}
		if len(u.Passkeys) == 0 {
			return httpjson.BadRequest("The user has no passkey.")
		}
		user = &u
	}
	rp, err := a.relyingParty(r)
	if err != nil {
		return err
	}
	opts, err := rp.AuthenticationOptions(user)
	if err != nil {
		return err
	}
	if req.ChallengeID != "" {
		if c.action != nil {
			return httpjson.BadRequest("challengeId comes from POST /client/challenge, for a sign-in without a token.")
		}
		if err := a.store.SetCeremonySession(r.Context(), req.ChallengeID, state.CeremonyAuthentication, opts.Session); err != nil {
			return err
		}
		return httpjson.Write(w, http.StatusOK, optionsResponse{ChallengeID: req.ChallengeID, Options: opts.JSON})
	}
	k := state.ActionKey{ActionCode: defaultSignInAction}
	if c.action != nil {
		k = *c.action
	}
	cer, err := a.store.StartCeremony(r.Context(), state.CeremonyAuthentication, k, opts.Session)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, optionsResponse{ChallengeID: cer.ID, Options: opts.JSON})
}

type verifyPasskeyRequest struct {
	ChallengeID              string          `json:"challengeId"`
	AuthenticationCredential json.RawMessage `json:"authenticationCredential"`
	DeviceID                 string          `json:"deviceId"`
}

type verifyPasskeyResponse struct {
	IsVerified          bool   `json:"isVerified"`
	AccessToken         string `json:"accessToken,omitempty"`
	UserID              string `json:"userId,omitempty"`
	UserAuthenticatorID string `json:"userAuthenticatorId,omitempty"`
	Username            string `json:"username,omitempty"`
	UserDisplayName     string `json:"userDisplayName,omitempty"`
}

// VerifyPasskey serves POST /v1/client/verify/passkey: the signed challenge is checked
// and the action (the token's, or a new one of the passkey's user) succeeds.
func (a *API) VerifyPasskey(w http.ResponseWriter, r *http.Request, c caller) error {
	var req verifyPasskeyRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.ChallengeID == "" || len(req.AuthenticationCredential) == 0 {
		return httpjson.BadRequest("challengeId and authenticationCredential are required.")
	}
	if err := httpjson.CheckLengths("deviceId", req.DeviceID); err != nil {
		return err
	}
	cer, err := a.store.FindCeremony(r.Context(), req.ChallengeID, state.CeremonyAuthentication)
	if err != nil {
		return err
	}
	if cer.Session == nil {
		return httpjson.BadRequest("Ask for the authentication options of challenge %q first.", req.ChallengeID)
	}
	if c.action != nil && cer.ActionKey != *c.action {
		return httpjson.BadRequest("This challenge belongs to another action.")
	}
	credID, err := passkey.CredentialID(req.AuthenticationCredential)
	if err != nil {
		return a.credentialRefused(r, cer.ID, err)
	}
	owner, err := a.store.PasskeyByCredential(r.Context(), credID)
	if state.IsKind(err, state.NotFound) {
		// Removed here but still in the person's credential manager (docs: sdks/client/web/error-handling).
		_ = a.store.DropCeremony(r.Context(), cer.ID)
		return &httpjson.Error{Status: http.StatusBadRequest, Code: httpjson.CodeInvalidCredential, Description: "This passkey is not known: it may have been removed."}
	}
	if err != nil {
		return err
	}
	u, err := a.passkeyUser(r, owner.Authenticator.UserID, "", "")
	if err != nil {
		return err
	}
	rp, err := a.relyingParty(r)
	if err != nil {
		return err
	}
	asserted, err := rp.Authenticate(cer.Session, u, owner.Passkey, req.AuthenticationCredential)
	if err != nil {
		return a.credentialRefused(r, cer.ID, err)
	}
	in, err := a.store.SignInWithPasskey(r.Context(), state.PasskeyAssertion{CeremonyID: cer.ID, CredentialID: asserted.CredentialID,
		SignCount: asserted.SignCount, Action: c.action, DeviceID: req.DeviceID})
	if state.IsKind(err, state.Invalid) {
		// Refused in the transaction (a counter that went back, another user's passkey),
		// which rolled the taking of the ceremony back with it.
		return a.credentialRefused(r, cer.ID, fmt.Errorf("%w: %s", passkey.ErrCredential, err))
	}
	if err != nil {
		return err
	}
	username := cmp.Or(in.User.Username, in.User.Email)
	tok, err := a.accessToken(in.Action, c, username)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, verifyPasskeyResponse{IsVerified: true, AccessToken: tok, UserID: in.User.ID,
		UserAuthenticatorID: in.Authenticator.ID, Username: username, UserDisplayName: in.User.DisplayName})
}

type passkeyLookupResponse struct {
	CredentialID string `json:"credentialId"`
	VerifiedAt   string `json:"verifiedAt"`
}

// PasskeyLookup serves GET /v1/client/user-authenticators/passkey?credentialIds=a,b: 200
// with the first known one, 404 when none is (the SDK's isAvailableOnDevice reads only
// the status).
func (a *API) PasskeyLookup(w http.ResponseWriter, r *http.Request, c caller) error {
	ids := r.URL.Query().Get("credentialIds")
	if ids == "" {
		ids = r.URL.Query().Get("credentialId") // the iOS SDK's form
	}
	if ids == "" {
		return httpjson.BadRequest("credentialIds is required.")
	}
	for i, id := range strings.Split(ids, ",") {
		if i == 20 {
			break
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(id, "="))
		if err != nil {
			continue
		}
		owner, err := a.store.PasskeyByCredential(r.Context(), raw)
		if state.IsKind(err, state.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		return httpjson.Write(w, http.StatusOK, passkeyLookupResponse{CredentialID: id, VerifiedAt: vocab.FormatOptionalTime(owner.Authenticator.VerifiedAt)})
	}
	return httpjson.NotFound("None of these passkeys is known.")
}
