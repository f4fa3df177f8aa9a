package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"example.com/passwordless/internal/testkit"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// openFile opens a SQLite store on a temporary file, for benchmarks and SQLite's own tests.
func openFile(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "app.db"), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUser(t testing.TB, s *Store, email string) User {
	t.Helper()
	u, _, err := s.FindOrCreateUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("FindOrCreateUserByEmail(%q): %v", email, err)
	}
	return u
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		wantErr bool
	}{
		{"memory", func(*testing.T) string { return ":memory:" }, false},
		{"file in new nested folder", func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "b", "app.db") }, false},
		{"empty path", func(*testing.T) string { return "" }, true},
		// Part of the name, not options: the path is passed as a URI (internal/sqlitedb).
		{"question mark", func(t *testing.T) string { return filepath.Join(t.TempDir(), "x?y.db") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.path(t), nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open error = %v, wantErr %v", err, tt.wantErr)
			}
			if s != nil {
				s.Close()
			}
		})
	}
}

func TestOpenPragmas(t *testing.T) {
	s := openFile(t)
	ctx := context.Background()
	var journal string
	var fk, busy int
	w := s.e.writer()
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
		t.Fatal(err)
	}
	if err := w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := w.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if journal != "wal" || fk != 1 || busy != 5000 {
		t.Errorf("journal_mode=%q foreign_keys=%d busy_timeout=%d, want wal 1 5000", journal, fk, busy)
	}
}

// Foreign keys are enforced: a session for an unknown user fails.
func TestForeignKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ *testkit.Clock) {
		if err := s.CreateSession(context.Background(), Session{ID: "s", UserID: "nobody", ExpiresAt: t0}); err == nil {
			t.Error("CreateSession for unknown user succeeded, want foreign key error")
		}
	})
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) {
		ctx := context.Background()
		s := db.open(t)
		u := mustUser(t, s, "keep@example.com")
		s.Close()
		for i := 0; i < 2; i++ {
			s := db.open(t)
			assertMigratedOnce(t, s, db)
			got, err := s.GetUser(ctx, u.ID)
			if err != nil || got.Email != "keep@example.com" {
				t.Errorf("GetUser after reopen = %+v, %v", got, err)
			}
			s.Close()
		}
	})
}

// Instances starting at once on one new PostgreSQL database migrate it once (the advisory
// lock): each migration is recorded exactly once and every instance works.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) {
		if db.name == "sqlite" {
			// Several instances are PostgreSQL's job; SQLite's first opens of a new file at
			// the same moment can meet "database is locked" while it turns on WAL.
			t.Skip("several instances at once are for PostgreSQL")
		}
		stores := make([]*Store, 4)
		errs := make([]error, len(stores))
		atOnce(len(stores), func(i int) { stores[i], errs[i] = db.connect(db.clock.Now) })
		for i, s := range stores {
			if errs[i] != nil {
				t.Fatalf("instance %d: %v", i, errs[i])
			}
			t.Cleanup(func() { s.Close() })
			mustUser(t, s, fmt.Sprintf("instance%d@example.com", i))
		}
		assertMigratedOnce(t, stores[0], db)
	})
}

// assertMigratedOnce checks that schema_migrations records each of the backend's
// migration files exactly once.
func assertMigratedOnce(t *testing.T, s *Store, db backend) {
	t.Helper()
	files := migrationFiles
	if db.name == "postgres" {
		files = postgresMigrationFiles
	}
	names, err := fs.Glob(files, db.migrations+"/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("migration files: %v, %v", names, err)
	}
	var rows, versions int
	if err := s.e.writer().QueryRowContext(context.Background(),
		`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != len(names) || versions != len(names) {
		t.Errorf("schema_migrations has %d rows of %d versions, want %d of each", rows, versions, len(names))
	}
}

func TestFindOrCreateUser(t *testing.T) {
	eachBackend(t, testFindOrCreateUser)
}

func testFindOrCreateUser(t *testing.T, s *Store, clock *testkit.Clock) {
	ctx := context.Background()

	first, created, err := s.FindOrCreateUserByEmail(ctx, "  Ada@Example.COM ")
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v, want created", created, err)
	}
	if first.Email != "ada@example.com" || first.Phone != "" || len(first.ID) != 32 {
		t.Errorf("first user = %+v", first)
	}
	if !first.CreatedAt.Equal(t0) || !first.LastSignInAt.IsZero() {
		t.Errorf("times = %v / %v, want %v / zero", first.CreatedAt, first.LastSignInAt, t0)
	}
	if bal, err := s.Balance(ctx, first.ID); err != nil || bal != DemoBalanceCents {
		t.Errorf("Balance = %d, %v, want %d", bal, err, DemoBalanceCents)
	}

	tests := []struct {
		name        string
		find        func() (User, bool, error)
		wantSame    bool
		wantCreated bool
	}{
		{"same email", func() (User, bool, error) { return s.FindOrCreateUserByEmail(ctx, "ada@example.com") }, true, false},
		{"other case", func() (User, bool, error) { return s.FindOrCreateUserByEmail(ctx, "ADA@EXAMPLE.COM") }, true, false},
		{"other email", func() (User, bool, error) { return s.FindOrCreateUserByEmail(ctx, "bob@example.com") }, false, true},
		{"phone is a different user", func() (User, bool, error) { return s.FindOrCreateUserByPhone(ctx, "+14155550100") }, false, true},
		{"same phone", func() (User, bool, error) { return s.FindOrCreateUserByPhone(ctx, " +14155550100 ") }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, created, err := tt.find()
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if (u.ID == first.ID) != tt.wantSame {
				t.Errorf("user id %s vs first %s, wantSame %v", u.ID, first.ID, tt.wantSame)
			}
		})
	}

	for _, bad := range []string{"", "   "} {
		if _, _, err := s.FindOrCreateUserByEmail(ctx, bad); err == nil {
			t.Errorf("FindOrCreateUserByEmail(%q) succeeded, want error", bad)
		}
		if _, _, err := s.FindOrCreateUserByPhone(ctx, bad); err == nil {
			t.Errorf("FindOrCreateUserByPhone(%q) succeeded, want error", bad)
		}
	}

	clock.Advance(time.Hour)
	if got, err := s.GetUser(ctx, first.ID); err != nil || got.LastSignInMethod != "" || !got.LastSignInAt.IsZero() {
		t.Errorf("before TouchSignIn: %+v, %v", got, err)
	}
	if err := s.TouchSignIn(ctx, first.ID, "whatsapp"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, first.ID)
	if err != nil || !got.LastSignInAt.Equal(t0.Add(time.Hour)) || got.LastSignInMethod != "whatsapp" {
		t.Errorf("after TouchSignIn: %+v, %v", got, err)
	}
	if err := s.TouchSignIn(ctx, "nobody", "email"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TouchSignIn(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Balance(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Balance(unknown) = %v, want ErrNotFound", err)
	}
}

// 50 concurrent first sign-ins of one address, through two instances, create one user
// and one account.
func TestFindOrCreateUserConcurrent(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) {
		ctx := context.Background()
		instances := []*Store{db.open(t), db.open(t)}
		s := instances[0]
		{
			const n = 50
			ids := make([]string, n)
			created := make([]bool, n)
			errs := make([]error, n)
			atOnce(n, func(i int) {
				var u User
				u, created[i], errs[i] = instances[i%2].FindOrCreateUserByEmail(ctx, "new@example.com")
				ids[i] = u.ID
			})
			createdCount := 0
			for i := 0; i < n; i++ {
				if errs[i] != nil {
					t.Fatalf("goroutine %d: %v", i, errs[i])
				}
				if ids[i] != ids[0] {
					t.Errorf("goroutine %d got user %s, want %s", i, ids[i], ids[0])
				}
				if created[i] {
					createdCount++
				}
			}
			if createdCount != 1 {
				t.Errorf("%d calls report created, want 1", createdCount)
			}
			var users, accounts int
			s.e.writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&users)
			s.e.writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&accounts)
			if users != 1 || accounts != 1 {
				t.Errorf("users=%d accounts=%d, want 1 and 1", users, accounts)
			}
		}
	})
}

func TestSessions(t *testing.T) {
	eachBackend(t, testSessions)
}

func testSessions(t *testing.T, s *Store, clock *testkit.Clock) {
	ctx := context.Background()
	u := mustUser(t, s, "a@example.com")

	sess := Session{ID: "jti-1", UserID: u.ID, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, sess); err == nil {
		t.Error("creating the same session id twice succeeded")
	}
	got, err := s.GetSession(ctx, "jti-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != u.ID || !got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) || got.RevokedAt != nil {
		t.Errorf("GetSession = %+v", got)
	}

	clock.Advance(time.Minute)
	if err := s.RevokeSession(ctx, "jti-1"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := s.RevokeSession(ctx, "jti-1"); err != nil {
		t.Errorf("second revoke: %v, want nil", err)
	}
	got, _ = s.GetSession(ctx, "jti-1")
	if got.RevokedAt == nil || !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("RevokedAt = %v, want the first revocation time %v", got.RevokedAt, t0.Add(time.Minute))
	}

	for name, err := range map[string]error{
		"get unknown":    func() error { _, err := s.GetSession(ctx, "nope"); return err }(),
		"revoke unknown": s.RevokeSession(ctx, "nope"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if err := s.CreateSession(ctx, Session{ID: "x", UserID: u.ID}); err == nil {
		t.Error("CreateSession without expiry succeeded")
	}
}

func TestPendingSignIns(t *testing.T) {
	eachBackend(t, testPendingSignIns)
}

func testPendingSignIns(t *testing.T, s *Store, _ *testkit.Clock) {
	ctx := context.Background()
	p := PendingSignIn{ID: "p1", ChallengeID: "c1", Method: "email", Recipient: "a@example.com", ExpiresAt: t0.Add(10 * time.Minute)}
	if err := s.CreatePendingSignIn(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPendingSignIn(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	p.CreatedAt = t0
	if got != p {
		t.Errorf("GetPendingSignIn = %+v, want %+v", got, p)
	}
	for want := 1; want <= 3; want++ {
		n, err := s.RecordWrongAttempt(ctx, "p1")
		if err != nil || n != want {
			t.Fatalf("RecordWrongAttempt = %d, %v, want %d", n, err, want)
		}
	}
	newExpiry := t0.Add(20 * time.Minute)
	if err := s.UpdatePendingSignInChallenge(ctx, "p1", "c2", newExpiry); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetPendingSignIn(ctx, "p1")
	if got.ChallengeID != "c2" || got.WrongAttempts != 0 || !got.ExpiresAt.Equal(newExpiry) {
		t.Errorf("after resend: %+v", got)
	}
	if err := s.DeletePendingSignIn(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePendingSignIn(ctx, "p1"); err != nil {
		t.Errorf("second delete: %v, want nil", err)
	}

	notFoundCalls := map[string]error{
		"get":    func() error { _, err := s.GetPendingSignIn(ctx, "p1"); return err }(),
		"wrong":  func() error { _, err := s.RecordWrongAttempt(ctx, "p1"); return err }(),
		"update": s.UpdatePendingSignInChallenge(ctx, "p1", "c3", newExpiry),
	}
	for name, err := range notFoundCalls {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after delete: %v, want ErrNotFound", name, err)
		}
	}
	if err := s.CreatePendingSignIn(ctx, PendingSignIn{ID: "p2"}); err == nil {
		t.Error("CreatePendingSignIn with missing fields succeeded")
	}
}

func TestRecordWrongAttemptConcurrent(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) { testRecordWrongAttemptConcurrent(t, db.open(t)) })
}

func testRecordWrongAttemptConcurrent(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.CreatePendingSignIn(ctx, PendingSignIn{ID: "p", ChallengeID: "c", Method: "sms", Recipient: "+14155550100", ExpiresAt: t0}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	seen := make([]int, n)
	atOnce(n, func(i int) {
		var err error
		if seen[i], err = s.RecordWrongAttempt(ctx, "p"); err != nil {
			t.Error(err)
		}
	})
	counts := map[int]bool{}
	for _, c := range seen {
		counts[c] = true
	}
	if len(counts) != n {
		t.Errorf("got %d distinct counts, want %d (each attempt counted once)", len(counts), n)
	}
	got, _ := s.GetPendingSignIn(ctx, "p")
	if got.WrongAttempts != n {
		t.Errorf("WrongAttempts = %d, want %d", got.WrongAttempts, n)
	}
}

func TestWithdrawalsCreateList(t *testing.T) {
	eachBackend(t, testWithdrawalsCreateList)
}

func testWithdrawalsCreateList(t *testing.T, s *Store, clock *testkit.Clock) {
	ctx := context.Background()
	a := mustUser(t, s, "a@example.com")
	b := mustUser(t, s, "b@example.com")

	for i, id := range []string{"w1", "w2", "w3"} {
		if err := s.CreateWithdrawal(ctx, Withdrawal{ID: id, UserID: a.ID, AmountCents: int64(100 * (i + 1))}); err != nil {
			t.Fatal(err)
		}
		if i < 2 { // w2 and w3 share a timestamp: insertion order breaks the tie
			clock.Advance(time.Second)
		}
	}
	if err := s.CreateWithdrawal(ctx, Withdrawal{ID: "wb", UserID: b.ID, AmountCents: 1}); err != nil {
		t.Fatal(err)
	}
	account, err := s.GetAccount(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range account.Withdrawals {
		ids = append(ids, w.ID)
		if w.State != WithdrawalPending || w.UserID != a.ID {
			t.Errorf("withdrawal %+v: want pending, owned by a", w)
		}
	}
	if fmt.Sprint(ids) != "[w3 w2 w1]" {
		t.Errorf("GetAccount withdrawals order = %v, want [w3 w2 w1]", ids)
	}
	if got, err := s.GetAccount(ctx, "nobody"); !errors.Is(err, ErrNotFound) || len(got.Withdrawals) != 0 {
		t.Errorf("GetAccount(unknown) = %v, %v, want no withdrawals and ErrNotFound", got.Withdrawals, err)
	}
	w, err := s.GetWithdrawal(ctx, "w1")
	if err != nil || w.AmountCents != 100 || !w.CreatedAt.Equal(t0) || !w.UpdatedAt.Equal(t0) {
		t.Errorf("GetWithdrawal = %+v, %v", w, err)
	}
	if _, err := s.GetWithdrawal(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetWithdrawal(unknown) = %v, want ErrNotFound", err)
	}

	bad := []struct {
		name string
		w    Withdrawal
	}{
		{"zero amount", Withdrawal{ID: "x1", UserID: a.ID}},
		{"negative amount", Withdrawal{ID: "x2", UserID: a.ID, AmountCents: -5}},
		{"no id", Withdrawal{UserID: a.ID, AmountCents: 1}},
		{"unknown user", Withdrawal{ID: "x3", UserID: "nobody", AmountCents: 1}},
		{"duplicate id", Withdrawal{ID: "w1", UserID: a.ID, AmountCents: 1}},
		{"unknown state", Withdrawal{ID: "x4", UserID: a.ID, AmountCents: 1, State: "weird"}},
		{"created completed", Withdrawal{ID: "x5", UserID: a.ID, AmountCents: 1, State: WithdrawalCompleted}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateWithdrawal(ctx, tt.w); err == nil {
				t.Error("CreateWithdrawal succeeded, want error")
			}
		})
	}
	// A repeated id (the same form posted twice), even another user's, changes nothing.
	for _, owner := range []string{a.ID, b.ID} {
		if err := s.CreateWithdrawal(ctx, Withdrawal{ID: "w1", UserID: owner, AmountCents: 999}); !errors.Is(err, ErrExists) {
			t.Errorf("CreateWithdrawal(w1 again) = %v, want ErrExists", err)
		}
	}
	if w, _ := s.GetWithdrawal(ctx, "w1"); w.AmountCents != 100 || w.UserID != a.ID {
		t.Errorf("w1 after repeats: %+v", w)
	}
}

func TestAwaitChallenge(t *testing.T) {
	eachBackend(t, testAwaitChallenge)
}

func testAwaitChallenge(t *testing.T, s *Store, _ *testkit.Clock) {
	ctx := context.Background()
	a := mustUser(t, s, "a@example.com")
	b := mustUser(t, s, "b@example.com")
	if err := s.CreateWithdrawal(ctx, Withdrawal{ID: "w", UserID: a.ID, AmountCents: 100}); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitChallenge(ctx, b.ID, "w", "https://mfa.example/?token=t", "CHALLENGE_REQUIRED"); !errors.Is(err, ErrNotSettleable) {
		t.Fatalf("another user's: %v, want ErrNotSettleable", err)
	}
	if err := s.AwaitChallenge(ctx, a.ID, "w", "https://mfa.example/?token=t", "CHALLENGE_REQUIRED"); err != nil {
		t.Fatal(err)
	}
	w, err := s.GetWithdrawal(ctx, "w")
	if err != nil || w.State != WithdrawalAwaitingChallenge || w.ChallengeURL != "https://mfa.example/?token=t" || w.AuthsignalState != "CHALLENGE_REQUIRED" {
		t.Fatalf("after AwaitChallenge: %+v, %v", w, err)
	}
	if err := s.AwaitChallenge(ctx, a.ID, "w", "https://other", ""); !errors.Is(err, ErrNotSettleable) {
		t.Fatalf("twice: %v, want ErrNotSettleable", err)
	}
}

func TestSettleWithdrawal(t *testing.T) {
	eachBackend(t, testSettleWithdrawal)
}

func testSettleWithdrawal(t *testing.T, s *Store, clock *testkit.Clock) {
	ctx := context.Background()
	pending := []WithdrawalState{WithdrawalPending, WithdrawalAwaitingChallenge}

	type step struct {
		user    string // "a" or "b"
		from    []WithdrawalState
		to      WithdrawalState
		wantErr error // nil, ErrNotSettleable, ErrInsufficientFunds, or errAny
	}
	errAny := errors.New("any error")
	tests := []struct {
		name        string
		amount      int64
		steps       []step
		wantState   WithdrawalState
		wantBalance int64
	}{
		{
			name: "complete debits once", amount: 150_00,
			steps:     []step{{"a", pending, WithdrawalCompleted, nil}},
			wantState: WithdrawalCompleted, wantBalance: DemoBalanceCents - 150_00,
		},
		{
			name: "second settle changes nothing", amount: 150_00,
			steps: []step{
				{"a", pending, WithdrawalCompleted, nil},
				{"a", pending, WithdrawalCompleted, ErrNotSettleable},
				{"a", pending, WithdrawalFailed, ErrNotSettleable},
			},
			wantState: WithdrawalCompleted, wantBalance: DemoBalanceCents - 150_00,
		},
		{
			name: "other user cannot settle", amount: 150_00,
			steps:     []step{{"b", pending, WithdrawalCompleted, ErrNotSettleable}},
			wantState: WithdrawalPending, wantBalance: DemoBalanceCents,
		},
		{
			name: "insufficient funds changes nothing", amount: DemoBalanceCents + 1,
			steps:     []step{{"a", pending, WithdrawalCompleted, ErrInsufficientFunds}},
			wantState: WithdrawalPending, wantBalance: DemoBalanceCents,
		},
		{
			name: "whole balance", amount: DemoBalanceCents,
			steps:     []step{{"a", pending, WithdrawalCompleted, nil}},
			wantState: WithdrawalCompleted, wantBalance: 0,
		},
		{
			name: "failed does not debit", amount: 150_00,
			steps:     []step{{"a", pending, WithdrawalFailed, nil}, {"a", pending, WithdrawalCompleted, ErrNotSettleable}},
			wantState: WithdrawalFailed, wantBalance: DemoBalanceCents,
		},
		{
			name: "held then review succeeded", amount: 150_00,
			steps: []step{
				{"a", []WithdrawalState{WithdrawalPending}, WithdrawalHeld, nil},
				{"a", []WithdrawalState{WithdrawalHeld}, WithdrawalCompleted, nil},
			},
			wantState: WithdrawalCompleted, wantBalance: DemoBalanceCents - 150_00,
		},
		{
			name: "state not in from", amount: 150_00,
			steps:     []step{{"a", []WithdrawalState{WithdrawalHeld}, WithdrawalCompleted, ErrNotSettleable}},
			wantState: WithdrawalPending, wantBalance: DemoBalanceCents,
		},
		{
			name: "completed to completed refused", amount: 150_00,
			steps: []step{
				{"a", pending, WithdrawalCompleted, nil},
				{"a", []WithdrawalState{WithdrawalCompleted}, WithdrawalCompleted, errAny},
			},
			wantState: WithdrawalCompleted, wantBalance: DemoBalanceCents - 150_00,
		},
		{
			name: "no from states", amount: 150_00,
			steps:     []step{{"a", nil, WithdrawalCompleted, errAny}},
			wantState: WithdrawalPending, wantBalance: DemoBalanceCents,
		},
		{
			name: "unknown target state", amount: 150_00,
			steps:     []step{{"a", pending, "weird", errAny}},
			wantState: WithdrawalPending, wantBalance: DemoBalanceCents,
		},
	}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One store for the table: each case has users and a withdrawal of its own.
			users := map[string]User{"a": mustUser(t, s, fmt.Sprintf("a%d@example.com", n)), "b": mustUser(t, s, fmt.Sprintf("b%d@example.com", n))}
			id := fmt.Sprint("w", n)
			if err := s.CreateWithdrawal(ctx, Withdrawal{ID: id, UserID: users["a"].ID, AmountCents: tt.amount}); err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				err := s.SettleWithdrawal(ctx, users[st.user].ID, id, st.from, st.to, "CHALLENGE_SUCCEEDED")
				switch {
				case st.wantErr == nil && err != nil:
					t.Fatalf("step %d: %v, want success", i, err)
				case st.wantErr == errAny && err == nil:
					t.Fatalf("step %d: success, want an error", i)
				case st.wantErr != nil && st.wantErr != errAny && !errors.Is(err, st.wantErr):
					t.Fatalf("step %d: %v, want %v", i, err, st.wantErr)
				}
			}
			w, err := s.GetWithdrawal(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if w.State != tt.wantState {
				t.Errorf("state = %s, want %s", w.State, tt.wantState)
			}
			if bal, _ := s.Balance(ctx, users["a"].ID); bal != tt.wantBalance {
				t.Errorf("balance a = %d, want %d", bal, tt.wantBalance)
			}
			if bal, _ := s.Balance(ctx, users["b"].ID); bal != DemoBalanceCents {
				t.Errorf("balance b = %d, want untouched %d", bal, DemoBalanceCents)
			}
		})
	}

	t.Run("unknown withdrawal", func(t *testing.T) {
		u := mustUser(t, s, "a@example.com")
		err := s.SettleWithdrawal(ctx, u.ID, "nope", pending, WithdrawalCompleted, "")
		if !errors.Is(err, ErrNotSettleable) {
			t.Errorf("got %v, want ErrNotSettleable", err)
		}
	})
	t.Run("records authsignal state and update time", func(t *testing.T) {
		u := mustUser(t, s, "a@example.com")
		created := clock.Now()
		if err := s.CreateWithdrawal(ctx, Withdrawal{ID: "w-state", UserID: u.ID, AmountCents: 1, AuthsignalState: "ALLOW"}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if err := s.SettleWithdrawal(ctx, u.ID, "w-state", pending, WithdrawalHeld, "REVIEW_REQUIRED"); err != nil {
			t.Fatal(err)
		}
		w, _ := s.GetWithdrawal(ctx, "w-state")
		if w.AuthsignalState != "REVIEW_REQUIRED" || !w.UpdatedAt.Equal(created.Add(time.Minute)) || !w.CreatedAt.Equal(created) {
			t.Errorf("withdrawal = %+v", w)
		}
	})
	// A settlement finishes even when its caller has gone: the request's context is
	// cancelled, the money has moved.
	t.Run("a cancelled caller does not stop it", func(t *testing.T) {
		u := mustUser(t, s, "gone@example.com")
		if err := s.CreateWithdrawal(ctx, Withdrawal{ID: "w-gone", UserID: u.ID, AmountCents: 5_00}); err != nil {
			t.Fatal(err)
		}
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.SettleWithdrawal(gone, u.ID, "w-gone", pending, WithdrawalCompleted, "ALLOW"); err != nil {
			t.Fatalf("settle with a cancelled context: %v", err)
		}
		if bal, _ := s.Balance(ctx, u.ID); bal != DemoBalanceCents-5_00 {
			t.Errorf("balance %d, want %d", bal, DemoBalanceCents-5_00)
		}
	})
}

// 50 concurrent settles (two callbacks, refreshes, replays) of one withdrawal
// debit exactly once.
func TestSettleWithdrawalConcurrentOnce(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) { testSettleWithdrawalConcurrentOnce(t, db.open(t), db.open(t)) })
}

// testSettleWithdrawalConcurrentOnce settles through two instances, alternately.
func testSettleWithdrawalConcurrentOnce(t *testing.T, s, other *Store) {
	ctx := context.Background()
	u := mustUser(t, s, "a@example.com")
	const amount = 100_00
	if err := s.CreateWithdrawal(ctx, Withdrawal{ID: "w", UserID: u.ID, AmountCents: amount, State: WithdrawalAwaitingChallenge}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	errs := make([]error, n)
	atOnce(n, func(i int) {
		errs[i] = []*Store{s, other}[i%2].SettleWithdrawal(ctx, u.ID, "w",
			[]WithdrawalState{WithdrawalPending, WithdrawalAwaitingChallenge}, WithdrawalCompleted, "CHALLENGE_SUCCEEDED")
	})
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrNotSettleable):
			t.Errorf("settle %d: %v, want nil or ErrNotSettleable", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d settles succeeded, want exactly 1", ok)
	}
	if bal, _ := s.Balance(ctx, u.ID); bal != DemoBalanceCents-amount {
		t.Errorf("balance = %d, want %d (one debit)", bal, DemoBalanceCents-amount)
	}
}

// 50 concurrent withdrawals by one user, together worth twice the balance,
// never overdraw, and the ledger adds up.
func TestWithdrawalsConcurrentNeverOverdraw(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) { testWithdrawalsConcurrentNeverOverdraw(t, db.open(t), db.open(t)) })
}

func testWithdrawalsConcurrentNeverOverdraw(t *testing.T, first, second *Store) {
	ctx := context.Background()
	u := mustUser(t, first, "a@example.com")
	const n = 50
	const amount = DemoBalanceCents / 25 // 25 fit, 25 don't
	errs := make([]error, n)
	atOnce(n, func(i int) {
		s := []*Store{first, second}[i%2]
		id := fmt.Sprintf("w%02d", i)
		if err := s.CreateWithdrawal(ctx, Withdrawal{ID: id, UserID: u.ID, AmountCents: amount}); err != nil {
			errs[i] = err
			return
		}
		err := s.SettleWithdrawal(ctx, u.ID, id, []WithdrawalState{WithdrawalPending}, WithdrawalCompleted, "ALLOW")
		if errors.Is(err, ErrInsufficientFunds) {
			// What the app does: mark it failed.
			err = s.SettleWithdrawal(ctx, u.ID, id, []WithdrawalState{WithdrawalPending}, WithdrawalFailed, "ALLOW")
		}
		errs[i] = err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("withdrawal %d: %v", i, err)
		}
	}
	assertLedger(t, first, u.ID, 25, 25)
}

// The account page's balance and list come from one snapshot: while withdrawals
// complete one after another, every GetAccount adds up (balance + completed =
// initial balance). Two separate reads would see a completion in one and not the other.
func TestGetAccountIsOneSnapshot(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db backend) { testGetAccountIsOneSnapshot(t, db.open(t)) })
}

func testGetAccountIsOneSnapshot(t *testing.T, s *Store) {
	ctx := context.Background()
	u := mustUser(t, s, "a@example.com")
	if _, err := s.GetAccount(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetAccount(unknown) = %v, want ErrNotFound", err)
	}
	const n = 200
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("w%03d", i)
			if err := s.CreateWithdrawal(ctx, Withdrawal{ID: id, UserID: u.ID, AmountCents: 1_00}); err != nil {
				done <- err
				return
			}
			if err := s.SettleWithdrawal(ctx, u.ID, id, []WithdrawalState{WithdrawalPending}, WithdrawalCompleted, "ALLOW"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if reads == 0 {
				t.Fatal("no read overlapped the withdrawals")
			}
			assertLedger(t, s, u.ID, n, 0)
			return
		default:
		}
		a, err := s.GetAccount(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		var completed int64
		for _, w := range a.Withdrawals {
			if w.State == WithdrawalCompleted {
				completed += w.AmountCents
			}
		}
		if a.BalanceCents+completed != DemoBalanceCents {
			t.Fatalf("read %d: balance %d + completed %d != %d: the two reads disagree", reads, a.BalanceCents, completed, DemoBalanceCents)
		}
	}
}

// assertLedger checks initial balance = balance + sum(completed), that the
// balance is never negative, and the count of completed and failed ones.
func assertLedger(t *testing.T, s *Store, userID string, wantCompleted, wantFailed int) {
	t.Helper()
	ctx := context.Background()
	account, err := s.GetAccount(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	bal, list := account.BalanceCents, account.Withdrawals
	var completedSum int64
	completed, failed := 0, 0
	for _, w := range list {
		switch w.State {
		case WithdrawalCompleted:
			completed++
			completedSum += w.AmountCents
		case WithdrawalFailed:
			failed++
		default:
			t.Errorf("withdrawal %s left in state %s", w.ID, w.State)
		}
	}
	if bal < 0 {
		t.Errorf("balance %d is negative", bal)
	}
	if bal+completedSum != DemoBalanceCents {
		t.Errorf("ledger: balance %d + completed %d = %d, want %d", bal, completedSum, bal+completedSum, DemoBalanceCents)
	}
	if completed != wantCompleted || failed != wantFailed {
		t.Errorf("completed=%d failed=%d, want %d and %d", completed, failed, wantCompleted, wantFailed)
	}
}

func TestNewID(t *testing.T) {
	a, err := NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewID(nil)
	if len(a) != 32 || a == b {
		t.Errorf("NewID = %q, %q: want two different 32-character ids", a, b)
	}
	if _, err := NewID(errReader{}); err == nil {
		t.Error("NewID with a failing reader succeeded")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no randomness") }

func BenchmarkFindOrCreateUser(b *testing.B) {
	ctx := context.Background()
	b.Run("existing", func(b *testing.B) {
		s := openFile(b)
		mustUser(b, s, "bench@example.com")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.FindOrCreateUserByEmail(ctx, "bench@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		s := openFile(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.FindOrCreateUserByEmail(ctx, fmt.Sprintf("user%d@example.com", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestUserAddresses(t *testing.T) {
	eachBackend(t, testUserAddresses)
}

func testUserAddresses(t *testing.T, s *Store, _ *testkit.Clock) {
	ctx := context.Background()
	ada := mustUser(t, s, "ada@example.com")
	bob := mustUser(t, s, "bob@example.com")
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"a phone for Ada", func() error { return s.SetUserAddress(ctx, ada.ID, "phone", "+15550001111") }, nil},
		{"the same phone for Bob", func() error { return s.SetUserAddress(ctx, bob.ID, "phone", "+15550001111") }, ErrAddressTaken},
		{"Ada's own email again, spelled otherwise", func() error { return s.SetUserAddress(ctx, ada.ID, "email", " ADA@example.com") }, nil},
		{"Ada's email for Bob", func() error { return s.SetUserAddress(ctx, bob.ID, "email", "ada@example.com") }, ErrAddressTaken},
		{"Ada without her email", func() error { return s.ClearUserAddress(ctx, ada.ID, "email") }, nil},
		{"Ada without her phone too", func() error { return s.ClearUserAddress(ctx, ada.ID, "phone") }, ErrLastAddress},
		{"Bob without his only address", func() error { return s.ClearUserAddress(ctx, bob.ID, "email") }, ErrLastAddress},
		{"an unknown user", func() error { return s.ClearUserAddress(ctx, "nobody", "email") }, ErrNotFound},
		{"a column that is not an address", func() error { return s.SetUserAddress(ctx, ada.ID, "id", "x") }, nil},
	}
	for _, st := range steps {
		err := st.do()
		if st.name == "a column that is not an address" {
			if err == nil {
				t.Errorf("%s: no error", st.name)
			}
			continue
		}
		if !errors.Is(err, st.want) && !(st.want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", st.name, err, st.want)
		}
	}
	if u, _ := s.GetUser(ctx, ada.ID); u.Email != "" || u.Phone != "+15550001111" {
		t.Errorf("Ada = %+v", u)
	}
	if u, _ := s.GetUser(ctx, bob.ID); u.Email != "bob@example.com" || u.Phone != "" {
		t.Errorf("Bob = %+v", u)
	}
}
