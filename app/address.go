package app

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// One person, one account: an email address or phone number has exactly one stored form,
// whatever way it was typed, and addresses made to look like someone else's are refused.

var (
	errEmailInvalid    = errors.New("Enter a valid email address, like name@example.com.")
	errEmailLookalike  = errors.New("That address mixes alphabets, or uses letters that only look like Latin ones. Type it in one alphabet, like name@example.com.")
	errDomainInvalid   = errors.New("Enter a valid email address: the part after @ is not a domain name like example.com.")
	errPhoneFormat     = errors.New("Enter the phone number in international format, starting with + and the country code, like +14155550123.")
	errPhoneImpossible = errors.New("That phone number cannot exist: check the country code, and leave out the 0 that starts the number at home.")
)

// domains converts a domain to its ASCII (IDNA) form with the lookup rules: mapping, valid
// labels, bidi, DNS lengths.
var domains = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// normalizeEmail returns the one form an email address is stored and sent in: Unicode
// compatibility-normalized (NFKC, so "ａｄａ" is "ada"), lower-cased, the domain in its ASCII
// (IDNA) form. It refuses invalid UTF-8, invisible characters, and local parts or domain
// labels that mix alphabets or are written in letters that only look Latin.
func normalizeEmail(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", errEmailInvalid
	}
	email := strings.ToLower(norm.NFKC.String(strings.TrimSpace(raw)))
	if email == "" {
		return "", errors.New("Enter your email address.")
	}
	// No display names, quoted local parts or comments: a bare address only.
	if strings.IndexFunc(email, invisible) >= 0 || strings.ContainsAny(email, " <>\"(),;:\\[]") || strings.Count(email, "@") != 1 {
		return "", errEmailInvalid
	}
	local, domain, _ := strings.Cut(email, "@")
	if local == "" || len(local) > 64 || domain == "" {
		return "", errEmailInvalid
	}
	ascii, err := domains.ToASCII(domain)
	if err != nil || !strings.Contains(ascii, ".") || strings.HasSuffix(ascii, ".") {
		return "", errDomainInvalid
	}
	unicodeDomain, err := domains.ToUnicode(ascii)
	if err != nil {
		return "", errDomainInvalid
	}
	for _, part := range append([]string{local}, strings.Split(unicodeDomain, ".")...) {
		if lookalike(part) {
			return "", errEmailLookalike
		}
	}
	email = local + "@" + ascii
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return "", errEmailInvalid
	}
	return email, nil
}

// invisible reports control and formatting characters (such as right-to-left overrides),
// which make an address look like another one.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// allowedScriptMixes are the alphabets that may share a word, as in Unicode's "highly
// restrictive" level (UTS #39, 5.2): Latin with the scripts of Japanese, Chinese and Korean.
var allowedScriptMixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// latinLookalikes are the Cyrillic and Greek letters drawn like Latin ones; a word made of
// them only (like "аррӏе") reads as a Latin word it is not.
const latinLookalikes = "аеорсухіјѕһԁԛԝӏүԍьѵ" + "οαρνικυχτεϲ"

// lookalike reports whether a word mixes alphabets beyond the allowed mixes, or is a
// Cyrillic or Greek word written only in letters that look Latin.
func lookalike(word string) bool {
	scripts := map[string]bool{}
	onlyLookalikes := true
	for _, r := range word {
		name := scriptOf(r)
		if name == "" {
			continue // digits, punctuation, marks: shared by every script
		}
		scripts[name] = true
		if !strings.ContainsRune(latinLookalikes, r) {
			onlyLookalikes = false
		}
	}
	switch {
	case len(scripts) == 0:
		return false
	case len(scripts) == 1:
		return (scripts["Cyrillic"] || scripts["Greek"]) && onlyLookalikes
	}
	for _, mix := range allowedScriptMixes {
		inMix := 0
		for _, name := range mix {
			if scripts[name] {
				inMix++
			}
		}
		if inMix == len(scripts) {
			return false
		}
	}
	return true
}

// scriptOf names r's script, or "" for the characters every script shares.
func scriptOf(r rune) string {
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return ""
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

// normalizePhone returns a phone number in E.164, whatever way it was typed ("+44 (0)7700
// 900123", "+4407700900123" and "+447700900123" are one number), using libphonenumber's
// rules (nyaruka/phonenumbers); a number that cannot exist is refused.
func normalizePhone(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("Enter your phone number.")
	}
	// Letters are refused rather than read as a keypad's (libphonenumber turns "CALLME" into digits).
	if !strings.HasPrefix(raw, "+") || !utf8.ValidString(raw) || strings.IndexFunc(raw, unicode.IsLetter) >= 0 {
		return "", errPhoneFormat
	}
	num, err := phonenumbers.Parse(raw, "")
	if err != nil {
		return "", errPhoneFormat
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return "", errPhoneImpossible
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
