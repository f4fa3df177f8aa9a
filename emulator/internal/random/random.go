// Package random draws the emulator's ids and one-time codes from one injected source.
package random

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// Source is a random source safe for concurrent use.
type Source struct {
	mu sync.Mutex
	r  io.Reader
}

// New wraps r (crypto/rand's Reader, or a seeded one in tests), which need not be safe
// for concurrent use.
func New(r io.Reader) *Source { return &Source{r: r} }

// Seeded is the source of a seeded emulator: ChaCha8 keyed by the seed, so two emulators
// with the same seed draw the same bytes in the same order. Not for secrets.
func Seeded(seed uint64) *Source {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:8], seed)
	copy(key[8:], "authsignal-emulator-seed") // domain separation: 24 bytes
	return New(mrand.NewChaCha8(key))
}

// Bytes reads n bytes.
func (s *Source) Bytes(n int) ([]byte, error) {
	b := make([]byte, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return b, nil
}

// UUID returns a random UUID string in the version 4 layout.
func (s *Source) UUID() (string, error) {
	b, err := s.Bytes(16)
	if err != nil {
		return "", err
	}
	return formatUUID(b, 4), nil
}

// TimeUUID returns a UUID in the version 7 layout (RFC 9562): the first 48 bits are t in
// Unix milliseconds, the rest random. IDs made later sort later, so an index of them grows
// at its end instead of at a random page.
func (s *Source) TimeUUID(t time.Time) (string, error) {
	b, err := s.Bytes(16)
	if err != nil {
		return "", err
	}
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	return formatUUID(b, 7), nil
}

// formatUUID sets the version and RFC 9562 variant bits of the 16 bytes b and writes them
// in the 8-4-4-4-12 hex layout.
func formatUUID(b []byte, version byte) string {
	b[6] = (b[6] & 0x0f) | version<<4
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Code returns a 6-digit code. Rejection sampling keeps every code equally likely
// (a plain modulo would favour low codes slightly).
func (s *Source) Code() (string, error) {
	const limit = 4_294_000_000 // largest multiple of 1e6 below 2^32
	for {
		b, err := s.Bytes(4)
		if err != nil {
			return "", err
		}
		v := binary.BigEndian.Uint32(b)
		if v < limit {
			return fmt.Sprintf("%06d", v%1_000_000), nil
		}
	}
}
