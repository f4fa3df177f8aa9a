package random

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"
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

func TestTimeUUID(t *testing.T) {
	s := Seeded(7)
	at := time.UnixMilli(0x0193_5c1e_8a2b)
	id, err := s.TimeUUID(at)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 9562: 48 bits of Unix milliseconds, then version 7 and the variant bits.
	if len(id) != 36 || !strings.HasPrefix(id, "01935c1e-8a2b-7") || !strings.ContainsRune("89ab", rune(id[19])) {
		t.Fatalf("TimeUUID = %q, want 01935c1e-8a2b-7xxx-[89ab]xxx-…", id)
	}
	later, _ := s.TimeUUID(at.Add(time.Millisecond))
	if later <= id {
		t.Fatalf("a later id %q does not sort after %q", later, id)
	}
	if again, _ := s.TimeUUID(at); again == id {
		t.Fatal("two ids of the same millisecond are equal")
	}
}
