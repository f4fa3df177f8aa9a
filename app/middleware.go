package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"

	"example.com/passwordless/store"
)

// The cookies' names over http; cookieNames adds the prefixes over https.
const (
	sessionCookie = "session"
	pendingCookie = "signin_pending"
	prefillCookie = "signin_again" // the address of a sign-in that must start again
	deviceCookie  = "device_id"
	localUser     = "user"       // store.User of the signed-in visitor
	localToken    = "sessionJWT" // the verified session token, for sign-out
	localSignedIn = "signedIn"   // time.Time the session began
	localDevice   = "deviceID"
	localReqID    = "requestid"
)

// recoverPanics turns a panic in any handler into a logged 500 page instead of a crash.
func (s *server) recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic", "panic", fmt.Sprint(r), "path", c.Path(), "stack", string(debug.Stack()))
			err = fiber.ErrInternalServerError
		}
	}()
	return c.Next()
}

// requestID tags every request with a random id, echoed in X-Request-ID and the logs.
func (s *server) requestID(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if id == "" || len(id) > 64 {
		id = s.randomID(8)
	}
	c.Locals(localReqID, id)
	c.Set(fiber.HeaderXRequestID, id)
	return c.Next()
}

// accessLog logs one line per request. It logs the path without the query string, because
// the withdrawal callback carries a token there.
func (s *server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	var fe *fiber.Error
	if err != nil && errors.As(err, &fe) {
		status = fe.Code
	} else if err != nil {
		status = fiber.StatusInternalServerError
	}
	s.log.Info("request",
		"method", c.Method(), "path", c.Path(), "status", status,
		"duration", time.Since(start).Round(time.Microsecond), "ip", c.IP(),
		"request_id", c.Locals(localReqID))
	return err
}

// securityHeaders sets a strict CSP (no inline scripts), frame denial, nosniff and a
// referrer policy that never sends our URLs to other sites.
func (s *server) securityHeaders() fiber.Handler {
	return helmet.New(helmet.Config{
		ContentSecurityPolicy:     contentSecurityPolicy(s.cfg),
		XFrameOptions:             "DENY",
		ReferrerPolicy:            "same-origin",
		CrossOriginEmbedderPolicy: embedderPolicy(s.cfg),
		HSTSMaxAge:                hstsMaxAge(s.secureCookies),
		PermissionPolicy:          "camera=(), microphone=(), geolocation=()",
	})
}

// contentSecurityPolicy allows scripts and styles from the app only, and calls to
// Authsignal's Client API origin when passkeys are on (the browser SDK's fetches): no
// other origin.
func contentSecurityPolicy(cfg Config) string {
	connect, frame, style := "'self'", "'none'", "'self'"
	if cfg.Passkeys() {
		if u, err := url.Parse(cfg.ClientAPIURL); err == nil && u.Host != "" {
			connect += " " + u.Scheme + "://" + u.Host
		}
	}
	if cfg.Popup() {
		// The popup is an iframe of the pre-built UI, styled by the one <style> element
		// the SDK adds, allowed by its hash and nothing wider.
		frame, style = cfg.PrebuiltUIOrigin, style+" "+sdkPopupStyleHash
	}
	return "default-src 'self'; script-src 'self'; style-src " + style + "; img-src 'self' data:; connect-src " + connect +
		"; frame-src " + frame + "; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
}

// sdkPopupStyleHash is the CSP hash of the <style> element @authsignal/browser 1.16.0
// adds for launch(url, {mode: "popup"}) with its default size (the e2e suite fails on any
// CSP violation, so a new SDK version with other styles is caught).
const sdkPopupStyleHash = "'sha256-5Az4NQb6dubGZHm0w3ZAqADXELlINI1b9WNySRWe9W4='"

// embedderPolicy is require-corp, except when the page frames the pre-built UI, whose
// pages (Authsignal's, or the emulator's) do not opt in to being embedded that way; the
// app uses nothing that needs cross-origin isolation.
func embedderPolicy(cfg Config) string {
	if cfg.Popup() {
		return "unsafe-none"
	}
	return "require-corp"
}

func hstsMaxAge(https bool) int {
	if https {
		return 31536000
	}
	return 0
}

// deviceCookie gives each browser a stable random id, sent to Authsignal as deviceId so
// rules can spot a new device.
func (s *server) deviceCookie(c *fiber.Ctx) error {
	id := c.Cookies(s.cookies.device)
	if len(id) != 32 || !isHex(id) {
		id = s.randomID(16)
		c.Cookie(&fiber.Cookie{
			Name: s.cookies.device, Value: id, Path: "/", MaxAge: 365 * 24 * 3600,
			HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies,
		})
	}
	c.Locals(localDevice, id)
	return c.Next()
}

// loadSession puts the signed-in user, if any, in the request's locals. A bad or revoked
// cookie is simply cleared: the visitor is anonymous.
func (s *server) loadSession(c *fiber.Ctx) error {
	token := c.Cookies(s.cookies.session)
	if token == "" {
		return c.Next()
	}
	claims, err := s.sessions.Verify(c.UserContext(), token)
	if err != nil {
		s.clearCookie(c, s.cookies.session, "/")
		return c.Next()
	}
	user, err := s.store.GetUser(c.UserContext(), claims.UserID)
	if errors.Is(err, store.ErrNotFound) {
		s.clearCookie(c, s.cookies.session, "/")
		return c.Next()
	}
	if err != nil {
		return fmt.Errorf("load session user: %w", err)
	}
	c.Locals(localUser, user)
	c.Locals(localToken, token)
	c.Locals(localSignedIn, claims.SignedIn)
	return c.Next()
}

// requireUser sends anonymous visitors to the sign-in page.
func (s *server) requireUser(c *fiber.Ctx) error {
	if _, ok := currentUser(c); !ok {
		return c.Redirect("/signin", fiber.StatusSeeOther)
	}
	return c.Next()
}

func currentUser(c *fiber.Ctx) (store.User, bool) {
	u, ok := c.Locals(localUser).(store.User)
	return u, ok
}

func (s *server) setSessionCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: s.cookies.session, Value: token, Path: "/", Expires: expires,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies,
	})
}

func (s *server) clearCookie(c *fiber.Ctx, name, path string) {
	c.Cookie(&fiber.Cookie{
		Name: name, Value: "", Path: path, MaxAge: -1, Expires: time.Unix(0, 0),
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies,
	})
}

// randomID returns n random bytes, hex encoded. A failing random source is unrecoverable.
func (s *server) randomID(n int) string {
	b := make([]byte, n)
	src := s.rand
	if src == nil {
		src = rand.Reader
	}
	if _, err := io.ReadFull(src, b); err != nil {
		panic(fmt.Sprintf("random source failed: %v", err))
	}
	return hex.EncodeToString(b)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
