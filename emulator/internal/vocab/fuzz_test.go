package vocab

import (
	"strings"
	"testing"
)

func FuzzValidateEmail(f *testing.F) {
	for _, s := range []string{"a@example.com", "A.B+tag@sub.example.co.uk", "", "@", "a@b", "a@@b.com", "Ann <a@b.com>", "a@b.com ", "a@.com", "a@b..com", "a@-b.com", "ünï@example.com", "a\x00@b.com", `"a b"@c.com`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateEmail(s) != nil {
			return
		}
		// Anything accepted is a plain single-@ address with a dotted domain, parseable by net/mail.
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || strings.Contains(domain, "@") || !strings.Contains(domain, ".") || strings.ContainsAny(s, " <>\"") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzValidatePhone(f *testing.F) {
	for _, s := range []string{"+447700900123", "+15005550006", "+1234567", "+123456789012345", "+1234567890123456", "447700900123", "+0123456789", "+44 7700 900123", "", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidatePhone(s) != nil {
			return
		}
		if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' || strings.Trim(s[1:], "0123456789") != "" {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzValidateActionCode(f *testing.F) {
	for _, s := range []string{"withdrawal", "signInWithEmail", "a", strings.Repeat("a", 64), strings.Repeat("a", 65), "", "a b", "a/b", "ä", "a-b_c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateActionCode(s) != nil {
			return
		}
		if len(s) < 1 || len(s) > 64 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Fatalf("accepted %q", s)
		}
	})
}
