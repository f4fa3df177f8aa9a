package emulator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/passwordless/internal/testkit"
)

// runMain runs Main with an already cancelled context: it starts, prints, and stops.
func runMain(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := &testkit.Buffer{}
	err := Main(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, out)
	return out.String(), err
}

func TestMainTestFlags(t *testing.T) {
	origDir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())

	// -ephemeral: in memory, no data directory; the banner says so, and the seed.
	out, err := runMain(t, "-ephemeral", "-seed", "42", "-test-recipient", "+15555550100=123456", "-code-ttl", "2m", "-max-attempts", "3")
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, out)
	}
	for _, want := range []string{"database:    in memory", "seed:        42 (TESTS ONLY", "fixed codes: +15555550100", "/emulator/clock"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "123456") {
		t.Errorf("banner prints a fixed code:\n%s", out)
	}
	if _, err := os.Stat("data"); !os.IsNotExist(err) {
		t.Fatalf("-ephemeral created the data directory (%v)", err)
	}

	// The banner names the seed file, and its rules when it has some.
	seedFile, _ := filepath.Abs(filepath.Join(origDir, "seed.example.json"))
	if out, err := runMain(t, "-ephemeral", "-seed-file", seedFile); err != nil ||
		!strings.Contains(out, "seed file:   "+seedFile) || !strings.Contains(out, "rules:       from the seed file") {
		t.Errorf("seed file banner: %v\n%s", err, out)
	}

	// -export-on-exit writes the state as Main stops; -import reads it back at the next start.
	export := filepath.Join(t.TempDir(), "state.json")
	if out, err := runMain(t, "-ephemeral", "-seed-file", seedFile, "-export-on-exit", export); err != nil || !strings.Contains(out, "export:      "+export) {
		t.Errorf("export banner: %v\n%s", err, out)
	}
	if out, err := runMain(t, "-ephemeral", "-import", export); err != nil || !strings.Contains(out, "imported:    "+export) {
		t.Errorf("import of the export: %v\n%s", err, out)
	}
	if _, err := runMain(t, "-ephemeral", "-import", seedFile); err == nil || !strings.Contains(err.Error(), "pass this file as -seed-file") {
		t.Errorf("-import of a seed file with rules: %v, want a sentence pointing to -seed-file", err)
	}

	// -h documents every flag.
	help, err := runMain(t, "-h")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"-addr", "-secret-key", "-rules", "-db", "-public-url", "-ephemeral", "-seed", "-seed-file", "-test-recipient",
		"-code-ttl", "-max-attempts", "-send-window", "-sms-per-window", "-email-per-window", "-token-ttl", "-message-cap", "-import", "-export-on-exit", "TESTS ONLY"} {
		if !strings.Contains(help, f) {
			t.Errorf("-h lacks %s:\n%s", f, help)
		}
	}

	// Bad combinations and values are clear errors.
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-ephemeral", "-db", "x.db"}, "-ephemeral and -db"},
		{[]string{"-ephemeral", "-code-ttl", "0s"}, "-code-ttl must be positive"},
		{[]string{"-ephemeral", "-max-attempts", "-1"}, "-max-attempts must be positive"},
		{[]string{"-ephemeral", "-message-cap", "0"}, "-message-cap must be positive"},
		{[]string{"-ephemeral", "-sms-per-window", "0"}, "-sms-per-window must be positive"},
		{[]string{"-ephemeral", "-token-ttl", "soon"}, "token-ttl"},
		{[]string{"-ephemeral", "-test-recipient", "+15555550100"}, "RECIPIENT=CODE"},
		{[]string{"-ephemeral", "-test-recipient", "+15555550100=12"}, "6 digits"},
		{[]string{"-ephemeral", "-seed-file", "nope.json"}, "nope.json"},
		{[]string{"-ephemeral", "-seed", "-3"}, "seed"},
	} {
		if _, err := runMain(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
	if _, err := os.Stat("data"); !os.IsNotExist(err) {
		t.Fatalf("a refused start created the data directory (%v)", err)
	}
}
