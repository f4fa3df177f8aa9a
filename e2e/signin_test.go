package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

const startBalance = "$25,000.00"

// Scenario 1: sign in by email with the code from the outbox.
func TestSignInByEmail(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)

	b.requestCode("Email", email)
	msg := waitForMessage(t, email, 0)
	if msg.Channel != "EMAIL" {
		t.Errorf("outbox channel = %q, want EMAIL", msg.Channel)
	}
	b.enterCode(msg.Code)

	b.expectSignedIn(email, startBalance)
	b.must(b.expect.Locator(b.button("Sign out")).ToBeVisible(), "sign-out button")
}

// Scenario 2: sign in by SMS and by WhatsApp.
func TestSignInBySMS(t *testing.T) {
	t.Parallel()
	signInByPhone(t, "SMS", "SMS")
}

func TestSignInByWhatsApp(t *testing.T) {
	t.Parallel()
	signInByPhone(t, "WhatsApp", "WHATSAPP")
}

func signInByPhone(t *testing.T, method, channel string) {
	t.Helper()
	b := open(t)
	phone := uniquePhone(t)

	b.requestCode(method, phone)
	msg := waitForMessage(t, phone, 0)
	if msg.Channel != channel {
		t.Errorf("outbox channel = %q, want %s", msg.Channel, channel)
	}
	b.enterCode(msg.Code)

	b.expectSignedIn(phone, startBalance)
}

// Scenario 3: a wrong code says so (Authsignal's answer covers wrong and expired alike,
// and does not count the tries left, so neither does the page); the right code then works.
func TestWrongCodeThenRight(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)

	b.requestCode("Email", email)
	msg := waitForMessage(t, email, 0)

	b.enterCode(wrongCode(msg.Code))
	b.expectPath("/signin/verify")
	b.expectAlert("That code didn't work: it is incorrect or has expired")

	b.enterCode(msg.Code)
	b.expectSignedIn(email, startBalance)
}

// Scenario 4: five wrong codes end the attempt; a new code then works.
func TestFiveWrongCodes(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)

	b.requestCode("Email", email)
	msg := waitForMessage(t, email, 0)
	wrong := wrongCode(msg.Code)
	for range 4 {
		b.enterCode(wrong)
		b.expectPath("/signin/verify")
		b.expectAlert("incorrect or has expired")
	}
	b.enterCode(wrong)
	b.expectPath("/signin")
	b.expectAlert("Too many attempts")

	// The dead challenge's code is useless now; a fresh one signs in.
	b.requestCode("Email", email)
	fresh := waitForMessage(t, email, 1)
	b.enterCode(fresh.Code)
	b.expectSignedIn(email, startBalance)
}

// Scenario 5: after "Resend code" the old code no longer works and the new one does.
func TestResendCode(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)

	b.requestCode("Email", email)
	first := waitForMessage(t, email, 0)
	// The outbox, open beside the app, follows live.
	inbox, err := b.ctx.NewPage()
	b.must(err, "open a tab")
	_, err = inbox.Goto(suite.emulatorURL + "/outbox?to=" + email)
	b.must(err, "open the outbox")
	b.must(b.expect.Locator(inbox.GetByText("Live: new messages appear at the top.")).ToBeVisible(), "the live outbox")
	firstRow := inbox.Locator("#m-" + first.ID)
	// Times are local: the UTC value stays in the title.
	b.must(b.expect.Locator(firstRow.Locator("time")).ToHaveAttribute("title", first.CreatedAt), "the time's UTC title")
	b.must(b.expect.Locator(firstRow.Locator("time")).Not().ToHaveText(first.CreatedAt), "the time shown locally")

	b.click("Resend code")
	// Still the code page (whatever its URL after the POST), saying a new code went out.
	b.must(b.expect.Locator(b.field("Code")).ToBeVisible(), "the code page after resending")
	second := waitForMessage(t, email, 1)
	if second.ID == first.ID {
		t.Fatalf("resend did not send a new message")
	}

	if first.Code != second.Code { // equal only by a one-in-a-million chance
		b.enterCode(first.Code)
		b.expectAlert("incorrect or has expired")
		b.expectPath("/signin/verify")
	}

	b.enterCode(second.Code)
	b.expectSignedIn(email, startBalance)

	// The outbox marked the first code replaced as soon as the second was sent; reloaded,
	// it shows the second as used.
	b.must(b.expect.Locator(firstRow).ToContainText("replaced by a newer code"), "the first code marked replaced, live")
	_, err = inbox.Reload()
	b.must(err, "reload the outbox")
	b.must(b.expect.Locator(inbox.Locator("#m-"+second.ID)).ToContainText("used"), "the second code marked used")
	b.must(b.expect.Locator(inbox.Locator("#m-"+first.ID)).ToContainText("replaced by a newer code"), "the first code still replaced")
}

// Scenario 6: an invalid email or a phone number not in E.164 gets a message and
// nothing is sent.
func TestInvalidInputsSendNothing(t *testing.T) {
	t.Parallel()
	b := open(t)
	cases := []struct {
		method, input string
	}{
		{"Email", "not-an-email"},
		{"Email", "e2e-nodomain@localhost"},
		{"SMS", "555-0100"},
		{"WhatsApp", "0044 20 7946 0958"},
	}
	for _, tc := range cases {
		b.gotoPath("/signin")
		b.must(b.page.GetByRole("radio", playwright.PageGetByRoleOptions{Name: tc.method, Exact: playwright.Bool(true)}).Check(), "choose "+tc.method)
		label := "Phone number"
		if tc.method == "Email" {
			label = "Email"
		}
		b.fill(label, tc.input)
		b.click("Send code")

		b.expectPath("/signin")
		b.must(b.expect.Locator(b.page.GetByRole("alert")).ToBeVisible(), fmt.Sprintf("%s %q: an error message", tc.method, tc.input))
		b.must(b.expect.Locator(b.button("Send code")).ToBeVisible(), "the sign-in form is shown again")
		if msgs := outbox(t, tc.input); len(msgs) != 0 {
			t.Errorf("%s %q: the outbox has %d message(s), want none", tc.method, tc.input, len(msgs))
		}
	}
}

// Scenario 7: signing out ends the session on the server: /account sends back to
// /signin, and the old session cookie, replayed from another browser, is refused.
func TestSignOutRevokesSession(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	b.signIn("Email", email)

	cookies, err := b.ctx.Cookies()
	b.must(err, "read cookies")
	saved := make([]playwright.OptionalCookie, 0, len(cookies))
	for _, c := range cookies {
		saved = append(saved, c.ToOptionalCookie())
	}

	// The replay is meaningful: before sign-out the copied cookies do open the account.
	replay := b.another(saved)
	replay.gotoPath("/account")
	replay.expectSignedIn(email, startBalance)

	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")
	b.gotoPath("/account")
	b.expectPath("/signin")

	replayAfter := b.another(saved)
	replayAfter.gotoPath("/account")
	replayAfter.expectPath("/signin")
	replayAfter.must(replayAfter.expect.Locator(replayAfter.button("Sign out")).ToHaveCount(0), "the replayed cookie is refused")
}

// Scenario 8: signing in again with the same email lands in the same account, with its
// balance and history.
func TestReturningUser(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	b.signIn("Email", email)

	b.withdraw("12.34")
	b.expectNotice("Withdrawal completed")
	b.expectBalance("$24,987.66")

	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")

	// Again, from another browser: nothing but the email links the two visits.
	other := b.another(nil)
	other.signIn("Email", email)
	other.expectSignedIn(email, "$24,987.66")
	other.expectWithdrawal("$12.34", "completed")
}

// Scenario 15: the sign-in form works with the keyboard alone (Tab, typing, Enter).
func TestKeyboardOnlySignIn(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	kb := b.page.Keyboard()

	b.gotoPath("/signin")
	b.tabTo(b.field("Email"), "the Email input")
	b.must(kb.Type(email), "type the email")
	b.tabTo(b.button("Send code"), "the Send code button")
	b.must(kb.Press("Enter"), "press Enter")
	b.expectPath("/signin/verify")

	msg := waitForMessage(t, email, 0)
	b.tabTo(b.field("Code"), "the Code input")
	b.must(kb.Type(msg.Code), "type the code")
	b.must(kb.Press("Enter"), "press Enter")

	b.expectSignedIn(email, startBalance)
}

// tabTo presses Tab until target has the focus (it may have it already, e.g. autofocus).
func (b *browserTest) tabTo(target playwright.Locator, what string) {
	b.t.Helper()
	b.must(target.WaitFor(), "wait for "+what)
	for i := 0; i < 20; i++ {
		focused, err := target.Evaluate("el => el === document.activeElement", nil)
		b.must(err, "check focus")
		if focused == true {
			return
		}
		b.must(b.page.Keyboard().Press("Tab"), "press Tab")
	}
	b.t.Fatalf("%s never got the focus after 20 presses of Tab", what)
}

// While a form's request runs, its button says so, and pressing it again sends nothing:
// a double click on "Send code" is one request and one message.
func TestButtonsShowProgress(t *testing.T) {
	t.Parallel()
	b := open(t)
	email := uniqueEmail(t)
	var posts atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the browser closes, on failure too
	b.must(b.page.Route("**/signin", func(r playwright.Route) {
		if r.Request().Method() == http.MethodPost {
			posts.Add(1)
			<-release // held until the test has looked at the page
		}
		_ = r.Continue()
	}), "hold the sign-in POST")
	b.gotoPath("/signin")
	b.fill("Email", email)
	pressedAgain := make(chan struct{}, 1)
	b.must(b.page.Route("**/healthz?pressed-again", func(r playwright.Route) {
		pressedAgain <- struct{}{}
		_ = r.Continue()
	}), "hear the second press")
	// Pressed from the page's side, then again a moment later as a double click does,
	// with a beacon after it: a click by Playwright would wait for the navigation, which
	// the held request stalls, and so would any query of the page. What the button says
	// in between is read in the same script.
	state, err := b.page.Evaluate(`() => {
		const form = document.querySelector('form[action="/signin"]');
		const button = form.querySelector('button[type="submit"]');
		button.click();
		setTimeout(() => { button.click(); fetch("/healthz?pressed-again"); }, 100);
		return form.getAttribute("aria-busy") + " " + button.textContent;
	}`)
	b.must(err, "press Send code")
	if state != "true Sending…" {
		t.Errorf("while the code is sent: form aria-busy and button %q, want %q", state, "true Sending…")
	}
	select {
	case <-pressedAgain:
	case <-time.After(10 * time.Second):
		t.Fatal("the second press never happened")
	}
	once.Do(func() { close(release) })
	b.expectPath("/signin/verify")
	b.must(b.expect.Locator(b.field("Code")).ToBeVisible(), "code input")
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d sign-in POSTs, want 1", n)
	}
	if msgs := outbox(t, email); len(msgs) != 1 {
		t.Fatalf("%d messages to %s, want 1", len(msgs), email)
	}
}
