package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
)

// receiver is a webhook endpoint that records what it gets and answers with the statuses
// given, in turn (200 once they run out).
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []received
	srv      *httptest.Server
}

type received struct {
	body      string
	signature string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{string(b), r.Header.Get("X-Signature-V2")})
		status := 200
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// wait returns the first n requests, failing the test after 5 s.
func (rc *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		if len(rc.got) >= n {
			out := append([]received{}, rc.got[:n]...)
			rc.mu.Unlock()
			return out
		}
		rc.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the receiver got fewer than %d webhooks", n)
	return nil
}

// checkSignature verifies a webhook as the official SDKs do: HMAC-SHA256 of "t.body" with
// the secret key, base64 without padding, in "t=…,v2=…".
func checkSignature(t *testing.T, got received, now time.Time) {
	t.Helper()
	ts, sig, ok := strings.Cut(got.signature, ",v2=")
	if !ok || !strings.HasPrefix(ts, "t=") {
		t.Fatalf("signature header %q", got.signature)
	}
	mac := hmac.New(sha256.New, []byte(testKey))
	mac.Write([]byte(strings.TrimPrefix(ts, "t=") + "." + got.body))
	if want := strings.TrimRight(base64.StdEncoding.EncodeToString(mac.Sum(nil)), "="); sig != want {
		t.Fatalf("signature %q, want %q", sig, want)
	}
	if want := "t=" + strconv.FormatInt(now.Unix(), 10); ts != want {
		t.Fatalf("timestamp %q, want %q (the emulator's clock)", ts, want)
	}
}

func TestWebhooksAnnounceAuthenticatorChanges(t *testing.T) {
	rc := newReceiver(t)
	env := newEnv(t, func(c *Config) { c.WebhookURLs = []string{rc.srv.URL} })
	enrolled := env.apiOK("POST", "/v1/users/wh-user/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "wh@example.com"})
	authID := enrolled["authenticator"].(map[string]any)["userAuthenticatorId"].(string)
	env.apiOK("DELETE", "/v1/users/wh-user/authenticators/"+authID, nil)

	got := rc.wait(t, 2)
	for i, wantType := range []string{"authenticator.created", "authenticator.deleted"} {
		checkSignature(t, got[i], env.clock.Now())
		// Read as the app's client reads a webhook, not with the emulator's own type.
		ev, err := authsignal.VerifyWebhook(testKey, got[i].signature, []byte(got[i].body), env.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		var data map[string]any
		json.Unmarshal(ev.Data, &data)
		if ev.Version != 1 || ev.ID == "" || ev.Source != "https://authsignal.com" || ev.TenantID != DevTenantID || ev.Type != wantType {
			t.Fatalf("envelope %+v", ev)
		}
		if data["userId"] != "wh-user" || data["verificationMethod"] != "EMAIL_OTP" || data["userAuthenticatorId"] != authID || data["email"] != "wh@example.com" {
			t.Fatalf("%s data %v", wantType, data)
		}
	}
	// The same deliveries, with their bodies and signatures, in the tooling API.
	list := env.waitDeliveries(func(ds []delivery) bool {
		return len(ds) == 2 && ds[0].State == "DELIVERED" && ds[1].State == "DELIVERED"
	})
	if list[0].Type != "authenticator.deleted" || list[1].Body != got[0].body || list[1].Signature != got[0].signature ||
		len(list[1].Attempts) != 1 || list[1].Attempts[0].StatusCode != 200 {
		t.Fatalf("deliveries %+v", list)
	}
}

// A failed delivery is tried again, up to three more times, then marked FAILED.
func TestWebhookRetries(t *testing.T) {
	rc := newReceiver(t, 500, 503, 500, 500)
	env := newEnv(t, func(c *Config) { c.WebhookURLs = []string{rc.srv.URL}; c.WebhookRetryDelay = 10 * time.Millisecond })
	env.enrol("retry-user", "retry@example.com")
	got := rc.wait(t, 4)
	for _, g := range got[1:] {
		if g.body != got[0].body {
			t.Fatal("a retry sent another body")
		}
	}
	env.waitDeliveries(func(ds []delivery) bool { return len(ds) == 1 && ds[0].State == "FAILED" && len(ds[0].Attempts) == 4 })
	time.Sleep(50 * time.Millisecond)
	if n := len(rc.wait(t, 4)); n != 4 {
		t.Fatalf("%d attempts", n)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 4 {
		t.Fatalf("%d attempts, want 4 (one and three retries)", len(rc.got))
	}
}

// An enrolment that fails (a part rolled back) announces nothing; a user deleted
// announces each of their authenticators.
func TestWebhooksOnlyForCommittedChanges(t *testing.T) {
	rc := newReceiver(t)
	env := newEnv(t, func(c *Config) { c.WebhookURLs = []string{rc.srv.URL} })
	status, m := env.api("POST", "/v1/users/wh2/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "not a phone"})
	wantError(t, status, m, 400, "invalid_request")
	env.enrol("wh2", "wh2@example.com")
	env.apiOK("POST", "/v1/users/wh2/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+15555550123"})
	env.apiOK("DELETE", "/v1/users/wh2", nil)
	got := rc.wait(t, 4)
	var types []string
	for _, g := range got {
		var ev struct{ Type string }
		json.Unmarshal([]byte(g.body), &ev)
		types = append(types, ev.Type)
	}
	if strings.Join(types, " ") != "authenticator.created authenticator.created authenticator.deleted authenticator.deleted" {
		t.Fatalf("events %v", types)
	}
}

type delivery struct {
	Type, Body, Signature, State string
	Attempts                     []struct{ StatusCode int }
}

// waitDeliveries polls GET /emulator/webhooks until done accepts its deliveries (5 s at most).
func (env *testEnv) waitDeliveries(done func([]delivery) bool) []delivery {
	env.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var list struct {
			Deliveries []delivery `json:"deliveries"`
		}
		env.getJSON("/emulator/webhooks", &list)
		if done(list.Deliveries) {
			return list.Deliveries
		}
		if time.Now().After(deadline) {
			env.t.Fatalf("deliveries: %+v", list.Deliveries)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getJSON reads a tooling route's JSON into out.
func (env *testEnv) getJSON(path string, out any) {
	env.t.Helper()
	status, raw, _ := env.do("GET", path, nil, "")
	if status != 200 {
		env.t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		env.t.Fatalf("GET %s: %v", path, err)
	}
}

// Seeding is the starting state: its authenticators are not announced, at start or reset.
func TestSeedIsNotAnnounced(t *testing.T) {
	rc := newReceiver(t)
	env := newEnv(t, func(c *Config) { c.WebhookURLs = []string{rc.srv.URL}; c.SeedFile = "seed.example.json" })
	env.do("POST", "/emulator/reset", nil, "")
	env.enrol("after-seed", "after@example.com")
	got := rc.wait(t, 1)
	time.Sleep(50 * time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 1 || !strings.Contains(got[0].body, `"userId":"after-seed"`) {
		t.Fatalf("webhooks %+v: want only the enrolment after the seed", rc.got)
	}
}

// A custom delivery provider takes every code first: email.created and sms.created, signed,
// with the code and the action; a refusal fails the send and voids the code.
func TestDeliveryProvider(t *testing.T) {
	provider := newReceiver(t, 200, 200, 500)
	env := newEnv(t, func(c *Config) { c.DeliveryWebhookURL = provider.srv.URL })

	ch := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": "prov@example.com", "userId": "prov-user"})
	got := provider.wait(t, 1)
	checkSignature(t, got[0], env.clock.Now())
	var ev struct {
		Type string
		Data map[string]any
	}
	json.Unmarshal([]byte(got[0].body), &ev)
	code := env.lastCode("prov@example.com")
	if ev.Type != "email.created" || ev.Data["to"] != "prov@example.com" || ev.Data["code"] != code || ev.Data["userId"] != "prov-user" ||
		ev.Data["actionCode"] != "signInWithEmail" || ev.Data["idempotencyKey"] != ch["idempotencyKey"] || ev.Data["verificationMethod"] != "EMAIL_OTP" {
		t.Fatalf("email.created %s, outbox code %s", got[0].body, code)
	}
	if v := env.verify(ch["challengeId"].(string), code); v["isVerified"] != true {
		t.Fatalf("the delivered code: %v", v)
	}

	env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signIn", "phoneNumber": "+15555550177"})
	got = provider.wait(t, 2)
	json.Unmarshal([]byte(got[1].body), &ev)
	if ev.Type != "sms.created" || ev.Data["to"] != "+15555550177" {
		t.Fatalf("sms.created %s", got[1].body)
	}

	// The provider refuses: the API says so, the code is void and not in the outbox.
	status, m := env.api("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": "refused@example.com"})
	if status != 502 {
		t.Fatalf("a refused send: %d %v", status, m)
	}
	provider.wait(t, 3)
	if msgs := env.messages("refused@example.com"); len(msgs) != 0 {
		t.Fatalf("a refused message is in the outbox: %+v", msgs)
	}
	list := env.waitDeliveries(func(ds []delivery) bool { return len(ds) == 3 })
	if list[0].State != "FAILED" || list[1].State != "DELIVERED" || list[2].Type != "email.created" {
		t.Fatalf("deliveries %+v", list)
	}
}

// The admin page lists the deliveries with their answers; without a URL it says how to set one.
func TestAdminWebhooksPage(t *testing.T) {
	env := newEnv(t)
	status, raw, _ := env.do("GET", "/admin/webhooks", nil, "")
	if status != 200 || !strings.Contains(string(raw), "-webhook-url") {
		t.Fatalf("no URL: %d %s", status, raw)
	}
	rc := newReceiver(t, 503)
	env = newEnv(t, func(c *Config) { c.WebhookURLs = []string{rc.srv.URL}; c.WebhookRetryDelay = time.Hour })
	env.enrol("page-user", "page@example.com")
	env.waitDeliveries(func(ds []delivery) bool { return len(ds) == 1 && len(ds[0].Attempts) == 1 })
	status, raw, _ = env.do("GET", "/admin/webhooks", nil, "")
	page := string(raw)
	if status != 200 || !strings.Contains(page, "authenticator.created") || !strings.Contains(page, rc.srv.URL) || !strings.Contains(page, ": 503") ||
		!strings.Contains(page, "PENDING") {
		t.Fatalf("page: %d %s", status, page)
	}
}

// A seed file can name webhook URLs too; an import that names them is refused (configuration).
func TestSeedFileWebhookURLs(t *testing.T) {
	rc := newReceiver(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seed, []byte(`{"users": [], "webhookUrls": ["`+rc.srv.URL+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := newEnv(t, func(c *Config) { c.SeedFile = seed })
	env.enrol("seeded-hook", "seeded-hook@example.com")
	if got := rc.wait(t, 1); !strings.Contains(got[0].body, "seeded-hook") {
		t.Fatalf("webhook %s", got[0].body)
	}
	if _, err := New(Config{SecretKey: testKey, DBPath: ":memory:", Import: seed}); err == nil || !strings.Contains(err.Error(), "webhookUrls") {
		t.Fatalf("import with webhookUrls: %v", err)
	}
}

// A user update that changes an authenticator (its default flag, a verified address)
// announces authenticator.updated for each one changed, and nothing for the rest.
func TestWebhooksAnnounceUpdatedAuthenticators(t *testing.T) {
	rc := newReceiver(t)
	env := newEnv(t, func(c *Config) { c.WebhookURLs = []string{rc.srv.URL} })
	env.enrol("upd-user", "upd@example.com")
	env.apiOK("POST", "/v1/users/upd-user/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": "+15555550188"})
	env.apiOK("PATCH", "/v1/users/upd-user", map[string]any{"defaultVerificationMethod": "SMS"})
	env.apiOK("PATCH", "/v1/users/upd-user", map[string]any{"displayName": "Nothing for authenticators"})
	env.apiOK("PATCH", "/v1/users/upd-user", map[string]any{"email": "new@example.com", "emailVerified": true})
	got := rc.wait(t, 5)
	time.Sleep(50 * time.Millisecond)
	var summary []string
	rc.mu.Lock()
	for _, g := range rc.got {
		var ev struct {
			Type string
			Data map[string]any
		}
		json.Unmarshal([]byte(g.body), &ev)
		summary = append(summary, ev.Type+" "+ev.Data["verificationMethod"].(string))
	}
	rc.mu.Unlock()
	want := "authenticator.created EMAIL_OTP, authenticator.created SMS, authenticator.updated EMAIL_OTP, authenticator.updated SMS, authenticator.updated EMAIL_OTP"
	if strings.Join(summary, ", ") != want {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(summary, ", "), want)
	}
	if !strings.Contains(got[4].body, `"email":"new@example.com"`) || !strings.Contains(got[4].body, `"updatedAt"`) {
		t.Fatalf("the address update: %s", got[4].body)
	}
}

// action.verify must approve an action's success by a code before anything is stored: a
// refusal leaves the action awaiting its challenge and the code still good.
func TestActionVerifyWebhook(t *testing.T) {
	hook := newReceiver(t, 500, 200)
	env := newEnv(t, func(c *Config) { c.ActionVerifyWebhookURL = hook.srv.URL })
	ch := env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": "av@example.com", "userId": "av-user"})
	id, key := ch["challengeId"].(string), ch["idempotencyKey"].(string)
	code := env.lastCode("av@example.com")

	if v := env.verify(id, wrongCode(code)); v["isVerified"] != false {
		t.Fatalf("a wrong code: %v", v)
	}
	if v := env.verify(id, code); v["isVerified"] != false {
		t.Fatalf("refused by action.verify: %v", v)
	}
	got := hook.wait(t, 1) // the wrong code was not asked about
	checkSignature(t, got[0], env.clock.Now())
	var ev struct {
		Type string
		Data map[string]any
	}
	json.Unmarshal([]byte(got[0].body), &ev)
	if ev.Type != "action.verify" || ev.Data["userId"] != "av-user" || ev.Data["action"] != "signInWithEmail" || ev.Data["idempotencyKey"] != key ||
		ev.Data["state"] != "CHALLENGE_SUCCEEDED" || ev.Data["verificationMethod"] != "EMAIL_OTP" || ev.Data["verifiedAt"] == nil {
		t.Fatalf("action.verify %s", got[0].body)
	}
	if a := env.apiOK("GET", "/v1/users/av-user/actions/signInWithEmail/"+key, nil); a["state"] != "CHALLENGE_REQUIRED" {
		t.Fatalf("after a refusal: %v", a)
	}

	if v := env.verify(id, code); v["isVerified"] != true {
		t.Fatalf("approved: %v", v)
	}
	if a := env.apiOK("GET", "/v1/users/av-user/actions/signInWithEmail/"+key, nil); a["state"] != "CHALLENGE_SUCCEEDED" {
		t.Fatalf("after approval: %v", a)
	}
	// An anonymous challenge has no action: nothing to ask.
	anon := env.challengeEmail("anon-av@example.com")
	if v := env.verify(anon, env.lastCode("anon-av@example.com")); v["isVerified"] != true {
		t.Fatalf("anonymous: %v", v)
	}
	time.Sleep(50 * time.Millisecond)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.got) != 2 {
		t.Fatalf("%d action.verify calls, want 2", len(hook.got))
	}
}
