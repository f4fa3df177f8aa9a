package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// Reconciler settles the withdrawals that a crash, a timeout or an abandoned challenge left
// pending or awaiting a challenge, as Authsignal says their action ended. Run it at start
// and then every few minutes (main does).
type Reconciler struct {
	Store      *store.Store
	Authsignal Authsignal
	Logger     *slog.Logger
	Now        func() time.Time
	// PendingAge: a withdrawal pending for longer lost its track answer (default 1 minute).
	PendingAge time.Duration
	// ChallengeAge: a withdrawal awaiting its challenge for longer has outlived the
	// challenge, whose token lives 10 minutes (default 15 minutes).
	ChallengeAge time.Duration
}

// reconcileBatch bounds one pass; the next pass takes the rest.
const reconcileBatch = 100

// Run reconciles now and then every interval, until ctx ends.
func (r *Reconciler) Run(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.log().Warn("reconcile withdrawals", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Once settles one batch of stale withdrawals and reports how many it settled. One that
// Authsignal cannot be asked about now is left for the next pass.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	now := r.now()
	stale, err := r.Store.StaleWithdrawals(ctx, now.Add(-r.pendingAge()), now.Add(-r.challengeAge()), reconcileBatch)
	if err != nil {
		return 0, err
	}
	settled := 0
	var errs []error
	for _, w := range stale {
		to, state, err := r.outcome(ctx, w)
		if err != nil {
			errs = append(errs, fmt.Errorf("withdrawal %s: %w", w.ID, err))
			continue
		}
		from := []store.WithdrawalState{store.WithdrawalPending, store.WithdrawalAwaitingChallenge}
		err = r.Store.SettleWithdrawal(ctx, w.UserID, w.ID, from, to, state)
		if errors.Is(err, store.ErrInsufficientFunds) {
			to, err = store.WithdrawalFailed, r.Store.SettleWithdrawal(ctx, w.UserID, w.ID, from, store.WithdrawalFailed, state)
		}
		if errors.Is(err, store.ErrNotSettleable) {
			continue // settled meanwhile (a late callback, a Cancel)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		settled++
		r.log().Info("withdrawal reconciled", "withdrawal_id", w.ID, "user_id", w.UserID, "was", w.State, "now", to, "authsignal_state", state)
	}
	return settled, errors.Join(errs...)
}

// outcome is where w ends, by its action's state on Authsignal.
func (r *Reconciler) outcome(ctx context.Context, w store.Withdrawal) (store.WithdrawalState, string, error) {
	action, err := r.Authsignal.GetAction(ctx, w.UserID, WithdrawalAction, w.ID)
	if authsignal.IsStatus(err, http.StatusNotFound) {
		return store.WithdrawalFailed, "", nil // Authsignal never heard of it: nothing was decided
	}
	if err != nil {
		return "", "", fmt.Errorf("get action: %w", err)
	}
	switch action.State {
	case authsignal.StateChallengeSucceeded, authsignal.StateReviewSucceeded:
		return store.WithdrawalCompleted, action.State, nil
	case authsignal.StateAllow:
		// An ALLOW for a user with no authenticator may be one the rules wanted to
		// challenge; the action does not say, the user's enrolment does.
		user, err := r.Authsignal.GetUser(ctx, w.UserID)
		if err != nil {
			return "", "", fmt.Errorf("get user: %w", err)
		}
		if !user.IsEnrolled {
			return store.WithdrawalFailed, action.State, nil
		}
		return store.WithdrawalCompleted, action.State, nil
	case authsignal.StateBlock:
		return store.WithdrawalBlocked, action.State, nil
	case authsignal.StateReviewRequired:
		return store.WithdrawalHeld, action.State, nil
	default: // CHALLENGE_REQUIRED past the challenge's life, CHALLENGE_FAILED, REVIEW_FAILED
		return store.WithdrawalFailed, action.State, nil
	}
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Reconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Reconciler) pendingAge() time.Duration {
	if r.PendingAge <= 0 {
		return time.Minute
	}
	return r.PendingAge
}

func (r *Reconciler) challengeAge() time.Duration {
	if r.ChallengeAge <= 0 {
		return 15 * time.Minute
	}
	return r.ChallengeAge
}
