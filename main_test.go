package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/passwordless/auth/authsignal"
)

func TestLoadConfigWantsTheV1URL(t *testing.T) {
	tests := []struct {
		url, wantErr string
	}{
		{"https://eu.api.authsignal.com/v1", ""},
		{"https://eu.api.authsignal.com/v1/", ""},
		{"https://eu.api.authsignal.com", "AUTHSIGNAL_API_URL must end with /v1"},
		{"https://eu.api.authsignal.com/v2", "AUTHSIGNAL_API_URL must end with /v1"},
		{"eu.api.authsignal.com/v1", "AUTHSIGNAL_API_URL must be your region's Server API URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			env := map[string]string{"AUTHSIGNAL_SECRET_KEY": "key", "AUTHSIGNAL_API_URL": tt.url}
			_, err := loadConfig(func(k string) string { return env[k] })
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("loadConfig: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestStartupCheck(t *testing.T) {
	answering := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v1"
	}
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr + "/v1"
	}()
	tests := []struct {
		name, apiURL string
		wantErr      string // "" = the start goes on
		wantLog      string
	}{
		{"answers", answering(200, `{"isEnrolled":false}`), "", "Authsignal API answers"},
		{"wrong key", answering(401, `{"error":"unauthorized","errorCode":"unauthorized","errorDescription":"The request is unauthorized."}`),
			"refused AUTHSIGNAL_SECRET_KEY: use your tenant's secret key", ""},
		{"not the Server API", answering(404, `{"message":"Not Found"}`), "does not look like Authsignal's Server API", ""},
		{"unreachable", closed, "cannot reach the Authsignal API", ""},
		{"down", answering(503, `{"message":"Service Unavailable"}`), "", "starting anyway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			client := authsignal.New("secret-key", authsignal.WithBaseURL(tt.apiURL), authsignal.WithRetryBackoff(time.Millisecond))
			err := checkAuthsignal(context.Background(), client, log)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("check: %v, want %q", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "secret-key") || !strings.Contains(err.Error(), tt.apiURL)) {
				t.Fatalf("the sentence must name the URL and never the key: %v", err)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || (tt.wantLog != "" && !strings.Contains(logs.String(), tt.apiURL)) {
				t.Fatalf("log %q, want %q with the API URL", logs.String(), tt.wantLog)
			}
		})
	}
}

// A wrong key stops the whole program at start, before it listens.
func TestRunStopsOnAWrongKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"unauthorized","errorCode":"unauthorized","errorDescription":"The request is unauthorized."}`))
	}))
	defer srv.Close()
	env := map[string]string{"AUTHSIGNAL_SECRET_KEY": "wrong", "AUTHSIGNAL_API_URL": srv.URL + "/v1", "DATA_DIR": t.TempDir(), "PORT": "0"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, nil, func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "refused AUTHSIGNAL_SECRET_KEY") {
		t.Fatalf("run: %v, want the wrong key named", err)
	}
	if strings.Contains(out.String(), "app listening") {
		t.Fatalf("the app listened despite the wrong key:\n%s", out.String())
	}
}

// A read-only data folder and a damaged database stop the start with a sentence naming them.
func TestStartupErrorsNameTheCause(t *testing.T) {
	readOnly := t.TempDir()
	if err := os.Chmod(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(readOnly, 0o700) })
	if checkWritable(readOnly) == nil { // root ignores permissions; sysfs refuses even root
		readOnly = "/sys/kernel"
		if _, err := os.Stat(readOnly); err != nil || checkWritable(readOnly) == nil {
			t.Skip("no read-only folder to try here")
		}
	}
	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, "app.db"), bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	damagedEmulator := t.TempDir()
	if err := os.WriteFile(filepath.Join(damagedEmulator, "emulator.db"), bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dataDir, want string }{
		{"read-only DATA_DIR", readOnly, "is read-only"},
		{"damaged app database", damaged, "app.db is damaged or not a SQLite database"},
		{"damaged emulator database", damagedEmulator, "emulator.db is damaged or not a SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DATA_DIR": tt.dataDir, "PORT": "0", "EMULATOR_ADDR": "127.0.0.1:0"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, nil, func(k string) string { return env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigNumbers(t *testing.T) {
	tests := []struct{ key, value, wantErr string }{
		{"SEND_LIMIT_PER_IP", "0", "SEND_LIMIT_PER_IP must be a positive number"},
		{"SEND_LIMIT_PER_IP", "many", "SEND_LIMIT_PER_IP must be a positive number"},
		{"MAX_CONNS", "0", "MAX_CONNS must be a positive number"},
		{"MAX_CONNS_PER_IP", "-1", "MAX_CONNS_PER_IP must be a number of connections, or 0"},
		{"MAX_CONNS_PER_IP", "0", ""},
		{"MAX_CONNS", "500", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return map[string]string{tt.key: tt.value}[k] })
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("loadConfig: %v, want %q", err, tt.wantErr)
			}
			if err == nil && tt.key == "MAX_CONNS" && cfg.MaxConns != 500 {
				t.Fatalf("MaxConns %d", cfg.MaxConns)
			}
		})
	}
	if cfg, err := loadConfig(func(string) string { return "" }); err != nil || cfg.MaxConnsPerIP != 64 || cfg.SendLimitPerIP != 20 || cfg.MaxConns < 64 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

// The browser SDK's settings: derived from the real service's URL, checked, and the
// embedded emulator named localhost for browsers (passkeys need a domain).
func TestLoadConfigBrowserSDK(t *testing.T) {
	tests := []struct {
		name                     string
		env                      map[string]string
		wantClient, wantUI, want string
	}{
		{"real service defaults", map[string]string{"AUTHSIGNAL_SECRET_KEY": "k", "AUTHSIGNAL_API_URL": "https://eu.api.authsignal.com/v1"},
			"https://eu.api.authsignal.com/v1", "https://mfa.authsignal.com", ""},
		{"custom domain", map[string]string{"AUTHSIGNAL_SECRET_KEY": "k", "AUTHSIGNAL_UI_ORIGIN": "https://auth.example.com/"}, "https://api.authsignal.com/v1", "https://auth.example.com", ""},
		{"a UI origin with a path", map[string]string{"AUTHSIGNAL_SECRET_KEY": "k", "AUTHSIGNAL_UI_ORIGIN": "https://auth.example.com/x"}, "", "", "AUTHSIGNAL_UI_ORIGIN must be the pre-built UI's origin"},
		{"a client API URL without /v1", map[string]string{"AUTHSIGNAL_SECRET_KEY": "k", "AUTHSIGNAL_CLIENT_API_URL": "https://api.authsignal.com"}, "", "", "AUTHSIGNAL_CLIENT_API_URL must be"},
		{"emulator: set at start", map[string]string{}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return tt.env[k] })
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("loadConfig: %v, want %q", err, tt.want)
			}
			if err == nil && (cfg.ClientAPIURL != tt.wantClient || cfg.UIOrigin != tt.wantUI) {
				t.Fatalf("client API %q, UI %q; want %q, %q", cfg.ClientAPIURL, cfg.UIOrigin, tt.wantClient, tt.wantUI)
			}
		})
	}
	for addr, want := range map[string]string{"127.0.0.1:4000": "http://localhost:4000", ":4000": "http://localhost:4000",
		"[::1]:4000": "http://localhost:4000", "127.0.0.1:0": "", "10.0.0.5:4000": "http://10.0.0.5:4000"} {
		if got := emulatorPublicURL(addr); got != want {
			t.Errorf("emulatorPublicURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// DATABASE_URL switches the store to PostgreSQL; it must be a PostgreSQL URL, and several
// instances need one SESSION_SECRET. No message repeats the URL's password.
func TestLoadConfigDatabase(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		env     map[string]string
		wantURL string
		wantErr string
	}{
		{"unset: SQLite", map[string]string{}, "", ""},
		{"postgres://", map[string]string{"DATABASE_URL": "postgres://app:hunter2@db:5432/app", "SESSION_SECRET": secret}, "postgres://app:hunter2@db:5432/app", ""},
		{"postgresql://", map[string]string{"DATABASE_URL": " postgresql://app:hunter2@db/app ", "SESSION_SECRET": secret}, "postgresql://app:hunter2@db/app", ""},
		{"another database", map[string]string{"DATABASE_URL": "mysql://app:hunter2@db/app", "SESSION_SECRET": secret}, "", "DATABASE_URL must be a PostgreSQL URL"},
		{"not a URL", map[string]string{"DATABASE_URL": "host=db password=hunter2", "SESSION_SECRET": secret}, "", "DATABASE_URL must be a PostgreSQL URL"},
		{"no host", map[string]string{"DATABASE_URL": "postgres:///app", "SESSION_SECRET": secret}, "", "DATABASE_URL must be a PostgreSQL URL"},
		{"no SESSION_SECRET", map[string]string{"DATABASE_URL": "postgres://app:hunter2@db/app"}, "", "SESSION_SECRET is required with DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return tt.env[k] })
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("loadConfig: %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error repeats the password: %v", err)
			}
			if err == nil && cfg.DatabaseURL != tt.wantURL {
				t.Fatalf("DatabaseURL %q, want %q", cfg.DatabaseURL, tt.wantURL)
			}
		})
	}
}

// A PostgreSQL server that cannot be reached stops the start with a sentence, and neither
// it nor the log shows the password.
func TestRunWithUnreachablePostgres(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that then refuses connections
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"DATABASE_URL": "postgres://app:hunter2@" + addr + "/app?connect_timeout=5",
		"SESSION_SECRET": "0123456789abcdef0123456789abcdef", "DATA_DIR": t.TempDir(), "PORT": "0", "EMULATOR_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var logs bytes.Buffer
	err = run(ctx, nil, func(k string) string { return env[k] }, &logs)
	if err == nil || !strings.Contains(err.Error(), "open store") {
		t.Fatalf("run: %v, want an open store error", err)
	}
	if strings.Contains(err.Error()+logs.String(), "hunter2") {
		t.Fatalf("the password shows:\nerr: %v\nlogs: %s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "app:xxxxx@") {
		t.Errorf("the log does not name the (redacted) URL:\n%s", logs.String())
	}
}
