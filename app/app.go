// Package app is the sample's web application: passwordless sign-in by one-time code and
// a withdrawal gated by an Authsignal action, served with Fiber.
package app

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/template/html/v2"

	"example.com/passwordless/auth"
	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// Authsignal is the part of the Server API the app uses; *authsignal.Client satisfies it.
type Authsignal interface {
	Challenge(ctx context.Context, req authsignal.ChallengeRequest) (*authsignal.ChallengeResponse, error)
	Verify(ctx context.Context, req authsignal.VerifyRequest) (*authsignal.VerifyResponse, error)
	Claim(ctx context.Context, req authsignal.ClaimRequest) (*authsignal.ClaimResponse, error)
	GetAuthenticators(ctx context.Context, userID string) ([]authsignal.UserAuthenticator, error)
	EnrollAuthenticator(ctx context.Context, userID string, req authsignal.EnrollAuthenticatorRequest) (*authsignal.EnrollAuthenticatorResponse, error)
	Track(ctx context.Context, userID, action string, attrs authsignal.TrackAttributes) (*authsignal.TrackResponse, error)
	GetAction(ctx context.Context, userID, action, idempotencyKey string) (*authsignal.Action, error)
	GetUser(ctx context.Context, userID string) (*authsignal.User, error)
	Validate(ctx context.Context, req authsignal.ValidateRequest) (*authsignal.ValidateResponse, error)
	DeleteAuthenticator(ctx context.Context, userID, authenticatorID string) error
	UpdateUser(ctx context.Context, userID string, req authsignal.UpdateUserRequest) (*authsignal.UpdatedUser, error)
	// The Client API's magic link, called with a track token.
	ChallengeEmailMagicLink(ctx context.Context, token string) error
	FinalizeEmailMagicLink(ctx context.Context, token string) (*authsignal.MagicLinkStatus, error)
}

// Config holds the settings the handlers need; main builds it from the environment.
type Config struct {
	BaseURL         *url.URL      // public address of the app, e.g. http://localhost:3000
	OutboxURL       string        // the emulator's outbox page, shown on every page when set
	PendingTTL      time.Duration // lifetime of a pending sign-in when Authsignal gives no code expiry
	MaxCodeAttempts int           // wrong codes the app allows per pending sign-in (Authsignal has its own limit)
	SendsPerIP      int           // codes one IP address may ask for per SendWindow
	SendsPerAddress int           // codes one email or phone number may receive per SendWindow
	SendWindow      time.Duration
	// GuessesPerAddress wrong codes for one email or phone number per GuessWindow, whatever
	// the challenge, lock that address's sign-in until the oldest leaves the window.
	GuessesPerAddress int
	GuessWindow       time.Duration
	// ReadTimeout bounds reading one request, headers included, so a slow client (a
	// slowloris) cannot hold a connection; IdleTimeout bounds a keep-alive connection's wait.
	ReadTimeout, IdleTimeout time.Duration
	// WebhookSecret is the Authsignal secret key that signs webhooks; "" turns the receiver
	// (POST WebhookPath) off.
	WebhookSecret string
	// TenantID and ClientAPIURL (ending in /v1) are what the browser SDK needs to talk to
	// Authsignal's Client API; with either empty, passkeys are off and the pages offer
	// one-time codes only.
	TenantID     string
	ClientAPIURL string
	// PrebuiltUIOrigin is where the pre-built UI is served (the emulator's origin, your
	// custom domain, or https://mfa.authsignal.com); with it and the SDK configured, the
	// withdrawal's step-up opens in a popup (an iframe the page may frame).
	PrebuiltUIOrigin string
	// WithdrawalRules describe the rules the withdrawal meets, one sentence each, shown on
	// the account page: the embedded emulator's, which it knows; nil against the real
	// service, whose rules are the tenant's in the Portal.
	WithdrawalRules []string
}

// Passkeys reports whether the browser SDK is configured, which the passkey flows need.
func (c Config) Passkeys() bool { return c.TenantID != "" && c.ClientAPIURL != "" }

// Popup reports whether the step-up opens the pre-built UI in a popup (with JavaScript;
// the redirect stays the fallback).
func (c Config) Popup() bool { return c.Passkeys() && c.PrebuiltUIOrigin != "" }

// Deps are the app's collaborators, all injected so tests can use real ones in memory.
type Deps struct {
	Store      *store.Store
	Sessions   *auth.Sessions
	Authsignal Authsignal
	Templates  fs.FS // the templates/ folder
	Public     fs.FS // the public/ folder
	Logger     *slog.Logger
	Now        func() time.Time
	Rand       io.Reader
}

// server holds the dependencies every handler uses.
type server struct {
	cfg           Config
	store         *store.Store
	sessions      *auth.Sessions
	authsignal    Authsignal
	log           *slog.Logger
	now           func() time.Time
	rand          io.Reader
	secureCookies bool
	cookies       cookieNames
	origin        string // scheme://host of BaseURL: what a same-site request's Origin is
}

// New builds the Fiber application with its middleware and routes.
func New(cfg Config, deps Deps) (*fiber.App, error) {
	if deps.Store == nil || deps.Sessions == nil || deps.Authsignal == nil || deps.Templates == nil || deps.Public == nil {
		return nil, errors.New("app: store, sessions, authsignal, templates and public are required")
	}
	if cfg.BaseURL == nil {
		return nil, errors.New("app: BaseURL is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	cfg = withDefaults(cfg)
	s := &server{
		cfg:           cfg,
		store:         deps.Store,
		sessions:      deps.Sessions,
		authsignal:    deps.Authsignal,
		log:           deps.Logger,
		now:           deps.Now,
		rand:          deps.Rand,
		secureCookies: cfg.BaseURL.Scheme == "https",
		cookies:       newCookieNames(cfg.BaseURL.Scheme == "https"),
		origin:        cfg.BaseURL.Scheme + "://" + cfg.BaseURL.Host,
	}

	engine := html.NewFileSystem(http.FS(deps.Templates), ".html")
	engine.AddFunc("money", formatCents)
	fiberApp := fiber.New(fiber.Config{
		Views:                 engine,
		ViewsLayout:           "layouts/main",
		ErrorHandler:          s.handleError,
		BodyLimit:             64 * 1024, // forms here are tiny; larger bodies get 413
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		// Strings from the request (forms, queries, headers, cookies) are copies, not views
		// of a buffer Fiber reuses for the next request, so none can change under a handler.
		Immutable: true,
	})
	s.routes(fiberApp, deps.Public)
	return fiberApp, nil
}

func withDefaults(cfg Config) Config {
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = 15 * time.Minute
	}
	if cfg.MaxCodeAttempts <= 0 {
		cfg.MaxCodeAttempts = 5
	}
	if cfg.SendsPerIP <= 0 {
		cfg.SendsPerIP = 20
	}
	if cfg.SendsPerAddress <= 0 {
		cfg.SendsPerAddress = 5
	}
	if cfg.SendWindow <= 0 {
		cfg.SendWindow = 10 * time.Minute
	}
	if cfg.GuessesPerAddress <= 0 {
		cfg.GuessesPerAddress = 10
	}
	if cfg.GuessWindow <= 0 {
		cfg.GuessWindow = time.Hour
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	return cfg
}
