package e2e

import (
	"fmt"
	"os"
	"path/filepath"
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

// Every page of the app and the emulator fits a phone (360 and 390 px) and a laptop
// (1280 px), light and dark: no horizontal scroll (a wide table scrolls inside itself, or
// becomes cards), each is styled by the shared theme, and axe-core finds no accessibility
// violation. A failing page's screenshot is kept in e2e/artifacts.
func TestEveryPageFitsAndIsAccessible(t *testing.T) {
	t.Parallel()
	skipWithoutBrowser(t)
	axe, err := os.ReadFile(os.Getenv("AXE_CORE_PATH"))
	if err != nil && os.Getenv("CI") == "true" {
		t.Fatalf("axe-core: %v (e2e/run.sh fetches it)", err)
	}
	// 360 px is the narrowest common phone, 390 px a common one (light only: the schemes
	// differ in colour, not in layout), 1280 px a laptop.
	for _, width := range []int{360, 390, 1280} {
		for _, scheme := range []*playwright.ColorScheme{playwright.ColorSchemeLight, playwright.ColorSchemeDark} {
			if width == 390 && scheme == playwright.ColorSchemeDark {
				continue
			}
			name := fmt.Sprintf("%s-%d", *scheme, width)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				// The page's CSP would refuse the injected checker: bypassed here only (the
				// other tests keep it and fail on any violation).
				b := browserTestWith(t, name, playwright.BrowserNewContextOptions{
					Viewport: &playwright.Size{Width: width, Height: 800}, ColorScheme: scheme, BypassCSP: playwright.Bool(true),
				})
				page := b.page
				b.gotoPath("/signin")
				b.checkPage(axe, name, "signin")
				email := uniqueEmail(t)
				b.signIn("Email", email)
				b.checkPage(axe, name, "account")
				b.withdraw("1500") // an outbox row, admin rows, and the pre-built UI in its popup
				b.expectOnPrebuiltUI("/challenge")
				challenge, err := page.Locator("#__authsignal-popup-iframe").GetAttribute("src")
				b.must(err, "the pre-built UI's address")
				pages := []string{"/methods", "/no-such-page", challenge}
				for _, p := range []string{"/outbox", "/admin", "/admin/users", "/admin/actions", "/admin/challenges", "/admin/rules", "/admin/webhooks"} {
					pages = append(pages, suite.emulatorURL+p)
				}
				for i, p := range pages {
					if _, err := page.Goto(p); err != nil {
						t.Fatalf("%s: %v", p, err)
					}
					b.checkPage(axe, name, fmt.Sprint(i))
				}
			})
		}
	}
}

// checkPage fails the test (and keeps a screenshot) when the page scrolls sideways or, with
// axe-core at hand, has an accessibility violation.
func (b *browserTest) checkPage(axe []byte, run, label string) {
	b.t.Helper()
	url := b.page.URL()
	fits, err := b.page.Evaluate(`() => document.documentElement.scrollWidth <= window.innerWidth`)
	b.must(err, "measure "+url)
	var problems []string
	if fits != true {
		width, _ := b.page.Evaluate(`() => document.documentElement.scrollWidth`)
		problems = append(problems, fmt.Sprintf("%v px wide", width))
	}
	// On a phone a table of class "cards" shows one card per row, not a table to scroll.
	tables, err := b.page.Evaluate(`() => innerWidth > 640 || [...document.querySelectorAll("table.cards tbody tr")].every((tr) => getComputedStyle(tr).display === "block")`)
	b.must(err, "measure the tables of "+url)
	if tables != true {
		problems = append(problems, "a table of cards is still a table")
	}
	// One look for the app and the emulator: every page of both uses the shared stylesheet.
	themed, err := b.page.Evaluate(`() => [...document.styleSheets].some(s => s.href && new URL(s.href).pathname === "/static/theme.css" && s.cssRules.length > 0)`)
	b.must(err, "list the stylesheets of "+url)
	if themed != true {
		problems = append(problems, "not styled by /static/theme.css (internal/theme)")
	}
	if len(axe) > 0 {
		_, err := b.page.AddScriptTag(playwright.PageAddScriptTagOptions{Content: playwright.String(string(axe))})
		b.must(err, "inject axe-core into "+url)
		found, err := b.page.Evaluate(`async () => (await axe.run()).violations.map(v => v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", "))`)
		b.must(err, "run axe-core on "+url)
		for _, v := range found.([]any) {
			problems = append(problems, fmt.Sprint(v))
		}
	}
	if len(problems) > 0 {
		dir := filepath.Join(suite.artifacts, unsafeName.ReplaceAllString(b.t.Name(), "_"))
		_ = os.MkdirAll(dir, 0o755)
		_, _ = b.page.Screenshot(playwright.PageScreenshotOptions{Path: playwright.String(filepath.Join(dir, run+"-"+label+".png")), FullPage: playwright.Bool(true)})
		b.t.Errorf("%s (%s):\n  %s", url, run, strings.Join(problems, "\n  "))
	}
}
