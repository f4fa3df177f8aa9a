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
	"strings"
)

// Main is the `emulator` subcommand. args are the flags after the subcommand name (a
// leading "emulator" is skipped too): -addr, -secret-key, -rules, -db, -public-url.
// It prints where everything is and serves until ctx is done.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "emulator" {
		args = args[1:]
	}
	defaultKey := getenv("AUTHSIGNAL_SECRET_KEY")
	if defaultKey == "" {
		defaultKey = DevSecretKey
	}
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address")
	secretKey := fs.String("secret-key", defaultKey, "secret key the API accepts (default $AUTHSIGNAL_SECRET_KEY, else the development key)")
	rulesFile := fs.String("rules", "", "rules file (JSON); empty = built-in rules")
	dbPath := fs.String("db", filepath.Join("data", "emulator.db"), `SQLite file, or ":memory:"`)
	publicURL := fs.String("public-url", "", "public base URL used in links (default: the listen address)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("emulator: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("emulator: unexpected arguments %q", fs.Args())
	}
	if *secretKey == "" {
		return errors.New("emulator: -secret-key must not be empty")
	}
	if *dbPath != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(*dbPath), 0o755); err != nil {
			return fmt.Errorf("emulator: create database directory: %w", err)
		}
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	emu, err := New(Config{SecretKey: *secretKey, DBPath: *dbPath, RulesFile: *rulesFile, PublicURL: *publicURL, Logger: logger})
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
	keyNote := ""
	if *secretKey == DevSecretKey {
		keyNote = " (the built-in development key; set -secret-key or AUTHSIGNAL_SECRET_KEY to change it)"
	}
	rulesNote := "built-in defaults"
	if *rulesFile != "" {
		rulesNote = *rulesFile
	}
	fmt.Fprintf(stdout, "Authsignal emulator running\n"+
		"  base URL:    %s\n  API base:    %s/v1\n  outbox:      %s/outbox\n  admin:       %s/admin\n"+
		"  secret key:  %s%s\n  rules:       %s\n  database:    %s\n"+
		"Try: curl -u '%s:' %s/v1/users/u1\n",
		links, links, links, links, *secretKey, keyNote, rulesNote, *dbPath, *secretKey, links)
	<-ctx.Done()
	fmt.Fprintln(stdout, "Authsignal emulator stopping")
	return emu.Close()
}
