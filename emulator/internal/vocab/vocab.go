// Package vocab names the values of Authsignal's API (action states, verification methods,
// delivery channels, failure reasons) and checks the identifiers and addresses requests carry.
package vocab

import (
	"errors"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// State is an action's state.
type State string

// The action states.
const (
	StateAllow              State = "ALLOW"
	StateBlock              State = "BLOCK"
	StateChallengeRequired  State = "CHALLENGE_REQUIRED"
	StateChallengeSucceeded State = "CHALLENGE_SUCCEEDED"
	StateChallengeFailed    State = "CHALLENGE_FAILED"
	StateReviewRequired     State = "REVIEW_REQUIRED"
	StateReviewSucceeded    State = "REVIEW_SUCCEEDED"
	StateReviewFailed       State = "REVIEW_FAILED"
)

// Valid reports whether s is one of the API's action states.
func (s State) Valid() bool {
	switch s {
	case StateAllow, StateBlock, StateChallengeRequired, StateChallengeSucceeded,
		StateChallengeFailed, StateReviewRequired, StateReviewSucceeded, StateReviewFailed:
		return true
	}
	return false
}

// Method is a verification method.
type Method string

// The verification methods the emulator implements.
const (
	MethodSMS              Method = "SMS"
	MethodEmailOTP         Method = "EMAIL_OTP"
	MethodWhatsApp         Method = "WHATSAPP"
	MethodPasskey          Method = "PASSKEY"
	MethodAuthenticatorApp Method = "AUTHENTICATOR_APP" // TOTP (RFC 6238)
	MethodEmailMagicLink   Method = "EMAIL_MAGIC_LINK"
)

// AllowedMethods are the methods every user may use: the ones the emulated tenant has
// configured (the API's allowedVerificationMethods).
var AllowedMethods = []Method{MethodEmailOTP, MethodSMS, MethodWhatsApp, MethodAuthenticatorApp, MethodEmailMagicLink, MethodPasskey}

// IsOTP reports whether m sends a one-time code (the methods the emulator implements).
func (m Method) IsOTP() bool { return m == MethodSMS || m == MethodEmailOTP || m == MethodWhatsApp }

// Known reports whether m is in the API's enum, implemented here or not.
func (m Method) Known() bool {
	switch m {
	case MethodSMS, MethodEmailOTP, MethodWhatsApp, "EMAIL_MAGIC_LINK", "AUTHENTICATOR_APP", "PASSKEY",
		"SECURITY_KEY", "PUSH", "DEVICE", "VERIFF", "IPROOV", "IDVERSE", "PALM_BIOMETRICS_RR", "RECOVERY_CODE":
		return true
	}
	return false
}

// Channel is how a code is delivered: the outbox's channels.
type Channel string

// The delivery channels.
const (
	ChannelEmail    Channel = "EMAIL"
	ChannelSMS      Channel = "SMS"
	ChannelWhatsApp Channel = "WHATSAPP"
)

// Valid reports whether c is one of the delivery channels.
func (c Channel) Valid() bool { return c == ChannelEmail || c == ChannelSMS || c == ChannelWhatsApp }

// DeliveryChannel maps a verification method (and a challenge's smsChannel) to its channel.
func DeliveryChannel(m Method, smsChannel string) Channel {
	switch {
	case m == MethodEmailOTP:
		return ChannelEmail
	case m == MethodWhatsApp || smsChannel == "WHATSAPP":
		return ChannelWhatsApp
	default:
		return ChannelSMS
	}
}

// FailureReason says why a code did not verify.
type FailureReason string

// The failure reasons of verify.
const (
	FailureInvalidOrExpired   FailureReason = "CODE_INVALID_OR_EXPIRED"
	FailureMaxAttemptsReached FailureReason = "MAX_ATTEMPTS_EXCEEDED"
)

var (
	e164Pattern       = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)
	actionCodePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
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

// ValidateUserID accepts any printable identifier up to 255 bytes.
func ValidateUserID(s string) error {
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

// ValidateRedirectURL accepts absolute http(s) URLs only, so the pre-built UI never
// redirects to javascript: and the like.
func ValidateRedirectURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("redirectUrl must be an absolute http(s) URL")
	}
	return nil
}

// NormalizeEmail lower-cases an address so limits, lookups and the outbox agree.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NormalizeRecipient normalizes an email address or phone number as stored.
func NormalizeRecipient(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") {
		return NormalizeEmail(s)
	}
	return s
}

// ValidateContactPhone accepts a phone number as the real API does where it only records
// one (track attributes, user updates): any short printable text, E.164 or not (the Go
// and Python SDKs' integration tests send "1234567890" and get it back). Sending a code
// still needs E.164 (ValidatePhone).
func ValidateContactPhone(s string) error {
	if len(s) > 32 || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return errors.New("it must be a phone number of at most 32 characters, like +447700900123")
	}
	return nil
}

var maxLengths = map[string]int{
	"idempotencyKey": 255, "redirectUrl": 2048, "scope": 255, "locale": 35, "ipAddress": 64,
	"userAgent": 1024, "deviceId": 255, "username": 255, "displayName": 255,
	// Sessions: an app client's id, and the tokens (a JWT of a few hundred bytes; 4 KiB bounds
	// the work of parsing one).
	"clientId": 255, "token": 4096, "accessToken": 4096, "refreshToken": 255,
}

// MaxLength is the longest text a free-text field may hold, by its JSON name; ok is false
// for a field without a limit here.
func MaxLength(field string) (n int, ok bool) {
	n, ok = maxLengths[field]
	return n, ok
}

// Language maps a BCP 47 locale to a language the messages and pages are written in.
func Language(locale string) string {
	l := strings.ToLower(locale)
	if l == "es" || strings.HasPrefix(l, "es-") || strings.HasPrefix(l, "es_") {
		return "es"
	}
	return "en"
}

// FormatTime is the timestamp format of the real API's JSON (ISO 8601, UTC, milliseconds).
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// FormatOptionalTime is FormatTime, or "" for the zero time (a field left out).
func FormatOptionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return FormatTime(t)
}

// JSONType names a Go kind (reflect.Kind's String) as JSON calls it, for the errors about a
// field of the wrong type in request bodies and seed files.
func JSONType(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "int", "int64", "float64", "uint", "int32":
		return "number"
	}
	return kind
}

// MaskEmail shows an address's first letter and its domain ("j…@example.com"), so a page
// or the Client API can say where a code went without showing all of it.
func MaskEmail(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" {
		return s
	}
	r := []rune(local)
	return string(r[0]) + "…@" + domain
}

// MaskPhone shows a number's first three and last two characters ("+44…23").
func MaskPhone(s string) string {
	if len(s) <= 6 {
		return s
	}
	return s[:3] + "…" + s[len(s)-2:]
}

// ValidateOrigin accepts a web origin: http or https, a host, an optional port, and
// nothing after it.
func ValidateOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "/") {
		return errors.New("it must be an origin like http://localhost:3000 (a scheme, a host, an optional port, no path)")
	}
	return nil
}

// FormatAmount writes an amount with two decimals and thousands separators.
func FormatAmount(v float64) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	sign := ""
	if v < 0 {
		sign = "-"
	}
	return sign + b.String() + "." + frac
}
