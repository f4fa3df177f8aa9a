package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// WithdrawalState is where a withdrawal is in its life. Only "completed" has
// moved money.
type WithdrawalState string

const (
	WithdrawalPending           WithdrawalState = "pending"            // recorded, Authsignal not yet answered
	WithdrawalAwaitingChallenge WithdrawalState = "awaiting_challenge" // the user was sent to the pre-built UI
	WithdrawalHeld              WithdrawalState = "held"               // held for review
	WithdrawalCompleted         WithdrawalState = "completed"          // balance debited
	WithdrawalBlocked           WithdrawalState = "blocked"            // refused by a rule
	WithdrawalFailed            WithdrawalState = "failed"             // challenge or review failed, or funds ran out
)

// valid reports whether st is one of the states above.
func (st WithdrawalState) valid() bool {
	switch st {
	case WithdrawalPending, WithdrawalAwaitingChallenge, WithdrawalHeld,
		WithdrawalCompleted, WithdrawalBlocked, WithdrawalFailed:
		return true
	}
	return false
}

// Withdrawal is a request to take money out of the user's account. ID is also
// the idempotencyKey of the Authsignal action that gates it; AuthsignalState
// is the last action state seen (e.g. "CHALLENGE_SUCCEEDED").
type Withdrawal struct {
	ID, UserID           string
	AmountCents          int64
	State                WithdrawalState
	AuthsignalState      string
	ChallengeURL         string // the pre-built UI it awaits, set by AwaitChallenge
	CreatedAt, UpdatedAt time.Time
}

// CreateWithdrawal records a new withdrawal. ID, UserID and a positive
// AmountCents are required; an empty State means pending; zero times mean now.
// It may not be created completed: money moves only through SettleWithdrawal.
// An id already taken (the same form posted twice) gives ErrExists.
func (s *Store) CreateWithdrawal(ctx context.Context, w Withdrawal) error {
	if w.ID == "" || w.UserID == "" {
		return errors.New("create withdrawal: id and user id are required")
	}
	if w.AmountCents <= 0 {
		return fmt.Errorf("create withdrawal %s: amount must be positive, got %d cents", w.ID, w.AmountCents)
	}
	if w.State == "" {
		w.State = WithdrawalPending
	}
	if !w.State.valid() {
		return fmt.Errorf("create withdrawal %s: unknown state %q", w.ID, w.State)
	}
	if w.State == WithdrawalCompleted {
		return fmt.Errorf("create withdrawal %s: cannot create it completed; settle it to debit the balance", w.ID)
	}
	now := s.now()
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now
	}
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = w.CreatedAt
	}
	res, err := s.e.writer().ExecContext(ctx, s.q.insertWithdrawal, w.ID, w.UserID, w.AmountCents, string(w.State), w.AuthsignalState, toDB(w.CreatedAt), toDB(w.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create withdrawal %s: %w", w.ID, err)
	}
	if n, err := affected(res, "create withdrawal "+w.ID); err != nil || n == 1 {
		return err
	}
	return fmt.Errorf("create withdrawal %s: %w", w.ID, ErrExists)
}

// AwaitChallenge moves the user's pending withdrawal to awaiting_challenge, remembering
// the pre-built UI's URL, in one conditional update (ErrNotSettleable when it is not
// pending, or not the user's).
func (s *Store) AwaitChallenge(ctx context.Context, userID, id, challengeURL, authsignalState string) error {
	res, err := s.e.writer().ExecContext(ctx, s.q.awaitChallenge, string(WithdrawalAwaitingChallenge), challengeURL, authsignalState, toDB(s.now()), id, userID, string(WithdrawalPending))
	if err != nil {
		return fmt.Errorf("await challenge of withdrawal %s: %w", id, err)
	}
	if n, err := affected(res, "await challenge of withdrawal "+id); err != nil || n == 1 {
		return err
	}
	return fmt.Errorf("await challenge of withdrawal %s: %w", id, ErrNotSettleable)
}

// settleTimeout bounds one settlement, which no caller can cancel.
const settleTimeout = 30 * time.Second

const withdrawalColumns = `id, user_id, amount_cents, state, authsignal_state, challenge_url, created_at, updated_at`

// GetWithdrawal returns the withdrawal with this id, or ErrNotFound. It does
// not check the owner: compare UserID before showing or acting on it.
func (s *Store) GetWithdrawal(ctx context.Context, id string) (Withdrawal, error) {
	w, err := scanWithdrawal(s.e.reader().QueryRowContext(ctx, s.q.getWithdrawal, id))
	if err != nil {
		return Withdrawal{}, fmt.Errorf("get withdrawal %s: %w", id, notFound(err))
	}
	return w, nil
}

// Account is what the account page shows: the balance and every withdrawal,
// newest first (ties broken by insertion order, newest first).
type Account struct {
	BalanceCents int64
	Withdrawals  []Withdrawal
}

// GetAccount reads the user's balance and withdrawals in one snapshot (SQLite's read
// transaction, PostgreSQL's REPEATABLE READ), so the two agree: a withdrawal completing
// meanwhile shows in both or in neither. An unknown user gives ErrNotFound.
func (s *Store) GetAccount(ctx context.Context, userID string) (Account, error) {
	tx, err := s.e.snapshot(ctx)
	if err != nil {
		return Account{}, fmt.Errorf("account of user %s: begin: %w", userID, err)
	}
	defer tx.Rollback() // nothing to commit
	var a Account
	if a.BalanceCents, err = s.balance(ctx, tx, userID); err != nil {
		return Account{}, err
	}
	if a.Withdrawals, err = s.listWithdrawals(ctx, tx, userID); err != nil {
		return Account{}, err
	}
	return a, nil
}

func (s *Store) listWithdrawals(ctx context.Context, tx *sql.Tx, userID string) ([]Withdrawal, error) {
	ws, err := scanWithdrawals(tx.QueryContext(ctx, s.q.listWithdrawals, userID))
	if err != nil {
		return nil, fmt.Errorf("list withdrawals of user %s: %w", userID, err)
	}
	return ws, nil
}

// scanWithdrawals reads every row of a withdrawals query and closes it.
func scanWithdrawals(rows *sql.Rows, err error) ([]Withdrawal, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ws []Withdrawal
	for rows.Next() {
		w, err := scanWithdrawal(rows)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, rows.Err()
}

// SettleWithdrawal moves withdrawal id from one of the states in from to the
// state to, recording authsignalState, only if it belongs to userID. When to
// is completed it debits the balance in the same transaction.
//
// The state change is a single conditional UPDATE, so of any number of
// concurrent or replayed calls exactly one succeeds and the balance is
// debited exactly once; the others get ErrNotSettleable. If the balance is too
// low it returns ErrInsufficientFunds. Either error means nothing changed.
func (s *Store) SettleWithdrawal(ctx context.Context, userID, id string, from []WithdrawalState, to WithdrawalState, authsignalState string) error {
	if len(from) == 0 {
		return fmt.Errorf("settle withdrawal %s: no from states given", id)
	}
	if !to.valid() {
		return fmt.Errorf("settle withdrawal %s: unknown state %q", id, to)
	}
	args := []any{string(to), authsignalState, toDB(s.now()), id, userID}
	params := make([]string, 0, len(from)) // the placeholders of the from states
	for _, st := range from {
		if !st.valid() {
			return fmt.Errorf("settle withdrawal %s: unknown from state %q", id, st)
		}
		// completed -> completed would debit a second time.
		if st == WithdrawalCompleted && to == WithdrawalCompleted {
			return fmt.Errorf("settle withdrawal %s: cannot complete an already completed withdrawal", id)
		}
		args = append(args, string(st))
		params = append(params, s.e.param(len(args)))
	}
	settle := fmt.Sprintf(s.q.settleWithdrawal, strings.Join(params, ", "))

	// Once begun, a settlement runs to its end even if the request that asked for it is
	// gone: cancelled halfway, a commit's outcome could be lost to the caller (PostgreSQL may
	// have committed it). The timeout still bounds a database that does not answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var amount int64
		err := tx.QueryRowContext(ctx, settle, args...).Scan(&amount)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotSettleable
		}
		if err != nil {
			return fmt.Errorf("update state: %w", err)
		}
		if to != WithdrawalCompleted {
			return nil
		}
		res, err := tx.ExecContext(ctx, s.q.debit, amount, userID)
		if err != nil {
			return fmt.Errorf("debit balance: %w", err)
		}
		n, err := affected(res, "debit balance")
		if err != nil {
			return err
		}
		if n == 0 {
			// Rolling back also undoes the state change above.
			return ErrInsufficientFunds
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settle withdrawal %s to %s: %w", id, to, err)
	}
	return nil
}

// StaleWithdrawals lists, oldest first and at most limit, the withdrawals still pending
// since before pendingBefore or awaiting a challenge since before awaitingBefore: those a
// crash or a lost answer left unsettled, for the reconciler.
func (s *Store) StaleWithdrawals(ctx context.Context, pendingBefore, awaitingBefore time.Time, limit int) ([]Withdrawal, error) {
	ws, err := scanWithdrawals(s.e.reader().QueryContext(ctx, s.q.staleWithdrawals,
		string(WithdrawalPending), toDB(pendingBefore), string(WithdrawalAwaitingChallenge), toDB(awaitingBefore), limit))
	if err != nil {
		return nil, fmt.Errorf("stale withdrawals: %w", err)
	}
	return ws, nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanWithdrawal(r rowScanner) (Withdrawal, error) {
	var w Withdrawal
	var state string
	var created, updated int64
	if err := r.Scan(&w.ID, &w.UserID, &w.AmountCents, &state, &w.AuthsignalState, &w.ChallengeURL, &created, &updated); err != nil {
		return Withdrawal{}, err
	}
	w.State = WithdrawalState(state)
	w.CreatedAt, w.UpdatedAt = fromDB(created), fromDB(updated)
	return w, nil
}
