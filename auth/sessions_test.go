package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/passwordless/internal/testkit"
	"example.com/passwordless/store"
)

var testKey = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

type fixture struct {
	store    *store.Store
	sessions *Sessions
	clock    *testkit.Clock
	userID   string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureRand(t, nil, nil)
}

// newFixtureRand lets the fuzz target make every id and token the same in
// each fuzzing process (nil readers mean crypto/rand).
func newFixtureRand(t testing.TB, storeRand, sessionRand io.Reader) *fixture {
	t.Helper()
	c := testkit.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 500_000_000, time.UTC))
	st, err := store.Open(context.Background(), ":memory:", c.Now, store.WithRand(storeRand))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, _, err := st.FindOrCreateUserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSessions(st, SessionConfig{Key: testKey, Issuer: "test-app", Audience: "test-session", TTL: time.Hour, Now: c.Now, Rand: sessionRand})
	return &fixture{store: st, sessions: s, clock: c, userID: u.ID}
}

func (f *fixture) issue(t testing.TB) string {
	t.Helper()
	tok, _, err := f.sessions.Issue(context.Background(), f.userID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sign makes a token with arbitrary claims, method and key, as an attacker
// or a misconfigured peer would.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsFor returns valid session claims for an existing session.
func (f *fixture) claimsFor(jti string) jwt.RegisteredClaims {
	now := f.clock.Now()
	return jwt.RegisteredClaims{
		ID: jti, Subject: f.userID, Issuer: "test-app", Audience: jwt.ClaimStrings{"test-session"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok, expires, err := f.sessions.Issue(ctx, f.userID)
	if err != nil {
		t.Fatal(err)
	}
	wantExp := f.clock.Now().Truncate(time.Second).Add(time.Hour)
	if !expires.Equal(wantExp) {
		t.Errorf("expires = %v, want %v", expires, wantExp)
	}
	c, err := f.sessions.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.UserID != f.userID || !c.ExpiresAt.Equal(expires) || len(c.SessionID) != 32 {
		t.Errorf("claims = %+v", c)
	}
	sess, err := f.store.GetSession(ctx, c.SessionID)
	if err != nil || sess.UserID != f.userID || !sess.ExpiresAt.Equal(expires) {
		t.Errorf("stored session = %+v, %v", sess, err)
	}
	// The header says HS256 and the claims carry everything the spec asks for.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if err != nil {
		t.Fatal(err)
	}
	rc := parsed.Claims.(*jwt.RegisteredClaims)
	if parsed.Method.Alg() != "HS256" || rc.ID == "" || rc.Subject != f.userID || rc.IssuedAt == nil ||
		rc.ExpiresAt == nil || rc.Issuer != "test-app" || len(rc.Audience) != 1 || rc.Audience[0] != "test-session" {
		t.Errorf("token header/claims = %v %+v", parsed.Header, rc)
	}
}

func TestIssueNewSessionEveryTime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		c, err := f.sessions.Verify(ctx, f.issue(t))
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.SessionID] {
			t.Fatalf("session id %s issued twice", c.SessionID)
		}
		seen[c.SessionID] = true
	}
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token func(t *testing.T, f *fixture) string
	}{
		{"empty", func(*testing.T, *fixture) string { return "" }},
		{"garbage", func(*testing.T, *fixture) string { return "not.a.token" }},
		{"expired", func(t *testing.T, f *fixture) string {
			tok := f.issue(t)
			f.clock.Advance(time.Hour)
			return tok
		}},
		{"tampered signature", func(t *testing.T, f *fixture) string {
			tok := f.issue(t)
			i := strings.LastIndexByte(tok, '.') + 1
			sig := []byte(tok[i:])
			if sig[0] == 'A' {
				sig[0] = 'B'
			} else {
				sig[0] = 'A'
			}
			return tok[:i] + string(sig)
		}},
		{"tampered payload", func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.issue(t), ".")
			c := f.claimsFor("someone-elses-jti")
			payload, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SigningString()
			parts[1] = strings.Split(payload, ".")[1]
			return strings.Join(parts, ".")
		}},
		{"non-canonical base64 signature", func(t *testing.T, f *fixture) string {
			// HS256 signatures are 32 bytes = 43 base64 characters whose
			// last one carries 2 spare bits; flipping them decodes to the same
			// bytes in lax mode. Strict decoding refuses it.
			tok := f.issue(t)
			last := tok[len(tok)-1]
			alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			idx := strings.IndexByte(alphabet, last)
			return tok[:len(tok)-1] + string(alphabet[idx^1])
		}},
		{"alg none", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.claimsFor(c.SessionID))
		}},
		{"alg none with HS256 signature", func(t *testing.T, f *fixture) string {
			tok := f.issue(t)
			parts := strings.Split(tok, ".")
			parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
			return strings.Join(parts, ".")
		}},
		{"HS384", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			return sign(t, jwt.SigningMethodHS384, testKey, f.claimsFor(c.SessionID))
		}},
		{"HS512", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			return sign(t, jwt.SigningMethodHS512, testKey, f.claimsFor(c.SessionID))
		}},
		{"RS256 signed", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			return sign(t, jwt.SigningMethodRS256, rsaKey, f.claimsFor(c.SessionID))
		}},
		{"RS256 header with HMAC signature", func(t *testing.T, f *fixture) string {
			// Algorithm confusion: an RS256 header over an HMAC made with the key.
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claimsFor(c.SessionID))
			tok.Header["alg"] = "RS256"
			str, err := tok.SigningString()
			if err != nil {
				t.Fatal(err)
			}
			sig, err := jwt.SigningMethodHS256.Sign(str, testKey)
			if err != nil {
				t.Fatal(err)
			}
			return str + "." + base64.RawURLEncoding.EncodeToString(sig)
		}},
		{"wrong key", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			return sign(t, jwt.SigningMethodHS256, []byte("another-key-another-key-another-key"), f.claimsFor(c.SessionID))
		}},
		{"wrong issuer", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			claims := f.claimsFor(c.SessionID)
			claims.Issuer = "someone-else"
			return sign(t, jwt.SigningMethodHS256, testKey, claims)
		}},
		{"wrong audience", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			claims := f.claimsFor(c.SessionID)
			claims.Audience = jwt.ClaimStrings{"other-app"}
			return sign(t, jwt.SigningMethodHS256, testKey, claims)
		}},
		{"extra audience", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			claims := f.claimsFor(c.SessionID)
			claims.Audience = jwt.ClaimStrings{"test-session", "pending"}
			return sign(t, jwt.SigningMethodHS256, testKey, claims)
		}},
		{"missing exp", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			claims := f.claimsFor(c.SessionID)
			claims.ExpiresAt = nil
			return sign(t, jwt.SigningMethodHS256, testKey, claims)
		}},
		{"issued in the future", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			claims := f.claimsFor(c.SessionID)
			claims.IssuedAt = jwt.NewNumericDate(f.clock.Now().Add(time.Minute))
			return sign(t, jwt.SigningMethodHS256, testKey, claims)
		}},
		{"revoked", func(t *testing.T, f *fixture) string {
			tok := f.issue(t)
			if err := f.sessions.Revoke(ctx, tok); err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{"unknown jti", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodHS256, testKey, f.claimsFor("no-such-session"))
		}},
		{"no jti", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodHS256, testKey, f.claimsFor(""))
		}},
		{"sub mismatch", func(t *testing.T, f *fixture) string {
			c, _ := f.sessions.Verify(ctx, f.issue(t))
			claims := f.claimsFor(c.SessionID)
			claims.Subject = "another-user"
			return sign(t, jwt.SigningMethodHS256, testKey, claims)
		}},
		{"store session expired before token", func(t *testing.T, f *fixture) string {
			// The store is the authority: a shorter server-side expiry wins.
			now := f.clock.Now()
			if err := f.store.CreateSession(ctx, store.Session{ID: "short", UserID: f.userID, ExpiresAt: now}); err != nil {
				t.Fatal(err)
			}
			return sign(t, jwt.SigningMethodHS256, testKey, f.claimsFor("short"))
		}},
		{"pending sign-in value token", func(t *testing.T, f *fixture) string {
			tok, err := f.sessions.SignValue("pending-signin", f.userID, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := tt.token(t, f)
			c, err := f.sessions.Verify(ctx, tok)
			if err == nil {
				t.Fatalf("Verify succeeded with claims %+v, want error", c)
			}
			t.Logf("rejected: %v", err)
			if !errors.Is(err, ErrInvalidSession) {
				t.Errorf("error %v does not wrap ErrInvalidSession", err)
			}
			if c != (Claims{}) {
				t.Errorf("claims = %+v on error, want zero", c)
			}
		})
	}
}

func TestExpiryBoundary(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok, expires, err := f.sessions.Issue(ctx, f.userID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(expires.Add(-time.Nanosecond).Sub(f.clock.Now()))
	if _, err := f.sessions.Verify(ctx, tok); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
	f.clock.Advance(expires.Sub(f.clock.Now()))
	if _, err := f.sessions.Verify(ctx, tok); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("at expiry: %v, want ErrInvalidSession", err)
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.issue(t)
	other := f.issue(t)
	if err := f.sessions.Revoke(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := f.sessions.Revoke(ctx, tok); err != nil {
		t.Errorf("second Revoke: %v, want nil", err)
	}
	if _, err := f.sessions.Verify(ctx, other); err != nil {
		t.Errorf("another session of the same user was affected: %v", err)
	}

	// An expired but genuine token can still be revoked (sign-out after expiry).
	expired := f.issue(t)
	f.clock.Advance(2 * time.Hour)
	if err := f.sessions.Revoke(ctx, expired); err != nil {
		t.Errorf("Revoke(expired) = %v, want nil", err)
	}
	c, _, _ := jwt.NewParser().ParseUnverified(expired, &jwt.RegisteredClaims{})
	sess, err := f.store.GetSession(ctx, c.Claims.(*jwt.RegisteredClaims).ID)
	if err != nil || sess.RevokedAt == nil {
		t.Errorf("expired session after Revoke = %+v, %v; want revoked", sess, err)
	}

	// A genuine token whose session is gone: nothing to do.
	if err := f.sessions.Revoke(ctx, sign(t, jwt.SigningMethodHS256, testKey, f.claimsFor("gone"))); err != nil {
		t.Errorf("Revoke(unknown session) = %v, want nil", err)
	}

	forged := []struct {
		name  string
		token string
	}{
		{"garbage", "x.y.z"},
		{"wrong key", sign(t, jwt.SigningMethodHS256, bytes.Repeat([]byte("k"), 32), f.claimsFor("gone"))},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.claimsFor("gone"))},
		{"wrong issuer", func() string {
			c := f.claimsFor("gone")
			c.Issuer = "other"
			return sign(t, jwt.SigningMethodHS256, testKey, c)
		}()},
		{"value token", func() string {
			v, _ := f.sessions.SignValue("pending-signin", "x", time.Minute)
			return v
		}()},
	}
	for _, tt := range forged {
		if err := f.sessions.Revoke(ctx, tt.token); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("Revoke(%s) = %v, want ErrInvalidSession", tt.name, err)
		}
	}
}

func TestShortKeyRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := NewSessions(f.store, SessionConfig{Key: []byte("short"), Now: f.clock.Now})
	if _, _, err := s.Issue(ctx, f.userID); err == nil {
		t.Error("Issue with a short key succeeded")
	}
	if _, err := s.SignValue("p", "v", time.Minute); err == nil {
		t.Error("SignValue with a short key succeeded")
	}
	if _, err := s.Verify(ctx, f.issue(t)); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("Verify with a short key = %v, want ErrInvalidSession", err)
	}
}

func TestIssueErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tests := []struct {
		name   string
		s      *Sessions
		userID string
	}{
		{"empty user", f.sessions, ""},
		{"unknown user (foreign key)", f.sessions, "nobody"},
		{"no randomness", NewSessions(f.store, SessionConfig{Key: testKey, Rand: failingReader{}}), f.userID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, _, err := tt.s.Issue(ctx, tt.userID); err == nil {
				t.Errorf("Issue succeeded with token of %d bytes, want error", len(tok))
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no randomness") }

func TestSignVerifyValue(t *testing.T) {
	f := newFixture(t)
	s := f.sessions
	tok, err := s.SignValue("pending-signin", "p-123", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.VerifyValue("pending-signin", tok); err != nil || v != "p-123" {
		t.Fatalf("VerifyValue = %q, %v", v, err)
	}
	session := f.issue(t)

	tests := []struct {
		name    string
		purpose string
		token   func() string
		advance time.Duration
	}{
		{"wrong purpose", "device", func() string { return tok }, 0},
		{"session token as value", "pending-signin", func() string { return session }, 0},
		{"expired", "pending-signin", func() string { return tok }, 10 * time.Minute},
		{"tampered", "pending-signin", func() string { return tok[:len(tok)-2] + "xx" }, 0},
		{"wrong key", "pending-signin", func() string {
			other := NewSessions(f.store, SessionConfig{Key: bytes.Repeat([]byte("z"), 32), Issuer: "test-app", Audience: "test-session", Now: f.clock.Now})
			v, _ := other.SignValue("pending-signin", "p-123", time.Minute)
			return v
		}, 0},
		{"HS512", "pending-signin", func() string {
			now := f.clock.Now()
			return sign(t, jwt.SigningMethodHS512, testKey, jwt.RegisteredClaims{
				Subject: "p-123", Issuer: "test-app", Audience: jwt.ClaimStrings{"pending-signin"},
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			})
		}, 0},
		{"empty purpose", "", func() string { return tok }, 0},
		{"session audience as purpose", "test-session", func() string { return session }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := *f.sessions // own copy of the clock offset
			c := testkit.NewClock(f.clock.Now().Add(tt.advance))
			g.now = c.Now
			if v, err := g.VerifyValue(tt.purpose, tt.token()); err == nil {
				t.Errorf("VerifyValue = %q, want error", v)
			}
		})
	}

	signErrs := []struct {
		name, purpose, value string
		ttl                  time.Duration
	}{
		{"empty purpose", "", "v", time.Minute},
		{"session audience", "test-session", "v", time.Minute},
		{"empty value", "p", "", time.Minute},
		{"zero ttl", "p", "v", 0},
	}
	for _, tt := range signErrs {
		if _, err := s.SignValue(tt.purpose, tt.value, tt.ttl); err == nil {
			t.Errorf("SignValue(%s) succeeded, want error", tt.name)
		}
	}
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := NewSessions(f.store, SessionConfig{Key: testKey})
	tok, expires, err := s.Issue(ctx, f.userID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expires); d < DefaultSessionTTL-time.Minute || d > DefaultSessionTTL {
		t.Errorf("expires in %v, want about %v", d, DefaultSessionTTL)
	}
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Errorf("Verify with defaults: %v", err)
	}
	// A differently configured app (other issuer/audience) refuses it.
	if _, err := f.sessions.Verify(ctx, tok); err == nil {
		t.Error("token from the default config verified under another issuer/audience")
	}
}

// FuzzVerifySession: arbitrary strings never panic and never verify, except
// the one genuine live token in the corpus.
func FuzzVerifySession(f *testing.F) {
	// Deterministic randomness: the worker processes of `go test -fuzz` each
	// run this setup and must agree on which token is the genuine one.
	fx := newFixtureRand(f, mathrand.NewChaCha8([32]byte{1}), mathrand.NewChaCha8([32]byte{2}))
	ctx := context.Background()
	good := fx.issue(f)
	revoked := fx.issue(f)
	if err := fx.sessions.Revoke(ctx, revoked); err != nil {
		f.Fatal(err)
	}
	value, err := fx.sessions.SignValue("pending-signin", fx.userID, time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		"", ".", "..", "...", "a.b.c", "a.b", "a.b.c.d",
		good, revoked, value,
		good + "x", good[:len(good)-1], " " + good,
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":"x"}`)) + "." + parts[2],
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":[1,2],"exp":1e400}`)) + "." + parts[2],
		strings.Repeat("A", 10000),
		"eyJ.eyJ.sig",
		"\x00\xff.\x80.\u2028",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := fx.sessions.Verify(ctx, token)
		if err == nil && token != good {
			t.Fatalf("Verify(%q) succeeded with %+v", token, c)
		}
		if err != nil && !errors.Is(err, ErrInvalidSession) {
			t.Fatalf("Verify(%q) error %v does not wrap ErrInvalidSession", token, err)
		}
		if _, err := fx.sessions.VerifyValue("pending-signin", token); err == nil && token != value {
			t.Fatalf("VerifyValue(%q) succeeded", token)
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := f.sessions.Issue(ctx, f.userID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify includes the store lookup of the jti.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	tok := f.issue(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.sessions.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
