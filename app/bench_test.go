package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth"
	"example.com/passwordless/store"
)

// BenchmarkAccountPage measures a signed-in page view through the whole middleware chain
// (device cookie, CSRF, session JWT verify + store lookup) and the template, over loopback.
func BenchmarkAccountPage(b *testing.B) {
	env := newTestEnv(b)
	browser := env.newBrowser()
	browser.signIn("email", uniqueEmail())
	for b.Loop() {
		// A new request each time: the client adds the jar's cookies to the one it is given.
		req, _ := http.NewRequest(http.MethodGet, env.appURL+"/account", nil)
		resp, err := browser.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/account" {
			b.Fatalf("GET /account: status %d at %s", resp.StatusCode, resp.Request.URL)
		}
		io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
		resp.Body.Close()
	}
}

// BenchmarkSessionMiddleware measures the session middleware alone: the session cookie
// parsed (HS256 pinned), its jti and user looked up in SQLite, and requireUser passing,
// in front of a handler that writes nothing. Driven through fiber's App.Test, so it
// includes Fiber's request handling but no network.
func BenchmarkSessionMiddleware(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "app.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sessions := auth.NewSessions(db, auth.SessionConfig{
		Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "bench", Audience: "bench-web", TTL: time.Hour,
	})
	user, _, err := db.FindOrCreateUserByEmail(ctx, "bench@example.com")
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := sessions.Issue(ctx, user.ID)
	if err != nil {
		b.Fatal(err)
	}
	s := &server{store: db, sessions: sessions, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	web := fiber.New(fiber.Config{DisableStartupMessage: true})
	web.Get("/", s.loadSession, s.requireUser, func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusNoContent) })

	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		resp, err := web.Test(req, -1)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != fiber.StatusNoContent {
			b.Fatalf("status %d, want 204 (signed in)", resp.StatusCode)
		}
	}
}
