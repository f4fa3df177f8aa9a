package app

import (
	"crypto/subtle"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
)

// CSRF defence: a signed double-submit token, kept without any server memory.
//
// A form page sets a random nonce in an HttpOnly cookie (once per browser) and renders a
// token in its forms that is the nonce signed with the session key (auth.Sessions.SignValue,
// with an expiry). A state-changing request must carry the token, in the form body or the
// X-CSRF-Token header (never the query string), and it must verify to the cookie's nonce.
// A cross-site page can neither read the cookie nor forge the signature. Requests whose
// Origin (or, lacking one, Referer) is not the app's own are refused first.

const (
	csrfPurpose    = "csrf"         // the signed token's audience
	csrfTokenTTL   = 2 * time.Hour  // how long a rendered form stays valid
	csrfNonceTTL   = 12 * time.Hour // the nonce cookie, renewed on every form page
	csrfField      = "_csrf"
	csrfHeader     = "X-CSRF-Token"
	csrfNonceBytes = 32
)

// csrfToken returns the token for the forms of the page being rendered, minting the
// browser's nonce cookie when it has none. Only pages call it: other requests cost nothing.
func (s *server) csrfToken(c *fiber.Ctx) (string, error) {
	nonce := c.Cookies(s.cookies.csrf)
	if len(nonce) != 2*csrfNonceBytes || !isHex(nonce) {
		nonce = s.randomID(csrfNonceBytes)
		c.Cookie(&fiber.Cookie{
			Name: s.cookies.csrf, Value: nonce, Path: "/", MaxAge: int(csrfNonceTTL.Seconds()),
			HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies,
		})
	}
	return s.sessions.SignValue(csrfPurpose, nonce, csrfTokenTTL)
}

// csrfProtect refuses a state-changing request that comes from another site or lacks a
// token matching the browser's nonce.
func (s *server) csrfProtect(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if reason := s.csrfRefusal(c); reason != "" {
		s.log.Warn("csrf check failed", "path", c.Path(), "reason", reason, "request_id", c.Locals(localReqID))
		return s.renderError(c, fiber.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
	}
	return c.Next()
}

// csrfRefusal says why the request fails the check, or "" when it passes.
func (s *server) csrfRefusal(c *fiber.Ctx) string {
	if !s.sameOrigin(c) {
		return "cross-origin request"
	}
	nonce := c.Cookies(s.cookies.csrf)
	if nonce == "" {
		return "no csrf cookie"
	}
	token := c.Get(csrfHeader)
	if token == "" {
		// The urlencoded body only: c.FormValue would also read the query string.
		token = string(c.Request().PostArgs().Peek(csrfField))
	}
	if token == "" {
		return "no csrf token"
	}
	signed, err := s.sessions.VerifyValue(csrfPurpose, token)
	if err != nil || subtle.ConstantTimeCompare([]byte(signed), []byte(nonce)) != 1 {
		return "csrf token does not match"
	}
	return ""
}

// sameOrigin reports whether the request's Origin, or its Referer when there is no
// Origin, is the app's own. With neither (some privacy settings and non-browser clients)
// the token alone decides.
func (s *server) sameOrigin(c *fiber.Ctx) bool {
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		return origin == s.origin // "null" (a sandboxed frame, a data: page) never is
	}
	if ref := c.Get(fiber.HeaderReferer); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == s.origin
	}
	return true
}

// cookieNames are the app's cookie names. Over https they carry the prefixes that make
// browsers enforce them: __Host- (Secure, this host only, Path=/) and, for the sign-in
// cookie that lives under /signin, __Secure-.
type cookieNames struct{ session, pending, prefill, device, csrf string }

func newCookieNames(https bool) cookieNames {
	if !https {
		return cookieNames{session: sessionCookie, pending: pendingCookie, prefill: prefillCookie, device: deviceCookie, csrf: "csrf"}
	}
	return cookieNames{session: "__Host-" + sessionCookie, pending: "__Secure-" + pendingCookie, prefill: "__Secure-" + prefillCookie,
		device: "__Host-" + deviceCookie, csrf: "__Host-csrf"}
}
