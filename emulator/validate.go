package emulator

import (
	"errors"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	e164Pattern       = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)
	actionCodePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

// Verification methods.
const (
	MethodSMS      = "SMS"
	MethodEmailOTP = "EMAIL_OTP"
	MethodWhatsApp = "WHATSAPP"
)

// allVerificationMethods is the API's enum; the emulator implements only the OTP ones.
var allVerificationMethods = map[string]bool{
	"SMS": true, "EMAIL_OTP": true, "EMAIL_MAGIC_LINK": true, "AUTHENTICATOR_APP": true, "PASSKEY": true,
	"SECURITY_KEY": true, "PUSH": true, "DEVICE": true, "WHATSAPP": true, "VERIFF": true, "IPROOV": true,
	"IDVERSE": true, "PALM_BIOMETRICS_RR": true, "RECOVERY_CODE": true,
}

// Action states.
const (
	StateAllow              = "ALLOW"
	StateBlock              = "BLOCK"
	StateChallengeRequired  = "CHALLENGE_REQUIRED"
	StateChallengeSucceeded = "CHALLENGE_SUCCEEDED"
	StateChallengeFailed    = "CHALLENGE_FAILED"
	StateReviewRequired     = "REVIEW_REQUIRED"
	StateReviewSucceeded    = "REVIEW_SUCCEEDED"
	StateReviewFailed       = "REVIEW_FAILED"
)

var allStates = map[string]bool{
	StateAllow: true, StateBlock: true, StateChallengeRequired: true, StateChallengeSucceeded: true,
	StateChallengeFailed: true, StateReviewRequired: true, StateReviewSucceeded: true, StateReviewFailed: true,
}

// Failure reasons of verify.
const (
	FailureInvalidOrExpired   = "CODE_INVALID_OR_EXPIRED"
	FailureMaxAttemptsReached = "MAX_ATTEMPTS_EXCEEDED"
)

// ValidateEmail reports whether s is a plain address ("name@example.com"): it parses
// with net/mail, has no display name or angle brackets, one @, and a dotted domain.
func ValidateEmail(s string) error {
	if s == "" {
		return errors.New("email is empty")
	}
	if len(s) > 254 {
		return errors.New("email is longer than 254 characters")
	}
	if strings.Count(s, "@") != 1 {
		return errors.New("email must contain exactly one @")
	}
	if strings.ContainsAny(s, " <>\"(),;:\\[]") || strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return errors.New("email must be a plain address like name@example.com")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return errors.New("email must be a plain address like name@example.com")
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || len(local) > 64 {
		return errors.New("email has an empty or too long local part")
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return errors.New("email domain must contain a dot, like example.com")
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return errors.New("email domain is not valid")
		}
	}
	return nil
}

// ValidatePhone reports whether s is an E.164 number: + then 7 to 15 digits, no leading 0.
func ValidatePhone(s string) error {
	if !e164Pattern.MatchString(s) {
		return errors.New("phone number must be in E.164 format, like +447700900123")
	}
	return nil
}

// ValidateActionCode reports whether s matches ^[a-zA-Z0-9_-]{1,64}$.
func ValidateActionCode(s string) error {
	if !actionCodePattern.MatchString(s) {
		return errors.New("action code must be 1 to 64 letters, digits, '_' or '-'")
	}
	return nil
}

// validateUserID accepts any printable identifier up to 255 bytes.
func validateUserID(s string) error {
	if s == "" {
		return errors.New("userId is required")
	}
	if len(s) > 255 {
		return errors.New("userId is longer than 255 characters")
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.TrimSpace(s) != s {
		return errors.New("userId must be printable text without surrounding spaces")
	}
	return nil
}

// validateRedirectURL accepts absolute http(s) URLs only, so the page never redirects to javascript: etc.
func validateRedirectURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("redirectUrl must be an absolute http(s) URL")
	}
	return nil
}

// normalizeEmail lower-cases an address so limits, lookups and the outbox agree.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkEmail normalizes and validates an email field, naming it in the error.
func checkEmail(field, s string) (string, error) {
	n := normalizeEmail(s)
	if err := ValidateEmail(n); err != nil {
		return "", badRequest("%s is not valid: %s.", field, err)
	}
	return n, nil
}

// checkContactPhone accepts a phone number as the real API does where it only records
// one (track attributes, user updates): any short printable text, E.164 or not (the Go
// and Python SDKs' integration tests send "1234567890" and "9876543210" and get them back).
// Sending a code (challenge, enrolment) still needs E.164: checkPhone.
func checkContactPhone(field, s string) (string, error) {
	n := strings.TrimSpace(s)
	if len(n) > 32 || !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return "", badRequest("%s is not valid: it must be a phone number of at most 32 characters, like +447700900123.", field)
	}
	return n, nil
}

// checkPhone normalizes and validates an E.164 phone field, naming it in the error.
func checkPhone(field, s string) (string, error) {
	n := strings.TrimSpace(s)
	if err := ValidatePhone(n); err != nil {
		return "", badRequest("%s is not valid: %s.", field, err)
	}
	return n, nil
}

// messageLanguage maps a BCP 47 locale to a supported message language.
func messageLanguage(locale string) string {
	l := strings.ToLower(locale)
	if l == "es" || strings.HasPrefix(l, "es-") || strings.HasPrefix(l, "es_") {
		return "es"
	}
	return "en"
}

// maxLengths is the longest text each free-text request field may hold, by its JSON name.
var maxLengths = map[string]int{
	"idempotencyKey": 255, "redirectUrl": 2048, "scope": 255, "locale": 35, "ipAddress": 64,
	"userAgent": 1024, "deviceId": 255, "username": 255, "displayName": 255,
}

// field is a request field's JSON name and value, for checkLengths.
type field struct{ name, value string }

// checkLengths refuses the first field longer than its maxLengths entry.
func checkLengths(fields ...field) error {
	for _, f := range fields {
		max, ok := maxLengths[f.name]
		if !ok {
			panic("checkLengths: no maximum length for " + f.name) // a programming error
		}
		if len(f.value) > max {
			return badRequest("%s is longer than %d characters.", f.name, max)
		}
	}
	return nil
}

// checkRecipient checks the address a code goes to: an email for EMAIL_OTP, an E.164
// phone number for SMS and WhatsApp, each required, and returns it normalized.
func checkRecipient(method, email, phone string) (string, string, error) {
	if method == MethodEmailOTP {
		if email == "" {
			return "", "", badRequest("email is required for EMAIL_OTP.")
		}
		e, err := checkEmail("email", email)
		return e, "", err
	}
	if phone == "" {
		return "", "", badRequest("phoneNumber is required for %s.", method)
	}
	p, err := checkPhone("phoneNumber", phone)
	return "", p, err
}
