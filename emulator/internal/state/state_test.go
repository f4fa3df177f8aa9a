package state

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
	"example.com/passwordless/internal/testkit"
)

// randomCodes sends random codes and delivers everywhere.
type randomCodes struct{ r *random.Source }

func (c randomCodes) Code(string) (string, error) { return c.r.Code() }
func (randomCodes) Undeliverable(string) bool     { return false }

// newTestStore opens an in-memory store; publish (may be nil) receives committed messages.
func newTestStore(t testing.TB, publish func([]Message)) *Store {
	return newTestStoreWith(t, func(o *Options) { o.Publish = publish })
}

// newTestStoreWith opens an in-memory store with the tests' options, changed by mutate.
func newTestStoreWith(t testing.TB, mutate func(*Options)) *Store {
	t.Helper()
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	rnd := random.New(rand.Reader)
	o := Options{Path: ":memory:", Limits: DefaultLimits(), MessageCap: 100, Now: time.Now, Random: rnd,
		Codes: randomCodes{rnd}, Rules: rs, Tokens: token.NewIssuer([]byte("k"), "tenant", time.Minute, time.Now, rnd.UUID),
		Log: slog.New(slog.DiscardHandler)}
	mutate(&o)
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// Parts committed together stay independent: a failing part rolls back alone, a panicking
// one too, and every caller learns the fate of its own part.
func TestGroupCommitPartsAreIndependent(t *testing.T) {
	s := newTestStore(t, nil)
	ctx := context.Background()
	errPart := errors.New("this part fails")
	var wg sync.WaitGroup
	results := make([]error, 60)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.inTx(ctx, func(tx *txn) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO users(user_id, created_at) VALUES (?, 0)`, fmt.Sprint("gc-", i)); err != nil {
					return err
				}
				switch i % 3 {
				case 1:
					return errPart // after its insert: the insert must not survive
				case 2:
					if i == 2 {
						panic("a bug in one request")
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range results {
		u, _, lerr := s.User(ctx, fmt.Sprint("gc-", i))
		if lerr != nil {
			t.Fatal(lerr)
		}
		wantErr := i%3 == 1 || i == 2
		if (err != nil) != wantErr || (u != nil) == wantErr {
			t.Errorf("part %d: err %v, row kept %v", i, err, u != nil)
		}
	}
	// The committer survived the panic.
	if err := s.inTx(ctx, func(*txn) error { return nil }); err != nil {
		t.Fatalf("after a panicking part: %v", err)
	}
}

// A client that goes away mid-transaction must not cost the in-memory database its one
// connection: database/sql drops a connection whose transaction's context is cancelled, and
// a new connection to ":memory:" is an empty database ("no such table" ever after). A part
// already running finishes on the batch's context; one whose caller left before its turn
// is skipped.
func TestCancelledTransactionKeepsTheMemoryDatabase(t *testing.T) {
	s := newTestStore(t, nil)
	bg := context.Background()
	if _, err := s.Enroll(bg, "u1", vocab.MethodEmailOTP, "u1@example.com", "", false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	err := s.inTx(ctx, func(tx *txn) error {
		cancel() // the client disconnects while the transaction is open
		time.Sleep(20 * time.Millisecond)
		_, err := tx.ExecContext(ctx, `UPDATE users SET username = 'x' WHERE user_id = 'u1'`)
		return err
	})
	if err != nil {
		t.Fatalf("the running part failed: %v", err)
	}
	u, e, err := s.User(bg, "u1")
	if err != nil || u == nil || !e.IsEnrolled || u.Username != "x" {
		t.Fatalf("after a cancelled client: %+v %+v %v, want the user with its update", u, e, err)
	}
	if err := s.Ready(bg); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// Gone before its turn: nothing runs.
	ran := false
	if err := s.inTx(ctx, func(*txn) error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("a part whose caller had left: err %v, ran %v", err, ran)
	}
}

// A message sent in a part that a later step rolls back is neither stored nor published.
func TestRolledBackSendIsNotPublished(t *testing.T) {
	var mu sync.Mutex
	var published []Message
	s := newTestStore(t, func(m []Message) {
		mu.Lock()
		defer mu.Unlock()
		published = append(published, m...)
	})
	ctx := context.Background()
	errLater := errors.New("a later step failed")
	err := s.inTx(ctx, func(tx *txn) error {
		if err := s.sendCode(ctx, tx, "c-rolled-back", vocab.ChannelEmail, "rollback@example.com", "", "123456"); err != nil {
			t.Fatalf("sendCode: %v", err)
		}
		return errLater
	})
	if !errors.Is(err, errLater) {
		t.Fatalf("inTx: %v", err)
	}
	if _, err := s.CreateChallenge(ctx, NewChallenge{Method: vocab.MethodEmailOTP, ActionCode: "signIn", Email: "kept@example.com"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, MessageFilter{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 1 || msgs[0].To != "kept@example.com" || len(published) != 1 || published[0].To != "kept@example.com" {
		t.Fatalf("stored %+v, published %+v: want only the committed send", msgs, published)
	}
}

// Ready gives up after readyTimeout when the one connection is held, instead of queueing.
func TestReadyGivesUpWhenBusy(t *testing.T) {
	s := newTestStore(t, nil)
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Ready(context.Background())
	took := time.Since(start)
	tx.Rollback()
	if err == nil || took > readyTimeout+2*time.Second {
		t.Fatalf("Ready with the database busy: %v after %v", err, took)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after the transaction ended: %v", err)
	}
}

// An authenticator enrolled in a part that a later step rolls back is not announced.
func TestRolledBackEnrolmentIsNotAnnounced(t *testing.T) {
	var mu sync.Mutex
	var events []Event
	s := newTestStoreWith(t, func(o *Options) {
		o.Notify = func(ev Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		}
	})
	ctx := context.Background()
	errLater := errors.New("a later step failed")
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := s.ensureUser(ctx, tx, "u-rolled-back"); err != nil {
			return err
		}
		if _, err := s.enrollAuthenticator(ctx, tx, "u-rolled-back", "", vocab.MethodEmailOTP, "rb@example.com", "", false); err != nil {
			t.Fatalf("enrollAuthenticator: %v", err)
		}
		return errLater
	})
	if !errors.Is(err, errLater) {
		t.Fatalf("inTx: %v", err)
	}
	if _, err := s.Enroll(ctx, "u-kept", vocab.MethodEmailOTP, "kept@example.com", "", false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Type != "authenticator.created" || events[0].Data.(authenticatorEvent).UserID != "u-kept" {
		t.Fatalf("events %+v: want only the committed enrolment", events)
	}
}

// With a file, reads run on read-only connections beside the committer; whatever a write
// has acknowledged, the next read sees, also while other writes commit.
func TestFileReadsSeeAcknowledgedWrites(t *testing.T) {
	s := newTestStoreWith(t, func(o *Options) { o.Path = filepath.Join(t.TempDir(), "emulator.db") })
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				email := fmt.Sprintf("reader-%d-%d@example.com", w, i)
				c, err := s.CreateChallenge(ctx, NewChallenge{Method: vocab.MethodEmailOTP, ActionCode: "signIn", Email: email})
				if err != nil {
					errs <- err
					return
				}
				if msgs, err := s.Messages(ctx, MessageFilter{ChallengeID: c.ID}, 0, 1); err != nil || len(msgs) != 1 || msgs[0].To != email {
					errs <- fmt.Errorf("message of %s right after its challenge: %v, %v", email, msgs, err)
					return
				}
				k := ActionKey{UserID: fmt.Sprintf("user-%d-%d", w, i), ActionCode: "withdrawal"}
				res, err := s.Track(ctx, Track{ActionKey: k})
				if err != nil {
					errs <- err
					return
				}
				k.IdempotencyKey = res.IdempotencyKey
				if a, err := s.Action(ctx, k); err != nil || a.State != res.State {
					errs <- fmt.Errorf("action %v right after track (%s): %+v, %v", k, res.State, a, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The outbox says which codes can no longer be used, and why.
func TestCodeStates(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	s := newTestStoreWith(t, func(o *Options) { o.Now = clock.Now })
	ctx := context.Background()
	send := func(email string) Challenge {
		c, err := s.CreateChallenge(ctx, NewChallenge{Method: vocab.MethodEmailOTP, ActionCode: "signIn", Email: email})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	lastCode := func(email string) string {
		msgs, err := s.Messages(ctx, MessageFilter{To: email}, 0, 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("messages to %s: %v, %v", email, msgs, err)
		}
		return msgs[0].Code
	}
	used := send("used@example.com")
	if v, err := s.Verify(ctx, used.ID, lastCode("used@example.com")); err != nil || !v.Verified {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	resent := send("resent@example.com")
	if _, err := s.ResendChallenge(ctx, Resend{ChallengeID: resent.ID}); err != nil {
		t.Fatal(err)
	}
	locked := send("locked@example.com")
	wrong := "000000"
	if lastCode("locked@example.com") == wrong {
		wrong = "111111"
	}
	for range DefaultLimits().MaxAttempts {
		if _, err := s.Verify(ctx, locked.ID, wrong); err != nil {
			t.Fatal(err)
		}
	}
	send("valid@example.com")
	clock.Advance(DefaultLimits().CodeTTL - time.Second)
	send("fresh@example.com")
	clock.Advance(time.Second)
	msgs, err := s.Messages(ctx, MessageFilter{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	states, err := s.CodeStates(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]CodeState{}
	for _, m := range msgs { // newest first
		got[m.To] = append(got[m.To], states[m.ID])
	}
	want := map[string][]CodeState{
		"used@example.com":   {CodeUsed},
		"resent@example.com": {CodeExpired, CodeReplaced}, // the newest, then the first
		"locked@example.com": {CodeNoAttempts},
		"valid@example.com":  {CodeExpired},
		"fresh@example.com":  {""},
	}
	for to, w := range want {
		if !slices.Equal(got[to], w) {
			t.Errorf("%s: %q, want %q", to, got[to], w)
		}
	}
}
