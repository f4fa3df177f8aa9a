package emulator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Parts committed together stay independent: a failing part rolls back alone, a panicking
// one too, and every caller learns the fate of its own part.
func TestGroupCommitPartsAreIndependent(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	errPart := errors.New("this part fails")
	var wg sync.WaitGroup
	results := make([]error, 60)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = env.emu.inTx(ctx, func(tx *txn) error {
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
		var n int
		if err := env.emu.db.QueryRow(`SELECT COUNT(*) FROM users WHERE user_id = ?`, fmt.Sprint("gc-", i)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		wantErr := i%3 == 1 || i == 2
		if (err != nil) != wantErr || (n == 1) == wantErr {
			t.Errorf("part %d: err %v, row kept %v", i, err, n == 1)
		}
	}
	// The committer survived the panic.
	if err := env.emu.inTx(ctx, func(*txn) error { return nil }); err != nil {
		t.Fatalf("after a panicking part: %v", err)
	}
}
