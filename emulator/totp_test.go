package emulator

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Authenticator apps: codes computed with the same library an app's maker would use, on
// the emulator's clock; drift of one step either way, each step's code once, the attempt
// limit, enrolment through the Client API, the pre-built UI (QR code) and the Server API.

var appOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

func appCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, appOpts)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestClientAPIAuthenticatorApp(t *testing.T) {
	env := newClientEnv(t)
	const user = "u-totp"
	tok := env.trackToken(user, "addApp", nil)
	started := env.clientOK("POST", "/v1/client/user-authenticators/totp", nil, bearer(tok))
	secret, _ := started["secret"].(string)
	key, err := otp.NewKeyFromURL(started["uri"].(string))
	if err != nil || key.Secret() != secret || key.Issuer() == "" || started["userId"] != user {
		t.Fatalf("enrolment: %v (%v)", started, err)
	}
	verify := func(tok, code string) map[string]any {
		return env.clientOK("POST", "/v1/client/verify/totp", map[string]any{"verificationCode": code}, bearer(tok))
	}
	if v := verify(tok, wrongCode(appCode(t, secret, env.clock.Now()))); v["isVerified"] != false || v["failureReason"] != "CODE_INVALID_OR_EXPIRED" {
		t.Fatalf("a wrong first code: %v", v)
	}
	first := appCode(t, secret, env.clock.Now())
	ok := verify(tok, first)
	if ok["isVerified"] != true || ok["accessToken"] == nil || ok["userAuthenticator"].(map[string]any)["userAuthenticatorId"] != started["userAuthenticatorId"] {
		t.Fatalf("the first right code: %v", ok)
	}
	if v := env.validated(ok["accessToken"].(string)); v["verificationMethod"] != "AUTHENTICATOR_APP" || v["state"] != "CHALLENGE_SUCCEEDED" {
		t.Fatalf("validate: %v", v)
	}
	if u := env.apiOK("GET", "/v1/users/"+user, nil); u["enrolledVerificationMethods"].([]any)[0] != "AUTHENTICATOR_APP" {
		t.Fatalf("enrolled methods: %v", u)
	}

	step := func() string { return env.trackToken(user, "withdraw", nil) }
	for _, c := range []struct {
		name    string
		at      time.Duration // the code's time, from the emulator's now
		advance time.Duration
		want    bool
	}{
		{"the code already used, again", 0, 0, false},
		{"the next step's code", 30 * time.Second, 0, true},
		{"a step earlier than one already used", -30 * time.Second, 0, false},
		{"a minute later: the previous step's code (drift)", -30 * time.Second, 90 * time.Second, true},
		{"two steps early", -60 * time.Second, 60 * time.Second, false},
		{"two steps late", 60 * time.Second, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env.clock.Advance(c.advance)
			v := verify(step(), appCode(t, secret, env.clock.Now().Add(c.at)))
			if (v["isVerified"] == true) != c.want {
				t.Fatalf("isVerified %v, want %v: %v", v["isVerified"], c.want, v)
			}
		})
	}

	t.Run("five wrong codes lock the action", func(t *testing.T) {
		env.clock.Advance(5 * time.Minute)
		tok := env.trackToken(user, "withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}})
		right := appCode(t, secret, env.clock.Now())
		var v map[string]any
		for i := 0; i < DefaultLimits().MaxAttempts; i++ {
			v = verify(tok, wrongCode(right))
		}
		if v["failureReason"] != "MAX_ATTEMPTS_EXCEEDED" {
			t.Fatalf("after five wrong codes: %v", v)
		}
		// The challenged action failed with the fifth: nothing more to verify for it.
		status, m, _ := env.client("POST", "/v1/client/verify/totp", map[string]any{"verificationCode": right}, bearer(tok))
		wantError(t, status, m, 400, "invalid_request")
		if v := env.validated(tok); v["state"] != "CHALLENGE_FAILED" {
			t.Fatalf("the challenged action after the lock: %v", v)
		}
	})
	t.Run("a second app needs the scope, then is refused", func(t *testing.T) {
		status, m, _ := env.client("POST", "/v1/client/user-authenticators/totp", nil, bearer(step()))
		wantError(t, status, m, 403, "unauthorized")
		status, m, _ = env.client("POST", "/v1/client/user-authenticators/totp", nil, bearer(env.trackToken(user, "addApp", map[string]any{"scope": "add:authenticators"})))
		wantError(t, status, m, 400, "invalid_request")
	})
}

var secretRE = regexp.MustCompile(`<code data-totp-secret>([A-Z2-7]+)</code>`)

func TestPrebuiltUIAuthenticatorApp(t *testing.T) {
	env := newEnv(t)
	app := newFakeApp(t)
	b := newBrowser(t)

	// Enrolment: the QR code and the key, then the app's code.
	p := b.get(forcedStepUp(t, env, "u-app", "w-app-enrol", app.srv.URL+"/cb"))
	p.must(t, 200, `value="AUTHENTICATOR_APP"`)
	code := b.post(env.srv.URL+"/challenge/enroll", url.Values{"token": {p.token(t)}, "method": {"AUTHENTICATOR_APP"}})
	code.must(t, 200, "Add an authenticator app", `src="data:image/png;base64,`, `<label for="code">Code</label>`)
	m := secretRE.FindStringSubmatch(code.body)
	if m == nil {
		t.Fatalf("no key on the page: %s", code.body)
	}
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {code.token(t)}, "code": {appCode(t, m[1], env.clock.Now())}}).must(t, 200, "app callback")
	if auths := env.apiList("GET", "/v1/users/u-app/authenticators"); len(auths) != 1 || auths[0]["verificationMethod"] != "AUTHENTICATOR_APP" {
		t.Fatalf("authenticators: %v", auths)
	}

	// A step-up with it: chosen like any method, no message sent.
	env.clock.Advance(time.Minute)
	p = b.get(stepUp(t, env, "u-app", "w-app", app.srv.URL+"/cb"))
	p.must(t, 200, "Authenticator app")
	auth := radioRE.FindStringSubmatch(p.body)[1]
	code = b.post(env.srv.URL+"/challenge/send", url.Values{"token": {p.token(t)}, "authenticatorId": {auth}})
	code.must(t, 200, "Enter the 6-digit code your authenticator app shows")
	b.post(env.srv.URL+"/challenge/verify", url.Values{"token": {code.token(t)}, "code": {appCode(t, m[1], env.clock.Now())}}).must(t, 200, "app callback")
	if v := env.apiOK("POST", "/v1/validate", map[string]any{"token": app.last(t).Get("token")}); v["state"] != "CHALLENGE_SUCCEEDED" || v["verificationMethod"] != "AUTHENTICATOR_APP" {
		t.Fatalf("validate: %v", v)
	}
}

func TestServerAPIEnrolsAnAuthenticatorApp(t *testing.T) {
	env := newEnv(t)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Sample", AccountName: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	m := env.apiOK("POST", "/v1/users/u-srv-app/authenticators", map[string]any{"verificationMethod": "AUTHENTICATOR_APP", "otpUri": key.URL()})
	if a := m["authenticator"].(map[string]any); a["verificationMethod"] != "AUTHENTICATOR_APP" || a["verifiedAt"] == "" {
		t.Fatalf("enrol: %v", m)
	}
	for _, body := range []map[string]any{{"verificationMethod": "AUTHENTICATOR_APP"}, {"verificationMethod": "AUTHENTICATOR_APP", "otpUri": "https://example.com"},
		{"verificationMethod": "AUTHENTICATOR_APP", "otpUri": key.URL()}} {
		status, m := env.api("POST", "/v1/users/u-srv-app/authenticators", body)
		wantError(t, status, m, 400, "invalid_request")
	}
	tr := env.apiOK("POST", "/v1/users/u-srv-app/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}})
	if tr["state"] != "CHALLENGE_REQUIRED" || tr["enrolledVerificationMethods"].([]any)[0] != "AUTHENTICATOR_APP" {
		t.Fatalf("track: %v", tr)
	}
}

// The seed file's authenticator app and magic-link address work, and an export keeps them.
func TestSeedAuthenticatorAppAndMagicLink(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.SeedFile = "seed.example.json"; c.ClientOrigins = []string{appOrigin} })
	tok := env.trackToken("app-user", "withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}})
	if v := env.clientOK("POST", "/v1/client/verify/totp", map[string]any{"verificationCode": appCode(t, "JBSWY3DPEHPK3PXP", env.clock.Now())}, bearer(tok)); v["isVerified"] != true {
		t.Fatalf("the seeded app's code: %v", v)
	}
	env.clientOK("POST", "/v1/client/challenge/email-magic-link", nil, bearer(env.trackToken("app-user", "signIn", nil)))
	if msgs := env.messages("app@example.com"); len(msgs) != 1 || msgs[0].Link == "" {
		t.Fatalf("the seeded magic-link address: %+v", msgs)
	}
	status, raw, _ := env.do("GET", "/emulator/export", nil, "")
	if status != 200 || !strings.Contains(string(raw), "secret=JBSWY3DPEHPK3PXP") || !strings.Contains(string(raw), `"EMAIL_MAGIC_LINK"`) {
		t.Fatalf("export: %d %s", status, raw)
	}
}
