package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/e2e/appserver"
	"example.com/passwordless/emulator"
)

const (
	nameCeiling   = "ceiling (bare Fiber handler)"
	nameTrack     = "emulator track"
	nameChallenge = "emulator challenge+verify"
	nameAccount   = "app /account"
	nameSignIn    = "sign-in flow"
	nameSignIn1   = "sign-in flow, 1 client"
	nameSignInOL  = "sign-in flow, open loop"
	nameCeiling2  = "ceiling, again at the end"
	nameEmuFloor  = "emulator floor (/healthz)"
	nameAppFloor  = "app floor (/healthz)"
)

// runID keeps this run's users and recipients apart from any earlier run's.
var runID = time.Now().UnixNano() % 1_000_000_007

// runCeiling serves "ok" from a bare Fiber v2 handler in this process and loads it.
func runCeiling(ctx context.Context, o options, name string) (result, error) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	go app.Listener(ln)
	defer app.ShutdownWithTimeout(5 * time.Second)
	r := runGetOK(ctx, o, name, "http://"+ln.Addr().String()+"/")
	r.note = `GET / → "ok", fiber.New() defaults, in this process`
	return r, nil
}

// runGetOK loads GET target, which must answer 200 "ok". Against a server's /healthz it
// measures the server's floor: its HTTP stack and whatever middleware runs before that
// route, with no work behind it.
func runGetOK(ctx context.Context, o options, name, target string) result {
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return runLoad(ctx, o, name, "req/s", func(int) op {
		return func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			status, _, body, err := appserver.Fetch(client, req)
			if err != nil {
				return err
			}
			if status != http.StatusOK || string(body) != "ok" {
				return fmt.Errorf("status %d, body %q", status, body)
			}
			return nil
		}
	})
}

// emu is the emulator running in this process.
type emu struct {
	e   *emulator.Emulator
	url string
}

const emulatorKey = "loadgen-secret-key"

func startEmulator(dbPath string) (*emu, error) {
	e, err := emulator.New(emulator.Config{SecretKey: emulatorKey, DBPath: dbPath})
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	u, err := e.Start("127.0.0.1:0")
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return &emu{e: e, url: u}, nil
}

func (m *emu) close() { m.e.Close() }

// apiCall sends a JSON body to the emulator's Server API with the secret key.
func apiCall(ctx context.Context, client *http.Client, method, u string, body any, out any) error {
	j, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(j))
	req.SetBasicAuth(emulatorKey, "")
	req.Header.Set("Content-Type", "application/json")
	status, _, answer, err := appserver.Fetch(client, req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s %s: status %d: %s", method, u, status, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return nil
}

// runTrack loads POST /v1/users/{id}/actions/withdrawal with new idempotency keys, over
// 1,000 users, with amounts that hit each default rule (ALLOW, CHALLENGE_REQUIRED, BLOCK).
func runTrack(ctx context.Context, o options, m *emu) (result, error) {
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	amounts := []float64{50, 250.5, 999, 1500, 20000}
	var seq atomic.Int64
	r := runLoad(ctx, o, nameTrack, "req/s", func(c int) op {
		return func(ctx context.Context) error {
			n := seq.Add(1)
			u := fmt.Sprintf("%s/v1/users/lg-%d-user-%d/actions/withdrawal", m.url, runID, n%1000)
			var answer struct {
				State string `json:"state"`
			}
			err := apiCall(ctx, client, http.MethodPost, u, map[string]any{
				"idempotencyKey": fmt.Sprintf("lg-%d-%d", runID, n),
				"redirectUrl":    "http://127.0.0.1:3000/withdrawals/callback",
				"ipAddress":      "127.0.0.1",
				"userAgent":      "loadgen",
				"deviceId":       fmt.Sprintf("device-%d", c),
				"custom":         map[string]any{"amount": amounts[n%int64(len(amounts))]},
			}, &answer)
			if err == nil && answer.State == "" {
				err = fmt.Errorf("track answered no state")
			}
			return err
		}
	})
	r.note = "POST with Basic auth; 1,000 users, a new idempotencyKey each, amounts hitting ALLOW / CHALLENGE_REQUIRED / BLOCK"
	return r, nil
}

// runChallengeVerify loads the whole code round trip on the emulator: POST /v1/challenge,
// read the code from the outbox, POST /v1/verify. One flow is one operation.
func runChallengeVerify(ctx context.Context, o options, m *emu) (result, error) {
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var seq atomic.Int64
	r := runLoad(ctx, o, nameChallenge, "flows/s", func(int) op {
		return func(ctx context.Context) error {
			email := fmt.Sprintf("lg-%d-cv-%d@example.com", runID, seq.Add(1))
			var ch struct {
				ChallengeID string `json:"challengeId"`
			}
			if err := apiCall(ctx, client, http.MethodPost, m.url+"/v1/challenge", map[string]any{
				"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": email,
			}, &ch); err != nil {
				return err
			}
			code, err := appserver.LatestCode(ctx, client, m.url, email)
			if err != nil {
				return err
			}
			var v struct {
				IsVerified    bool   `json:"isVerified"`
				FailureReason string `json:"failureReason"`
			}
			if err := apiCall(ctx, client, http.MethodPost, m.url+"/v1/verify", map[string]any{
				"challengeId": ch.ChallengeID, "verificationCode": code,
			}, &v); err != nil {
				return err
			}
			if !v.IsVerified {
				return fmt.Errorf("verify: not verified (%s)", v.FailureReason)
			}
			return nil
		}
	})
	r.note = "one flow = 3 requests: POST /v1/challenge (email), GET /emulator/messages?to=, POST /v1/verify"
	return r, nil
}

// signIn runs the email sign-in over HTTP as the sign-in flow scenario measures it:
// GET /signin, POST /signin, the code from the outbox, POST /signin/verify. It returns
// the browser's cookies for the app afterwards.
func signIn(ctx context.Context, tr http.RoundTripper, c *appserver.Process, email string) ([]*http.Cookie, error) {
	client := appserver.NewClient(tr)
	if err := c.SignIn(ctx, client, email); err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.AppURL)
	cookies := client.Jar.Cookies(u)
	for _, ck := range cookies {
		if ck.Name == "session" {
			return cookies, nil
		}
	}
	return nil, fmt.Errorf("no session cookie after sign-in")
}

// runAccount signs in one session per client, then loads GET /account with its cookies.
func runAccount(ctx context.Context, o options, c *appserver.Process) (result, error) {
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noRedirects, Timeout: 10 * time.Second}
	headers := make([]string, o.concurrency)
	for i := range headers {
		cookies, err := signIn(ctx, tr, c, fmt.Sprintf("lg-%d-account-%d@example.com", runID, i))
		if err != nil {
			return result{}, fmt.Errorf("sign in session %d: %w", i, err)
		}
		parts := make([]string, len(cookies))
		for j, ck := range cookies {
			parts[j] = ck.Name + "=" + ck.Value
		}
		headers[i] = strings.Join(parts, "; ")
	}
	signedIn := []byte("Signed in as")
	r := runLoad(ctx, o, nameAccount, "req/s", func(i int) op {
		cookie := headers[i]
		return func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.AppURL+"/account", nil)
			req.Header.Set("Cookie", cookie)
			status, _, body, err := appserver.Fetch(client, req)
			if err != nil {
				return err
			}
			if status != http.StatusOK || !bytes.Contains(body, signedIn) {
				return fmt.Errorf("GET /account: status %d, not signed in", status)
			}
			return nil
		}
	})
	r.note = fmt.Sprintf("GET with the session, device and CSRF cookies of %d signed-in sessions (one per client); the real binary as a child process", o.concurrency)
	return r, nil
}

// runSignIn loads the whole sign-in over HTTP with a new email (so a new user) per flow.
func runSignIn(ctx context.Context, o options, c *appserver.Process, name string) (result, error) {
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	var seq atomic.Int64
	r := runLoad(ctx, o, name, "flows/s", func(int) op {
		return func(ctx context.Context) error {
			_, err := signIn(ctx, tr, c, fmt.Sprintf("lg-%d-signin-%d@example.com", runID, seq.Add(1)))
			return err
		}
	})
	r.note = "one flow = 4 requests: GET /signin, POST /signin (app → POST /v1/challenge), GET /emulator/messages?to=, POST /signin/verify (app → /v1/verify, /v1/claim); a new user each; closed loop, so at saturation p50 ≈ clients ÷ throughput"
	if o.concurrency == 1 {
		r.note = "the same flow, one client at a time: its latency without queueing behind others"
	}
	return r, nil
}

// runSignInOpenLoop starts sign-in flows at a fixed rate, as independent visitors
// arrive, and measures each from its scheduled start: the latency a visitor sees
// while the server is busy but not saturated.
func runSignInOpenLoop(ctx context.Context, o options, c *appserver.Process, rate float64) result {
	const maxInFlight = 256
	tr := newTransport(maxInFlight)
	defer tr.CloseIdleConnections()
	var seq atomic.Int64
	r := runOpenLoop(ctx, o, nameSignInOL, "flows/s", rate, maxInFlight, func(ctx context.Context) error {
		_, err := signIn(ctx, tr, c, fmt.Sprintf("lg-%d-open-%d@example.com", runID, seq.Add(1)))
		return err
	})
	r.note = fmt.Sprintf("the same flow started at a fixed %.0f flows/s (half the closed-loop throughput above), whatever the answers; latency from each flow's scheduled start", rate)
	return r
}
