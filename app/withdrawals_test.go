package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"example.com/passwordless/store"
)

// signedIn returns a browser signed in as a new user, with that user's id.
func (e *testEnv) signedIn() (*browser, store.User) {
	e.t.Helper()
	email := uniqueEmail()
	b := e.newBrowser()
	b.signIn("email", email)
	user, _, err := e.store.FindOrCreateUserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	return b, user
}

func (e *testEnv) balance(userID string) int64 {
	e.t.Helper()
	cents, err := e.store.Balance(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return cents
}

func (e *testEnv) withdrawals(userID string) []store.Withdrawal {
	e.t.Helper()
	account, err := e.store.GetAccount(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return account.Withdrawals
}

// withdrawNoFollow posts the withdrawal form and returns the first response, so a test
// can see where a CHALLENGE_REQUIRED answer sends the browser.
func (b *browser) withdrawNoFollow(amount string) *http.Response {
	b.env.t.Helper()
	account := b.get("/account")
	form := url.Values{"_csrf": {csrfToken(b.env.t, account.body)}, "withdrawal_id": {withdrawalID(b.env.t, account.body)}, "amount": {amount}}
	client := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, b.env.appURL+"/withdrawals", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		b.env.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (b *browser) withdraw(amount string) response {
	b.env.t.Helper()
	account := b.get("/account")
	return b.post("/withdrawals", url.Values{"_csrf": {csrfToken(b.env.t, account.body)}, "withdrawal_id": {withdrawalID(b.env.t, account.body)}, "amount": {amount}})
}

// withdrawalID is the id the account page minted for its withdrawal form.
func withdrawalID(t testing.TB, body string) string {
	t.Helper()
	return hiddenField(t, body, "withdrawal_id")
}

func TestWithdrawalOutcomes(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name        string
		amount      string
		notice      string
		state       store.WithdrawalState
		wantBalance int64
	}{
		{"allowed", "250.50", "Withdrawal completed", store.WithdrawalCompleted, 2_500_000 - 25_050},
		{"at the challenge threshold", "1000", "Withdrawal completed", store.WithdrawalCompleted, 2_500_000 - 100_000},
		{"blocked", "10000.01", "Withdrawal blocked", store.WithdrawalBlocked, 2_500_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, user := env.signedIn()
			page := b.withdraw(tt.amount)
			if page.url.Path != "/account" {
				t.Fatalf("after Withdraw: at %s", page.url)
			}
			mustContain(t, page, tt.notice, "Balance: "+formatCents(tt.wantBalance))
			if got := env.balance(user.ID); got != tt.wantBalance {
				t.Fatalf("balance %d, want %d", got, tt.wantBalance)
			}
			list := env.withdrawals(user.ID)
			if len(list) != 1 || list[0].State != tt.state {
				t.Fatalf("withdrawals %+v, want one %s", list, tt.state)
			}
		})
	}
}

func TestWithdrawalBadAmountsRecordNothing(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	tests := []struct{ amount, want string }{
		{"", "Enter an amount to withdraw."},
		{"lots", "Enter an amount like 250"},
		{"-5", "Enter an amount like 250"},
		{"0", "greater than zero"},
		{"1.234", "at most two decimal places"},
		{"25000.01", "more than your balance"},
		{"99999999999999999999", "Enter an amount like 250"},
		{"1e3", "Enter an amount like 250"},
		{"٣٣", "Enter an amount like 250"},
	}
	for _, tt := range tests {
		t.Run(tt.amount, func(t *testing.T) {
			page := b.withdraw(tt.amount)
			if page.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", page.status)
			}
			mustContain(t, page, tt.want, "Balance: $25,000.00")
		})
	}
	if list := env.withdrawals(user.ID); len(list) != 0 {
		t.Fatalf("bad amounts recorded withdrawals: %+v", list)
	}
}

func TestChallengedWithdrawalRoundTrip(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	resp := b.withdrawNoFollow("1500")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), env.emulatorURL+"/challenge?token=") {
		t.Fatalf("large withdrawal: %d to %q, want a redirect to the pre-built UI", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := env.withdrawals(user.ID)[0].State; got != store.WithdrawalAwaitingChallenge {
		t.Fatalf("state before the challenge: %s", got)
	}

	callbackURL, page := env.completeChallenge(b, resp.Header.Get("Location"), user.Email, true)
	mustContain(t, page, "Withdrawal completed", "Balance: $23,500.00")
	if got := env.balance(user.ID); got != 2_500_000-150_000 {
		t.Fatalf("balance %d after the challenge", got)
	}

	// A refresh or a replayed callback changes nothing.
	replay := b.get(callbackURL)
	mustContain(t, replay, "Nothing changed: this withdrawal was already settled", "Balance: $23,500.00")
	if got := env.balance(user.ID); got != 2_500_000-150_000 {
		t.Fatalf("balance %d after a replay", got)
	}
}

func TestConcurrentCallbacksDebitOnce(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	resp := b.withdrawNoFollow("2000")
	callbackURL := env.passChallengeWithoutFollowing(b, resp.Header.Get("Location"), user.Email)

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, callbackURL, nil)
			if r, err := b.client.Do(req); err == nil {
				r.Body.Close()
			}
		}()
	}
	wg.Wait()
	if got := env.balance(user.ID); got != 2_500_000-200_000 {
		t.Fatalf("balance %d after concurrent callbacks, want exactly one debit", got)
	}
	if list := env.withdrawals(user.ID); list[0].State != store.WithdrawalCompleted {
		t.Fatalf("state %s", list[0].State)
	}
}

func TestCallbackTokenOfAnotherUserChangesNothing(t *testing.T) {
	env := newTestEnv(t)
	victim, victimUser := env.signedIn()
	attacker, attackerUser := env.signedIn()

	victimResp := victim.withdrawNoFollow("3000")
	victimCallback := env.passChallengeWithoutFollowing(victim, victimResp.Header.Get("Location"), victimUser.Email)
	attacker.withdrawNoFollow("3000")

	// The attacker replays the victim's callback in their own session: Authsignal, asked
	// with the attacker's userId, does not vouch for it.
	page := attacker.get(victimCallback)
	mustContain(t, page, "Nothing changed: that link is invalid or has expired")
	if env.balance(attackerUser.ID) != 2_500_000 || env.balance(victimUser.ID) != 2_500_000 {
		t.Fatal("a token of another user moved money")
	}
	if got := env.withdrawals(attackerUser.ID)[0].State; got != store.WithdrawalAwaitingChallenge {
		t.Fatalf("attacker's withdrawal state changed to %s", got)
	}

	// The victim's own callback still works once.
	mustContain(t, victim.get(victimCallback), "Withdrawal completed")
}

func TestCallbackWithBadTokens(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	for _, token := range []string{"", "garbage", strings.Repeat("x", 3000), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		page := b.get("/withdrawals/callback?token=" + url.QueryEscape(token))
		if page.url.Path != "/account" || page.status != http.StatusOK {
			t.Fatalf("token %.20q: status %d at %s", token, page.status, page.url)
		}
		mustContain(t, page, "Nothing changed: that link is invalid or has expired")
	}
	if env.balance(user.ID) != 2_500_000 {
		t.Fatal("a bad token moved money")
	}
}

func TestChallengeFailedMarksWithdrawalFailed(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	resp := b.withdrawNoFollow("2000")
	_, page := env.completeChallenge(b, resp.Header.Get("Location"), user.Email, false)
	mustContain(t, page, "Withdrawal cancelled: it was not confirmed, so nothing was taken", "Balance: $25,000.00", "<td>cancelled</td>")
	if got := env.withdrawals(user.ID)[0].State; got != store.WithdrawalFailed {
		t.Fatalf("state %s, want failed", got)
	}
}

const reviewRules = `{
  "rules": [
    {"id": "review-withdrawal", "name": "Review", "actionCode": "withdrawal", "priority": 1,
     "conditions": [{"field": "custom.amount", "op": "eq", "value": 4321}], "outcome": "REVIEW_REQUIRED"}
  ],
  "defaultOutcome": "ALLOW"
}`

func TestReviewSettledByCheckStatus(t *testing.T) {
	env := newTestEnv(t, withRules(reviewRules))
	tests := []struct {
		decision    string // the emulator admin's button
		notice      string
		history     string // the withdrawal's line in the history
		state       store.WithdrawalState
		wantBalance int64
	}{
		{"Approve", "Review approved: withdrawal completed", "<td>completed</td>", store.WithdrawalCompleted, 2_500_000 - 432_100},
		{"Reject", "Review rejected: the withdrawal was not made", "<td>rejected at review</td>", store.WithdrawalFailed, 2_500_000},
	}
	for _, tt := range tests {
		t.Run(tt.decision, func(t *testing.T) {
			b, user := env.signedIn()
			page := b.withdraw("4321")
			mustContain(t, page, "Withdrawal held for review", "held for review", "Check status")
			w := env.withdrawals(user.ID)[0]

			page = b.post("/withdrawals/"+w.ID+"/check", url.Values{"_csrf": {csrfToken(t, page.body)}})
			mustContain(t, page, "Still held for review")

			env.decideReview(w.ID, tt.decision)
			page = b.post("/withdrawals/"+w.ID+"/check", url.Values{"_csrf": {csrfToken(t, page.body)}})
			mustContain(t, page, tt.notice, tt.history)
			if got := env.balance(user.ID); got != tt.wantBalance {
				t.Fatalf("balance %d, want %d", got, tt.wantBalance)
			}
			if got := env.withdrawals(user.ID)[0].State; got != tt.state {
				t.Fatalf("state %s, want %s", got, tt.state)
			}
			page = b.post("/withdrawals/"+w.ID+"/check", url.Values{"_csrf": {csrfToken(t, page.body)}})
			mustContain(t, page, "Nothing changed: this withdrawal was already settled")
		})
	}
}

func TestCheckStatusOfAnotherUsersWithdrawal(t *testing.T) {
	env := newTestEnv(t, withRules(reviewRules))
	owner, ownerUser := env.signedIn()
	owner.withdraw("4321")
	w := env.withdrawals(ownerUser.ID)[0]
	other, _ := env.signedIn()
	page := other.submit("/account", "/withdrawals/"+w.ID+"/check", url.Values{})
	mustContain(t, page, "Nothing changed: that link is not valid for your account")
}

func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	account := b.get("/account")
	token := csrfToken(t, account.body)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 50 different withdrawals (50 forms), each with its own id.
			form := url.Values{"_csrf": {token}, "withdrawal_id": {randomHex(16)}, "amount": {"1000"}}
			req, _ := http.NewRequest(http.MethodPost, env.appURL+"/withdrawals", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if r, err := b.client.Do(req); err == nil {
				r.Body.Close()
			}
		}()
	}
	wg.Wait()
	balance := env.balance(user.ID)
	var completed int64
	for _, w := range env.withdrawals(user.ID) {
		if w.State == store.WithdrawalCompleted {
			completed += w.AmountCents
		}
		if w.State == store.WithdrawalPending {
			t.Errorf("withdrawal %s left pending", w.ID)
		}
	}
	if balance < 0 || balance+completed != 2_500_000 {
		t.Fatalf("ledger broken: balance %d + completed %d != 2,500,000", balance, completed)
	}
	if completed != 2_500_000 {
		t.Fatalf("completed %d: 50 withdrawals of 1000 should have emptied the 25,000 account", completed)
	}
}

func TestCancelledChallengeMarksWithdrawalFailed(t *testing.T) {
	env := newTestEnv(t)
	b, user := env.signedIn()
	resp := b.withdrawNoFollow("1200")
	page := b.get(resp.Header.Get("Location"))
	page = b.submitForm(page, "Cancel", nil)
	if page.url.Path != "/account" {
		t.Fatalf("after Cancel: at %s", page.url)
	}
	mustContain(t, page, "Withdrawal cancelled: it was not confirmed, so nothing was taken", "Balance: $25,000.00", "<td>cancelled</td>")
	if got := env.withdrawals(user.ID)[0].State; got != store.WithdrawalFailed {
		t.Fatalf("state %s, want failed", got)
	}
}

// A double-clicked (or 50 times posted) form is one withdrawal: the same id moves money once,
// and every repeat answers with the first post's outcome.
func TestRepeatedWithdrawalFormMovesMoneyOnce(t *testing.T) {
	tests := []struct {
		name, amount string
		wantState    store.WithdrawalState
		wantBalance  int64
		wantLocation string // prefix of where every post is sent
	}{
		{"allowed", "250", store.WithdrawalCompleted, 2_500_000 - 25_000, "/account?notice=withdrawal-done"},
		{"challenged", "1500", store.WithdrawalAwaitingChallenge, 2_500_000, "/challenge?token="},
		{"blocked", "20000", store.WithdrawalBlocked, 2_500_000, "/account?notice=withdrawal-blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			b, user := env.signedIn()
			account := b.get("/account")
			form := url.Values{"_csrf": {csrfToken(t, account.body)}, "withdrawal_id": {withdrawalID(t, account.body)}, "amount": {tt.amount}}
			client := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			var wg sync.WaitGroup
			locations := make(chan string, 50)
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, env.appURL+"/withdrawals", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					locations <- resp.Header.Get("Location")
				}()
			}
			wg.Wait()
			close(locations)
			for loc := range locations {
				if !strings.Contains(loc, tt.wantLocation) {
					t.Errorf("a post was sent to %q, want the first outcome %q", loc, tt.wantLocation)
				}
			}
			list := env.withdrawals(user.ID)
			if len(list) != 1 || list[0].State != tt.wantState {
				t.Fatalf("withdrawals %+v, want one %s", list, tt.wantState)
			}
			if got := env.balance(user.ID); got != tt.wantBalance {
				t.Fatalf("balance %d, want %d", got, tt.wantBalance)
			}
		})
	}
	// The id of another user's withdrawal is refused, and changes nothing of theirs.
	env := newTestEnv(t)
	owner, ownerUser := env.signedIn()
	owner.withdraw("250")
	w := env.withdrawals(ownerUser.ID)[0]
	other, otherUser := env.signedIn()
	account := other.get("/account")
	page := other.post("/withdrawals", url.Values{"_csrf": {csrfToken(t, account.body)}, "withdrawal_id": {w.ID}, "amount": {"100"}})
	mustContain(t, page, "Nothing changed: that link is not valid for your account")
	if len(env.withdrawals(otherUser.ID)) != 0 || env.balance(ownerUser.ID) != 2_500_000-25_000 {
		t.Fatal("another user's withdrawal id moved money")
	}
	// A form without an id, or with a malformed one, records nothing.
	for _, id := range []string{"", "not-hex", strings.Repeat("a", 31)} {
		page := other.post("/withdrawals", url.Values{"_csrf": {csrfToken(t, account.body)}, "withdrawal_id": {id}, "amount": {"100"}})
		if page.status != http.StatusUnprocessableEntity {
			t.Fatalf("withdrawal id %q: status %d, want 422", id, page.status)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
