package state

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/vocab"
)

// Seed is the seed file's format, which Export writes too, so a seed and an export are one
// format: users with their authenticators and seen devices, actions, outbox messages, and
// the configuration only a seed file carries (rules and test recipients). Challenges in
// flight and send counts are not part of it: they last minutes.
type Seed struct {
	Path           string            `json:"-"` // where it was read from, for messages
	Users          []SeedUser        `json:"users"`
	Actions        []SeedAction      `json:"actions,omitempty"`
	Messages       []Message         `json:"messages,omitempty"` // the outbox, as GET /emulator/messages lists it
	RulesJSON      json.RawMessage   `json:"rules,omitempty"`
	TestRecipients map[string]string `json:"testRecipients,omitempty"`
	WebhookURLs    []string          `json:"webhookUrls,omitempty"` // receive the emulator's webhooks, besides -webhook-url

	Rules *rules.Rules `json:"-"` // RulesJSON parsed; nil when absent
}

// SeedUser is a user of a seed file.
type SeedUser struct {
	UserID              string              `json:"userId"`
	Email               string              `json:"email,omitempty"`
	EmailVerified       *bool               `json:"emailVerified,omitempty"`
	PhoneNumber         string              `json:"phoneNumber,omitempty"`
	PhoneNumberVerified *bool               `json:"phoneNumberVerified,omitempty"`
	Username            string              `json:"username,omitempty"`
	DisplayName         string              `json:"displayName,omitempty"`
	Locale              string              `json:"locale,omitempty"`
	Custom              map[string]any      `json:"custom,omitempty"`
	CreatedAt           string              `json:"createdAt,omitempty"` // "" = when applied
	Devices             []string            `json:"devices,omitempty"`   // device ids seen (the isNewDevice rule field)
	Authenticators      []SeedAuthenticator `json:"authenticators,omitempty"`
}

// SeedAuthenticator is an authenticator of a seed file's user.
type SeedAuthenticator struct {
	ID                 string `json:"userAuthenticatorId,omitempty"` // "" = a fresh one
	VerificationMethod string `json:"verificationMethod"`
	Email              string `json:"email,omitempty"`
	PhoneNumber        string `json:"phoneNumber,omitempty"`
	OTPURI             string `json:"otpUri,omitempty"` // AUTHENTICATOR_APP: otpauth://totp/…?secret=…
	Verified           *bool  `json:"verified,omitempty"`
	IsDefault          bool   `json:"isDefault,omitempty"`
	CreatedAt          string `json:"createdAt,omitempty"`
	VerifiedAt         string `json:"verifiedAt,omitempty"`
	LastVerifiedAt     string `json:"lastVerifiedAt,omitempty"`
}

// SeedAction is an action of a seed file.
type SeedAction struct {
	UserID                    string          `json:"userId"`
	ActionCode                string          `json:"actionCode"`
	IdempotencyKey            string          `json:"idempotencyKey"`
	State                     vocab.State     `json:"state"`
	CreatedAt                 string          `json:"createdAt,omitempty"`
	UpdatedAt                 string          `json:"updatedAt,omitempty"`
	StateUpdatedAt            string          `json:"stateUpdatedAt,omitempty"`
	VerificationMethod        vocab.Method    `json:"verificationMethod,omitempty"`
	VerifiedByAuthenticatorID string          `json:"verifiedByAuthenticatorId,omitempty"`
	RuleIDs                   []string        `json:"ruleIds,omitempty"`
	Rules                     []RuleRef       `json:"rules,omitempty"`
	RedirectURL               string          `json:"redirectUrl,omitempty"`
	RedirectToSettings        bool            `json:"redirectToSettings,omitempty"`
	IPAddress                 string          `json:"ipAddress,omitempty"`
	UserAgent                 string          `json:"userAgent,omitempty"`
	DeviceID                  string          `json:"deviceId,omitempty"`
	Email                     string          `json:"email,omitempty"`
	PhoneNumber               string          `json:"phoneNumber,omitempty"`
	Username                  string          `json:"username,omitempty"`
	Scope                     string          `json:"scope,omitempty"`
	Locale                    string          `json:"locale,omitempty"`
	Custom                    map[string]any  `json:"custom,omitempty"`
	TrackResult               json.RawMessage `json:"trackResult,omitempty"` // replayed for the same idempotency key
}

// LoadSeed reads and checks a seed (or export) file; errors name the file and the field.
func LoadSeed(path string) (*Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emulator: seed file: %w", err)
	}
	s, err := ParseSeed(data)
	if err != nil {
		return nil, fmt.Errorf("emulator: seed file %s: %w", path, err)
	}
	s.Path = path
	return s, nil
}

// ParseSeed parses a seed strictly and normalizes it; errors start with the field's path.
func ParseSeed(data []byte) (*Seed, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("%s: must be of type %s", te.Field, vocab.JSONType(te.Type.Kind().String()))
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: extra data after the top-level object")
	}
	if raw := bytes.TrimSpace(s.RulesJSON); len(raw) > 0 && string(raw) != "null" {
		rs, err := rules.Parse(raw)
		if err != nil {
			return nil, err // already "rules: rule …"
		}
		s.Rules = rs
	}
	users := map[string]bool{}
	for i := range s.Users {
		u := &s.Users[i]
		if err := checkSeedUser(u); err != nil {
			return nil, fmt.Errorf("users[%d]%s", i, err)
		}
		if users[u.UserID] {
			return nil, fmt.Errorf("users[%d].userId: %q appears twice", i, u.UserID)
		}
		users[u.UserID] = true
	}
	for i := range s.Actions {
		if err := checkSeedAction(&s.Actions[i], users); err != nil {
			return nil, fmt.Errorf("actions[%d]%s", i, err)
		}
	}
	for i := range s.Messages {
		if err := checkSeedMessage(&s.Messages[i]); err != nil {
			return nil, fmt.Errorf("messages[%d]%s", i, err)
		}
	}
	return &s, nil
}

// checkTime checks an optional timestamp field.
func checkTime(name, v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		return fmt.Errorf(".%s: %q is not an ISO 8601 time like 2025-03-01T12:00:00.000Z", name, v)
	}
	return nil
}

// seedTime is an optional timestamp, or def when absent.
func seedTime(v string, def time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return def
	}
	return t
}

func checkLength(name, v string) error {
	if max, ok := vocab.MaxLength(name); ok && len(v) > max {
		return fmt.Errorf(".%s: longer than %d characters", name, max)
	}
	return nil
}

// checkSeedUser validates and normalizes u in place. Errors start with ".field: ".
func checkSeedUser(u *SeedUser) error {
	if err := vocab.ValidateUserID(u.UserID); err != nil {
		return fmt.Errorf(".userId: %v", err)
	}
	if u.Email != "" {
		u.Email = vocab.NormalizeEmail(u.Email)
		if err := vocab.ValidateEmail(u.Email); err != nil {
			return fmt.Errorf(".email: %v", err)
		}
	}
	if u.PhoneNumber != "" {
		u.PhoneNumber = strings.TrimSpace(u.PhoneNumber)
		if err := vocab.ValidateContactPhone(u.PhoneNumber); err != nil {
			return fmt.Errorf(".phoneNumber: %v", err)
		}
	}
	for _, f := range []struct{ name, v string }{{"username", u.Username}, {"displayName", u.DisplayName}, {"locale", u.Locale}} {
		if err := checkLength(f.name, f.v); err != nil {
			return err
		}
	}
	if err := checkTime("createdAt", u.CreatedAt); err != nil {
		return err
	}
	for j, d := range u.Devices {
		if d == "" {
			return fmt.Errorf(".devices[%d]: empty", j)
		}
		if err := checkLength("deviceId", d); err != nil {
			return fmt.Errorf(".devices[%d]%s", j, err)
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

func checkSeedAuthenticator(a *SeedAuthenticator) error {
	switch vocab.Method(a.VerificationMethod) {
	case vocab.MethodAuthenticatorApp:
		if a.OTPURI == "" || a.Email != "" || a.PhoneNumber != "" {
			return errors.New(": AUTHENTICATOR_APP needs otpUri and no email or phoneNumber")
		}
		if _, err := totpSecret(a.OTPURI); err != nil {
			return fmt.Errorf(".otpUri: %v", err)
		}
	case vocab.MethodEmailOTP, vocab.MethodEmailMagicLink:
		if a.Email == "" || a.PhoneNumber != "" {
			return fmt.Errorf(": %s needs email and no phoneNumber", a.VerificationMethod)
		}
		a.Email = vocab.NormalizeEmail(a.Email)
		if err := vocab.ValidateEmail(a.Email); err != nil {
			return fmt.Errorf(".email: %v", err)
		}
	case vocab.MethodSMS, vocab.MethodWhatsApp:
		if a.PhoneNumber == "" || a.Email != "" {
			return fmt.Errorf(": %s needs phoneNumber and no email", a.VerificationMethod)
		}
		a.PhoneNumber = strings.TrimSpace(a.PhoneNumber)
		if err := vocab.ValidatePhone(a.PhoneNumber); err != nil {
			return fmt.Errorf(".phoneNumber: %v", err)
		}
	case "":
		return errors.New(".verificationMethod: required (EMAIL_OTP, EMAIL_MAGIC_LINK, SMS, WHATSAPP or AUTHENTICATOR_APP)")
	default:
		return fmt.Errorf(".verificationMethod: %q is not one of EMAIL_OTP, EMAIL_MAGIC_LINK, SMS, WHATSAPP, AUTHENTICATOR_APP", a.VerificationMethod)
	}
	if a.OTPURI != "" && vocab.Method(a.VerificationMethod) != vocab.MethodAuthenticatorApp {
		return errors.New(".otpUri: only for AUTHENTICATOR_APP")
	}
	// The emulator only has verified authenticators (server-side enrolment vouches for them).
	if a.Verified != nil && !*a.Verified {
		return errors.New(".verified: false is not supported; the emulator's authenticators are always verified (omit it or set true)")
	}
	if len(a.ID) > 255 {
		return errors.New(".userAuthenticatorId: longer than 255 characters")
	}
	for _, t := range []struct{ name, v string }{{"createdAt", a.CreatedAt}, {"verifiedAt", a.VerifiedAt}, {"lastVerifiedAt", a.LastVerifiedAt}} {
		if err := checkTime(t.name, t.v); err != nil {
			return err
		}
	}
	return nil
}

func checkSeedAction(a *SeedAction, users map[string]bool) error {
	if !users[a.UserID] {
		return fmt.Errorf(".userId: %q is not one of the file's users", a.UserID)
	}
	if err := vocab.ValidateActionCode(a.ActionCode); err != nil {
		return fmt.Errorf(".actionCode: %v", err)
	}
	if a.IdempotencyKey == "" {
		return errors.New(".idempotencyKey: required")
	}
	if !a.State.Valid() {
		return fmt.Errorf(".state: %q is not an action state", a.State)
	}
	if a.VerificationMethod != "" && !a.VerificationMethod.Known() {
		return fmt.Errorf(".verificationMethod: %q is not a verification method", a.VerificationMethod)
	}
	for _, f := range []struct{ name, v string }{{"idempotencyKey", a.IdempotencyKey}, {"redirectUrl", a.RedirectURL}, {"ipAddress", a.IPAddress},
		{"userAgent", a.UserAgent}, {"deviceId", a.DeviceID}, {"username", a.Username}, {"scope", a.Scope}, {"locale", a.Locale}} {
		if err := checkLength(f.name, f.v); err != nil {
			return err
		}
	}
	for _, t := range []struct{ name, v string }{{"createdAt", a.CreatedAt}, {"updatedAt", a.UpdatedAt}, {"stateUpdatedAt", a.StateUpdatedAt}} {
		if err := checkTime(t.name, t.v); err != nil {
			return err
		}
	}
	if len(a.TrackResult) > 0 {
		var r TrackResult
		if err := json.Unmarshal(a.TrackResult, &r); err != nil {
			return fmt.Errorf(".trackResult: %v", err)
		}
	}
	return nil
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func checkSeedMessage(m *Message) error {
	if m.ID == "" {
		return errors.New(".id: required")
	}
	if !m.Channel.Valid() {
		return fmt.Errorf(".channel: %q is not one of EMAIL, SMS, WHATSAPP", m.Channel)
	}
	m.To = vocab.NormalizeRecipient(m.To)
	if m.To == "" {
		return errors.New(".to: required")
	}
	// "" for a message that carries no code (a Call Connect link).
	if m.Code != "" && !sixDigits.MatchString(m.Code) {
		return fmt.Errorf(".code: %q is not 6 digits", m.Code)
	}
	if m.CreatedAt == "" {
		return errors.New(".createdAt: required")
	}
	return checkTime("createdAt", m.CreatedAt)
}

// Import upserts a seed's users, enrols their authenticators and adds its actions, seen
// devices and messages, in one transaction. It is idempotent: applying the same seed again
// re-applies the users' fields and finds everything else already there.
func (s *Store) Import(ctx context.Context, seed *Seed) error {
	return s.inTx(ctx, func(tx *txn) error { return s.importSeed(ctx, tx, seed) })
}

func (s *Store) importSeed(ctx context.Context, tx *txn, seed *Seed) error {
	// A seed or an import is the starting state, not a change: no webhooks for it.
	staged := len(tx.events)
	defer func() { tx.events = tx.events[:staged] }()
	now := s.now()
	for _, u := range seed.Users {
		if err := s.importUser(ctx, tx, u, now); err != nil {
			return fmt.Errorf("user %q: %w", u.UserID, err)
		}
	}
	for _, a := range seed.Actions {
		if err := s.importAction(ctx, tx, a, now); err != nil {
			return fmt.Errorf("action %s/%s of user %q: %w", a.ActionCode, a.IdempotencyKey, a.UserID, err)
		}
	}
	for _, m := range seed.Messages {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE message_id = ?`, m.ID).Scan(&n); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		if n > 0 {
			continue
		}
		if _, err := insertMessage(ctx, tx, m, ms(seedTime(m.CreatedAt, now))); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
	}
	return nil
}

func (s *Store) importUser(ctx context.Context, tx *txn, u SeedUser, now time.Time) error {
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
		u.UserID, u.Email, emailVerified, u.PhoneNumber, phoneVerified, u.Username, u.DisplayName, string(custom), u.Locale, ms(seedTime(u.CreatedAt, now))); err != nil {
		return fmt.Errorf("upsert user: %w", err)
	}
	for _, d := range u.Devices {
		if _, err := tx.ExecContext(ctx, `INSERT INTO seen_devices(user_id, device_id, first_seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, u.UserID, d, ms(now)); err != nil {
			return fmt.Errorf("remember device: %w", err)
		}
	}
	defaultID := ""
	for _, a := range u.Authenticators {
		id, err := s.importAuthenticator(ctx, tx, u.UserID, a, now)
		if err != nil {
			return err
		}
		if a.IsDefault {
			defaultID = id
		}
	}
	if defaultID != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = (authenticator_id = ?) WHERE user_id = ?`, defaultID, u.UserID); err != nil {
			return fmt.Errorf("set default authenticator: %w", err)
		}
	}
	return nil
}

// importAuthenticator enrols a seed's authenticator, keeping its id and times when given;
// one with the same method and recipient already enrolled is kept as it is.
func (s *Store) importAuthenticator(ctx context.Context, tx *txn, userID string, a SeedAuthenticator, now time.Time) (string, error) {
	m := vocab.Method(a.VerificationMethod)
	if a.ID == "" {
		got, err := s.enrollAuthenticator(ctx, tx, userID, "", m, a.Email, a.PhoneNumber, false)
		if err != nil {
			return "", err
		}
		return got.ID, s.importTOTPSecret(ctx, tx, got.ID, a)
	}
	existing, err := listAuthenticators(ctx, tx, userID)
	if err != nil {
		return "", err
	}
	for _, e := range existing {
		if e.Method == m && e.Email == a.Email && e.PhoneNumber == a.PhoneNumber {
			return e.ID, nil
		}
	}
	created := seedTime(a.CreatedAt, now)
	var lastVerified sql.NullInt64
	if a.LastVerifiedAt != "" {
		lastVerified = sql.NullInt64{Int64: ms(seedTime(a.LastVerifiedAt, now)), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authenticators(authenticator_id, user_id, verification_method, email, phone_number, is_default, created_at, verified_at, last_verified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, userID, m, a.Email, a.PhoneNumber, len(existing) == 0, ms(created), ms(seedTime(a.VerifiedAt, created)), lastVerified); err != nil {
		return "", fmt.Errorf("insert authenticator %s: %w", a.ID, err)
	}
	return a.ID, s.importTOTPSecret(ctx, tx, a.ID, a)
}

// importTOTPSecret stores an authenticator app's secret from its otpUri (none for others).
func (s *Store) importTOTPSecret(ctx context.Context, tx *txn, authID string, a SeedAuthenticator) error {
	if a.OTPURI == "" {
		return nil
	}
	secret, err := totpSecret(a.OTPURI)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO totp_secrets(authenticator_id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING`, authID, secret); err != nil {
		return fmt.Errorf("insert TOTP secret: %w", err)
	}
	return nil
}

func (s *Store) importAction(ctx context.Context, tx *txn, a SeedAction, now time.Time) error {
	custom, err := customJSON(a.Custom)
	if err != nil {
		return err
	}
	ruleIDs, err := json.Marshal(nonNil(a.RuleIDs))
	if err != nil {
		return err
	}
	rulesJSON, err := json.Marshal(nonNil(a.Rules))
	if err != nil {
		return err
	}
	var trackResult bytes.Buffer
	if len(a.TrackResult) > 0 {
		if err := json.Compact(&trackResult, a.TrackResult); err != nil {
			return fmt.Errorf("trackResult: %w", err)
		}
	}
	created := seedTime(a.CreatedAt, now)
	_, err = tx.ExecContext(ctx, `INSERT INTO actions(user_id, action_code, idempotency_key, state, state_updated_at, created_at, updated_at,
		verification_method, verified_by_authenticator_id, rule_ids, rules, redirect_url, redirect_to_settings, ip_address, user_agent, device_id,
		email, phone_number, username, scope, custom, locale, track_response)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(user_id, action_code, idempotency_key) DO NOTHING`,
		a.UserID, a.ActionCode, a.IdempotencyKey, a.State, ms(seedTime(a.StateUpdatedAt, created)), ms(created), ms(seedTime(a.UpdatedAt, created)),
		a.VerificationMethod, a.VerifiedByAuthenticatorID, ruleIDs, rulesJSON, a.RedirectURL, a.RedirectToSettings, a.IPAddress, a.UserAgent, a.DeviceID,
		a.Email, a.PhoneNumber, a.Username, a.Scope, string(custom), a.Locale, trackResult.String())
	if err != nil {
		return fmt.Errorf("insert action: %w", err)
	}
	return nil
}

// Export writes the whole state in the seed file's format (without rules and test
// recipients, which are configuration): what Import reads back into an equal state.
func (s *Store) Export(ctx context.Context) (*Seed, error) {
	out := &Seed{Users: []SeedUser{}}
	users, err := queryAll(ctx, s.db, func(rows *sql.Rows) (*User, error) { return scanUser(rows) },
		`SELECT `+userColumns+` FROM users ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("export users: %w", err)
	}
	devices, err := queryAll(ctx, s.db, func(rows *sql.Rows) ([2]string, error) {
		var d [2]string
		return d, rows.Scan(&d[0], &d[1])
	}, `SELECT user_id, device_id FROM seen_devices ORDER BY user_id, device_id`)
	if err != nil {
		return nil, fmt.Errorf("export devices: %w", err)
	}
	otpURIs := map[string]string{}
	secrets, err := queryAll(ctx, s.db, func(rows *sql.Rows) ([2]string, error) {
		var v [2]string
		return v, rows.Scan(&v[0], &v[1])
	}, `SELECT authenticator_id, secret FROM totp_secrets`)
	if err != nil {
		return nil, fmt.Errorf("export TOTP secrets: %w", err)
	}
	for _, v := range secrets {
		otpURIs[v[0]] = totpURI(v[1])
	}
	auths, err := queryAll(ctx, s.db, func(rows *sql.Rows) (Authenticator, error) { return scanAuthenticator(rows) },
		// Passkeys are not in the seed format yet (their credentials would be): left out.
		`SELECT `+authenticatorColumns+` FROM authenticators WHERE verification_method <> 'PASSKEY' ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("export authenticators: %w", err)
	}
	byUser := map[string]int{}
	for i, u := range users {
		su := SeedUser{UserID: u.ID, Email: u.Email, EmailVerified: &users[i].EmailVerified, PhoneNumber: u.PhoneNumber,
			PhoneNumberVerified: &users[i].PhoneNumberVerified, Username: u.Username, DisplayName: u.DisplayName, Locale: u.Locale,
			CreatedAt: vocab.FormatTime(u.CreatedAt)}
		if u.Custom != nil {
			if err := json.Unmarshal(u.Custom, &su.Custom); err != nil {
				return nil, fmt.Errorf("export user %q: custom: %w", u.ID, err)
			}
		}
		byUser[u.ID] = len(out.Users)
		out.Users = append(out.Users, su)
	}
	for _, d := range devices {
		if i, ok := byUser[d[0]]; ok {
			out.Users[i].Devices = append(out.Users[i].Devices, d[1])
		}
	}
	for _, a := range auths {
		i, ok := byUser[a.UserID]
		if !ok {
			continue
		}
		sa := SeedAuthenticator{ID: a.ID, VerificationMethod: string(a.Method), Email: a.Email, PhoneNumber: a.PhoneNumber, IsDefault: a.IsDefault,
			CreatedAt: vocab.FormatTime(a.CreatedAt), OTPURI: otpURIs[a.ID]}
		if !a.VerifiedAt.IsZero() {
			sa.VerifiedAt = vocab.FormatTime(a.VerifiedAt)
		}
		if !a.LastVerifiedAt.IsZero() {
			sa.LastVerifiedAt = vocab.FormatTime(a.LastVerifiedAt)
		}
		out.Users[i].Authenticators = append(out.Users[i].Authenticators, sa)
	}
	actions, err := queryAll(ctx, s.db, func(rows *sql.Rows) (*Action, error) { return scanAction(rows) },
		`SELECT `+actionColumns+` FROM actions ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("export actions: %w", err)
	}
	for _, a := range actions {
		sa := SeedAction{UserID: a.UserID, ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey, State: a.State,
			CreatedAt: vocab.FormatTime(a.CreatedAt), UpdatedAt: vocab.FormatTime(a.UpdatedAt), StateUpdatedAt: vocab.FormatTime(a.StateUpdatedAt),
			VerificationMethod: a.VerificationMethod, VerifiedByAuthenticatorID: a.VerifiedByAuthenticatorID, RuleIDs: a.RuleIDs, Rules: a.Rules,
			RedirectURL: a.RedirectURL, RedirectToSettings: a.RedirectToSettings, IPAddress: a.IPAddress, UserAgent: a.UserAgent, DeviceID: a.DeviceID,
			Email: a.Email, PhoneNumber: a.PhoneNumber, Username: a.Username, Scope: a.Scope, Locale: a.Locale}
		if len(sa.RuleIDs) == 0 {
			sa.RuleIDs, sa.Rules = nil, nil
		}
		if a.Custom != nil {
			if err := json.Unmarshal(a.Custom, &sa.Custom); err != nil {
				return nil, fmt.Errorf("export action: custom: %w", err)
			}
		}
		if a.trackResult != "" {
			sa.TrackResult = json.RawMessage(a.trackResult)
		}
		out.Actions = append(out.Actions, sa)
	}
	msgs, err := s.Messages(ctx, MessageFilter{}, 0, 0)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- { // oldest first, as they were sent
		m := msgs[i]
		m.Seq = 0 // this database's order, not state
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

// stateTables lists every table holding state, children first, for Reset.
var stateTables = []string{"ceremonies", "calls", "refresh_tokens", "sessions", "seen_devices", "actions", "authenticators", "challenges", "messages", "sends", "users"}

// Reset deletes everything and re-applies the seed, so a reset returns to the start state.
func (s *Store) Reset(ctx context.Context) error {
	return s.inTx(ctx, func(tx *txn) error {
		for _, t := range stateTables {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
				return fmt.Errorf("reset %s: %w", t, err)
			}
		}
		if s.seed == nil {
			return nil
		}
		if err := s.importSeed(ctx, tx, s.seed); err != nil {
			return fmt.Errorf("re-seed from %s: %w", s.seed.Path, err)
		}
		return nil
	})
}
