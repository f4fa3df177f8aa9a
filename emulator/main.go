package emulator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Main is the `emulator` subcommand. args are the flags after the subcommand name (a
// leading "emulator" is skipped too); `-h` lists them all. It prints where everything is
// and serves until ctx is done.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "emulator" {
		args = args[1:]
	}
	defaultKey := getenv("AUTHSIGNAL_SECRET_KEY")
	if defaultKey == "" {
		defaultKey = DevSecretKey
	}
	def := DefaultLimits()
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address")
	secretKey := fs.String("secret-key", defaultKey, "secret key the API accepts (default $AUTHSIGNAL_SECRET_KEY, else the development key)")
	callKey := fs.String("call-connect-secret-key", DevCallConnectSecretKey, "secret key the Call Connect API (/call/start, /call/finish) accepts")
	tenantID := fs.String("tenant-id", DevTenantID, "the emulated tenant's id: the audience of its tokens")
	rulesFile := fs.String("rules", "", "rules file (JSON); empty = built-in rules")
	dbPath := fs.String("db", filepath.Join("data", "emulator.db"), `SQLite file, or ":memory:"`)
	publicURL := fs.String("public-url", "", "public base URL used in links (default: the listen address)")
	ephemeral := fs.Bool("ephemeral", false, "in-memory database: nothing is written to disk, state is gone on exit (not with -db)")
	seed := fs.Uint64("seed", 0, "TESTS ONLY: seed the random source, so ids and codes repeat run after run (predictable codes)")
	seedFile := fs.String("seed-file", "", "JSON file of users, authenticators, rules and testRecipients loaded at start and again by reset (see seed.example.json)")
	importFile := fs.String("import", "", "JSON file of state (as -export-on-exit or GET /emulator/export write it) applied once at start")
	exportFile := fs.String("export-on-exit", "", "JSON file the whole state is written to on exit, in the seed file's format (read it back with -import)")
	testRecipients := map[string]string{}
	fs.Func("test-recipient", "`RECIPIENT=CODE`: always send this 6-digit code to this email or E.164 number (repeatable; tests only)", func(s string) error {
		r, code, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want RECIPIENT=CODE, like +15555550100=123456")
		}
		testRecipients[strings.TrimSpace(r)] = strings.TrimSpace(code)
		return nil
	})
	var webhookURLs []string
	fs.Func("webhook-url", "`URL` that receives the emulator's webhooks, signed with the secret key (repeatable)", func(s string) error {
		webhookURLs = append(webhookURLs, strings.TrimSpace(s))
		return nil
	})
	var clientOrigins []string
	fs.Func("client-origin", "web `ORIGIN` (like http://localhost:3000) of an app that uses the Client API from a browser: CORS, framing the pre-built UI, passkeys (repeatable)", func(s string) error {
		clientOrigins = append(clientOrigins, strings.TrimRight(strings.TrimSpace(s), "/"))
		return nil
	})
	appName := fs.String("app-name", "", "the app the pre-built UI names (\"<name> asks you to confirm: …\"); default \"The app\"")
	rpID := fs.String("rp-id", "localhost", "the passkeys' relying party id: a domain the client origins are on (not an IP address)")
	deliveryURL := fs.String("delivery-webhook-url", "", "`URL` of a custom email and SMS provider: each code is posted to it first (email.created, sms.created) and a non-2xx answer fails the send")
	actionVerifyURL := fs.String("action-verify-webhook-url", "", "`URL` that must approve (2xx) each action's success by a code before it is stored (action.verify)")
	codeTTL := fs.Duration("code-ttl", def.CodeTTL, "how long a one-time code is valid")
	maxAttempts := fs.Int("max-attempts", def.MaxAttempts, "wrong codes that kill a challenge")
	sendWindow := fs.Duration("send-window", def.SendWindow, "sliding window of the per-recipient send limits")
	smsPerWindow := fs.Int("sms-per-window", def.SMSPerWindow, "SMS + WhatsApp messages per recipient per window")
	emailPerWindow := fs.Int("email-per-window", def.EmailPerWindow, "emails per recipient per window")
	tokenTTL := fs.Duration("token-ttl", def.TokenTTL, "lifetime of track, claim and redirect tokens")
	messageCap := fs.Int("message-cap", DefaultMessageCap, "outbox messages kept; beyond it the oldest are deleted")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: emulator [flags]\n\nA local Authsignal Server API emulator (see emulator/README.md).\n"+
			"Test-only endpoints: GET/POST /emulator/clock, DELETE /emulator/users/{userId}, POST /emulator/reset, GET /emulator/export.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("emulator: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("emulator: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *secretKey == "" {
		return errors.New("emulator: -secret-key must not be empty")
	}
	if *ephemeral {
		if set["db"] {
			return errors.New("emulator: -ephemeral and -db cannot be used together (-ephemeral keeps the database in memory)")
		}
		*dbPath = ":memory:"
	}
	limits := Limits{CodeTTL: *codeTTL, MaxAttempts: *maxAttempts, SendWindow: *sendWindow, SMSPerWindow: *smsPerWindow,
		EmailPerWindow: *emailPerWindow, TokenTTL: *tokenTTL}
	if err := checkLimitFlags(limits); err != nil {
		return err
	}
	cfg := Config{SecretKey: *secretKey, CallConnectSecretKey: *callKey, TenantID: *tenantID, DBPath: *dbPath, RulesFile: *rulesFile, PublicURL: *publicURL, Limits: limits,
		SeedFile: *seedFile, TestRecipients: testRecipients, MessageCap: *messageCap, Import: *importFile, ExportOnClose: *exportFile,
		WebhookURLs: webhookURLs, DeliveryWebhookURL: *deliveryURL, ActionVerifyWebhookURL: *actionVerifyURL,
		ClientOrigins: clientOrigins, RPID: *rpID, AppName: *appName}
	if *messageCap <= 0 {
		return errors.New("emulator: -message-cap must be positive")
	}
	if set["seed"] {
		cfg.Seed = seed
	}
	// Only a real file needs its folder; -ephemeral and ":memory:" never touch the disk.
	if *dbPath != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(*dbPath), 0o755); err != nil {
			return fmt.Errorf("emulator: create database directory: %w", err)
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	emu, err := New(cfg)
	if err != nil {
		return err
	}
	baseURL, err := emu.Start(*addr)
	if err != nil {
		emu.Close()
		return err
	}
	links := strings.TrimRight(*publicURL, "/")
	if links == "" {
		links = baseURL
	}
	fmt.Fprint(stdout, banner(links, cfg, *ephemeral, emu.rulesSource))
	<-ctx.Done()
	fmt.Fprintln(stdout, "Authsignal emulator stopping")
	return emu.Close()
}

// checkLimitFlags names the flag at fault (New's errors name the Limits field).
func checkLimitFlags(l Limits) error {
	for _, c := range []struct {
		name string
		ok   bool
	}{{"-code-ttl", l.CodeTTL > 0}, {"-max-attempts", l.MaxAttempts > 0}, {"-send-window", l.SendWindow > 0},
		{"-sms-per-window", l.SMSPerWindow > 0}, {"-email-per-window", l.EmailPerWindow > 0}, {"-token-ttl", l.TokenTTL > 0}} {
		if !c.ok {
			return fmt.Errorf("emulator: %s must be positive", c.name)
		}
	}
	return nil
}

// banner is the startup text: where everything is, and which test modes are on. Test
// recipients are listed by address only; their codes are never printed.
func banner(links string, cfg Config, ephemeral bool, rulesNote string) string {
	var b strings.Builder
	keyNote := ""
	if cfg.SecretKey == DevSecretKey {
		keyNote = " (the built-in development key; set -secret-key or AUTHSIGNAL_SECRET_KEY to change it)"
	}
	dbNote := cfg.DBPath
	if ephemeral {
		dbNote = "in memory (-ephemeral: nothing is written to disk; state is lost on exit)"
	}
	fmt.Fprintf(&b, "Authsignal emulator running\n"+
		"  base URL:    %s\n  API base:    %s/v1\n  outbox:      %s/outbox\n  admin:       %s/admin\n"+
		"  secret key:  %s%s\n  rules:       %s\n  database:    %s\n",
		links, links, links, links, cfg.SecretKey, keyNote, rulesNote, dbNote)
	if cfg.SeedFile != "" {
		fmt.Fprintf(&b, "  seed file:   %s\n", cfg.SeedFile)
	}
	if cfg.Import != "" {
		fmt.Fprintf(&b, "  imported:    %s\n", cfg.Import)
	}
	if cfg.ExportOnClose != "" {
		fmt.Fprintf(&b, "  export:      %s (written on exit)\n", cfg.ExportOnClose)
	}
	if cfg.Seed != nil {
		fmt.Fprintf(&b, "  seed:        %d (TESTS ONLY: ids and codes are predictable)\n", *cfg.Seed)
	}
	if len(cfg.TestRecipients) > 0 {
		names := make([]string, 0, len(cfg.TestRecipients))
		for r := range cfg.TestRecipients {
			names = append(names, r)
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "  fixed codes: %s (TESTS ONLY)\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(&b, "  test tools:  %s/emulator/clock, DELETE %s/emulator/users/{userId}, %s/emulator/export\n", links, links, links)
	fmt.Fprintf(&b, "Try: curl -u '%s:' %s/v1/users/u1\n", cfg.SecretKey, links)
	return b.String()
}
