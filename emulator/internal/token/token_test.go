package token

import (
	"strings"
	"testing"
	"time"
)

func TestIssueAndParse(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	id := func() (string, error) { return "jti-1", nil }
	i := NewIssuer([]byte("k"), "tenant", 10*time.Minute, clock, id)
	tok, err := i.Issue(Action{UserID: "u1", ActionCode: "withdrawal", IdempotencyKey: "k1", Scope: "read:authenticators add:authenticators"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := i.Parse(tok)
	if err != nil || c.Subject != "u1" || c.Audience != "tenant" || c.Other.ActionCode != "withdrawal" || c.Other.IdempotencyKey != "k1" ||
		c.Scope != "read:authenticators add:authenticators" || c.ID != "jti-1" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	parts := strings.Split(tok, ".")
	tests := []struct {
		name, token string
		issuer      *Issuer
		reason      string
	}{
		{"expired", tok, NewIssuer([]byte("k"), "tenant", time.Minute, func() time.Time { return now.Add(11 * time.Minute) }, id), "expired"},
		{"other key", tok, NewIssuer([]byte("other"), "tenant", time.Minute, clock, id), "bad signature"},
		{"tampered", parts[0] + "." + parts[1] + "x." + parts[2], i, "malformed"},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", i, "bad signature"},
		{"other tenant", tok, NewIssuer([]byte("k"), "another", time.Minute, clock, id), "invalid"},
		{"garbage", "not-a-token", i, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.issuer.Parse(tt.token)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := Reason(err); got != tt.reason {
				t.Fatalf("Reason = %q, want %q (%v)", got, tt.reason, err)
			}
			if strings.Contains(Reason(err), tt.token) {
				t.Fatal("the reason echoes the token")
			}
		})
	}
}
