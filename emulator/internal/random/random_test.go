package random

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestCode(t *testing.T) {
	s := New(rand.Reader)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c, err := s.Code()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("bad code %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Fatalf("codes repeat too often: %d distinct of 200", len(seen))
	}
	// Rejection sampling: a value above the unbiased range is skipped.
	if c, err := New(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0x30, 0x39})).Code(); err != nil || c != "012345" {
		t.Fatalf("code %q, %v", c, err)
	}
}

func TestSeededRepeats(t *testing.T) {
	a, b := Seeded(7), Seeded(7)
	for range 5 {
		x, _ := a.UUID()
		y, _ := b.UUID()
		if x != y || len(x) != 36 || x[14] != '4' {
			t.Fatalf("seeded UUIDs %q and %q", x, y)
		}
	}
	if x, _ := Seeded(8).UUID(); x == func() string { y, _ := Seeded(7).UUID(); return y }() {
		t.Fatal("two seeds draw the same bytes")
	}
}
