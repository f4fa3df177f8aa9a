package emulator

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// seededEnv starts an emulator on a database file with the given seed file.
func seededEnv(t *testing.T, db, seedFile string) *testEnv {
	t.Helper()
	return newEnv(t, func(c *Config) { c.DBPath, c.SeedFile = db, seedFile })
}

func authenticatorIDs(env *testEnv, userID string) []string {
	var ids []string
	for _, a := range env.apiList("GET", "/v1/users/"+userID+"/authenticators") {
		ids = append(ids, a["verificationMethod"].(string)+"="+a["userAuthenticatorId"].(string))
	}
	return ids
}

func TestSeedExampleLoadsIdempotently(t *testing.T) {
	db := filepath.Join(t.TempDir(), "emulator.db")
	env := seededEnv(t, db, "seed.example.json")

	u := env.apiOK("GET", "/v1/users/demo-user", nil)
	if u["isEnrolled"] != true || u["email"] != "demo@example.com" || u["emailVerified"] != true || u["phoneNumber"] != "+15555550100" ||
		u["username"] != "demo" || u["defaultVerificationMethod"] != MethodEmailOTP || u["custom"].(map[string]any)["plan"] != "gold" {
		t.Fatalf("demo-user = %v", u)
	}
	if u := env.apiOK("GET", "/v1/users/whatsapp-user", nil); u["phoneNumber"] != "+15555550101" || u["phoneNumberVerified"] != true ||
		u["defaultVerificationMethod"] != MethodWhatsApp {
		t.Fatalf("whatsapp-user = %v", u)
	}
	if u := env.apiOK("GET", "/v1/users/new-user", nil); u["isEnrolled"] != false || u["emailVerified"] != false || u["email"] != "new@example.com" {
		t.Fatalf("new-user = %v", u)
	}
	before := authenticatorIDs(env, "demo-user")
	if len(before) != 2 {
		t.Fatalf("demo-user authenticators %v", before)
	}
	// The file's testRecipients and rules apply.
	env.challengeEmail("demo@example.com")
	if c := env.lastCode("demo@example.com"); c != "000000" {
		t.Fatalf("seeded test recipient got %q", c)
	}
	if tr := env.apiOK("POST", "/v1/users/demo-user/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 50000}}); tr["state"] != StateChallengeRequired {
		t.Fatalf("seed rules (no block rule) not used: %v", tr)
	}
	// Restart on the same database with the same file: no error, no duplicates, same ids.
	if err := env.emu.Close(); err != nil {
		t.Fatal(err)
	}
	env2 := seededEnv(t, db, "seed.example.json")
	if after := authenticatorIDs(env2, "demo-user"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("authenticators after reload %v, before %v", after, before)
	}
	users := env2.counts().Users
	if users != 4 {
		t.Fatalf("%d users after reload, want 4", users)
	}
	// Reset returns to the seeded state.
	env2.apiOK("POST", "/v1/users/extra/actions/signIn", nil)
	if status, _, _ := env2.do("POST", "/emulator/reset", nil, ""); status != http.StatusOK {
		t.Fatalf("reset: %d", status)
	}
	users = env2.counts().Users
	if users != 4 || len(authenticatorIDs(env2, "demo-user")) != 2 {
		t.Fatalf("after reset: %d users, demo authenticators %v", users, authenticatorIDs(env2, "demo-user"))
	}
}

func TestSeedFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body, wantErr string
	}{
		{"not JSON", `{"users": [`, "invalid JSON"},
		{"unknown key", `{"user": []}`, `unknown field "user"`},
		{"wrong type", `{"users": [{"userId": 5}]}`, "users.userId: must be of type string"},
		{"missing userId", `{"users": [{"email": "a@example.com"}]}`, "users[0].userId"},
		{"duplicate user", `{"users": [{"userId": "a"}, {"userId": "a"}]}`, `users[1].userId: "a" appears twice`},
		{"bad email", `{"users": [{"userId": "a", "email": "nope"}]}`, "users[0].email"},
		// A user's phone number is a contact detail, as lenient as PATCH /v1/users (so an
		// export imports again); an authenticator's must be E.164 (below).
		{"bad phone", `{"users": [{"userId": "a", "phoneNumber": "0700 123 456 789 0 extension 12345"}]}`, "users[0].phoneNumber"},
		{"action of no user", `{"users": [], "actions": [{"userId": "a", "actionCode": "signIn", "idempotencyKey": "k", "state": "ALLOW"}]}`, `actions[0].userId: "a" is not one of the file's users`},
		{"bad action state", `{"users": [{"userId": "a"}], "actions": [{"userId": "a", "actionCode": "signIn", "idempotencyKey": "k", "state": "MAYBE"}]}`, "actions[0].state"},
		{"bad message code", `{"users": [], "messages": [{"id": "m", "channel": "SMS", "to": "+15555550100", "body": "x", "code": "12", "createdAt": "2025-03-01T12:00:00Z"}]}`, "messages[0].code"},
		{"bad time", `{"users": [{"userId": "a", "createdAt": "yesterday"}]}`, "users[0].createdAt"},
		{"bad method", `{"users": [{"userId": "a", "authenticators": [{"verificationMethod": "SMS_OTP", "phoneNumber": "+15555550100"}]}]}`,
			`users[0].authenticators[0].verificationMethod: "SMS_OTP" is not one of`},
		{"email method without email", `{"users": [{"userId": "a", "authenticators": [{"verificationMethod": "EMAIL_OTP"}]}]}`, "users[0].authenticators[0]: EMAIL_OTP needs email"},
		{"bad authenticator phone", `{"users": [{"userId": "a", "authenticators": [{"verificationMethod": "SMS", "phoneNumber": "12"}]}]}`, "users[0].authenticators[0].phoneNumber"},
		{"unverified", `{"users": [{"userId": "a", "authenticators": [{"verificationMethod": "SMS", "phoneNumber": "+15555550100", "verified": false}]}]}`, "users[0].authenticators[0].verified"},
		{"two defaults", `{"users": [{"userId": "a", "authenticators": [{"verificationMethod": "SMS", "phoneNumber": "+15555550100", "isDefault": true}, {"verificationMethod": "WHATSAPP", "phoneNumber": "+15555550100", "isDefault": true}]}]}`, "more than one has isDefault"},
		{"bad rules", `{"rules": {"rules": [{"id": "r1", "outcome": "MAYBE"}]}}`, `rules: rule "r1"`},
		{"bad test recipient", `{"testRecipients": {"+15555550100": "12"}}`, "testRecipients: recipient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{SecretKey: testKey, DBPath: ":memory:", SeedFile: path})
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant the path and %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Config{SecretKey: testKey, DBPath: ":memory:", SeedFile: filepath.Join(dir, "missing.json")}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
	// Rules in the seed file and a rules file: ambiguous, refused.
	if _, err := New(Config{SecretKey: testKey, DBPath: ":memory:", SeedFile: "seed.example.json", RulesFile: "rules.example.json"}); err == nil || !strings.Contains(err.Error(), "use one") {
		t.Fatalf("seed rules + rules file: %v", err)
	}
}

// The state survives a restart of an in-memory emulator through ExportOnClose and Import,
// and GET /emulator/export answers the same document.
func TestExportOnCloseAndImport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	env := newEnv(t, func(c *Config) { c.ExportOnClose = file })
	env.enrol("ann", "ann@example.com")
	tr := env.apiOK("POST", "/v1/users/ann/actions/withdrawal", map[string]any{"idempotencyKey": "w1", "custom": map[string]any{"amount": 5000}})
	id := env.challengeEmail("ann@example.com")
	code := env.lastCode("ann@example.com")
	status, live, h := env.do("GET", "/emulator/export", nil, "")
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("GET /emulator/export: %d %v %s", status, h, live)
	}
	if err := env.emu.Close(); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if json.Unmarshal(live, &a) != nil || json.Unmarshal(written, &b) != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("the file differs from GET /emulator/export:\n%s\n---\n%s", written, live)
	}

	next := newEnv(t, func(c *Config) { c.Import = file })
	if u := next.apiOK("GET", "/v1/users/ann", nil); u["isEnrolled"] != true || u["email"] != "ann@example.com" {
		t.Fatalf("ann after import: %v", u)
	}
	if again := next.apiOK("POST", "/v1/users/ann/actions/withdrawal", map[string]any{"idempotencyKey": "w1"}); again["token"] != tr["token"] {
		t.Fatalf("replayed track after import: %v, want the stored answer %v", again, tr)
	}
	if msgs := next.messages("ann@example.com"); len(msgs) != 1 || msgs[0].ChallengeID != id {
		t.Fatalf("outbox after import: %+v", msgs)
	}
	// Codes in flight are not state that lasts: the challenge is gone, as after its expiry.
	status, m := next.api("POST", "/v1/verify", map[string]any{"challengeId": id, "verificationCode": code})
	wantError(t, status, m, http.StatusNotFound, codeInvalidRequest)
}
