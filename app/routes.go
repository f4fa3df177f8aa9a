package app

import (
	"context"
	"io/fs"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// routes is the whole surface of the app.
func (s *server) routes(app *fiber.App, public fs.FS) {
	app.Use(s.recoverPanics)
	app.Use(s.requestID)
	app.Use(s.accessLog)
	app.Use(s.securityHeaders())

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Get("/readyz", s.readyz)
	app.Get("/static/theme.css", themeCSS)
	app.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(public), MaxAge: 3600}))

	// Server to server: signed by Authsignal, so no cookies, CSRF token or session.
	if s.cfg.WebhookSecret != "" {
		app.Post(WebhookPath, s.authsignalWebhook)
	}

	app.Use(s.deviceCookie)
	app.Use(s.csrfProtect)
	app.Use(s.loadSession)

	app.Get("/", s.home)

	app.Get("/signin", s.signInPage)
	app.Post("/signin", s.sendCode)
	app.Get("/signin/verify", s.codePage)
	app.Post("/signin/verify", s.verifyCode)
	app.Post("/signin/resend", s.resendCode)
	app.Post("/signout", s.signOut)
	if s.cfg.Passkeys() {
		app.Post("/signin/passkey", s.signInWithPasskey)
		app.Post("/passkeys/token", s.requireUser, s.methodToken(passkeyMethod))
		app.Post("/passkeys", s.requireUser, s.methodAdded(passkeyMethod))
		app.Post("/authenticator-app/token", s.requireUser, s.methodToken(appMethod))
		app.Post("/authenticator-app", s.requireUser, s.methodAdded(appMethod))
	}

	app.Get("/account", s.requireUser, s.account)
	app.Get("/methods", s.requireUser, s.methodsPage)
	app.Post("/methods/address", s.requireUser, s.addAddress)
	app.Post("/methods/address/verify", s.requireUser, s.verifyAddress)
	app.Post("/methods/:id/remove", s.requireUser, s.removeMethod)
	app.Post("/methods/:id/default", s.requireUser, s.defaultMethod)
	app.Post("/withdrawals", s.requireUser, s.withdraw)
	app.Get("/withdrawals/callback", s.requireUser, s.withdrawalCallback)
	app.Post("/withdrawals/:id/check", s.requireUser, s.checkWithdrawal)
	app.Post("/withdrawals/:id/cancel", s.requireUser, s.cancelWithdrawal)

	app.Use(s.notFound)
}

// readyzTimeout bounds the readiness check's ping: a load balancer asks often.
const readyzTimeout = 2 * time.Second

// readyz serves GET /readyz: 200 while the database answers, else 503, so that a load
// balancer sends no traffic to an instance that cannot reach it (/healthz only says the
// process is up).
func (s *server) readyz(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	ctx, cancel := context.WithTimeout(c.UserContext(), readyzTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		return c.Status(fiber.StatusServiceUnavailable).SendString("database unavailable")
	}
	return c.SendString("ready")
}
