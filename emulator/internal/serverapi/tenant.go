package serverapi

import (
	"net/http"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/vocab"
)

// authenticatorConfiguration is one of the tenant's configured authenticators (docs:
// api-reference/server-api/get-authenticator-configurations).
type authenticatorConfiguration struct {
	AuthenticatorID    string       `json:"authenticatorId"`
	VerificationMethod vocab.Method `json:"verificationMethod"`
	IsActive           bool         `json:"isActive"`
	SMSChannel         string       `json:"smsChannel,omitempty"`
}

// tenantAuthenticators are the emulated tenant's: email OTP, SMS (by default as SMS),
// WhatsApp, authenticator apps, email magic links and passkeys, all active, always
// (vocab.AllowedMethods).
// The ids are fixed, so tests can rely on them.
var tenantAuthenticators = []authenticatorConfiguration{
	{AuthenticatorID: "emulator-email-otp", VerificationMethod: vocab.MethodEmailOTP, IsActive: true},
	{AuthenticatorID: "emulator-sms", VerificationMethod: vocab.MethodSMS, IsActive: true, SMSChannel: "DEFAULT"},
	{AuthenticatorID: "emulator-whatsapp", VerificationMethod: vocab.MethodWhatsApp, IsActive: true},
	{AuthenticatorID: "emulator-authenticator-app", VerificationMethod: vocab.MethodAuthenticatorApp, IsActive: true},
	{AuthenticatorID: "emulator-email-magic-link", VerificationMethod: vocab.MethodEmailMagicLink, IsActive: true},
	{AuthenticatorID: "emulator-passkey", VerificationMethod: vocab.MethodPasskey, IsActive: true},
}

// AuthenticatorConfigurations serves GET /v1/authenticators.
func (a *API) AuthenticatorConfigurations(w http.ResponseWriter, r *http.Request) error {
	return httpjson.Write(w, http.StatusOK, tenantAuthenticators)
}
