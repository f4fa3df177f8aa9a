package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFileName is the file in the data folder holding the generated session key.
const KeyFileName = "session.key"

// LoadOrCreateKey returns the HMAC key for sessions. A non-empty secret (the
// SESSION_SECRET variable) is used as is and must be at least MinKeyLen bytes.
// Otherwise, for development, the key is read from dataDir/session.key, or
// generated from rand (nil means crypto/rand) and written there with mode
// 0600 (the folder created 0700) so sessions survive restarts.
func LoadOrCreateKey(secret string, dataDir string, rand io.Reader) ([]byte, error) {
	if secret != "" {
		if len(secret) < MinKeyLen {
			return nil, fmt.Errorf("SESSION_SECRET is %d bytes long; it must be at least %d (for example: openssl rand -hex 32)", len(secret), MinKeyLen)
		}
		return []byte(secret), nil
	}
	if dataDir == "" {
		return nil, errors.New("session key: no SESSION_SECRET and no data folder to keep a generated key in")
	}
	path := filepath.Join(dataDir, KeyFileName)
	key, err := readKey(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("session key: create data folder: %w", err)
	}
	key, err = generateKey(rand)
	if err != nil {
		return nil, err
	}
	if err := writeKeyOnce(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process started at the same moment and won; use its key.
			return readKey(path)
		}
		return nil, err
	}
	return key, nil
}

func generateKey(r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	key := make([]byte, MinKeyLen)
	if _, err := io.ReadFull(r, key); err != nil {
		return nil, fmt.Errorf("session key: generate: %w", err)
	}
	return key, nil
}

func readKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("session key: read %s: %w", path, err)
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("session key: %s holds %d bytes, need at least %d; delete it to generate a new one", path, len(key), MinKeyLen)
	}
	return key, nil
}

// writeKeyOnce writes key to path without ever replacing an existing file and
// without anyone seeing a half-written one: write a temporary file, then
// hard-link it into place (link fails if path exists).
func writeKeyOnce(path string, key []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), KeyFileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("session key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("session key: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("session key: write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("session key: write: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	// Some file systems have no hard links: fall back to an exclusive create.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return fmt.Errorf("session key: write: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("session key: write: %w", err)
	}
	return nil
}
