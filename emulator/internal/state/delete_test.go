package state

import (
	"context"
	"testing"

	"example.com/passwordless/emulator/internal/vocab"
)

// userWithData gives userID an email sign-in (claimed, then enrolled as the app does), an
// SMS authenticator, a tracked action with a device and a pending SMS challenge, all with
// their own addresses.
func userWithData(t *testing.T, s *Store, userID, email, phone string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateChallenge(ctx, NewChallenge{Method: vocab.MethodEmailOTP, ActionCode: "signInWithEmail", Email: email})
	must(err)
	msgs, err := s.Messages(ctx, MessageFilter{ChallengeID: c.ID}, 0, 1)
	must(err)
	v, err := s.Verify(ctx, c.ID, msgs[0].Code)
	must(err)
	if !v.Verified {
		t.Fatalf("verify: %+v", v)
	}
	_, err = s.Claim(ctx, c.ID, userID, false)
	must(err)
	_, err = s.Enroll(ctx, userID, vocab.MethodEmailOTP, email, "", false)
	must(err)
	_, err = s.Enroll(ctx, userID, vocab.MethodSMS, "", phone, false)
	must(err)
	_, err = s.Track(ctx, Track{ActionKey: ActionKey{UserID: userID, ActionCode: "withdrawal"}, DeviceID: "dev-" + userID, Custom: map[string]any{"amount": 10.0}})
	must(err)
	_, err = s.CreateChallenge(ctx, NewChallenge{Method: vocab.MethodSMS, ActionCode: "stepUp", PhoneNumber: phone, UserID: userID})
	must(err)
}

func (s *Store) countRows(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// DeleteUserData removes every row of one user and of their own addresses, and nothing of anyone else's.
func TestDeleteUserDataLeavesOthersAlone(t *testing.T) {
	s := newTestStore(t, nil)
	ctx := context.Background()
	userWithData(t, s, "alice", "alice@example.com", "+15555550001")
	userWithData(t, s, "bob", "bob@example.com", "+15555550002")
	// An address both users share keeps its messages.
	for _, u := range []string{"bob", "alice"} {
		if _, err := s.Enroll(ctx, u, vocab.MethodEmailOTP, "shared@example.com", "", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateChallenge(ctx, NewChallenge{Method: vocab.MethodEmailOTP, ActionCode: "signIn", Email: "shared@example.com"}); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteUserData(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SELECT COUNT(*) FROM users WHERE user_id = ?`,
		`SELECT COUNT(*) FROM authenticators WHERE user_id = ?`,
		`SELECT COUNT(*) FROM actions WHERE user_id = ?`,
		`SELECT COUNT(*) FROM seen_devices WHERE user_id = ?`,
		`SELECT COUNT(*) FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1`,
	} {
		if n := s.countRows(t, q, "alice"); n != 0 {
			t.Errorf("alice left %d rows: %s", n, q)
		}
		if n := s.countRows(t, q, "bob"); n == 0 {
			t.Errorf("bob lost his rows: %s", q)
		}
	}
	for _, to := range []string{"alice@example.com", "+15555550001"} {
		for _, q := range []string{`SELECT COUNT(*) FROM messages WHERE recipient = ?`, `SELECT COUNT(*) FROM sends WHERE recipient = ?`,
			`SELECT COUNT(*) FROM challenges WHERE email = ?1 OR phone_number = ?1`} {
			if n := s.countRows(t, q, to); n != 0 {
				t.Errorf("alice's rows for %s remain: %s", to, q)
			}
		}
	}
	for _, to := range []string{"bob@example.com", "+15555550002", "shared@example.com"} {
		if n := s.countRows(t, `SELECT COUNT(*) FROM messages WHERE recipient = ?`, to); n == 0 {
			t.Errorf("messages to %s were deleted", to)
		}
	}
	if err := s.DeleteUserData(ctx, "alice"); !IsKind(err, NotFound) {
		t.Fatalf("second delete: %v, want NotFound", err)
	}
}
