package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Sign-in methods beyond codes: an authenticator app added on the account page (the key
// read from the page, its codes computed here as the person's app would), then a
// withdrawal stepped up with it in the pre-built UI's popup.

func appCodeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestAuthenticatorAppStepUp(t *testing.T) {
	t.Parallel()
	b := open(t)
	b.noCSPViolations()
	email := uniqueEmail(t)
	b.signIn("Email", email)

	b.click("Add an authenticator app")
	secretField := b.page.Locator("[data-app-secret]")
	b.must(b.expect.Locator(secretField).Not().ToBeEmpty(), "the key is shown")
	secret, err := secretField.TextContent()
	b.must(err, "read the key")
	b.fill("Code from the app", appCodeAt(t, secret, time.Now()))
	b.click("Verify and add")
	b.expectNotice("Authenticator app added")

	b.withdraw("1500")
	b.expectOnPrebuiltUI("/challenge")
	b.must(b.prebuiltUI().GetByRole("radio", playwright.LocatorGetByRoleOptions{Name: "Authenticator app"}).Check(), "choose the app")
	b.uiClick("Send code")
	b.must(b.expect.Locator(b.prebuiltUI().GetByText("Enter the 6-digit code your authenticator app shows")).ToBeVisible(), "the app's code page")
	// The next step's code: the one just used to add the app works only once.
	b.enterChallengeCode(appCodeAt(t, secret, time.Now().Add(30*time.Second)))
	b.expectPath("/account")
	b.expectNotice("Withdrawal completed")
	b.expectBalance("$23,500.00")
	if m := b.lastWithdrawalMethod(email); m != "AUTHENTICATOR_APP" {
		t.Fatalf("verified by %q, want AUTHENTICATOR_APP", m)
	}
}

// A person adds a phone, removes their email, and signs in with the phone into the same
// account; the last method cannot be removed (the page offers no Remove for it).
func TestAddPhoneRemoveEmail(t *testing.T) {
	t.Parallel()
	b := open(t)
	email, phone := uniqueEmail(t), uniquePhone(t)
	b.signIn("Email", email)
	b.withdraw("100")
	b.expectNotice("Withdrawal completed")

	b.must(b.page.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Sign-in methods"}).Click(), "open Sign-in methods")
	b.expectPath("/methods")
	b.must(b.page.GetByRole("radio", playwright.PageGetByRoleOptions{Name: "SMS", Exact: playwright.Bool(true)}).Check(), "choose SMS")
	before := len(outbox(t, phone))
	b.fill("Phone number", phone)
	b.click("Send code")
	b.fill("Code", waitForMessage(t, phone, before).Code)
	b.click("Verify")
	b.expectNotice("Sign-in method added")

	b.must(b.page.GetByRole("button", playwright.PageGetByRoleOptions{Name: "Remove Email code to " + email[:1] + "…@example.com"}).Click(), "remove the email")
	b.expectNotice("Sign-in method removed")
	b.must(b.expect.Locator(b.page.GetByRole("button", playwright.PageGetByRoleOptions{Name: "Remove"})).ToHaveCount(0), "the last method has no Remove")

	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")
	other := b.another(nil)
	other.signIn("SMS", phone)
	other.expectSignedIn(phone, "$24,900.00")
	other.expectWithdrawal("$100.00", "completed")
}

// Sign-in by a link from the outbox: the email added as a link method, then the link
// opened from the outbox's "Open link" in another browser, and Continue.
func TestSignInByLink(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	b.signIn("Email", email)
	b.gotoPath("/methods")
	b.must(b.page.GetByRole("radio", playwright.PageGetByRoleOptions{Name: "Email link", Exact: playwright.Bool(true)}).Check(), "choose Email link")
	before := len(outbox(t, email))
	b.fill("Email", email)
	b.click("Send code")
	b.fill("Code", waitForMessage(t, email, before).Code)
	b.click("Verify")
	b.expectNotice("Sign-in method added")
	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")

	b.gotoPath("/signin")
	b.must(b.page.GetByRole("radio", playwright.PageGetByRoleOptions{Name: "Email link", Exact: playwright.Bool(true)}).Check(), "choose Email link")
	before = len(outbox(t, email))
	b.fill("Email", email)
	b.click("Send code")
	b.expectText("Check your email")
	if m := waitForAnyMessage(t, email, before); m.Link == "" {
		t.Fatalf("the email has no link: %+v", m)
	}

	inbox := b.another(nil)
	_, err := inbox.page.Goto(suite.emulatorURL + "/outbox?to=" + email)
	inbox.must(err, "open the outbox")
	open := inbox.page.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Open link"}).First()
	href, err := open.GetAttribute("href")
	inbox.must(err, "read the link")
	_, err = inbox.page.Goto(href)
	inbox.must(err, "open the link")
	inbox.click("Confirm")
	inbox.expectText("You are verified")

	b.click("Continue")
	b.expectPath("/account")
	b.expectSignedIn(email, startBalance)
}

// The pages load without a console error: no missing icon, no blocked resource.
func TestPagesHaveNoConsoleErrors(t *testing.T) {
	t.Parallel()
	b := open(t)
	var mu sync.Mutex
	var errs []string
	b.page.OnConsole(func(m playwright.ConsoleMessage) {
		if m.Type() == "error" {
			mu.Lock()
			errs = append(errs, m.Text()+" at "+b.page.URL())
			mu.Unlock()
		}
	})
	email := uniqueEmail(t)
	b.signIn("Email", email)
	for _, path := range []string{"/account", "/methods"} {
		b.gotoPath(path)
		b.must(b.page.WaitForLoadState(playwright.PageWaitForLoadStateOptions{State: playwright.LoadStateNetworkidle}), "load "+path)
	}
	for _, u := range []string{suite.emulatorURL + "/outbox", suite.emulatorURL + "/admin"} {
		_, err := b.page.Goto(u, playwright.PageGotoOptions{WaitUntil: playwright.WaitUntilStateLoad})
		b.must(err, "open "+u)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// Every page fits a 360-pixel phone, light and dark: no horizontal scroll (a wide table
// scrolls inside itself). The emulator's pages are checked too.
func TestPagesFitAPhone(t *testing.T) {
	t.Parallel()
	skipWithoutBrowser(t)
	for _, scheme := range []*playwright.ColorScheme{playwright.ColorSchemeLight, playwright.ColorSchemeDark} {
		ctx, err := suite.browser.NewContext(playwright.BrowserNewContextOptions{
			BaseURL: playwright.String(suite.appURL), Viewport: &playwright.Size{Width: 360, Height: 800}, ColorScheme: scheme,
			ReducedMotion: playwright.ReducedMotionReduce,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ctx.Close() })
		page, err := ctx.NewPage()
		if err != nil {
			t.Fatal(err)
		}
		b := &browserTest{t: t, ctx: ctx, page: page, expect: suite.expect, name: "phone-" + string(*scheme)}
		t.Cleanup(b.saveArtifactsOnFailure)
		email := uniqueEmail(t)
		b.signIn("Email", email)
		b.withdraw("1500") // a row in the outbox and in the admin pages, and a challenge
		b.expectOnPrebuiltUI("/challenge")
		b.gotoPath("/account")
		pages := []string{"/signin", "/account", "/methods", "/no-such-page"}
		for _, p := range []string{"/outbox", "/admin", "/admin/users", "/admin/actions", "/admin/challenges", "/admin/rules", "/admin/webhooks"} {
			pages = append(pages, suite.emulatorURL+p)
		}
		for _, p := range pages {
			if _, err := page.Goto(p); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			fits, err := page.Evaluate(`() => document.documentElement.scrollWidth <= window.innerWidth`)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if fits != true {
				width, _ := page.Evaluate(`() => document.documentElement.scrollWidth`)
				t.Errorf("%s (%s): %v px wide at 360", p, *scheme, width)
			}
		}
	}
}
