package serverapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/vocab"
)

// The checks of request fields: each refusal names the field, as the real API's do.

// checkEmail normalizes and validates an email field.
func checkEmail(field, s string) (string, error) {
	n := vocab.NormalizeEmail(s)
	if err := vocab.ValidateEmail(n); err != nil {
		return "", httpjson.BadRequest("%s is not valid: %s.", field, err)
	}
	return n, nil
}

// checkPhone normalizes and validates a phone field a code is sent to (E.164).
func checkPhone(field, s string) (string, error) {
	n := strings.TrimSpace(s)
	if err := vocab.ValidatePhone(n); err != nil {
		return "", httpjson.BadRequest("%s is not valid: %s.", field, err)
	}
	return n, nil
}

// checkContactPhone normalizes and validates a phone field the API only records.
func checkContactPhone(field, s string) (string, error) {
	n := strings.TrimSpace(s)
	if err := vocab.ValidateContactPhone(n); err != nil {
		return "", httpjson.BadRequest("%s is not valid: %s.", field, err)
	}
	return n, nil
}

// checkRecipient checks the address a code goes to: an email for EMAIL_OTP, an E.164
// phone number for SMS and WhatsApp, each required, and returns it normalized.
func checkRecipient(m vocab.Method, email, phone string) (string, string, error) {
	if m == vocab.MethodEmailOTP || m == vocab.MethodEmailMagicLink {
		if email == "" {
			return "", "", httpjson.BadRequest("email is required for %s.", m)
		}
		e, err := checkEmail("email", email)
		return e, "", err
	}
	if phone == "" {
		return "", "", httpjson.BadRequest("phoneNumber is required for %s.", m)
	}
	p, err := checkPhone("phoneNumber", phone)
	return "", p, err
}

// checkOTPMethod checks a method the emulator can send a code for.
func checkOTPMethod(field string, m vocab.Method) error {
	switch {
	case m == "":
		return httpjson.BadRequest("%s is required (SMS, EMAIL_OTP or WHATSAPP).", field)
	case m.IsOTP():
		return nil
	case m.Known():
		return httpjson.BadRequest("%s %s is not supported by the emulator here; use SMS, EMAIL_OTP or WHATSAPP.", field, m)
	default:
		return httpjson.BadRequest("%s %q is not a known verification method.", field, m)
	}
}

// checkCustomObject checks a custom field: a JSON object (returned compact) or null ("").
func checkCustomObject(raw json.RawMessage) (string, error) {
	custom := strings.TrimSpace(string(raw))
	if custom == "null" {
		return "", nil
	}
	var m map[string]any
	if !strings.HasPrefix(custom, "{") || json.Unmarshal(raw, &m) != nil {
		return "", httpjson.BadRequest("Field \"custom\" must be of type object.")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", httpjson.BadRequest("custom could not be stored: %s.", err)
	}
	return string(b), nil
}

// pathUserID reads and checks the {userId} path segment.
func pathUserID(r *http.Request) (string, error) {
	id := r.PathValue("userId")
	if err := vocab.ValidateUserID(id); err != nil {
		return "", httpjson.BadRequest("%s.", err)
	}
	return id, nil
}

// pathAction reads and checks {userId} and {action}.
func pathAction(r *http.Request) (string, string, error) {
	userID, err := pathUserID(r)
	if err != nil {
		return "", "", err
	}
	action := r.PathValue("action")
	if err := vocab.ValidateActionCode(action); err != nil {
		return "", "", httpjson.BadRequest("action %q is not valid: %s.", action, err)
	}
	return userID, action, nil
}
