package main

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the read-only ledger check after the crash

	"example.com/passwordless/e2e/appserver"
	"example.com/passwordless/store"

	"example.com/passwordless/internal/testkit"
)

// TestCrashSafety builds the real binary, drives concurrent withdrawals through HTTP,
// kill -9s the process in the middle of them, restarts it on the same data and then
// checks the ledger in SQLite: for every user, the starting balance equals the balance
// plus the completed withdrawals, nothing is negative, and no withdrawal is in a state
// it could not have reached.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode: it builds the binary and kill -9s it under load")
	}
	if runtime.GOOS == "windows" {
		t.Skip("crash test needs SIGKILL semantics (not on Windows)")
	}
	dir := t.TempDir()
	bin, err := appserver.Build(context.Background(), ".", dir)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")

	proc := startApp(t, bin, dataDir, nil)

	// A handful of signed-in users, two concurrent "tabs" each.
	const users, tabsPerUser = 5, 2
	var clients []*crashClient
	for i := 0; i < users; i++ {
		email := fmt.Sprintf("crash-%d-%d@example.com", i, time.Now().UnixNano())
		c := newCrashClient(proc)
		if err := c.signIn(email); err != nil {
			t.Fatalf("sign in %s: %v\n%s", email, err, proc.logs.String())
		}
		clients = append(clients, c)
	}

	var (
		completed  atomic.Int64 // withdrawals the app answered "completed" for
		challenged atomic.Int64 // withdrawals sent to the pre-built UI
		stop       atomic.Bool
		ackMu      sync.Mutex // guards every client's acked* fields
		wg         sync.WaitGroup
	)
	for ui, c := range clients {
		for tab := 0; tab < tabsPerUser; tab++ {
			wg.Add(1)
			go func(c *crashClient, seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
				token, err := c.csrfFrom("/account")
				if err != nil {
					return
				}
				for !stop.Load() {
					var cents int64
					if rng.IntN(5) == 0 {
						cents = 100_001 + rng.Int64N(800_000) // 1,000.01–9,000.00: CHALLENGE_REQUIRED
					} else {
						cents = 100 + rng.Int64N(29_901) // 1.00–300.00: ALLOW, and no balance runs dry
					}
					outcome, err := c.withdraw(token, cents)
					if err != nil {
						return // the process is gone
					}
					switch outcome {
					case "completed":
						completed.Add(1)
						ackMu.Lock()
						c.ackedCents += cents
						c.ackedCount++
						ackMu.Unlock()
					case "challenge":
						challenged.Add(1)
					}
				}
			}(c, uint64(ui*10+tab+1)*uint64(time.Now().UnixNano()))
		}
	}

	// Kill once the load is clearly under way, after a random extra delay.
	deadline := time.Now().Add(10 * time.Second)
	for completed.Load() < 15 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if completed.Load() < 15 {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("only %d withdrawals completed in 10s before the kill; the load did not get going\n%s", completed.Load(), proc.logs.String())
	}
	time.Sleep(time.Duration(20+rand.IntN(200)) * time.Millisecond)
	proc.Kill()
	stop.Store(true)
	wg.Wait()
	t.Logf("killed mid-load after %d completed and %d challenged withdrawals (as answered to clients)", completed.Load(), challenged.Load())

	// Restart on the same data and ports; the app must serve, and sessions must survive.
	proc = startApp(t, bin, dataDir, proc)
	for _, c := range clients {
		c.proc = proc
	}
	if err := clients[0].signedIn(); err != nil {
		t.Fatalf("after the restart, an existing session: %v\n%s", err, proc.logs.String())
	}
	// A brand-new user can still sign in, and money still moves.
	fresh := newCrashClient(proc)
	if err := fresh.signIn(fmt.Sprintf("crash-fresh-%d@example.com", time.Now().UnixNano())); err != nil {
		t.Fatalf("after the restart, a new sign-in: %v\n%s", err, proc.logs.String())
	}
	token, err := fresh.csrfFrom("/account")
	if err != nil {
		t.Fatalf("after the restart, /account: %v", err)
	}
	if outcome, err := fresh.withdraw(token, 12_34); err != nil || outcome != "completed" {
		t.Fatalf("after the restart, a 12.34 withdrawal: %q, %v\n%s", outcome, err, proc.logs.String())
	}
	fresh.ackedCents, fresh.ackedCount = 12_34, 1
	clients = append(clients, fresh)
	if err := proc.Stop(); err != nil {
		t.Errorf("the app did not stop cleanly on SIGTERM: %v\n%s", err, proc.logs.String())
	}

	checkLedger(t, filepath.Join(dataDir, "app.db"), clients)
}

// checkLedger opens the app's database read-only and checks the invariants for every user.
func checkLedger(t *testing.T, path string, clients []*crashClient) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q, %v", integrity, err)
	}

	type account struct {
		email        string
		balance      int64
		hasAccount   bool
		completedSum int64
		completedN   int
	}
	accounts := map[string]*account{}
	rows, err := db.Query(`SELECT u.id, COALESCE(u.email, ''), a.balance_cents FROM users u LEFT JOIN accounts a ON a.user_id = u.id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, email string
		var balance sql.NullInt64
		if err := rows.Scan(&id, &email, &balance); err != nil {
			t.Fatal(err)
		}
		accounts[id] = &account{email: email, balance: balance.Int64, hasAccount: balance.Valid}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	known := map[string]bool{}
	for _, st := range []store.WithdrawalState{store.WithdrawalPending, store.WithdrawalAwaitingChallenge, store.WithdrawalHeld,
		store.WithdrawalCompleted, store.WithdrawalBlocked, store.WithdrawalFailed} {
		known[string(st)] = true
	}
	rows, err = db.Query(`SELECT id, user_id, amount_cents, state FROM withdrawals`)
	if err != nil {
		t.Fatal(err)
	}
	total, byState := 0, map[string]int{}
	for rows.Next() {
		var id, userID, state string
		var cents int64
		if err := rows.Scan(&id, &userID, &cents, &state); err != nil {
			t.Fatal(err)
		}
		total++
		byState[state]++
		a := accounts[userID]
		if a == nil {
			t.Errorf("withdrawal %s belongs to unknown user %s", id, userID)
			continue
		}
		if !known[state] {
			t.Errorf("withdrawal %s of %s is in unknown state %q", id, a.email, state)
		}
		if cents <= 0 {
			t.Errorf("withdrawal %s of %s has amount %d", id, a.email, cents)
		}
		// Nobody passed a challenge, so an amount over the 1,000 rule can never have
		// completed, and an amount under it never needed one.
		if cents > 100_000 && state == string(store.WithdrawalCompleted) {
			t.Errorf("withdrawal %s of %s (%d cents, needs a challenge) is completed", id, a.email, cents)
		}
		if cents <= 100_000 && state == string(store.WithdrawalAwaitingChallenge) {
			t.Errorf("withdrawal %s of %s (%d cents, allowed by the rules) is awaiting a challenge", id, a.email, cents)
		}
		if state == string(store.WithdrawalCompleted) {
			a.completedSum += cents
			a.completedN++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	completedTotal := 0
	for id, a := range accounts {
		if !a.hasAccount {
			t.Errorf("user %s (%s) has no account row", id, a.email)
			continue
		}
		if a.balance < 0 {
			t.Errorf("user %s: balance %d < 0", a.email, a.balance)
		}
		if a.balance+a.completedSum != store.DemoBalanceCents {
			t.Errorf("user %s: balance %d + completed withdrawals %d = %d, want %d",
				a.email, a.balance, a.completedSum, a.balance+a.completedSum, store.DemoBalanceCents)
		}
		completedTotal += a.completedN
	}
	// Every withdrawal the app told a client was completed survived the crash.
	byEmail := map[string]*account{}
	for _, a := range accounts {
		byEmail[a.email] = a
	}
	for _, c := range clients {
		a := byEmail[c.email]
		if a == nil {
			t.Errorf("user %s is missing after the crash", c.email)
			continue
		}
		if a.completedN < c.ackedCount || a.completedSum < c.ackedCents {
			t.Errorf("user %s: %d completed withdrawals (%d cents) in the database, but %d (%d cents) were answered as completed",
				c.email, a.completedN, a.completedSum, c.ackedCount, c.ackedCents)
		}
	}
	if completedTotal == 0 {
		t.Fatal("no withdrawal completed: the test did not exercise the ledger")
	}
	t.Logf("ledger after the crash: %d users, %d withdrawals by state %v", len(accounts), total, byState)
}

// appRun is one run of the binary, with its output kept for failure messages.
type appRun struct {
	*appserver.Process
	logs *testkit.Buffer
}

// startApp starts the binary on dataDir and waits until the app and the emulator serve.
// With prev it reuses prev's ports, falling back to new ones if someone took them.
func startApp(t *testing.T, bin, dataDir string, prev *appRun) *appRun {
	t.Helper()
	start := func(appPort, emuPort int) (*appRun, error) {
		logs := &testkit.Buffer{}
		p, err := appserver.Start(context.Background(), bin, appserver.Options{
			DataDir: dataDir, Stdout: logs, Stderr: logs,
			Env:     []string{"SEND_LIMIT_PER_IP=10000", "LOG_LEVEL=WARN"},
			AppPort: appPort, EmulatorPort: emuPort,
			Ready: 15 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, logs.String())
		}
		return &appRun{Process: p, logs: logs}, nil
	}
	var run *appRun
	var err error
	if prev != nil {
		run, err = start(prev.AppPort, prev.EmulatorPort)
	}
	if run == nil {
		if run, err = start(0, 0); err != nil {
			t.Fatalf("the app did not start: %v", err)
		}
	}
	t.Cleanup(run.Kill)
	return run
}

// crashClient is one signed-in browser that never follows redirects, so each request
// is exactly one round trip and its answer can be read from the Location header.
type crashClient struct {
	proc       *appRun
	client     *http.Client
	email      string
	ackedCents int64 // answered "completed" to this client (guarded by the test's ackMu)
	ackedCount int
}

func newCrashClient(p *appRun) *crashClient {
	return &crashClient{proc: p, client: appserver.NewClient(nil)}
}

// csrfFrom loads a page and returns its form's CSRF token.
func (c *crashClient) csrfFrom(path string) (string, error) {
	return c.proc.CSRFToken(context.Background(), c.client, path)
}

// signIn runs the email sign-in: Send code, read the code from the outbox, Verify.
func (c *crashClient) signIn(email string) error {
	c.email = email
	if err := c.proc.SignIn(context.Background(), c.client, email); err != nil {
		return err
	}
	return c.signedIn()
}

// signedIn checks that the session cookie opens /account.
func (c *crashClient) signedIn() error {
	req, _ := http.NewRequest(http.MethodGet, c.proc.AppURL+"/account", nil)
	status, header, body, err := appserver.Fetch(c.client, req)
	if err != nil {
		return err
	}
	if status != http.StatusOK || !strings.Contains(string(body), "Signed in as") {
		return fmt.Errorf("GET /account: status %d (to %q), not signed in", status, header.Get("Location"))
	}
	return nil
}

// withdraw posts the withdrawal form and reports how the app answered: "completed",
// "challenge" (sent to the pre-built UI), or the notice / status otherwise.
func (c *crashClient) withdraw(csrf string, cents int64) (string, error) {
	amount := fmt.Sprintf("%d.%02d", cents/100, cents%100)
	// Each post is a new withdrawal, as if from a fresh form: its own id.
	id := make([]byte, 16)
	if _, err := crand.Read(id); err != nil {
		return "", err
	}
	form := url.Values{"_csrf": {csrf}, "withdrawal_id": {hex.EncodeToString(id)}, "amount": {amount}}
	status, loc, err := c.proc.PostForm(context.Background(), c.client, "/withdrawals", form)
	if err != nil {
		return "", err
	}
	switch {
	case status == http.StatusSeeOther && loc == "/account?notice=withdrawal-done":
		return "completed", nil
	case status == http.StatusSeeOther && strings.HasPrefix(loc, c.proc.EmulatorURL+"/challenge"):
		return "challenge", nil
	case status == http.StatusSeeOther:
		return loc, nil
	default:
		return "status " + strconv.Itoa(status), nil
	}
}
