package state

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"example.com/passwordless/emulator/internal/vocab"
)

// An export imported into an empty store exports the same again, and what the state is
// for still works there: a replayed track key gets its stored answer, a device is known.
func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	a := newTestStore(t, nil)
	userWithData(t, a, "alice", "alice@example.com", "+15555550001")
	userWithData(t, a, "bob", "bob@example.com", "+15555550002")
	email, name := "bob@example.com", "Bob"
	if _, err := a.UpdateUser(ctx, "bob", UserUpdate{DisplayName: &name, Email: &email, Custom: ptr(`{"plan":"gold"}`)}); err != nil {
		t.Fatal(err)
	}
	review, err := a.Track(ctx, Track{ActionKey: ActionKey{UserID: "bob", ActionCode: "payout", IdempotencyKey: "p1"},
		Forced: nil, Custom: map[string]any{"amount": 20000.0}, DeviceID: "dev-bob"})
	if err != nil {
		t.Fatal(err)
	}
	// A message without a code: a Call Connect link.
	if _, err := a.StartCall(ctx, NewCall{ReferenceID: "call-1", Channel: vocab.ChannelEmail, To: "alice@example.com", ActionCode: "call", LinkBase: "http://emulator"}); err != nil {
		t.Fatal(err)
	}
	first := export(t, a)
	// What -import reads: the export passes the seed file's checks.
	if _, err := ParseSeed(first); err != nil {
		t.Fatalf("the export is not a valid seed: %v", err)
	}

	b := newTestStore(t, nil)
	var seed Seed
	if err := json.Unmarshal(first, &seed); err != nil {
		t.Fatal(err)
	}
	if err := b.Import(ctx, &seed); err != nil {
		t.Fatal(err)
	}
	if second := export(t, b); !bytes.Equal(first, second) {
		t.Fatalf("export after import differs:\n%s\n---\n%s", first, second)
	}
	// Importing again changes nothing: Import is idempotent.
	if err := b.Import(ctx, &seed); err != nil {
		t.Fatal(err)
	}
	if again := export(t, b); !bytes.Equal(first, again) {
		t.Fatalf("a second import changed the state:\n%s", again)
	}
	replay, err := b.Track(ctx, Track{ActionKey: ActionKey{UserID: "bob", ActionCode: "payout", IdempotencyKey: "p1"}})
	if err != nil || replay.Token != review.Token || replay.State != review.State {
		t.Fatalf("replayed key after import: %+v, %v; want the stored answer %+v", replay, err, review)
	}
	if len(seed.Users) != 2 || len(seed.Actions) != 7 || len(seed.Messages) != 5 || len(seed.Users[0].Devices) != 1 {
		t.Fatalf("export holds %d users, %d actions, %d messages, devices %v", len(seed.Users), len(seed.Actions), len(seed.Messages), seed.Users[0].Devices)
	}
	got, err := b.Track(ctx, Track{ActionKey: ActionKey{UserID: "alice", ActionCode: "withdrawal"}, DeviceID: "dev-alice"})
	if err != nil {
		t.Fatal(err)
	}
	if acts, _ := b.Actions(ctx, ActionQuery{UserID: "alice", ActionCodes: []string{"withdrawal"}, Limit: 10}); len(acts) != 2 || got.State != vocab.StateAllow {
		t.Fatalf("alice's withdrawals after import: %+v", acts)
	}
}

func ptr(s string) *string { return &s }

func export(t *testing.T, s *Store) []byte {
	t.Helper()
	seed, err := s.Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
