package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/passwordless/e2e/appserver"
	"example.com/passwordless/emulator"
	"example.com/passwordless/internal/testkit"
	"example.com/passwordless/store"
)

// TestTwoInstancesShareOnePostgres runs two app processes on one PostgreSQL database and
// one emulator (the first one's), as behind a load balancer: a session made on one opens
// the other, a user's withdrawals spread over both move money once each and never
// overdraw, the per-address send limit counts the sends of both, and a kill -9 of one
// instance mid-load loses no withdrawal it acknowledged.
func TestTwoInstancesShareOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts two instances")
	}
	dbURL := testkit.FreshPostgres(t)
	dir := t.TempDir()
	bin, err := appserver.Build(context.Background(), ".", dir)
	if err != nil {
		t.Fatal(err)
	}
	shared := []string{"DATABASE_URL=" + dbURL, "SESSION_SECRET=two-instances-share-this-session-secret", "LOG_LEVEL=WARN", "SEND_LIMIT_PER_IP=10000"}
	start := func(name string, emulatorPort int, extra ...string) *appRun {
		logs := &testkit.Buffer{}
		p, err := appserver.Start(context.Background(), bin, appserver.Options{
			DataDir: filepath.Join(dir, name), Stdout: logs, Stderr: logs,
			Env: append(append([]string{}, shared...), extra...), EmulatorPort: emulatorPort, Ready: 20 * time.Second,
		})
		if err != nil {
			t.Fatalf("start %s: %v\n%s", name, err, logs.String())
		}
		t.Cleanup(p.Kill)
		return &appRun{Process: p, logs: logs}
	}
	first := start("first", 0)
	// The second has no emulator of its own: it talks to the first's, as to Authsignal.
	second := start("second", first.EmulatorPort,
		"AUTHSIGNAL_SECRET_KEY="+emulator.DevSecretKey, "AUTHSIGNAL_API_URL="+first.EmulatorURL+"/v1")
	instances := []*appRun{first, second}

	// The hosts differ only by port, so one cookie jar is one browser for both.
	email := fmt.Sprintf("two-%d@example.com", time.Now().UnixNano())
	c := newCrashClient(first)
	if err := c.signIn(email); err != nil {
		t.Fatalf("sign in on the first: %v\n%s", err, first.logs.String())
	}
	c.proc = second
	if err := c.signedIn(); err != nil {
		t.Fatalf("the first's session on the second: %v\n%s", err, second.logs.String())
	}

	t.Run("withdrawals spread over both move money once each", func(t *testing.T) {
		const n, cents = 50, 900_00 // 50 × 900.00 is far more than the 25,000.00 balance
		var completed atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tab := &crashClient{proc: instances[i%2], client: c.client}
				token, err := tab.csrfFrom("/account")
				if err != nil {
					t.Errorf("withdrawal %d: %v", i, err)
					return
				}
				outcome, err := tab.withdraw(token, cents)
				if err != nil {
					t.Errorf("withdrawal %d: %v", i, err)
					return
				}
				if outcome == "completed" {
					completed.Add(1)
				}
			}()
		}
		wg.Wait()
		account := accountOf(t, dbURL, email)
		done, debited := completedWithdrawals(account)
		want := int64(store.DemoBalanceCents / cents)
		switch {
		case account.BalanceCents < 0:
			t.Fatalf("overdrawn: balance %d", account.BalanceCents)
		case done != completed.Load():
			t.Fatalf("%d withdrawals completed in the store, %d answered completed", done, completed.Load())
		case done != want:
			t.Fatalf("%d withdrawals of %d completed, want %d (as many as the balance allows)", done, cents, want)
		case account.BalanceCents != store.DemoBalanceCents-debited:
			t.Fatalf("balance %d, want %d less %d", account.BalanceCents, store.DemoBalanceCents, debited)
		}
	})

	t.Run("the send limit counts both instances", func(t *testing.T) {
		to := fmt.Sprintf("limit-%d@example.com", time.Now().UnixNano())
		accepted := 0
		for i := range 12 {
			p := instances[i%2]
			client := appserver.NewClient(nil)
			token, err := p.CSRFToken(context.Background(), client, "/signin")
			if err != nil {
				t.Fatal(err)
			}
			status, loc, err := p.PostForm(context.Background(), client, "/signin", url.Values{"_csrf": {token}, "method": {"email"}, "email": {to}})
			if err != nil {
				t.Fatal(err)
			}
			if status == http.StatusSeeOther && loc == "/signin/verify" {
				accepted++
			}
		}
		// The app's default is 5 codes per address per window (the emulator allows 12).
		if accepted != 5 {
			t.Fatalf("%d of 12 sends to one address accepted over two instances, want 5", accepted)
		}
	})

	t.Run("kill -9 of one loses no acknowledged withdrawal", func(t *testing.T) {
		owner := newCrashClient(first)
		owner.email = fmt.Sprintf("two-kill-%d@example.com", time.Now().UnixNano())
		if err := owner.signIn(owner.email); err != nil {
			t.Fatalf("sign in: %v\n%s", err, first.logs.String())
		}
		var acked, ackedCents atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tab := &crashClient{proc: instances[i%2], client: owner.client}
				token, err := tab.csrfFrom("/account")
				if err != nil {
					return
				}
				for n := int64(1); !stop.Load(); n++ {
					cents := 100 + (n*37+int64(i))%400 // 1.00–4.99: allowed, and the balance lasts
					outcome, err := tab.withdraw(token, cents)
					if err != nil {
						return // the instance is gone
					}
					if outcome == "completed" {
						acked.Add(1)
						ackedCents.Add(cents)
					}
				}
			}()
		}
		deadline := time.Now().Add(10 * time.Second)
		for acked.Load() < 30 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		second.Kill()
		time.Sleep(100 * time.Millisecond) // the first goes on meanwhile
		stop.Store(true)
		wg.Wait()
		if acked.Load() < 30 {
			t.Fatalf("only %d withdrawals completed before the kill", acked.Load())
		}
		account := accountOf(t, dbURL, owner.email)
		done, debited := completedWithdrawals(account)
		switch {
		case account.BalanceCents+debited != store.DemoBalanceCents:
			t.Fatalf("balance %d + completed %d != %d", account.BalanceCents, debited, store.DemoBalanceCents)
		case done < acked.Load() || debited < ackedCents.Load():
			t.Fatalf("%d withdrawals (%d cents) completed in the store, but %d (%d cents) were answered completed", done, debited, acked.Load(), ackedCents.Load())
		}
		// The instance left standing still moves money.
		tab := &crashClient{proc: first, client: owner.client}
		token, err := tab.csrfFrom("/account")
		if err != nil {
			t.Fatal(err)
		}
		if outcome, err := tab.withdraw(token, 1_00); err != nil || outcome != "completed" {
			t.Fatalf("after the kill, a withdrawal on the first: %q, %v", outcome, err)
		}
		t.Logf("killed the second after %d acknowledged withdrawals; %d completed in the store", acked.Load(), done)
	})
}

// accountOf reads the account of the user with that email straight from the database.
func accountOf(t *testing.T, dbURL, email string) store.Account {
	t.Helper()
	ctx := context.Background()
	s, err := store.OpenPostgres(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.FindUserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.GetAccount(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// completedWithdrawals counts an account's completed withdrawals and the cents they debited.
func completedWithdrawals(a store.Account) (n, cents int64) {
	for _, w := range a.Withdrawals {
		if w.State == store.WithdrawalCompleted {
			n++
			cents += w.AmountCents
		}
	}
	return n, cents
}
