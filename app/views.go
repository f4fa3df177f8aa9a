package app

import (
	"errors"

	"example.com/passwordless/internal/theme"
	"github.com/gofiber/fiber/v2"
)

// page is the data every template gets; handlers add their own fields in Data.
type page struct {
	Title      string
	CSRF       string
	User       any
	OutboxURL  string
	Error      string   // shown in role="alert"
	Notice     string   // shown in role="status"
	NoticeKind severity // the notice's severity: its CSS class
	Data       fiber.Map
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
	if p.Notice != "" {
		p.NoticeKind = noticeSuccess
		if n, ok := notices[c.Query("notice")]; ok && n.text == p.Notice {
			p.NoticeKind = n.severity
		}
	}
	// Every page is someone's: a balance, a code page, a form with its CSRF token. None may
	// be kept by a browser or a proxy (the back button after sign-out, a shared computer).
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Status(status)
	return c.Render(name, p)
}

// renderError shows the friendly error page with one helpful sentence.
func (s *server) renderError(c *fiber.Ctx, status int, message string) error {
	title := "Something went wrong"
	switch {
	case status == fiber.StatusNotFound:
		title = "Page not found"
	case status < 500:
		title = "That didn't work"
	}
	return s.render(c, status, "error", page{Title: title, Error: message})
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

// severity is how a notice is shown.
type severity string

// The severities, one CSS class each.
const (
	noticeSuccess severity = "success" // it happened: money moved, a method was added
	noticeInfo    severity = "info"    // nothing is wrong, it is not finished (held, pending, checking)
	noticeWarning severity = "warning" // it did not happen: nothing moved
	noticeError   severity = "error"   // the person must start again (shown as an alert)
)

type notice struct {
	text     string
	severity severity
}

// notices maps the keys that redirects carry in ?notice= to the sentences people see and
// how they are shown. Only these fixed sentences can appear: the query string can't inject
// text.
var notices = map[string]notice{
	"signed-out":           {"You have signed out.", noticeInfo},
	"code-expired":         {"That code can no longer be used. Ask for a new one.", noticeError},
	"too-many-attempts":    {"Too many attempts with that code. Ask for a new one.", noticeError},
	"signin-expired":       {"Your sign-in took too long. Start again.", noticeError},
	"signin-mismatch":      {"We couldn't confirm that address with the sign-in service. Start again.", noticeError},
	"passkey-added":        {"Passkey added: next time, sign in with it", noticeSuccess},
	"passkey-failed":       {"No passkey was added: the sign-in service did not confirm it. Try again", noticeWarning},
	"passkey-unavailable":  {"We couldn't confirm the passkey with the sign-in service. Try again in a moment", noticeWarning},
	"method-added":         {"Sign-in method added", noticeSuccess},
	"method-removed":       {"Sign-in method removed", noticeSuccess},
	"method-default":       {"Default method changed", noticeSuccess},
	"app-added":            {"Authenticator app added: it can confirm withdrawals", noticeSuccess},
	"app-failed":           {"No authenticator app was added: the sign-in service did not confirm it. Try again", noticeWarning},
	"app-unavailable":      {"We couldn't confirm the authenticator app with the sign-in service. Try again in a moment", noticeWarning},
	"withdrawal-done":      {"Withdrawal completed", noticeSuccess},
	"withdrawal-blocked":   {"Withdrawal blocked", noticeWarning},
	"withdrawal-held":      {"Withdrawal held for review", noticeInfo},
	"challenge-failed":     {"Challenge failed: the withdrawal was not made", noticeWarning},
	"already-settled":      {"Nothing changed: this withdrawal was already settled", noticeWarning},
	"not-yours":            {"Nothing changed: that link is not valid for your account", noticeWarning},
	"invalid-token":        {"Nothing changed: that link is invalid or has expired", noticeWarning},
	"challenge-pending":    {"The challenge was not completed; the withdrawal is still waiting", noticeInfo},
	"review-pending":       {"Still held for review", noticeInfo},
	"review-approved":      {"Review approved: withdrawal completed", noticeSuccess},
	"review-rejected":      {"Review rejected: the withdrawal was not made", noticeWarning},
	"insufficient-funds":   {"The withdrawal failed: your balance is too low", noticeWarning},
	"withdrawal-failed":    {"Nothing was taken: this withdrawal did not go through", noticeWarning},
	"withdrawal-checking":  {"This withdrawal is being checked: nothing has been taken yet, and it will be settled in a few minutes", noticeInfo},
	"withdrawal-cancelled": {"Withdrawal cancelled: nothing was taken", noticeWarning},
	"stepup-cancelled":     {"Withdrawal cancelled: it was not confirmed, so nothing was taken", noticeWarning},
	"check-enrolled":       {"Nothing was taken: your account was not yet set up for security checks. It is now; please make the withdrawal again", noticeWarning},
	"check-unavailable":    {"Nothing was taken: we couldn't set up the security check for your account. Please try again in a moment", noticeWarning},
}

func noticeText(key string) string { return notices[key].text }

func noticeFor(c *fiber.Ctx) string { return noticeText(c.Query("notice")) }

// isProblem tells the notices that report a failure: they are shown as alerts.
func isProblem(key string) bool { return notices[key].severity == noticeError }

// themeCSS serves the stylesheet the app shares with the emulator's pages (internal/theme).
func themeCSS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Type("css")
	return c.Send(theme.CSS)
}
