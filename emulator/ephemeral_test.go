package emulator

import (
	"context"
	"testing"
	"time"
)

// A client that goes away mid-transaction must not cost the in-memory database its one
// connection: database/sql drops a connection whose transaction's context is cancelled, and
// a new connection to ":memory:" is an empty database ("no such table" ever after).
func TestCancelledTransactionKeepsTheMemoryDatabase(t *testing.T) {
	env := newEnv(t) // ":memory:"
	env.enrol("u1", "u1@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	err := env.emu.inTx(ctx, func(tx *txn) error {
		cancel() // the client disconnects while the transaction is open
		time.Sleep(20 * time.Millisecond)
		_, err := tx.ExecContext(ctx, `UPDATE users SET username = 'x' WHERE user_id = 'u1'`)
		return err
	})
	if err == nil {
		t.Fatal("the cancelled transaction committed")
	}
	if u := env.apiOK("GET", "/v1/users/u1", nil); u["isEnrolled"] != true || u["username"] != nil {
		t.Fatalf("after a cancelled transaction: %v, want the user as it was", u)
	}
	status, raw, _ := env.do("GET", "/readyz", nil, "")
	if status != 200 {
		t.Fatalf("readyz %d %s", status, raw)
	}
}
