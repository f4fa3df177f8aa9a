package emulator

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"regexp"
	"strings"
)

// Deterministic mode for tests: fixed codes for configured test recipients (Config.
// TestRecipients, a seed file's testRecipients), a seeded random source (Config.Seed) so
// ids and codes repeat run after run, and a seed file of users, authenticators and rules
// loaded at start. A seeded emulator's codes are predictable: tests only.

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// seededReader is the random source of Config.Seed: ChaCha8 keyed by the seed, so two
// emulators with the same seed draw the same bytes in the same order. Not for secrets.
func seededReader(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:8], seed)
	copy(key[8:], "authsignal-emulator-seed") // domain separation: 24 bytes
	return mrand.NewChaCha8(key)
}

// normalizeTestRecipient lower-cases an email or trims a phone number and validates it.
func normalizeTestRecipient(s string) (string, error) {
	if strings.Contains(s, "@") {
		n := normalizeEmail(s)
		if err := ValidateEmail(n); err != nil {
			return "", err
		}
		return n, nil
	}
	n := strings.TrimSpace(s)
	if err := ValidatePhone(n); err != nil {
		return "", errors.New("not an email address, and " + err.Error())
	}
	return n, nil
}

// addTestRecipients validates in (recipient → code) and adds it to out; where names the source in errors.
func addTestRecipients(out, in map[string]string, where string) error {
	for r, code := range in {
		n, err := normalizeTestRecipient(r)
		if err != nil {
			return fmt.Errorf("emulator: %s: recipient %q: %v", where, r, err)
		}
		if !sixDigits.MatchString(code) {
			return fmt.Errorf("emulator: %s: recipient %q: code %q must be exactly 6 digits", where, r, code)
		}
		if isFailingRecipient(n) {
			return fmt.Errorf("emulator: %s: recipient %q always fails delivery (see force.go); it cannot have a fixed code", where, r)
		}
		if prev, ok := out[n]; ok && prev != code {
			return fmt.Errorf("emulator: %s: recipient %q has two different fixed codes", where, r)
		}
		out[n] = code
	}
	return nil
}

// codeFor is the code to send to recipient (normalized as stored): its fixed test code
// when configured, else a fresh random one.
func (e *Emulator) codeFor(recipient string) (string, error) {
	if c, ok := e.testCodes[recipient]; ok {
		return c, nil
	}
	return e.newCode()
}

// seedData is a parsed, validated seed file.
type seedData struct {
	path           string
	users          []seedUser
	rules          *Rules // nil = not in the file
	testRecipients map[string]string
}

type seedFileJSON struct {
	Users          []seedUser        `json:"users"`
	Rules          json.RawMessage   `json:"rules"`
	TestRecipients map[string]string `json:"testRecipients"`
}

type seedUser struct {
	UserID              string              `json:"userId"`
	Email               string              `json:"email"`
	EmailVerified       *bool               `json:"emailVerified"`
	PhoneNumber         string              `json:"phoneNumber"`
	PhoneNumberVerified *bool               `json:"phoneNumberVerified"`
	Username            string              `json:"username"`
	DisplayName         string              `json:"displayName"`
	Locale              string              `json:"locale"`
	Custom              map[string]any      `json:"custom"`
	Authenticators      []seedAuthenticator `json:"authenticators"`
}

type seedAuthenticator struct {
	VerificationMethod string `json:"verificationMethod"`
	Email              string `json:"email"`
	PhoneNumber        string `json:"phoneNumber"`
	Verified           *bool  `json:"verified"`
	IsDefault          bool   `json:"isDefault"`
}

// loadSeedFile reads and validates a seed file; errors name the file and the field.
func loadSeedFile(path string) (*seedData, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emulator: seed file: %w", err)
	}
	s, err := parseSeed(data)
	if err != nil {
		return nil, fmt.Errorf("emulator: seed file %s: %w", path, err)
	}
	s.path = path
	return s, nil
}

func parseSeed(data []byte) (*seedData, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f seedFileJSON
	if err := dec.Decode(&f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("%s: must be of type %s", te.Field, jsonTypeName(te.Type.Kind().String()))
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: extra data after the top-level object")
	}
	s := &seedData{testRecipients: f.TestRecipients}
	if len(bytes.TrimSpace(f.Rules)) > 0 && string(bytes.TrimSpace(f.Rules)) != "null" {
		rs, err := ParseRules(f.Rules)
		if err != nil {
			return nil, err // already "rules: rule …"
		}
		s.rules = rs
	}
	seen := map[string]bool{}
	for i, u := range f.Users {
		if err := checkSeedUser(&u); err != nil {
			return nil, fmt.Errorf("users[%d]%s", i, err)
		}
		if seen[u.UserID] {
			return nil, fmt.Errorf("users[%d].userId: %q appears twice", i, u.UserID)
		}
		seen[u.UserID] = true
		s.users = append(s.users, u)
	}
	return s, nil
}

// checkSeedUser validates and normalizes u in place. Errors start with ".field: ".
func checkSeedUser(u *seedUser) error {
	if err := validateUserID(u.UserID); err != nil {
		return fmt.Errorf(".userId: %v", err)
	}
	if u.Email != "" {
		u.Email = normalizeEmail(u.Email)
		if err := ValidateEmail(u.Email); err != nil {
			return fmt.Errorf(".email: %v", err)
		}
	}
	if u.PhoneNumber != "" {
		u.PhoneNumber = strings.TrimSpace(u.PhoneNumber)
		if err := ValidatePhone(u.PhoneNumber); err != nil {
			return fmt.Errorf(".phoneNumber: %v", err)
		}
	}
	for _, f := range []field{{"username", u.Username}, {"displayName", u.DisplayName}, {"locale", u.Locale}} {
		if max := maxLengths[f.name]; len(f.value) > max {
			return fmt.Errorf(".%s: longer than %d characters", f.name, max)
		}
	}
	defaults := 0
	for j := range u.Authenticators {
		a := &u.Authenticators[j]
		if err := checkSeedAuthenticator(a); err != nil {
			return fmt.Errorf(".authenticators[%d]%s", j, err)
		}
		if a.IsDefault {
			defaults++
		}
		// The user's contact defaults to its first authenticator's, as enrolment does.
		if a.Email != "" && u.Email == "" {
			u.Email = a.Email
		}
		if a.PhoneNumber != "" && u.PhoneNumber == "" {
			u.PhoneNumber = a.PhoneNumber
		}
	}
	if defaults > 1 {
		return errors.New(".authenticators: more than one has isDefault")
	}
	return nil
}

func checkSeedAuthenticator(a *seedAuthenticator) error {
	switch a.VerificationMethod {
	case MethodEmailOTP:
		if a.Email == "" || a.PhoneNumber != "" {
			return errors.New(": EMAIL_OTP needs email and no phoneNumber")
		}
		a.Email = normalizeEmail(a.Email)
		if err := ValidateEmail(a.Email); err != nil {
			return fmt.Errorf(".email: %v", err)
		}
	case MethodSMS, MethodWhatsApp:
		if a.PhoneNumber == "" || a.Email != "" {
			return fmt.Errorf(": %s needs phoneNumber and no email", a.VerificationMethod)
		}
		a.PhoneNumber = strings.TrimSpace(a.PhoneNumber)
		if err := ValidatePhone(a.PhoneNumber); err != nil {
			return fmt.Errorf(".phoneNumber: %v", err)
		}
	case "":
		return errors.New(".verificationMethod: required (EMAIL_OTP, SMS or WHATSAPP)")
	default:
		return fmt.Errorf(".verificationMethod: %q is not one of EMAIL_OTP, SMS, WHATSAPP", a.VerificationMethod)
	}
	// The emulator only has verified authenticators (server-side enrolment vouches for them).
	if a.Verified != nil && !*a.Verified {
		return errors.New(".verified: false is not supported; the emulator's authenticators are always verified (omit it or set true)")
	}
	return nil
}

// loadRulesAndSeed reads the seed file (if any), picks the rules (seed file, rules file or
// built-in) and builds the fixed test codes. The seed's users are applied later, once
// the database is open.
func (e *Emulator) loadRulesAndSeed(cfg Config) (*seedData, error) {
	var seed *seedData
	var err error
	if cfg.SeedFile != "" {
		if seed, err = loadSeedFile(cfg.SeedFile); err != nil {
			return nil, err
		}
	}
	switch {
	case seed != nil && seed.rules != nil && cfg.RulesFile != "":
		return nil, fmt.Errorf("emulator: seed file %s has rules and a rules file (%s) is set too; use one", cfg.SeedFile, cfg.RulesFile)
	case seed != nil && seed.rules != nil:
		e.rules = seed.rules
	case cfg.RulesFile != "":
		e.rules, err = LoadRulesFile(cfg.RulesFile)
	default:
		e.rules, err = DefaultRules()
	}
	if err != nil {
		return nil, err
	}
	e.testCodes = map[string]string{}
	if err := addTestRecipients(e.testCodes, cfg.TestRecipients, "TestRecipients"); err != nil {
		return nil, err
	}
	if seed != nil {
		if err := addTestRecipients(e.testCodes, seed.testRecipients, "seed file "+seed.path+": testRecipients"); err != nil {
			return nil, err
		}
	}
	return seed, nil
}

// applySeed upserts the seed's users and enrols their authenticators, in one transaction.
// It is idempotent: a restart with the same file on the same database re-applies the
// users' fields and finds the authenticators already there (same method and recipient).
func (e *Emulator) applySeed(ctx context.Context, s *seedData) error {
	err := e.inTx(ctx, func(tx *txn) error { return e.upsertSeedUsers(ctx, tx, s) })
	if err != nil {
		return fmt.Errorf("emulator: seed file %s: %w", s.path, err)
	}
	e.log.Info("seed file applied", "file", s.path, "users", len(s.users), "test_recipients", len(s.testRecipients), "rules", s.rules != nil)
	return nil
}

// reseed re-applies the seed file's users inside tx (after a reset); no-op without a seed file.
func (e *Emulator) reseed(ctx context.Context, tx *txn) error {
	if e.seed == nil {
		return nil
	}
	if err := e.upsertSeedUsers(ctx, tx, e.seed); err != nil {
		return fmt.Errorf("re-seed from %s: %w", e.seed.path, err)
	}
	return nil
}

func (e *Emulator) upsertSeedUsers(ctx context.Context, tx *txn, s *seedData) error {
	for _, u := range s.users {
		if err := e.upsertSeedUser(ctx, tx, u); err != nil {
			return fmt.Errorf("user %q: %w", u.UserID, err)
		}
	}
	return nil
}

func (e *Emulator) upsertSeedUser(ctx context.Context, tx *txn, u seedUser) error {
	emailVerified, phoneVerified := false, false
	for _, a := range u.Authenticators {
		emailVerified = emailVerified || (a.Email != "" && a.Email == u.Email)
		phoneVerified = phoneVerified || (a.PhoneNumber != "" && a.PhoneNumber == u.PhoneNumber)
	}
	if u.EmailVerified != nil {
		emailVerified = *u.EmailVerified
	}
	if u.PhoneNumberVerified != nil {
		phoneVerified = *u.PhoneNumberVerified
	}
	custom, err := customJSON(u.Custom)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO users(user_id, email, email_verified, phone_number, phone_number_verified, username, display_name, custom, locale, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(user_id) DO UPDATE SET email = excluded.email, email_verified = excluded.email_verified, phone_number = excluded.phone_number,
			phone_number_verified = excluded.phone_number_verified, username = excluded.username, display_name = excluded.display_name,
			custom = excluded.custom, locale = excluded.locale`,
		u.UserID, u.Email, emailVerified, u.PhoneNumber, phoneVerified, u.Username, u.DisplayName, custom, u.Locale, ms(e.now())); err != nil {
		return fmt.Errorf("upsert user: %w", err)
	}
	defaultID := ""
	for _, a := range u.Authenticators {
		row, err := e.enrollAuthenticator(ctx, tx, u.UserID, a.VerificationMethod, a.Email, a.PhoneNumber, false)
		if err != nil {
			return err
		}
		if a.IsDefault {
			defaultID = row.ID
		}
	}
	if defaultID != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = (authenticator_id = ?) WHERE user_id = ?`, defaultID, u.UserID); err != nil {
			return fmt.Errorf("set default authenticator: %w", err)
		}
	}
	return nil
}

// rulesSource names where the rules came from, for the startup banner.
func (e *Emulator) rulesSource(rulesFile string) string {
	switch {
	case e.seed != nil && e.seed.rules != nil:
		return "from the seed file " + e.seed.path
	case rulesFile != "":
		return rulesFile
	}
	return "built-in defaults"
}
