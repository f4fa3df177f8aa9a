package app

import (
	"strings"
	"testing"

	"example.com/passwordless/emulator"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"250", 25_000, ""},
		{"250.5", 25_050, ""},
		{"250.05", 25_005, ""},
		{" $1,250.00 ", 125_000, ""},
		{"1,000,000", 100_000_000, ""},
		{"12,345.6", 1_234_560, ""},
		// Thousands separators only in groups of three: "1,50" is not $150.
		{"1,50", 0, "groups of three"},
		{"1,5", 0, "groups of three"},
		{"12,34,567", 0, "groups of three"},
		{"1,2345", 0, "groups of three"},
		{",250", 0, "groups of three"},
		{"250,", 0, "groups of three"},
		{"1,,250", 0, "groups of three"},
		{"1250,00", 0, "groups of three"},
		{"0.01", 1, ""},
		{"", 0, "Enter an amount"},
		{"0", 0, "greater than zero"},
		{"0.00", 0, "greater than zero"},
		{"-1", 0, "like 250"},
		{"1.005", 0, "two decimal places"},
		{"1e3", 0, "like 250"},
		{"abc", 0, "like 250"},
		{"1000000001", 0, "too large"},
		{"999999999999", 0, "too large"},
		{"9999999999999", 0, "like 250"},
		{"NaN", 0, "like 250"},
		{"٣", 0, "like 250"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseAmount(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseAmount(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseAmount(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatCents(t *testing.T) {
	tests := map[int64]string{0: "$0.00", 5: "$0.05", 100: "$1.00", 123_456: "$1,234.56", 2_500_000: "$25,000.00", 100_000_000_000: "$1,000,000,000.00", -150: "-$1.50"}
	for in, want := range tests {
		if got := formatCents(in); got != want {
			t.Errorf("formatCents(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"Ann@Example.COM ", "ann@example.com", ""},
		{"a.b+c@sub.example.org", "a.b+c@sub.example.org", ""},
		// One address, one form: compatibility forms and internationalized domains.
		{"Ａｎｎ@Ｅｘａｍｐｌｅ.ｃｏｍ", "ann@example.com", ""},
		{"ann@münchen.de", "ann@xn--mnchen-3ya.de", ""},
		{"ann@MÜNCHEN.DE", "ann@xn--mnchen-3ya.de", ""},
		{"ann@xn--mnchen-3ya.de", "ann@xn--mnchen-3ya.de", ""},
		{"иван@пример.рф", "иван@xn--e1afmkfd.xn--p1ai", ""},
		{"用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", ""},
		{"", "", "Enter your email address."},
		// Lookalikes: a Cyrillic "а" in a Latin word; a Latin-looking word in Cyrillic.
		{"pаypal@example.com", "", "mixes alphabets"},
		{"ann@pаypal.com", "", "mixes alphabets"},
		{"ann@аррӏе.com", "", "mixes alphabets"},
		{"ann@examp\xffle.com", "", "valid email"},
		{"ann@exa_mple.com", "", "not a domain name"},
		{"ann@localhost", "", "not a domain name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeEmail(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalizeEmail(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			// What the app accepts, Authsignal (here: the emulator) accepts too: the person
			// gets the app's sentence, never a generic refusal from the service.
			if err := emulator.ValidateEmail(got); err != nil {
				t.Fatalf("the emulator refuses %q: %v", got, err)
			}
		})
	}
	for _, bad := range []string{"ann", "ann@", "@example.com", "ann@example", "ann@.com", "ann@example.", "Ann <ann@example.com>", "ann@exa mple.com", "ann\x00@example.com", "ann\u202e@example.com", "a@b@example.com"} {
		if got, err := normalizeEmail(bad); err == nil {
			t.Errorf("normalizeEmail(%q) = %q, want an error", bad, got)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"+14155550123", "+14155550123", ""},
		{" +44 (20) 7946-0958 ", "+442079460958", ""},
		{"+1.415.555.0123", "+14155550123", ""},
		// One number: the trunk 0 some people type after the country code is not part of it.
		{"+4407700900123", "+447700900123", ""},
		{"+44 (0)7700 900123", "+447700900123", ""},
		{"+447700900123", "+447700900123", ""},
		{"", "", "Enter your phone number."},
		{"14155550123", "", "international format"},
		{"+0123456789", "", "international format"},
		{"+999123456789", "", "international format"}, // no such country code
		{"+1", "", "international format"},
		{"+1415555", "", "cannot exist"},
		{"+4477009001234567", "", "cannot exist"},
		{"+1415555012a", "", "international format"},
		{"+1555CALLME", "", "international format"},
		// libphonenumber reads these as the same number, so they are one account.
		{"++14155550123", "+14155550123", ""},
		{"+١٤١٥٥٥٥٠١٢٣", "+14155550123", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizePhone(tt.in)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalizePhone(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// The fuzz targets' seed corpora run as normal tests; `go test -fuzz FuzzParseAmount ./app`
// explores further.

func FuzzParseAmount(f *testing.F) {
	for _, seed := range []string{"250", "1,250.50", "$0.01", "-1", "1e9", "0.001", "99999999999", "", "٣"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cents, err := parseAmount(in)
		if err != nil {
			return
		}
		if cents <= 0 || cents > maxAmountCents {
			t.Fatalf("parseAmount(%q) = %d: out of range", in, cents)
		}
		// What we display parses back to the same amount.
		again, err := parseAmount(formatCents(cents))
		if err != nil || again != cents {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", in, cents, formatCents(cents), again, err)
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, seed := range []string{"ann@example.com", "A@B.CO", "Ann <a@b.co>", "a@b", "\u202e@x.com", "\"a b\"@example.com", "ann@münchen.de", "pаypal@example.com", "用户@例子.广告"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		email, err := normalizeEmail(in)
		if err != nil {
			return
		}
		if email != strings.ToLower(email) || strings.TrimSpace(email) != email || strings.Count(email, "@") < 1 {
			t.Fatalf("normalizeEmail(%q) = %q: not normalized", in, email)
		}
		if again, err := normalizeEmail(email); err != nil || again != email {
			t.Fatalf("normalizeEmail is not idempotent on %q: %q, %v", email, again, err)
		}
		if err := emulator.ValidateEmail(email); err != nil {
			t.Fatalf("normalizeEmail(%q) = %q, which the emulator refuses: %v", in, email, err)
		}
	})
}

func FuzzNormalizePhone(f *testing.F) {
	for _, seed := range []string{"+14155550123", "+44 20 7946 0958", "0044", "+", "+1(415)555-0123", "+4407700900123", "+290 1234"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		phone, err := normalizePhone(in)
		if err != nil {
			return
		}
		if err := emulator.ValidatePhone(phone); err != nil {
			t.Fatalf("normalizePhone(%q) = %q, which is not E.164: %v", in, phone, err)
		}
		if again, err := normalizePhone(phone); err != nil || again != phone {
			t.Fatalf("normalizePhone is not idempotent on %q: %q, %v", phone, again, err)
		}
	})
}
