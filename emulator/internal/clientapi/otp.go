package clientapi

import (
	"encoding/base64"
	"net/http"
	"strings"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// One-time codes through the Client API (the browser SDK's email, sms and whatsapp
// modules): enrol an address, challenge the enrolled one, verify the code. The code goes
// to the outbox as every other code does.

type enrollOTPRequest struct {
	Email       string `json:"email"`
	PhoneNumber string `json:"phoneNumber"`
}

type enrollOTPResponse struct {
	UserAuthenticatorID string `json:"userAuthenticatorId"`
	UserID              string `json:"userId"`
}

// EnrollEmailOTP serves POST /v1/client/user-authenticators/email-otp {email}.
func (a *API) EnrollEmailOTP(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.enrollOTP(w, r, c, vocab.MethodEmailOTP)
}

// EnrollSMS serves POST /v1/client/user-authenticators/sms {phoneNumber}.
func (a *API) EnrollSMS(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.enrollOTP(w, r, c, vocab.MethodSMS)
}

func (a *API) enrollOTP(w http.ResponseWriter, r *http.Request, c caller, m vocab.Method) error {
	k, err := needToken(c)
	if err != nil {
		return err
	}
	var req enrollOTPRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	code := state.ClientCode{Method: m, MayAdd: c.mayAdd()}
	if m == vocab.MethodEmailOTP {
		code.Email = vocab.NormalizeEmail(req.Email)
		if err := vocab.ValidateEmail(code.Email); err != nil {
			return httpjson.BadRequest("email: %s", err)
		}
	} else {
		code.PhoneNumber = strings.TrimSpace(req.PhoneNumber)
		if err := vocab.ValidatePhone(code.PhoneNumber); err != nil {
			return httpjson.BadRequest("phoneNumber: %s", err)
		}
	}
	sent, err := a.store.SendClientCode(r.Context(), k, code)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, enrollOTPResponse{UserAuthenticatorID: sent.AuthenticatorID, UserID: k.UserID})
}

type challengeResponse struct {
	ChallengeID string `json:"challengeId"`
}

// ChallengeEmailOTP serves POST /v1/client/challenge/email-otp: a code to the enrolled email.
func (a *API) ChallengeEmailOTP(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.challengeOTP(w, r, c, vocab.MethodEmailOTP)
}

// ChallengeSMS serves POST /v1/client/challenge/sms.
func (a *API) ChallengeSMS(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.challengeOTP(w, r, c, vocab.MethodSMS)
}

// ChallengeWhatsApp serves POST /v1/client/challenge/whatsapp.
func (a *API) ChallengeWhatsApp(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.challengeOTP(w, r, c, vocab.MethodWhatsApp)
}

func (a *API) challengeOTP(w http.ResponseWriter, r *http.Request, c caller, m vocab.Method) error {
	k, err := needToken(c)
	if err != nil {
		return err
	}
	var ignored struct{} // the SDK sends no body; the docs allow {userAuthenticatorId}
	if err := httpjson.Decode(w, r, &ignored, true); err != nil {
		return err
	}
	sent, err := a.store.SendClientCode(r.Context(), k, state.ClientCode{Method: m})
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, challengeResponse{ChallengeID: sent.ChallengeID})
}

type verifyOTPRequest struct {
	VerificationCode string `json:"verificationCode"`
}

type verifyResponse struct {
	IsVerified        bool                `json:"isVerified"`
	AccessToken       string              `json:"accessToken,omitempty"`
	FailureReason     vocab.FailureReason `json:"failureReason,omitempty"`
	UserAuthenticator *userAuthenticator  `json:"userAuthenticator,omitempty"`
}

// VerifyEmailOTP serves POST /v1/client/verify/email-otp {verificationCode}.
func (a *API) VerifyEmailOTP(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.verifyOTP(w, r, c, vocab.MethodEmailOTP)
}

// VerifySMS serves POST /v1/client/verify/sms.
func (a *API) VerifySMS(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.verifyOTP(w, r, c, vocab.MethodSMS)
}

// VerifyWhatsApp serves POST /v1/client/verify/whatsapp.
func (a *API) VerifyWhatsApp(w http.ResponseWriter, r *http.Request, c caller) error {
	return a.verifyOTP(w, r, c, vocab.MethodWhatsApp)
}

// verifyOTP answers a wrong code with 200 and isVerified false, as the real API does;
// the SDK then shows failureReason.
func (a *API) verifyOTP(w http.ResponseWriter, r *http.Request, c caller, m vocab.Method) error {
	k, err := needToken(c)
	if err != nil {
		return err
	}
	var req verifyOTPRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	code := strings.TrimSpace(req.VerificationCode)
	if code == "" {
		return httpjson.BadRequest("verificationCode is required.")
	}
	v, err := a.store.VerifyClientCode(r.Context(), k, m, code)
	if err != nil {
		return err
	}
	if v.Refused != "" {
		return &httpjson.Error{Status: http.StatusBadRequest, Code: httpjson.CodeInvalidRequest, Description: "The app's action.verify webhook refused this verification."}
	}
	out := verifyResponse{IsVerified: v.Verified, FailureReason: v.FailureReason}
	if v.Verified {
		if out.AccessToken, err = a.accessToken(k, c, ""); err != nil {
			return err
		}
		if v.Authenticator != nil {
			j := maskedAuthenticatorJSON(*v.Authenticator, nil)
			out.UserAuthenticator = &j
		}
	}
	return httpjson.Write(w, http.StatusOK, out)
}

// userAuthenticator is the Client API's authenticator, with its address masked (the
// browser has no need for the whole of it).
type userAuthenticator struct {
	UserAuthenticatorID string              `json:"userAuthenticatorId"`
	VerificationMethod  vocab.Method        `json:"verificationMethod"`
	Email               string              `json:"email,omitempty"`
	PhoneNumber         string              `json:"phoneNumber,omitempty"`
	CreatedAt           string              `json:"createdAt"`
	VerifiedAt          string              `json:"verifiedAt,omitempty"`
	LastVerifiedAt      string              `json:"lastVerifiedAt,omitempty"`
	IsDefault           bool                `json:"isDefault"`
	WebauthnCredential  *webauthnCredential `json:"webauthnCredential,omitempty"`
}

type webauthnCredential struct {
	CredentialID string `json:"credentialId"` // base64url, without padding
	Name         string `json:"name"`
	AAGUID       string `json:"aaguid,omitempty"`
}

func maskedAuthenticatorJSON(au state.Authenticator, p *state.Passkey) userAuthenticator {
	j := userAuthenticator{UserAuthenticatorID: au.ID, VerificationMethod: au.Method, Email: vocab.MaskEmail(au.Email), PhoneNumber: vocab.MaskPhone(au.PhoneNumber),
		CreatedAt: vocab.FormatTime(au.CreatedAt), VerifiedAt: vocab.FormatOptionalTime(au.VerifiedAt), LastVerifiedAt: vocab.FormatOptionalTime(au.LastVerifiedAt), IsDefault: au.IsDefault}
	if p != nil {
		j.WebauthnCredential = &webauthnCredential{CredentialID: base64.RawURLEncoding.EncodeToString(p.CredentialID), Name: p.Name, AAGUID: p.AAGUID}
	}
	return j
}

// Authenticators serves GET /v1/client/user-authenticators: the token's user's
// authenticators, masked.
func (a *API) Authenticators(w http.ResponseWriter, r *http.Request, c caller) error {
	k, err := needToken(c)
	if err != nil {
		return err
	}
	auths, err := a.store.Authenticators(r.Context(), k.UserID)
	if err != nil {
		return err
	}
	passkeys, err := a.store.Passkeys(r.Context(), k.UserID)
	if err != nil {
		return err
	}
	out := make([]userAuthenticator, 0, len(auths))
	for _, au := range auths {
		var p *state.Passkey
		if pk, ok := passkeys[au.ID]; ok {
			p = &pk
		}
		out = append(out, maskedAuthenticatorJSON(au, p))
	}
	return httpjson.Write(w, http.StatusOK, out)
}
