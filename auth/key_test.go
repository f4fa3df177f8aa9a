package auth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateKeyFromSecret(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantErr bool
	}{
		{"32 bytes", strings.Repeat("s", 32), false},
		{"64 bytes", strings.Repeat("s", 64), false},
		{"31 bytes", strings.Repeat("s", 31), true},
		{"short", "secret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key, err := LoadOrCreateKey(tt.secret, dir, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "SESSION_SECRET") || strings.Contains(err.Error(), tt.secret) {
					t.Errorf("error %q should name SESSION_SECRET and not echo the secret", err)
				}
				return
			}
			if string(key) != tt.secret {
				t.Errorf("key = %q, want the secret", key)
			}
			if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a key file was written although a secret was given: %v", err)
			}
		})
	}
}

func TestLoadOrCreateKeyGeneratedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	first, err := LoadOrCreateKey("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != MinKeyLen {
		t.Errorf("generated key is %d bytes, want %d", len(first), MinKeyLen)
	}
	path := filepath.Join(dir, KeyFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	dirInfo, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		t.Errorf("data folder mode = %o, want 700", perm)
	}
	// A different random source must not matter: the stored key is reused.
	again, err := LoadOrCreateKey("", dir, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("second call generated a new key instead of reusing the stored one")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data folder holds %d entries, want only %s", len(entries), KeyFileName)
	}
}

func TestLoadOrCreateKeyInjectedRand(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte{42}, MinKeyLen)
	key, err := LoadOrCreateKey("", dir, bytes.NewReader(want))
	if err != nil || !bytes.Equal(key, want) {
		t.Errorf("key = %x, %v; want %x", key, err, want)
	}
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	t.Run("no data dir", func(t *testing.T) {
		if _, err := LoadOrCreateKey("", "", nil); err == nil {
			t.Error("succeeded without secret or data folder")
		}
	})
	t.Run("truncated key file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte("short"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey("", dir, nil); err == nil {
			t.Error("accepted a 5-byte key file")
		}
	})
	t.Run("no randomness", func(t *testing.T) {
		if _, err := LoadOrCreateKey("", t.TempDir(), failingReader{}); err == nil {
			t.Error("succeeded with a failing random source")
		}
	})
}

// Several processes (here goroutines) starting at once agree on one key.
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 20
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = LoadOrCreateKey("", dir, nil)
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("goroutine %d got a different key", i)
		}
	}
}
