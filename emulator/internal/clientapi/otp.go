package clientapi

import (
	"context"
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

// Handler is a Client API handler, given its caller; Handle serves it.
type Handler func(http.ResponseWriter, *http.Request, caller) error

// EnrollOTP serves POST /v1/client/user-authenticators/email-otp {email} (m EMAIL_OTP) and
// /sms {phoneNumber} (m SMS).
func (a *API) EnrollOTP(m vocab.Method) Handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error { return a.enrollOTP(w, r, c, m) }
}

func (a *API) enrollOTP(w http.ResponseWriter, r *http.Request, c caller, m vocab.Method) error {
	var req enrollOTPRequest
	k, err := tokenRequest(w, r, c, &req, false)
	if err != nil {
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

// tokenRequest starts a call for a token's action: the action, and the body decoded into
// dst (optional: an empty body is "{}").
func tokenRequest(w http.ResponseWriter, r *http.Request, c caller, dst any, optional bool) (state.ActionKey, error) {
	k, err := needToken(c)
	if err != nil {
		return k, err
	}
	return k, httpjson.Decode(w, r, dst, optional)
}

type challengeResponse struct {
	ChallengeID string `json:"challengeId"`
}

// ChallengeOTP serves POST /v1/client/challenge/email-otp, /sms and /whatsapp: a code to
// the user's enrolled authenticator of m.
func (a *API) ChallengeOTP(m vocab.Method) Handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error { return a.challengeOTP(w, r, c, m) }
}

func (a *API) challengeOTP(w http.ResponseWriter, r *http.Request, c caller, m vocab.Method) error {
	var ignored struct{} // the SDK sends no body; the docs allow {userAuthenticatorId}
	k, err := tokenRequest(w, r, c, &ignored, true)
	if err != nil {
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
	IsVerified        bool                        `json:"isVerified"`
	AccessToken       string                      `json:"accessToken,omitempty"`
	FailureReason     vocab.FailureReason         `json:"failureReason,omitempty"`
	UserAuthenticator *httpjson.UserAuthenticator `json:"userAuthenticator,omitempty"`
}

// VerifyOTP serves POST /v1/client/verify/email-otp, /sms, /whatsapp and /totp
// {verificationCode}: the code of the action's challenge of m (for an authenticator app,
// the app being added, or else the user's).
func (a *API) VerifyOTP(m vocab.Method) Handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error { return a.verifyOTP(w, r, c, m) }
}

// verifyOTP answers a wrong code with 200 and isVerified false, as the real API does;
// the SDK then shows failureReason.
func (a *API) verifyOTP(w http.ResponseWriter, r *http.Request, c caller, m vocab.Method) error {
	var req verifyOTPRequest
	k, err := tokenRequest(w, r, c, &req, false)
	if err != nil {
		return err
	}
	code := strings.TrimSpace(req.VerificationCode)
	if code == "" {
		return httpjson.BadRequest("verificationCode is required.")
	}
	verify := a.store.VerifyClientCode
	if m == vocab.MethodAuthenticatorApp {
		verify = func(ctx context.Context, k state.ActionKey, _ vocab.Method, code string) (state.ClientVerification, error) {
			return a.store.VerifyClientTOTP(ctx, k, code)
		}
	}
	v, err := verify(r.Context(), k, m, code)
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
			j := httpjson.Authenticator(*v.Authenticator, nil, true)
			out.UserAuthenticator = &j
		}
	}
	return httpjson.Write(w, http.StatusOK, out)
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
	return httpjson.Write(w, http.StatusOK, httpjson.Authenticators(auths, passkeys, true))
}

type enrollTOTPResponse struct {
	UserAuthenticatorID string `json:"userAuthenticatorId"`
	UserID              string `json:"userId"`
	URI                 string `json:"uri"`
	Secret              string `json:"secret"`
}

// EnrollTOTP serves POST /v1/client/user-authenticators/totp (no body): a new
// authenticator app's otpauth URI and secret; its first right code enrols it.
func (a *API) EnrollTOTP(w http.ResponseWriter, r *http.Request, c caller) error {
	var ignored struct{}
	k, err := tokenRequest(w, r, c, &ignored, true)
	if err != nil {
		return err
	}
	e, err := a.store.StartClientTOTP(r.Context(), k, c.mayAdd())
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, enrollTOTPResponse{UserAuthenticatorID: e.AuthenticatorID, UserID: k.UserID, URI: e.URI, Secret: e.Secret})
}

type enrollMagicLinkRequest struct {
	Email string `json:"email"`
}

// EnrollMagicLink serves POST /v1/client/user-authenticators/email-magic-link {email}: a
// link to the address; opening it enrols it.
func (a *API) EnrollMagicLink(w http.ResponseWriter, r *http.Request, c caller) error {
	var req enrollMagicLinkRequest
	k, err := tokenRequest(w, r, c, &req, false)
	if err != nil {
		return err
	}
	email := vocab.NormalizeEmail(req.Email)
	if err := vocab.ValidateEmail(email); err != nil {
		return httpjson.BadRequest("email: %s", err)
	}
	sent, err := a.store.SendClientMagicLink(r.Context(), k, email, c.mayAdd(), a.self(r))
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, enrollOTPResponse{UserAuthenticatorID: sent.AuthenticatorID, UserID: k.UserID})
}

// ChallengeMagicLink serves POST /v1/client/challenge/email-magic-link: a link to the
// user's enrolled magic-link address.
func (a *API) ChallengeMagicLink(w http.ResponseWriter, r *http.Request, c caller) error {
	var ignored struct{}
	k, err := tokenRequest(w, r, c, &ignored, true)
	if err != nil {
		return err
	}
	sent, err := a.store.SendClientMagicLink(r.Context(), k, "", false, a.self(r))
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, challengeResponse{ChallengeID: sent.ChallengeID})
}

// FinalizeMagicLink serves POST /v1/client/verify/email-magic-link/finalize, which the SDK
// polls every second (with {}: the docs' challengeId is not sent): isVerified false until
// the link is opened, then the access token.
func (a *API) FinalizeMagicLink(w http.ResponseWriter, r *http.Request, c caller) error {
	var ignored struct{}
	k, err := tokenRequest(w, r, c, &ignored, true)
	if err != nil {
		return err
	}
	verified, au, err := a.store.MagicLinkVerified(r.Context(), k)
	if err != nil || !verified {
		if err != nil {
			return err
		}
		return httpjson.Write(w, http.StatusOK, verifyResponse{IsVerified: false})
	}
	out := verifyResponse{IsVerified: true}
	if out.AccessToken, err = a.accessToken(k, c, ""); err != nil {
		return err
	}
	if au != nil {
		j := httpjson.Authenticator(*au, nil, true)
		out.UserAuthenticator = &j
	}
	return httpjson.Write(w, http.StatusOK, out)
}
