package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/playwright-community/playwright-go"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
)

// With the suite's rules (e2e/testdata/rules.json, the defaults plus one review rule):
// up to 1,000 ALLOW, over 1,000 CHALLENGE_REQUIRED, over 10,000 BLOCK, exactly 4,321
// REVIEW_REQUIRED. Every user starts with $25,000.00.

// Scenario 9: a small withdrawal is allowed and completes at once.
func TestSmallWithdrawalAllowed(t *testing.T) {
	t.Parallel()
	b := open(t)
	b.signIn("Email", uniqueEmail(t))

	b.withdraw("250")
	b.expectNotice("Withdrawal completed")
	b.expectBalance("$24,750.00")
	b.expectWithdrawal("$250.00", "completed")
}

// Scenario 10: a large withdrawal goes through the emulator's pre-built UI with a code
// from the outbox, comes back completed, and debits the balance once.
func TestLargeWithdrawalChallenge(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		open func(*testing.T) *browserTest
	}{{"popup", open}, {"redirect without JavaScript", openWithoutJavaScript}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			largeWithdrawalChallenge(t, mode.open(t))
		})
	}
}

func largeWithdrawalChallenge(t *testing.T, b *browserTest) {
	email := uniqueEmail(t)
	b.signIn("Email", email)

	b.withdraw("1500")
	b.passChallenge(email)

	b.expectPath("/account")
	b.expectNotice("Withdrawal completed")
	b.expectBalance("$23,500.00")
	b.expectWithdrawal("$1,500.00", "completed")

	// Once: a fresh look at the account shows the same balance and a single row.
	b.gotoPath("/account")
	b.expectBalance("$23,500.00")
	b.must(b.expect.Locator(b.withdrawalRow("$1,500.00")).ToHaveCount(1), "one withdrawal row")
}

// Scenario 11: wrong codes on the pre-built UI fail the challenge; nothing is taken.
func TestChallengeFailed(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	b.signIn("Email", email)

	b.withdraw("2000")
	code := b.sendChallengeCode(email)
	wrong := wrongCode(code)
	for i := 0; i < 4; i++ {
		b.enterChallengeCode(wrong)
		b.expectUIAlert(fmt.Sprintf("Incorrect code. %d attempt", 4-i))
		b.expectOnPrebuiltUI("/challenge/")
	}
	b.enterChallengeCode(wrong) // the fifth: the emulator gives up and sends the browser back

	b.expectPath("/account")
	b.expectNotice("Withdrawal cancelled: it was not confirmed, so nothing was taken")
	b.expectBalance(startBalance)
	b.expectWithdrawal("$2,000.00", "cancelled")
}

// Scenario 12: a huge withdrawal is blocked; nothing is taken.
func TestHugeWithdrawalBlocked(t *testing.T) {
	t.Parallel()
	b := open(t)
	b.signIn("Email", uniqueEmail(t))

	b.withdraw("15000")
	b.expectNotice("Withdrawal blocked")
	b.expectBalance(startBalance)
	b.expectWithdrawal("$15,000.00", "blocked")
}

// Scenario 13: opening the callback URL again, with the same token, changes nothing.
func TestReplayedCallback(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	b.signIn("Email", email)

	callbacks := b.recordRequests("/withdrawals/callback")
	b.withdraw("1200")
	b.passChallenge(email)
	b.expectNotice("Withdrawal completed")
	b.expectBalance("$23,800.00")

	seen := callbacks()
	if len(seen) != 1 || !strings.Contains(seen[0], "token=") {
		t.Fatalf("callback requests = %q, want exactly one with a token", seen)
	}
	b.gotoPath(seen[0])
	b.expectPath("/account")
	b.expectNotice("Nothing changed: this withdrawal was already settled")
	b.expectBalance("$23,800.00")
	b.must(b.expect.Locator(b.withdrawalRow("$1,200.00")).ToHaveCount(1), "still one withdrawal row")
	b.expectWithdrawal("$1,200.00", "completed")
}

// Scenario 14: a withdrawal held for review is approved on the emulator's admin page and
// settled from the app with "Check status".
func TestReviewApprovedSettledByCheckStatus(t *testing.T) {
	t.Parallel()
	b := open(t)
	b.signIn("Email", uniqueEmail(t))

	b.withdraw("4321")
	b.expectNotice("Withdrawal held for review")
	b.expectBalance(startBalance)
	b.expectWithdrawal("$4,321.00", "held for review")

	// The analyst's side, in another tab. Only this test uses the amount 4,321, so the
	// review row is the one mentioning it.
	admin, err := b.ctx.NewPage()
	b.must(err, "open a tab for the admin page")
	_, err = admin.Goto(suite.emulatorURL + "/admin")
	b.must(err, "open the emulator admin page")
	row := admin.GetByRole("row").Filter(playwright.LocatorFilterOptions{HasText: "4321"})
	b.must(b.expect.Locator(row).ToHaveCount(1), "one review row for 4321 on /admin")
	b.must(row.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Approve", Exact: playwright.Bool(true)}).Click(), "approve")
	b.must(b.expect.Locator(admin.GetByRole("row").Filter(playwright.LocatorFilterOptions{HasText: "4321"})).ToHaveCount(0), "the review row is gone after approval")
	_ = admin.Close()

	b.gotoPath("/account")
	check := b.withdrawalRow("$4,321.00").GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Check status", Exact: playwright.Bool(true)})
	b.must(check.Click(), "check status")
	b.expectPath("/account")
	// The app words this one "Review approved: withdrawal completed".
	b.must(b.expect.Locator(b.page.GetByRole("status")).ToContainText(regexp.MustCompile(`(?i)withdrawal completed`)), "notice should say the withdrawal completed")
	b.expectBalance("$20,679.00")
	b.expectWithdrawal("$4,321.00", "completed")
	b.must(b.expect.Locator(b.button("Check status")).ToHaveCount(0), "nothing left to check")
}

// Scenario 15: a user Authsignal has no authenticator for (here: removed on the service
// after sign-in) is answered ALLOW even for an amount the rules challenge. The app moves
// no money on that answer, enrols the user again, and the next try is challenged.
func TestUnenrolledUserIsChallengedAfterEnrolment(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	b.signIn("Email", email)

	api := authsignal.New(emulator.DevSecretKey, authsignal.WithBaseURL(suite.emulatorURL+"/v1"))
	ctx := context.Background()
	found, err := api.QueryUsers(ctx, authsignal.QueryUsersRequest{Email: email})
	if err != nil || len(found.Users) != 1 {
		t.Fatalf("the user on the emulator: %+v, %v", found, err)
	}
	userID := found.Users[0].UserID
	auths, err := api.GetAuthenticators(ctx, userID)
	if err != nil || len(auths) != 1 {
		t.Fatalf("authenticators after sign-in: %+v, %v", auths, err)
	}
	if err := api.DeleteAuthenticator(ctx, userID, auths[0].UserAuthenticatorID); err != nil {
		t.Fatal(err)
	}

	b.withdraw("1500")
	b.expectPath("/account")
	b.expectNotice("Nothing was taken: your account was not yet set up for security checks")
	b.expectBalance(startBalance)
	b.expectWithdrawal("$1,500.00", "failed")

	b.withdraw("1500")
	b.passChallenge(email)
	b.expectNotice("Withdrawal completed")
	b.expectBalance("$23,500.00")
}

// ---- the emulator's pre-built UI ----

// The pre-built UI opens in a popup (an iframe over the app's page) when the page's
// script runs, and by a redirect without JavaScript (openWithoutJavaScript). These helpers
// act on it in either mode.

// prebuiltUI is where the pre-built UI's page is: the popup's frame, or the whole page.
func (b *browserTest) prebuiltUI() playwright.Locator {
	if b.noScript {
		return b.page.Locator("body")
	}
	return b.page.FrameLocator("#__authsignal-popup-iframe").Locator("body")
}

func (b *browserTest) uiButton(name string) playwright.Locator {
	return b.prebuiltUI().GetByRole("button", playwright.LocatorGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

// uiClick presses a button of the pre-built UI.
func (b *browserTest) uiClick(name string) {
	b.t.Helper()
	b.must(b.uiButton(name).Click(), "click "+name+" on the pre-built UI")
}

// expectOnPrebuiltUI waits for the pre-built UI at path: the page's address without
// JavaScript, the popup's frame with it.
func (b *browserTest) expectOnPrebuiltUI(path string) {
	b.t.Helper()
	if b.noScript {
		re := regexp.MustCompile("^" + regexp.QuoteMeta(suite.emulatorURL+path) + `(\?.*)?$`)
		b.must(b.expect.Page(b.page).ToHaveURL(re), "expected to be on the emulator at "+path)
		return
	}
	// Ready: the page inside said so (AUTHSIGNAL_READY), and the SDK showed the frame.
	b.must(b.expect.Locator(b.page.Locator("#__authsignal-popup-iframe.as-iframe-ready")).ToBeVisible(), "the pre-built UI's popup is open")
	b.must(b.expect.Page(b.page).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(suite.appURL+"/account"))), "the app's page stays under the popup")
}

// expectUIAlert waits for the pre-built UI's alert to say text.
func (b *browserTest) expectUIAlert(text string) {
	b.t.Helper()
	b.must(b.expect.Locator(b.prebuiltUI().GetByRole("alert")).ToContainText(text), fmt.Sprintf("the pre-built UI's alert should say %q", text))
}

// sendChallengeCode, on the pre-built UI, sends a code to the user's enrolled email
// (chosen by default) and returns it from the outbox.
func (b *browserTest) sendChallengeCode(email string) string {
	b.t.Helper()
	b.expectOnPrebuiltUI("/challenge")
	before := len(outbox(b.t, email))
	b.must(b.expect.Locator(b.prebuiltUI().GetByRole("radio").First()).ToBeChecked(), "a method is chosen")
	b.uiClick("Send code")
	b.must(b.expect.Locator(b.uiButton("Verify")).ToBeVisible(), "the code form")
	b.expectOnPrebuiltUI("/challenge/code")
	return waitForMessage(b.t, email, before).Code
}

// enterChallengeCode types a code on the pre-built UI and presses Verify.
func (b *browserTest) enterChallengeCode(code string) {
	b.t.Helper()
	field := b.prebuiltUI().GetByRole("textbox", playwright.LocatorGetByRoleOptions{Name: "Code", Exact: playwright.Bool(true)})
	b.must(field.Fill(code), "fill the pre-built UI's code")
	b.uiClick("Verify")
}

// passChallenge completes the pre-built UI with the right code.
func (b *browserTest) passChallenge(email string) {
	b.t.Helper()
	code := b.sendChallengeCode(email)
	b.enterChallengeCode(code)
}

// recordRequests notes the URLs of the page's requests whose path contains part.
func (b *browserTest) recordRequests(part string) func() []string {
	var mu sync.Mutex
	var urls []string
	b.page.OnRequest(func(r playwright.Request) {
		if strings.Contains(r.URL(), part) {
			mu.Lock()
			urls = append(urls, r.URL())
			mu.Unlock()
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}
