package emulator

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/internal/testkit"
)

// TestLogsCarryNoSecrets runs a full flow with a captured logger and checks that no code,
// token or secret key was logged.
func TestLogsCarryNoSecrets(t *testing.T) {
	var logs testkit.Buffer
	env := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	app := newFakeApp(t)
	id := env.challengeEmail("log@example.com")
	code1 := env.lastCode("log@example.com")
	env.verify(id, wrongCode(code1))
	env.verify(id, code1)
	claim := env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": "log-user"})
	env.enrol("log-user", "log@example.com")
	env.apiOK("POST", "/v1/validate", map[string]any{"token": "garbage.token.value"})
	env.do("GET", "/v1/users/log-user", nil, "wrong-key")

	b := newBrowser(t)
	p := b.get(stepUp(t, env, "log-user", "w-log", app.srv.URL+"/cb"))
	token := p.token(t)
	b.post(env.srv.URL+"/challenge/send", url.Values{"token": {token}, "authenticatorId": {radioRE.FindStringSubmatch(p.body)[1]}})
	code2 := env.lastCode("log@example.com")
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {token}, "code": {code2}})
	back := app.last(t).Get("token")

	text := logs.String()
	if !strings.Contains(text, "challenge created") || !strings.Contains(text, "pre-built UI finished") {
		t.Fatalf("expected log lines missing:\n%s", text)
	}
	for name, secret := range map[string]string{"code1": code1, "code2": code2, "claim token": claim["token"].(string), "page token": token,
		"redirect token": back, "secret key": testKey, "bad token": "garbage.token.value", "wrong key": "wrong-key"} {
		if strings.Contains(text, secret) {
			t.Errorf("log contains the %s", name)
		}
	}
}

func TestRecoverer(t *testing.T) {
	var logs testkit.Buffer
	env := newEnv(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	h := httpjson.Recover(env.emu.log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	for _, path := range []string{"/v1/x", "/outbox"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), `"errorCode":"invalid_configuration"`) {
			t.Fatalf("%s: %d %q %s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Fatal("panic not logged")
	}
}
