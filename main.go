// Command passwordless runs the sample: a web app that signs people in with one-time
// codes through Authsignal and gates withdrawals behind Authsignal actions. With no
// Authsignal key configured it starts a local emulator of the Authsignal API.
//
//	passwordless            run the app (and the emulator when no key is set)
//	passwordless emulator   run only the emulator
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"example.com/passwordless/app"
	"example.com/passwordless/auth"
	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/emulator"
	"example.com/passwordless/internal/listener"
	"example.com/passwordless/public"
	"example.com/passwordless/store"
	"example.com/passwordless/templates"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// config is everything the program reads from its environment.
type config struct {
	Host           string
	Port           int
	BaseURL        *url.URL
	DataDir        string
	DatabaseURL    string // postgres://…: the store in PostgreSQL; "" = SQLite in DataDir
	SessionSecret  string
	AuthsignalKey  string
	AuthsignalURL  string
	TenantID       string // for the browser SDK; "" against the real service = passkeys off
	ClientAPIURL   string // the Client API the browser SDK calls (the same host as the Server API)
	UIOrigin       string // where the pre-built UI is served, which the step-up popup frames
	EmulatorAddr   string
	EmulatorRules  string
	SendLimitPerIP int
	MaxConns       int // open connections the app holds at most
	MaxConnsPerIP  int // of them from one address; 0 = no per-address cap (behind a proxy)
	LogLevel       slog.Level
}

// loadConfig reads and validates the environment once, with messages that say how to fix it.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		Host:          envOr(getenv, "HOST", "127.0.0.1"),
		DataDir:       envOr(getenv, "DATA_DIR", "./data"),
		DatabaseURL:   strings.TrimSpace(getenv("DATABASE_URL")),
		SessionSecret: getenv("SESSION_SECRET"),
		AuthsignalKey: strings.TrimSpace(getenv("AUTHSIGNAL_SECRET_KEY")),
		AuthsignalURL: strings.TrimSpace(getenv("AUTHSIGNAL_API_URL")),
		TenantID:      strings.TrimSpace(getenv("AUTHSIGNAL_TENANT_ID")),
		ClientAPIURL:  strings.TrimRight(strings.TrimSpace(getenv("AUTHSIGNAL_CLIENT_API_URL")), "/"),
		UIOrigin:      strings.TrimRight(strings.TrimSpace(getenv("AUTHSIGNAL_UI_ORIGIN")), "/"),
		EmulatorAddr:  envOr(getenv, "EMULATOR_ADDR", "127.0.0.1:4000"),
		EmulatorRules: getenv("EMULATOR_RULES"),
	}
	var errs []error
	port, err := strconv.Atoi(envOr(getenv, "PORT", "3000"))
	if err != nil || port < 0 || port > 65535 {
		errs = append(errs, fmt.Errorf("PORT must be a port number, like 3000"))
	}
	cfg.Port = port

	base := envOr(getenv, "BASE_URL", "http://localhost:"+strconv.Itoa(port))
	cfg.BaseURL, err = url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (cfg.BaseURL.Scheme != "http" && cfg.BaseURL.Scheme != "https") || cfg.BaseURL.Host == "" {
		errs = append(errs, fmt.Errorf("BASE_URL must be the app's public address, like http://localhost:3000"))
	}

	if cfg.AuthsignalURL != "" && cfg.AuthsignalKey == "" {
		errs = append(errs, fmt.Errorf("AUTHSIGNAL_API_URL is set but AUTHSIGNAL_SECRET_KEY is not: set both to use Authsignal, or neither to use the local emulator"))
	}
	if cfg.AuthsignalKey != "" {
		if cfg.AuthsignalURL == "" {
			cfg.AuthsignalURL = authsignal.DefaultBaseURL
		}
		if u, err := url.Parse(cfg.AuthsignalURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("AUTHSIGNAL_API_URL must be your region's Server API URL, like %s", authsignal.DefaultBaseURL))
		} else if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1") {
			errs = append(errs, fmt.Errorf("AUTHSIGNAL_API_URL must end with /v1, the Server API's version, like %s (got %s)", authsignal.DefaultBaseURL, cfg.AuthsignalURL))
		}
	}
	if cfg.AuthsignalKey != "" && cfg.ClientAPIURL == "" {
		cfg.ClientAPIURL = strings.TrimRight(cfg.AuthsignalURL, "/")
	}
	if cfg.AuthsignalKey != "" && cfg.UIOrigin == "" {
		cfg.UIOrigin = "https://mfa.authsignal.com" // without a custom domain (docs: scenarios/launching-the-prebuilt-ui)
	}
	if cfg.UIOrigin != "" {
		if u, err := url.Parse(cfg.UIOrigin); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("AUTHSIGNAL_UI_ORIGIN must be the pre-built UI's origin, like https://mfa.authsignal.com or https://auth.example.com"))
		}
	}
	if cfg.ClientAPIURL != "" {
		if u, err := url.Parse(cfg.ClientAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(u.Path, "/v1") {
			errs = append(errs, fmt.Errorf("AUTHSIGNAL_CLIENT_API_URL must be your region's Client API URL, ending in /v1, like %s", authsignal.DefaultBaseURL))
		}
	}
	if cfg.DatabaseURL != "" {
		// The URL holds a password: neither it nor the parser's error (which quotes it) is
		// ever part of a message.
		if u, err := url.Parse(cfg.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			errs = append(errs, fmt.Errorf("DATABASE_URL must be a PostgreSQL URL, like postgres://user:password@db.example.com:5432/passwordless (leave it unset to use SQLite in DATA_DIR)"))
		}
		if cfg.SessionSecret == "" {
			errs = append(errs, fmt.Errorf("SESSION_SECRET is required with DATABASE_URL: every instance must sign sessions with the same key, so set the same random value on each (for example: openssl rand -hex 32)"))
		}
	}
	if _, _, err := net.SplitHostPort(cfg.EmulatorAddr); err != nil {
		errs = append(errs, fmt.Errorf("EMULATOR_ADDR must be host:port, like 127.0.0.1:4000"))
	}

	cfg.SendLimitPerIP = envInt(getenv, "SEND_LIMIT_PER_IP", 20, 1, &errs, "SEND_LIMIT_PER_IP must be a positive number")
	cfg.MaxConns = envInt(getenv, "MAX_CONNS", defaultMaxConns(), 1, &errs, "MAX_CONNS must be a positive number of connections")
	cfg.MaxConnsPerIP = envInt(getenv, "MAX_CONNS_PER_IP", 64, 0, &errs,
		"MAX_CONNS_PER_IP must be a number of connections, or 0 for no per-address cap (behind a proxy)")
	if err := cfg.LogLevel.UnmarshalText([]byte(envOr(getenv, "LOG_LEVEL", "INFO"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL must be DEBUG, INFO, WARN or ERROR"))
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("invalid configuration:\n  %w", errors.Join(errs...))
	}
	return cfg, nil
}

// emulatorPublicURL is the embedded emulator's address for browsers: a loopback IP is
// named localhost, so the pre-built UI can use passkeys (an IP cannot be a passkey
// domain). "" for port 0, known only once it listens (then the listener's address).
func emulatorPublicURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsLoopback() {
		return "http://localhost:" + port
	}
	return "http://" + addr
}

// passkeyDomain is the app's host as the passkeys' relying party id; "" (the emulator's
// default, localhost) when the app is served on an IP address, where passkeys cannot work.
func passkeyDomain(base *url.URL) string {
	if net.ParseIP(base.Hostname()) != nil {
		return ""
	}
	return base.Hostname()
}

// envInt reads a whole-number setting: fallback when unset; below least or not a number, it
// adds the sentence problem to errs.
func envInt(getenv func(string) string, key string, fallback, least int, errs *[]error, problem string) int {
	v := getenv(key)
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		*errs = append(*errs, errors.New(problem))
	}
	return n
}

func envOr(getenv func(string) string, key, fallback string) string {
	if v := strings.TrimSpace(getenv(key)); v != "" {
		return v
	}
	return fallback
}

// run starts the program and blocks until ctx is cancelled, then shuts down cleanly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "emulator" {
		return emulator.Main(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q (the only command is \"emulator\")", args[0])
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create the data folder DATA_DIR=%s: %w", cfg.DataDir, err)
	}
	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err // "open store: …" already
	}
	defer db.Close()

	key, err := auth.LoadOrCreateKey(cfg.SessionSecret, cfg.DataDir, rand.Reader)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	sessions := auth.NewSessions(db, auth.SessionConfig{
		Key: key, Issuer: "passwordless-sample", Audience: "passwordless-sample-web", TTL: auth.DefaultSessionTTL,
	})

	apiURL, secret, outboxURL := cfg.AuthsignalURL, cfg.AuthsignalKey, ""
	var withdrawalRules []string
	if cfg.AuthsignalKey == "" {
		public := emulatorPublicURL(cfg.EmulatorAddr)
		em, err := emulator.New(emulator.Config{
			SecretKey: emulator.DevSecretKey,
			DBPath:    filepath.Join(cfg.DataDir, "emulator.db"),
			RulesFile: cfg.EmulatorRules,
			PublicURL: public,
			Logger:    logger.With("component", "emulator"),
			// The app's pages use its Client API from the browser, passkeys included.
			ClientOrigins: []string{cfg.BaseURL.Scheme + "://" + cfg.BaseURL.Host},
			RPID:          passkeyDomain(cfg.BaseURL),
			AppName:       "Passwordless sample",
			// The app's receiver gets the emulator's webhooks, as a tenant's would.
			WebhookURLs: []string{cfg.BaseURL.String() + app.WebhookPath},
		})
		if err != nil {
			return fmt.Errorf("start the Authsignal emulator: %w", err)
		}
		defer em.Close()
		emulatorURL, err := em.Start(cfg.EmulatorAddr)
		if err != nil {
			return fmt.Errorf("start the Authsignal emulator on %s (set EMULATOR_ADDR to use another address): %w", cfg.EmulatorAddr, err)
		}
		if public == "" {
			public = emulatorURL
		}
		apiURL, secret, outboxURL = emulatorURL+"/v1", emulator.DevSecretKey, public+"/outbox"
		cfg.TenantID, cfg.ClientAPIURL, cfg.UIOrigin = emulator.DevTenantID, public+"/v1", public
		withdrawalRules = em.RulesFor(app.WithdrawalAction)
		logger.Info("no AUTHSIGNAL_SECRET_KEY: using the local Authsignal emulator", "api", apiURL, "outbox", outboxURL, "admin", public+"/admin")
	}

	client := authsignal.New(secret, authsignal.WithBaseURL(apiURL))
	if err := checkAuthsignal(ctx, client, logger); err != nil {
		return err
	}

	web, err := app.New(app.Config{
		BaseURL:       cfg.BaseURL,
		OutboxURL:     outboxURL,
		SendsPerIP:    cfg.SendLimitPerIP,
		WebhookSecret: secret, // Authsignal signs webhooks with the API secret key
		TenantID:      cfg.TenantID,
		ClientAPIURL:  cfg.ClientAPIURL,
		// The popup only when the browser SDK has a tenant to talk to.
		PrebuiltUIOrigin: cfg.UIOrigin,
		WithdrawalRules:  withdrawalRules,
	}, app.Deps{
		Store:      db,
		Sessions:   sessions,
		Authsignal: client,
		Templates:  templates.Files,
		Public:     public.Files,
		Logger:     logger,
	})
	if err != nil {
		return err
	}

	// Withdrawals a crash or a lost answer left unsettled are settled as Authsignal says,
	// at start and every minute.
	reconciler := &app.Reconciler{Store: db, Authsignal: client, Logger: logger.With("component", "reconciler")}
	reconcileCtx, stopReconciling := context.WithCancel(ctx)
	defer stopReconciling()
	go reconciler.Run(reconcileCtx, time.Minute)

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d (set PORT to use another): %w", cfg.Port, err)
	}
	// A flood of connections waits instead of taking the process down: at most MaxConns
	// open, MaxConnsPerIP of them from one address, and out of descriptors it backs off.
	web.Server().MaxConnsPerIP = cfg.MaxConnsPerIP
	ln = listener.New(ln, cfg.MaxConns, logger.With("component", "listener"))
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.Listener(ln) }()
	logger.Info("app listening", "url", cfg.BaseURL.String(), "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	if err := web.ShutdownWithTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// openStore opens the app's store: PostgreSQL when DATABASE_URL is set (for several
// instances at once), else SQLite in DATA_DIR.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (*store.Store, error) {
	if cfg.DatabaseURL == "" {
		path := filepath.Join(cfg.DataDir, "app.db")
		log.Info("store: SQLite", "path", path)
		return store.Open(ctx, path, time.Now)
	}
	u, _ := url.Parse(cfg.DatabaseURL) // checked by loadConfig
	log.Info("store: PostgreSQL", "url", u.Redacted())
	return store.OpenPostgres(ctx, cfg.DatabaseURL, time.Now)
}

// startupCheckUserID is the user the start-up check asks about: nobody. Authsignal answers
// GET /users/{userId} for any id (isEnrolled false for one it never saw), and creates nothing.
const startupCheckUserID = "passwordless-sample-startup-check"

// checkAuthsignal makes one cheap authenticated call, so that a wrong key or API URL stops
// the start with a sentence saying what to fix, instead of every sign-in failing later. A
// service that answers 5xx or times out only gets a warning: it may come back.
func checkAuthsignal(ctx context.Context, client *authsignal.Client, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	api := client.BaseURL()
	_, err := client.GetUser(ctx, startupCheckUserID)
	var apiErr *authsignal.Error
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		log.Info("Authsignal API answers", "api", api)
		return nil
	case authsignal.IsStatus(err, 401), authsignal.IsStatus(err, 403):
		return fmt.Errorf("the Authsignal API at %s refused AUTHSIGNAL_SECRET_KEY: use your tenant's secret key (Portal → Settings → API keys) and the API URL of your tenant's region (%w)", api, err)
	case authsignal.IsStatus(err, 404):
		return fmt.Errorf("%s does not look like Authsignal's Server API (it answered 404): set AUTHSIGNAL_API_URL to your region's URL, like %s (%w)", api, authsignal.DefaultBaseURL, err)
	case errors.As(err, &apiErr) && apiErr.StatusCode < 500:
		return fmt.Errorf("the Authsignal API at %s refused the start-up check: check AUTHSIGNAL_SECRET_KEY and AUTHSIGNAL_API_URL (%w)", api, err)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound, errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the Authsignal API at %s: check AUTHSIGNAL_API_URL and the network (%w)", api, err)
	default:
		log.Warn("the Authsignal API did not answer the start-up check; starting anyway, sign-ins fail until it does", "api", api, "err", err)
		return nil
	}
}

// checkWritable makes sure the data folder takes files, so that a read-only DATA_DIR is
// named as such at start, not found by the first sign-in.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-check-*")
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("the data folder DATA_DIR=%s is read-only: give the app a folder it can write to (set DATA_DIR), it keeps its databases and session key there", dir)
	}
	if err != nil {
		return fmt.Errorf("the data folder DATA_DIR=%s cannot be written to: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// defaultMaxConns leaves room under the process's descriptor limit for the databases, the
// emulator and the outgoing calls, so that a flood is refused by the cap, not by the kernel.
func defaultMaxConns() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 256 {
		return 64
	}
	return int(min(lim.Cur-128, 10_000))
}
