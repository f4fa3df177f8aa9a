package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// Passkeys in Chromium, with a CDP virtual authenticator standing in for the laptop's or
// phone's passkey provider (ctap2, built in, resident keys, user verification), through
// Authsignal's browser SDK and the emulator's Client API.

// virtualAuthenticator gives the page a passkey provider that says yes at once, and
// returns a function listing the credentials it holds.
func (b *browserTest) virtualAuthenticator() func() int {
	b.t.Helper()
	cdp, err := b.ctx.NewCDPSession(b.page)
	b.must(err, "open a CDP session")
	_, err = cdp.Send("WebAuthn.enable", map[string]any{"enableUI": false})
	b.must(err, "WebAuthn.enable")
	res, err := cdp.Send("WebAuthn.addVirtualAuthenticator", map[string]any{"options": map[string]any{
		"protocol": "ctap2", "transport": "internal", "hasResidentKey": true, "hasUserVerification": true,
		"isUserVerified": true, "automaticPresenceSimulation": true,
	}})
	b.must(err, "WebAuthn.addVirtualAuthenticator")
	id, _ := res.(map[string]any)["authenticatorId"].(string)
	return func() int {
		out, err := cdp.Send("WebAuthn.getCredentials", map[string]any{"authenticatorId": id})
		b.must(err, "WebAuthn.getCredentials")
		creds, _ := out.(map[string]any)["credentials"].([]any)
		return len(creds)
	}
}

// noCSPViolations fails the test when the page reports a blocked resource: the CSP must
// let the browser SDK reach the Client API, and nothing more.
func (b *browserTest) noCSPViolations() {
	var mu sync.Mutex
	var violations []string
	b.page.OnConsole(func(m playwright.ConsoleMessage) {
		if strings.Contains(m.Text(), "Content Security Policy") {
			mu.Lock()
			violations = append(violations, m.Text())
			mu.Unlock()
		}
	})
	b.t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range violations {
			b.t.Errorf("CSP violation: %s", v)
		}
	})
}

// noAutofill makes the page's browser one without passkey autofill.
const noAutofill = `PublicKeyCredential.isConditionalMediationAvailable = async () => false;`

func TestPasskeySignUpAndSignIn(t *testing.T) {
	t.Parallel()
	b := open(t)
	b.noCSPViolations()
	credentials := b.virtualAuthenticator()
	email := uniqueEmail(t)
	b.signIn("Email", email)

	b.click("Add a passkey")
	b.expectNotice("Passkey added: next time, sign in with it")
	if n := credentials(); n != 1 {
		t.Fatalf("the authenticator holds %d credentials, want 1", n)
	}

	// Autofill: the sign-in page asks for a passkey as it loads (conditional mediation),
	// and the virtual authenticator, standing in for the person picking it from the email
	// field's suggestions, answers at once.
	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")
	b.gotoPath("/signin")
	b.expectPath("/account")
	b.expectSignedIn(email, startBalance)

	// The button, in a browser without autofill.
	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")
	b.must(b.page.AddInitScript(playwright.Script{Content: playwright.String(noAutofill)}), "turn autofill off")
	b.gotoPath("/signin")
	b.expectPath("/signin")
	b.click("Sign in with a passkey")
	b.expectPath("/account")
	b.expectSignedIn(email, startBalance)

	// A browser without the passkey is offered the codes as before.
	other := b.another(nil)
	other.virtualAuthenticator()
	other.must(other.page.AddInitScript(playwright.Script{Content: playwright.String(noAutofill)}), "turn autofill off")
	other.gotoPath("/signin")
	other.click("Sign in with a passkey")
	other.must(other.expect.Locator(other.page.Locator("[data-passkey-status]")).ToContainText("No passkey was used", playwright.LocatorAssertionsToContainTextOptions{
		Timeout: playwright.Float(float64((30 * time.Second).Milliseconds())),
	}), "a browser without the passkey is told")
	other.signIn("Email", email)
	other.expectSignedIn(email, startBalance)
}
