package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/internal/testkit"
	"github.com/playwright-community/playwright-go"
)

// browserTest is one test's browser: its own context (so its own cookies) and page.
type browserTest struct {
	t      *testing.T
	ctx    playwright.BrowserContext
	page   playwright.Page
	expect playwright.PlaywrightAssertions
	name   string // file name prefix of the failure artifacts
	extra  int    // browsers opened with another()
	// noScript is a browser with JavaScript off: the pre-built UI is a redirect, not a popup.
	noScript bool
}

// open gives the test a fresh browser context and page on the app. When the test fails,
// a screenshot and the page's HTML are saved under e2e/artifacts/<TestName>/.
func open(t *testing.T) *browserTest {
	t.Helper()
	skipWithoutBrowser(t)
	return newBrowserTest(t, nil, "page", false)
}

func skipWithoutBrowser(t *testing.T) {
	t.Helper()
	if suite == nil || suite.skipReason != "" {
		reason := "the browser suite did not start"
		if suite != nil {
			reason = suite.skipReason
		}
		t.Skip(reason)
	}
}

// openWithoutJavaScript is open with JavaScript off: the app's no-script paths (the
// pre-built UI by a redirect instead of a popup).
func openWithoutJavaScript(t *testing.T) *browserTest {
	t.Helper()
	skipWithoutBrowser(t)
	return newBrowserTest(t, nil, "noscript", true)
}

// another opens a second, independent browser (another device, or a replayed cookie)
// for the same test, closed when the test ends.
func (b *browserTest) another(cookies []playwright.OptionalCookie) *browserTest {
	b.t.Helper()
	b.extra++
	return newBrowserTest(b.t, cookies, fmt.Sprintf("browser%d", b.extra+1), b.noScript)
}

func newBrowserTest(t *testing.T, cookies []playwright.OptionalCookie, name string, noScript bool) *browserTest {
	t.Helper()
	b := browserTestWith(t, name, playwright.BrowserNewContextOptions{
		Locale:            playwright.String("en-US"),
		JavaScriptEnabled: playwright.Bool(!noScript),
	})
	b.noScript = noScript
	if len(cookies) > 0 {
		if err := b.ctx.AddCookies(cookies); err != nil {
			t.Fatalf("add cookies: %v", err)
		}
	}
	return b
}

// browserTestWith opens a browser context with opts, on the app's address and without
// animations (the SDK's popup then opens without a transition under the pointer), and a
// page in it; both close when the test ends, after its artifacts are saved on failure.
func browserTestWith(t *testing.T, name string, opts playwright.BrowserNewContextOptions) *browserTest {
	t.Helper()
	opts.BaseURL = playwright.String(suite.appURL)
	opts.ReducedMotion = playwright.ReducedMotionReduce
	ctx, err := suite.browser.NewContext(opts)
	if err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	ms := float64(actionTimeout.Milliseconds())
	ctx.SetDefaultTimeout(ms)
	ctx.SetDefaultNavigationTimeout(ms)
	t.Cleanup(func() { _ = ctx.Close() })
	page, err := ctx.NewPage()
	if err != nil {
		t.Fatalf("new page: %v", err)
	}
	b := &browserTest{t: t, ctx: ctx, page: page, expect: suite.expect, name: name}
	// Registered after the context's Close, so it runs before it (cleanups are LIFO).
	t.Cleanup(b.saveArtifactsOnFailure)
	return b
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func (b *browserTest) saveArtifactsOnFailure() {
	if !b.t.Failed() {
		return
	}
	dir := filepath.Join(suite.artifacts, unsafeName.ReplaceAllString(b.t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("artifacts: %v", err)
		return
	}
	if _, err := b.page.Screenshot(playwright.PageScreenshotOptions{
		Path: playwright.String(filepath.Join(dir, b.name+".png")), FullPage: playwright.Bool(true),
		Timeout: playwright.Float(5000),
	}); err != nil {
		b.t.Logf("artifacts: screenshot: %v", err)
	}
	if html, err := b.page.Content(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, b.name+".html"), []byte(html), 0o644)
	} else {
		b.t.Logf("artifacts: page HTML: %v", err)
	}
	b.t.Logf("failure artifacts: %s (%s.png and %s.html of %s)", dir, b.name, b.name, b.page.URL())
}

func (b *browserTest) must(err error, what string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// ---- navigation and common assertions ----

func (b *browserTest) gotoPath(path string) {
	b.t.Helper()
	_, err := b.page.Goto(path)
	b.must(err, "go to "+path)
}

// expectPath waits until the page is on path (query string ignored).
func (b *browserTest) expectPath(path string) {
	b.t.Helper()
	re := regexp.MustCompile("^" + regexp.QuoteMeta(suite.appURL+path) + `(\?.*)?$`)
	b.must(b.expect.Page(b.page).ToHaveURL(re), "expected to be on "+path)
}

func (b *browserTest) button(name string) playwright.Locator {
	return b.page.GetByRole("button", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

func (b *browserTest) field(label string) playwright.Locator {
	// A textbox, not any labelled control: the "Email" radio on /signin has that name too.
	return b.page.GetByRole("textbox", playwright.PageGetByRoleOptions{Name: label, Exact: playwright.Bool(true)})
}

func (b *browserTest) click(name string) {
	b.t.Helper()
	b.must(b.button(name).Click(), "click "+name)
}

func (b *browserTest) fill(label, value string) {
	b.t.Helper()
	b.must(b.field(label).Fill(value), "fill "+label)
}

// expectAlert waits for role="alert" to contain every part.
func (b *browserTest) expectAlert(parts ...string) {
	b.t.Helper()
	for _, p := range parts {
		b.must(b.expect.Locator(b.page.GetByRole("alert")).ToContainText(p), fmt.Sprintf("alert should say %q", p))
	}
}

// expectNotice waits for role="status" to contain text.
func (b *browserTest) expectNotice(text string) {
	b.t.Helper()
	b.must(b.expect.Locator(b.page.GetByRole("status")).ToContainText(text), fmt.Sprintf("notice should say %q", text))
}

func (b *browserTest) expectText(text string) {
	b.t.Helper()
	b.must(b.expect.Locator(b.page.GetByText(text).First()).ToBeVisible(), fmt.Sprintf("page should show %q", text))
}

// expectSignedIn checks the account page as a user sees it.
func (b *browserTest) expectSignedIn(who, balance string) {
	b.t.Helper()
	b.expectPath("/account")
	b.must(b.expect.Locator(b.page.GetByRole("main")).ToContainText("Signed in as "+who), "account page should say who is signed in")
	b.expectBalance(balance)
}

func (b *browserTest) expectBalance(balance string) {
	b.t.Helper()
	b.must(b.expect.Locator(b.page.GetByRole("main")).ToContainText("Balance: "+balance), "balance should be "+balance)
}

// ---- sign-in ----

// requestCode fills the sign-in form and lands on the code page.
// method is the radio's label: "Email", "SMS" or "WhatsApp".
func (b *browserTest) requestCode(method, recipient string) {
	b.t.Helper()
	b.gotoPath("/signin")
	b.must(b.page.GetByRole("radio", playwright.PageGetByRoleOptions{Name: method, Exact: playwright.Bool(true)}).Check(), "choose "+method)
	if method == "Email" {
		b.fill("Email", recipient)
	} else {
		b.fill("Phone number", recipient)
	}
	b.click("Send code")
	b.expectPath("/signin/verify")
	b.must(b.expect.Locator(b.field("Code")).ToBeVisible(), "code input")
}

// enterCode types a code on the code page and presses Verify.
func (b *browserTest) enterCode(code string) {
	b.t.Helper()
	b.fill("Code", code)
	b.click("Verify")
}

// signIn runs the whole sign-in with the code from the outbox and lands on /account.
func (b *browserTest) signIn(method, recipient string) {
	b.t.Helper()
	before := len(outbox(b.t, recipient))
	b.requestCode(method, recipient)
	msg := waitForMessage(b.t, recipient, before)
	b.enterCode(msg.Code)
	b.expectPath("/account")
}

// ---- withdrawals ----

func (b *browserTest) withdraw(amount string) {
	b.t.Helper()
	b.fill("Amount", amount)
	b.click("Withdraw")
}

// withdrawalRow is the history row showing amount (e.g. "$12.34").
func (b *browserTest) withdrawalRow(amount string) playwright.Locator {
	table := b.page.GetByRole("table", playwright.PageGetByRoleOptions{Name: "Withdrawals"})
	return table.GetByRole("row").Filter(playwright.LocatorFilterOptions{HasText: amount})
}

func (b *browserTest) expectWithdrawal(amount, state string) {
	b.t.Helper()
	b.must(b.expect.Locator(b.withdrawalRow(amount)).ToContainText(state), fmt.Sprintf("withdrawal %s should be %q", amount, state))
}

// ---- the emulator outbox ----

// outbox lists the messages the emulator sent to a recipient, newest first.
func outbox(t *testing.T, to string) []testkit.Message {
	t.Helper()
	msgs, err := testkit.Outbox(suite.outboxClient, suite.emulatorURL, to)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// waitForMessage waits until the recipient has more than `before` messages and returns
// the newest one, which must carry a code.
func waitForMessage(t *testing.T, to string, before int) testkit.Message {
	t.Helper()
	m := waitForAnyMessage(t, to, before)
	if m.Code == "" {
		t.Fatalf("newest message to %s has no code: %+v", to, m)
	}
	return m
}

// waitForAnyMessage is waitForMessage for a message with or without a code (a link).
func waitForAnyMessage(t *testing.T, to string, before int) testkit.Message {
	t.Helper()
	deadline := time.Now().Add(actionTimeout)
	for {
		msgs := outbox(t, to)
		if len(msgs) > before {
			return msgs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new message to %s in the emulator outbox within %s (had %d)", to, actionTimeout, before)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wrongCode returns a 6-digit code that differs from code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// ---- unique users ----

func uniqueEmail(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "e2e-" + hex.EncodeToString(b[:]) + "@example.com"
}

// uniquePhone is a +1 555 number (fictional range) with 7 random digits.
func uniquePhone(t *testing.T) string {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("+1555%07d", n.Int64())
}

// money formats whole dollars the way the app does, e.g. 23500 → "$23,500.00".
func money(dollars int) string {
	s := fmt.Sprint(dollars)
	var out strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out.WriteByte(',')
		}
		out.WriteRune(r)
	}
	return "$" + out.String() + ".00"
}
