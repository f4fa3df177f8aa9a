package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
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
	// Signing out lands on the sign-in page, where the virtual authenticator may answer
	// autofill at once and sign in again (a person would pick the passkey first), so the
	// sign-out is checked by its answer rather than by the page after it.
	signOut, err := b.page.ExpectResponse("**/signout", func() error { return b.button("Sign out").Click() })
	b.must(err, "sign out")
	if signOut.Status() != http.StatusSeeOther {
		t.Fatalf("POST /signout: status %d", signOut.Status())
	}
	b.gotoPath("/signin")
	b.expectPath("/account")
	b.expectSignedIn(email, startBalance)

	// The button, in a browser without autofill.
	b.must(b.page.AddInitScript(playwright.Script{Content: playwright.String(noAutofill)}), "turn autofill off")
	b.click("Sign out")
	b.must(b.expect.Locator(b.button("Sign out")).ToHaveCount(0), "signed out")
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

// A large withdrawal stepped up with the passkey: in the popup, and by the redirect (the
// app's script blocked, as when it fails to load); the pre-built UI's own script runs the
// passkey either way.
func TestPasskeyStepUp(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"popup", "redirect"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := open(t)
			b.noCSPViolations()
			b.virtualAuthenticator()
			email := uniqueEmail(t)
			b.signIn("Email", email)
			b.click("Add a passkey")
			b.expectNotice("Passkey added")
			if mode == "redirect" {
				b.noScript = true // the pre-built UI is the page, not a popup
				b.must(b.page.Route("**/static/authsignal.js", func(r playwright.Route) { _ = r.Abort() }), "block the app's script")
				b.gotoPath("/account")
			}

			b.withdraw("1500")
			b.expectOnPrebuiltUI("/challenge")
			b.uiClick("Use your passkey")
			b.expectPath("/account")
			b.expectNotice("Withdrawal completed")
			b.expectBalance("$23,500.00")
			b.expectWithdrawal("$1,500.00", "completed")
			if v := b.lastWithdrawalMethod(email); v != "PASSKEY" {
				t.Fatalf("the withdrawal's action was verified by %q, want PASSKEY", v)
			}
		})
	}
}

// Cancel in the popup: the app gets the failed action's token and nothing moves. Closing
// the popup (Esc) leaves the withdrawal waiting, to be cancelled from the account page.
func TestPopupCancelAndClose(t *testing.T) {
	t.Parallel()
	b := open(t)
	b.noCSPViolations()
	email := uniqueEmail(t)
	b.signIn("Email", email)

	b.withdraw("1500")
	b.expectOnPrebuiltUI("/challenge")
	b.uiClick("Cancel")
	b.expectPath("/account")
	b.expectNotice("Withdrawal cancelled: it was not confirmed, so nothing was taken")
	b.expectBalance(startBalance)
	b.expectWithdrawal("$1,500.00", "cancelled")

	b.withdraw("1600")
	b.expectOnPrebuiltUI("/challenge")
	b.must(b.expect.Locator(b.uiButton("Send code")).ToBeVisible(), "the popup is ready")
	b.must(b.page.Keyboard().Press("Escape"), "press Escape")
	b.must(b.expect.Locator(b.page.Locator("#__authsignal-popup-iframe")).ToHaveCount(0), "the popup closed")
	b.expectPath("/account")
	b.expectBalance(startBalance)
	b.expectWithdrawal("$1,600.00", "awaiting challenge")
}

// lastWithdrawalMethod is how the emulator says the user's withdrawal action was verified.
func (b *browserTest) lastWithdrawalMethod(email string) string {
	b.t.Helper()
	api := authsignal.New(emulator.DevSecretKey, authsignal.WithBaseURL(suite.emulatorURL+"/v1"))
	ctx := context.Background()
	found, err := api.QueryUsers(ctx, authsignal.QueryUsersRequest{Email: email})
	if err != nil || len(found.Users) != 1 {
		b.t.Fatalf("the user on the emulator: %+v, %v", found, err)
	}
	actions, err := api.QueryActions(ctx, found.Users[0].UserID, authsignal.QueryActionsRequest{Codes: []string{"withdrawal"}})
	if err != nil || len(actions) == 0 {
		b.t.Fatalf("the user's withdrawal actions: %+v, %v", actions, err)
	}
	return actions[0].VerificationMethod
}
