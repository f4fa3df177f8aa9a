package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PendingSignIn ties a sign-in in progress (identified by ID, which the app
// puts in a short-lived signed cookie) to its Authsignal challenge, so the
// challenge id never comes from the browser. Method is "email", "sms" or
// "whatsapp"; Recipient is the email or phone number the code was sent to. For a
// sign-in by link, Method is "link" and ChallengeID the action's token ("" when
// the address gets no link).
type PendingSignIn struct {
	ID, ChallengeID, Method, Recipient string
	WrongAttempts                      int
	CreatedAt, ExpiresAt               time.Time
}

// CreatePendingSignIn stores a new pending sign-in. ID, Method, Recipient and ExpiresAt
// are required, and ChallengeID except for a sign-in by link ("link") to an address that
// gets none; a zero CreatedAt means now.
func (s *Store) CreatePendingSignIn(ctx context.Context, p PendingSignIn) error {
	if p.ID == "" || (p.ChallengeID == "" && p.Method != "link") || p.Method == "" || p.Recipient == "" || p.ExpiresAt.IsZero() {
		return errors.New("create pending sign-in: id, challenge id, method, recipient and expiry are required")
	}
	if p.WrongAttempts < 0 {
		return errors.New("create pending sign-in: negative wrong attempts")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now()
	}
	_, err := s.e.writer().ExecContext(ctx, s.q.insertPending, p.ID, p.ChallengeID, p.Method, p.Recipient, p.WrongAttempts, toDB(p.CreatedAt), toDB(p.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create pending sign-in %s: %w", p.ID, err)
	}
	return nil
}

// GetPendingSignIn returns the pending sign-in with this id, or ErrNotFound.
// Expiry is the caller's to check (ExpiresAt), so it can say "expired".
func (s *Store) GetPendingSignIn(ctx context.Context, id string) (PendingSignIn, error) {
	var p PendingSignIn
	var created, expires int64
	err := s.e.reader().QueryRowContext(ctx, s.q.getPending, id).Scan(&p.ID, &p.ChallengeID, &p.Method, &p.Recipient, &p.WrongAttempts, &created, &expires)
	if err != nil {
		return PendingSignIn{}, fmt.Errorf("get pending sign-in %s: %w", id, notFound(err))
	}
	p.CreatedAt, p.ExpiresAt = fromDB(created), fromDB(expires)
	return p, nil
}

// UpdatePendingSignInChallenge points the pending sign-in at a (new or the
// same) challenge after a resend, with a new expiry, and resets the wrong
// attempts.
func (s *Store) UpdatePendingSignInChallenge(ctx context.Context, id, challengeID string, expiresAt time.Time) error {
	if challengeID == "" || expiresAt.IsZero() {
		return errors.New("update pending sign-in: challenge id and expiry are required")
	}
	res, err := s.e.writer().ExecContext(ctx, s.q.updatePending, challengeID, toDB(expiresAt), id)
	if err != nil {
		return fmt.Errorf("update pending sign-in %s: %w", id, err)
	}
	return rowsOrNotFound(res, "update pending sign-in "+id)
}

// RecordWrongAttempt adds one wrong code attempt and returns the new count.
// The increment and the read are one statement, so concurrent attempts are
// each counted.
func (s *Store) RecordWrongAttempt(ctx context.Context, id string) (int, error) {
	var n int
	err := s.e.writer().QueryRowContext(ctx, s.q.wrongAttempt, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("record wrong attempt on pending sign-in %s: %w", id, notFound(err))
	}
	return n, nil
}

// DeletePendingSignIn removes the pending sign-in; deleting one that does not
// exist (already used) succeeds.
func (s *Store) DeletePendingSignIn(ctx context.Context, id string) error {
	if _, err := s.e.writer().ExecContext(ctx, s.q.deletePending, id); err != nil {
		return fmt.Errorf("delete pending sign-in %s: %w", id, err)
	}
	return nil
}
