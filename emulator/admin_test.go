package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
	"example.com/passwordless/internal/testkit"
)

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestAdminReview(t *testing.T) {
	p := writeRules(t, `{"rules":[{"id":"review-all","actionCode":"withdrawal","outcome":"REVIEW_REQUIRED"}]}`)
	env := newEnv(t, func(c *Config) { c.RulesFile = p })
	for _, k := range []string{"r-approve", "r-reject"} {
		m := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"idempotencyKey": k, "custom": map[string]any{"amount": 7}})
		if m["state"] != StateReviewRequired {
			t.Fatalf("track %v", m)
		}
	}
	b := newBrowser(t)
	page := b.get(env.srv.URL + "/admin")
	page.must(t, 200, "r-approve", "r-reject", ">Approve</button>", ">Reject</button>", "review-all")
	csrf := csrfFieldRE.FindStringSubmatch(page.body)[1]
	form := func(key, decision, token string) url.Values {
		return url.Values{"csrf": {token}, "userId": {"u1"}, "action": {"withdrawal"}, "idempotencyKey": {key}, "decision": {decision}}
	}
	t.Run("csrf", func(t *testing.T) {
		b.post(env.srv.URL+"/admin/review", form("r-approve", "approve", "")).must(t, 403)
		b.post(env.srv.URL+"/admin/review", form("r-approve", "approve", strings.Repeat("0", 64))).must(t, 403)
		// Another browser (no cookie) with the right token is refused too.
		newBrowser(t).post(env.srv.URL+"/admin/review", form("r-approve", "approve", csrf)).must(t, 403)
		if a := env.apiOK("GET", "/v1/users/u1/actions/withdrawal/r-approve", nil); a["state"] != StateReviewRequired {
			t.Fatalf("state changed without CSRF token: %v", a)
		}
	})
	b.post(env.srv.URL+"/admin/review", form("r-approve", "approve", csrf)).must(t, 200, "Approved", "r-reject")
	b.post(env.srv.URL+"/admin/review", form("r-reject", "reject", csrf)).must(t, 200, "Rejected", "Nothing is waiting for review")
	b.post(env.srv.URL+"/admin/review", form("r-reject", "approve", csrf)).must(t, 200, "no longer waiting")
	b.post(env.srv.URL+"/admin/review", form("r-reject", "maybe", csrf)).must(t, 400)
	if a := env.apiOK("GET", "/v1/users/u1/actions/withdrawal/r-approve", nil); a["state"] != StateReviewSucceeded {
		t.Fatalf("approve: %v", a)
	}
	if a := env.apiOK("GET", "/v1/users/u1/actions/withdrawal/r-reject", nil); a["state"] != StateReviewFailed {
		t.Fatalf("reject: %v", a)
	}
}

func TestOutboxAndReset(t *testing.T) {
	env := newEnv(t)
	env.challengeEmail("a@example.com")
	env.clock.Advance(time.Second)
	env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signIn", "phoneNumber": "+447700900123"})
	all := env.messages("")
	if len(all) != 2 || all[0].Channel != "SMS" || all[1].Channel != "EMAIL" || all[0].Subject != "" || all[0].ID == "" || all[0].CreatedAt == "" {
		t.Fatalf("outbox newest first: %+v", all)
	}
	if got := env.messages("A@Example.com"); len(got) != 1 || got[0].To != "a@example.com" {
		t.Fatalf("filter by to: %+v", got)
	}
	page := newBrowser(t).get(env.srv.URL + "/outbox")
	page.must(t, 200, `http-equiv="refresh"`, all[0].Code, all[1].Code, "a@example.com")

	status, raw, _ := env.do("DELETE", "/emulator/messages", nil, "")
	if status != 200 || !strings.Contains(string(raw), `"success":true`) {
		t.Fatalf("delete messages: %d %s", status, raw)
	}
	if n := len(env.messages("")); n != 0 {
		t.Fatalf("messages after delete: %d", n)
	}
	env.apiOK("PATCH", "/v1/users/u1", map[string]any{"email": "u1@example.com"})
	status, raw, _ = env.do("POST", "/emulator/reset", nil, "")
	if status != 200 || !strings.Contains(string(raw), `"success":true`) {
		t.Fatalf("reset: %d %s", status, raw)
	}
	// After the reset u1 is unknown again: not enrolled, no email.
	if u := env.apiOK("GET", "/v1/users/u1", nil); u["isEnrolled"] != false || u["email"] != nil {
		t.Fatalf("user after reset: %v", u)
	}
	// Send limits are state too: after a reset a recipient can receive again.
	for i := 0; i < DefaultLimits().EmailPerWindow; i++ {
		env.challengeEmail("b@example.com")
	}
	env.do("POST", "/emulator/reset", nil, "")
	env.challengeEmail("b@example.com")
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "sub", "emu.db")
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		t.Fatal(err)
	}
	clock := newTestClock()
	open := func() *testEnv {
		return newEnv(t, func(c *Config) { c.DBPath = dbPath; c.Now = clock.Now })
	}
	env := open()
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "p@example.com"})
	tr := env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"idempotencyKey": "k1", "custom": map[string]any{"amount": 2000}})
	id := env.challengeEmail("p@example.com")
	code := env.lastCode("p@example.com")
	env.srv.Close()
	if err := env.emu.Close(); err != nil {
		t.Fatal(err)
	}
	if err := env.emu.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	env2 := open()
	if u := env2.apiOK("GET", "/v1/users/u1", nil); u["isEnrolled"] != true {
		t.Fatalf("user after restart %v", u)
	}
	if a := env2.apiOK("GET", "/v1/users/u1/actions/withdrawal/k1", nil); a["state"] != StateChallengeRequired {
		t.Fatalf("action after restart %v", a)
	}
	// Still a genuine token: its action's details, isValid false until the challenge succeeds.
	if v := env2.apiOK("POST", "/v1/validate", map[string]any{"token": tr["token"]}); v["isValid"] != false || v["state"] != StateChallengeRequired || v["idempotencyKey"] != "k1" {
		t.Fatalf("token after restart %v", v)
	}
	if v := env2.verify(id, code); v["isVerified"] != true {
		t.Fatalf("challenge after restart %v", v)
	}
}

func TestStartCloseAndMain(t *testing.T) {
	emu, err := New(Config{SecretKey: testKey, DBPath: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Start("127.0.0.1:0"); err == nil {
		t.Fatal("second Start succeeded")
	}
	resp, err := httpGetBasic(base+"/v1/users/u1/actions/withdrawal", testKey)
	if err != nil {
		t.Fatal(err)
	}
	if resp != 405 {
		t.Fatalf("GET track path: %d", resp)
	}
	m := trackVia(t, base)
	if !strings.HasPrefix(m, base+"/challenge?token=") {
		t.Fatalf("url %q does not use the listener's base URL %s", m, base)
	}
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}

	// Main: prints where everything is, serves, stops when ctx is done.
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.Buffer{}
	done := make(chan error, 1)
	db := filepath.Join(t.TempDir(), "data", "emulator.db")
	go func() {
		done <- Main(ctx, []string{"emulator", "-addr", "127.0.0.1:0", "-db", db}, func(string) string { return "" }, out)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "secret key:") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	text := out.String()
	for _, want := range []string{"base URL:    http://127.0.0.1:", "/v1", "/outbox", "/admin", DevSecretKey, "development key"} {
		if !strings.Contains(text, want) {
			t.Fatalf("Main output lacks %q:\n%s", want, text)
		}
	}
	apiBase := regexp.MustCompile(`API base:\s+(\S+)`).FindStringSubmatch(text)[1]
	if code, err := httpGetBasic(apiBase+"/users/u1", DevSecretKey); err != nil || code != 200 {
		t.Fatalf("GET via Main: %d %v", code, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Main did not stop")
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("database not created: %v", err)
	}
	// Env key and bad flags.
	out = &testkit.Buffer{}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := Main(ctx2, []string{"-addr", "127.0.0.1:0", "-db", ":memory:"}, func(k string) string {
		if k == "AUTHSIGNAL_SECRET_KEY" {
			return "from-env"
		}
		return ""
	}, out); err != nil || !strings.Contains(out.String(), "from-env") || strings.Contains(out.String(), "development key") {
		t.Fatalf("env key: %v\n%s", err, out.String())
	}
	if err := Main(ctx2, []string{"-nope"}, func(string) string { return "" }, &testkit.Buffer{}); err == nil {
		t.Fatal("bad flag accepted")
	}
	if err := Main(ctx2, []string{"-db", ":memory:", "-addr", "127.0.0.1:0", "-rules", "/no/such/file.json"}, func(string) string { return "" }, &testkit.Buffer{}); err == nil {
		t.Fatal("missing rules file accepted")
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{DBPath: ":memory:"}},
		{"no db", Config{SecretKey: "k"}},
		{"bad limits", Config{SecretKey: "k", DBPath: ":memory:", Limits: Limits{CodeTTL: -1, MaxAttempts: 1, SendWindow: 1, SMSPerWindow: 1, EmailPerWindow: 1, TokenTTL: 1}}},
		{"bad db dir", Config{SecretKey: "k", DBPath: "/no/such/dir/emu.db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := New(tt.cfg); err == nil {
				e.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func httpGetBasic(u, key string) (int, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(key, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func trackVia(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/users/u1/actions/withdrawal", strings.NewReader(`{"custom":{"amount":1500}}`))
	req.SetBasicAuth(testKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	u, _ := m["url"].(string)
	return u
}

// TestAdminPages covers the dashboard and its sub-pages: a user with authenticators, an
// action with its matched rule, a challenge with attempts left, the rules, a user's page.
func TestAdminPages(t *testing.T) {
	env := newEnv(t)
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "u1@example.com"})
	env.apiOK("POST", "/v1/users/u1/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+447700900123"})
	env.apiOK("POST", "/v1/users/u1/actions/withdrawal", map[string]any{"idempotencyKey": "k-big", "custom": map[string]any{"amount": 2000}})
	ch := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signIn", "email": "u1@example.com", "userId": "u1"})
	id := ch["challengeId"].(string)
	if v := env.verify(id, wrongCode(env.lastCode("u1@example.com"))); v["isVerified"] != false {
		t.Fatalf("wrong code verified: %v", v)
	}
	env.challengeEmail("anon@example.com") // an anonymous challenge: no user link
	b := newBrowser(t)
	base := env.srv.URL

	b.get(base+"/admin").must(t, 200, "Nothing is waiting for review", `href="/admin/users">Users</a>: 1`,
		`href="/admin/actions">Actions</a>: 2`, `href="/admin/challenges">Challenges</a>: 2`, "default outcome ALLOW")
	// Users are named by their email (else phone, else username), their id beside it.
	named := `<a href="/admin/users/u1">u1@example.com</a><br><span class="muted">u1</span>`
	b.get(base+"/admin/users").must(t, 200, named, "EMAIL_OTP: u1@example.com, verified, default",
		"SMS: &#43;447700900123, verified<br>", "<caption")
	b.get(base+"/admin/actions").must(t, 200, named, `<td data-label="Action">withdrawal</td>`, `<td data-label="Idempotency key">k-big</td>`,
		"CHALLENGE_REQUIRED", `<td data-label="Matched rules">challenge-withdrawal</td>`, `<td data-label="Action">signIn</td>`)
	chPage := b.get(base + "/admin/challenges")
	chPage.must(t, 200, id, "PENDING", "u1@example.com", "anonymous", "allows 5 wrong codes")
	row := regexp.MustCompile(`(?s)<tr>\s*<td data-label="Challenge">` + id + `.*?</tr>`).FindString(chPage.body)
	if !strings.Contains(row, `<td data-label="Attempts left">4</td>`) || !strings.Contains(row, named) {
		t.Fatalf("challenge row lacks 4 attempts left or its user link: %s", row)
	}
	b.get(base+"/admin/rules").must(t, 200, "block-large-withdrawal", "challenge-withdrawal", "custom.amount gt 1000",
		"custom.amount gt 10000", "CHALLENGE_REQUIRED", "BLOCK", `<th scope="row" data-label="Rule">`, "When none matches: ALLOW")

	user := b.get(base + "/admin/users/u1")
	user.must(t, 200, "User u1@example.com", "u1@example.com (verified)", "Authenticators of u1", "&#43;447700900123", "default",
		"k-big", "challenge-withdrawal", id)
	if strings.Contains(user.body, "anon@example.com") {
		t.Fatal("user page lists another user's challenge")
	}

	t.Run("unknown or bad user", func(t *testing.T) {
		b.get(base+"/admin/users/nobody").must(t, 404, "User not found", "nobody")
		b.get(base+"/admin/users/%20padded").must(t, 400, "Invalid user id")
	})
	t.Run("user id with a slash is escaped in links", func(t *testing.T) {
		env.apiOK("POST", "/v1/users/"+url.PathEscape("team/ann")+"/actions/signIn", map[string]any{"idempotencyKey": "k-ann"})
		b.get(base+"/admin/actions").must(t, 200, `href="/admin/users/team%2Fann"`)
		b.get(base+"/admin/users/team%2Fann").must(t, 200, "User team/ann", "k-ann")
	})
	t.Run("review buttons on the actions and user pages", func(t *testing.T) {
		p := writeRules(t, `{"rules":[{"id":"review-all","actionCode":"payout","outcome":"REVIEW_REQUIRED"}]}`)
		env2 := newEnv(t, func(c *Config) { c.RulesFile = p })
		env2.apiOK("POST", "/v1/users/u2/actions/payout", map[string]any{"idempotencyKey": "k-rev"})
		b2 := newBrowser(t)
		actions := b2.get(env2.srv.URL + "/admin/actions")
		actions.must(t, 200, "k-rev", ">Approve</button>", ">Reject</button>", "review-all")
		b2.get(env2.srv.URL+"/admin/users/u2").must(t, 200, ">Approve</button>")
		csrf := csrfFieldRE.FindStringSubmatch(actions.body)[1]
		b2.post(env2.srv.URL+"/admin/review", url.Values{"csrf": {csrf}, "userId": {"u2"}, "action": {"payout"}, "idempotencyKey": {"k-rev"},
			"decision": {"approve"}}).must(t, 200, "Approved")
		after := b2.get(env2.srv.URL + "/admin/actions")
		after.must(t, 200, "REVIEW_SUCCEEDED")
		if strings.Contains(after.body, ">Approve</button>") {
			t.Fatal("a decided action still has review buttons")
		}
	})
}

// TestAdminListsAreBounded: lists stop at the admin pages' limit and say so (no silent cap).
func TestAdminListsAreBounded(t *testing.T) {
	const adminListLimit = 200
	env := newEnv(t)
	seed := &state.Seed{}
	for i := 0; i < adminListLimit+2; i++ {
		seed.Users = append(seed.Users, state.SeedUser{UserID: fmt.Sprintf("bulk-%03d", i), CreatedAt: vocab.FormatTime(time.UnixMilli(int64(i)))})
	}
	if err := env.emu.store.Import(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	page := newBrowser(t).get(env.srv.URL + "/admin/users")
	page.must(t, 200, fmt.Sprintf("Showing the newest %d of %d users.", adminListLimit, adminListLimit+2), "bulk-201", "bulk-002")
	if strings.Contains(page.body, ">bulk-001<") || strings.Contains(page.body, ">bulk-000<") {
		t.Fatal("the oldest users are shown beyond the limit")
	}
	if strings.Contains(newBrowser(t).get(env.srv.URL+"/admin/actions").body, "Showing the newest") {
		t.Fatal("a note although nothing was cut")
	}
}
