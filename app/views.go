package app

import (
	"errors"

	"github.com/gofiber/fiber/v2"
)

// page is the data every template gets; handlers add their own fields in Data.
type page struct {
	Title     string
	CSRF      string
	User      any
	OutboxURL string
	Error     string // shown in role="alert"
	Notice    string // shown in role="status"
	NoticeBad bool   // the notice reports something that did not happen: styled as a warning
	Data      fiber.Map
	// Passkeys turns the browser SDK on, with the tenant and Client API it talks to.
	Passkeys               bool
	Popup                  bool // the step-up opens in a popup
	TenantID, ClientAPIURL string
}

// render writes a full page. Fiber renders into a buffer first, so a template error
// never sends half a page.
func (s *server) render(c *fiber.Ctx, status int, name string, p page) error {
	token, err := s.csrfToken(c)
	if err != nil {
		return err
	}
	p.CSRF = token
	if u, ok := currentUser(c); ok {
		p.User = u
	}
	p.OutboxURL = s.cfg.OutboxURL
	p.Passkeys, p.Popup, p.TenantID, p.ClientAPIURL = s.cfg.Passkeys(), s.cfg.Popup(), s.cfg.TenantID, s.cfg.ClientAPIURL
	p.NoticeBad = p.Notice != "" && isBadOutcome(c.Query("notice"))
	// Every page is someone's: a balance, a code page, a form with its CSRF token. None may
	// be kept by a browser or a proxy (the back button after sign-out, a shared computer).
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Status(status)
	return c.Render(name, p)
}

// renderError shows the friendly error page with one helpful sentence.
func (s *server) renderError(c *fiber.Ctx, status int, message string) error {
	return s.render(c, status, "error", page{Title: "Something went wrong", Error: message})
}

// handleError is Fiber's last stop for errors: log the cause, show a helpful page.
func (s *server) handleError(c *fiber.Ctx, err error) error {
	status := fiber.StatusInternalServerError
	message := "Something went wrong on our side. Please try again in a moment."
	var fe *fiber.Error
	if errors.As(err, &fe) {
		status = fe.Code
		switch {
		case status == fiber.StatusNotFound:
			message = "We couldn't find that page."
		case status == fiber.StatusRequestEntityTooLarge:
			message = "That form was too large to accept."
		case status == fiber.StatusMethodNotAllowed:
			message = "That page can't be used that way."
		case status < 500:
			message = "We couldn't accept that request. Go back and try again."
		}
	}
	if status >= 500 {
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "request_id", c.Locals(localReqID), "err", err)
	}
	if renderErr := s.renderError(c, status, message); renderErr != nil {
		s.log.Error("render error page", "err", renderErr)
		return c.Status(status).SendString(message)
	}
	return nil
}

func (s *server) notFound(c *fiber.Ctx) error {
	return fiber.ErrNotFound
}

// noticeText maps the keys that redirects carry in ?notice= to the sentences people see.
// Only these fixed sentences can appear: the query string can't inject text.
func noticeText(key string) string {
	switch key {
	case "signed-out":
		return "You have signed out."
	case "code-expired":
		return "That code can no longer be used. Ask for a new one."
	case "too-many-attempts":
		return "Too many attempts with that code. Ask for a new one."
	case "signin-expired":
		return "Your sign-in took too long. Start again."
	case "signin-mismatch":
		return "We couldn't confirm that address with the sign-in service. Start again."
	case "passkey-added":
		return "Passkey added: next time, sign in with it"
	case "passkey-failed":
		return "No passkey was added: the sign-in service did not confirm it. Try again"
	case "passkey-unavailable":
		return "We couldn't confirm the passkey with the sign-in service. Try again in a moment"
	case "method-added":
		return "Sign-in method added"
	case "method-removed":
		return "Sign-in method removed"
	case "method-default":
		return "Default method changed"
	case "app-added":
		return "Authenticator app added: it can confirm withdrawals"
	case "app-failed":
		return "No authenticator app was added: the sign-in service did not confirm it. Try again"
	case "app-unavailable":
		return "We couldn't confirm the authenticator app with the sign-in service. Try again in a moment"
	case "withdrawal-done":
		return "Withdrawal completed"
	case "withdrawal-blocked":
		return "Withdrawal blocked"
	case "withdrawal-held":
		return "Withdrawal held for review"
	case "challenge-failed":
		return "Challenge failed: the withdrawal was not made"
	case "already-settled":
		return "Nothing changed: this withdrawal was already settled"
	case "not-yours":
		return "Nothing changed: that link is not valid for your account"
	case "invalid-token":
		return "Nothing changed: that link is invalid or has expired"
	case "challenge-pending":
		return "The challenge was not completed; the withdrawal is still waiting"
	case "review-pending":
		return "Still held for review"
	case "review-approved":
		return "Review approved: withdrawal completed"
	case "review-rejected":
		return "Review rejected: the withdrawal was not made"
	case "insufficient-funds":
		return "The withdrawal failed: your balance is too low"
	case "withdrawal-failed":
		return "Nothing was taken: this withdrawal did not go through"
	case "withdrawal-checking":
		return "This withdrawal is being checked: nothing has been taken yet, and it will be settled in a few minutes"
	case "withdrawal-cancelled":
		return "Withdrawal cancelled: nothing was taken"
	case "check-enrolled":
		return "Nothing was taken: your account was not yet set up for security checks. It is now; please make the withdrawal again"
	case "check-unavailable":
		return "Nothing was taken: we couldn't set up the security check for your account. Please try again in a moment"
	}
	return ""
}

func noticeFor(c *fiber.Ctx) string {
	return noticeText(c.Query("notice"))
}

// isBadOutcome tells the notices that report money that did not move.
func isBadOutcome(key string) bool {
	switch key {
	case "withdrawal-blocked", "challenge-failed", "review-rejected", "insufficient-funds", "not-yours", "invalid-token", "already-settled",
		"check-enrolled", "check-unavailable", "withdrawal-failed", "withdrawal-cancelled", "passkey-failed", "passkey-unavailable", "app-failed", "app-unavailable":
		return true
	}
	return false
}

// isProblem tells the notices that report a failure: they are shown as alerts.
func isProblem(key string) bool {
	switch key {
	case "code-expired", "too-many-attempts", "signin-expired", "signin-mismatch":
		return true
	}
	return false
}
