package state

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"example.com/passwordless/emulator/internal/vocab"
)

// The admin pages' reads: counts and bounded lists, newest first unless said otherwise.

// Counts are how many of each kind of thing the state holds.
type Counts struct {
	Users, Actions, Reviews, Challenges int // Reviews: actions waiting for review
}

// Counts counts users, actions, actions waiting for review, and challenges.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM actions),
		(SELECT COUNT(*) FROM actions WHERE `+isReview+`), (SELECT COUNT(*) FROM challenges)`).
		Scan(&c.Users, &c.Actions, &c.Reviews, &c.Challenges)
	if err != nil {
		return Counts{}, fmt.Errorf("count: %w", err)
	}
	return c, nil
}

// isReview selects the actions awaiting review. It names the state literally, as the
// partial index actions_review does, so that SQLite uses that index.
const isReview = `state = '` + string(vocab.StateReviewRequired) + `'`

// UserWithAuthenticators is a user as the admin pages list them.
type UserWithAuthenticators struct {
	User
	Authenticators []Authenticator
}

// ListUsers returns the newest users (just userID's when it is not "") with their
// authenticators, at most limit.
func (s *Store) ListUsers(ctx context.Context, userID string, limit int) ([]UserWithAuthenticators, error) {
	where, args := "1 = 1", []any{}
	if userID != "" {
		where, args = "user_id = +?", []any{userID}
	}
	users, err := queryAll(ctx, s.db, func(rows *sql.Rows) (*User, error) { return scanUser(rows) },
		`SELECT `+userColumns+` FROM users WHERE `+where+` ORDER BY created_at DESC, user_id LIMIT +?`, append(args, limit)...)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	// The same bounded user set, as a subquery: one query for all their authenticators.
	auths, err := queryAll(ctx, s.db, func(rows *sql.Rows) (Authenticator, error) { return scanAuthenticator(rows) },
		`SELECT `+authenticatorColumns+` FROM authenticators WHERE user_id IN (SELECT user_id FROM users WHERE `+where+
			` ORDER BY created_at DESC, user_id LIMIT +?) ORDER BY created_at, rowid`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list authenticators: %w", err)
	}
	out := make([]UserWithAuthenticators, len(users))
	byUser := map[string]int{}
	for i, u := range users {
		out[i].User, byUser[u.ID] = *u, i
	}
	for _, a := range auths {
		if i, ok := byUser[a.UserID]; ok {
			out[i].Authenticators = append(out[i].Authenticators, a)
		}
	}
	return out, nil
}

// ActionList selects actions for the admin pages: every set field must match.
type ActionList struct {
	UserID      string
	State       vocab.State
	OldestFirst bool // a queue (the reviews) rather than a log
	Limit       int
}

// ListActions returns the selected actions, at most l.Limit, and how many there are.
func (s *Store) ListActions(ctx context.Context, l ActionList) ([]Action, int, error) {
	where, args := "1 = 1", []any{}
	if l.UserID != "" {
		where, args = where+" AND user_id = +?", append(args, l.UserID)
	}
	switch l.State {
	case "":
	case vocab.StateReviewRequired:
		where += " AND " + isReview // the review queue's partial index
	default:
		where, args = where+" AND state = +?", append(args, l.State)
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM actions WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count actions: %w", err)
	}
	order := "created_at DESC, rowid DESC"
	if l.OldestFirst {
		order = "created_at, rowid"
	}
	list, err := queryAll(ctx, s.db, func(rows *sql.Rows) (Action, error) {
		a, err := scanAction(rows)
		if err != nil {
			return Action{}, err
		}
		return *a, nil
	}, `SELECT `+actionColumns+` FROM actions WHERE `+where+` ORDER BY `+order+` LIMIT +?`, append(args, l.Limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list actions: %w", err)
	}
	return list, total, nil
}

// ListChallenges returns the newest challenges (of userID, made for or claimed by them,
// when it is not ""), at most limit, and how many there are.
func (s *Store) ListChallenges(ctx context.Context, userID string, limit int) ([]Challenge, int, error) {
	where, args := "1 = 1", []any{}
	if userID != "" {
		where, args = "user_id = +? OR claimed_user_id = +?", []any{userID, userID}
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM challenges WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count challenges: %w", err)
	}
	list, err := queryAll(ctx, s.db, func(rows *sql.Rows) (Challenge, error) {
		c, err := scanChallenge(rows)
		if err != nil {
			return Challenge{}, err
		}
		return *c, nil
	}, `SELECT `+challengeColumns+` FROM challenges WHERE `+where+` ORDER BY created_at DESC, rowid DESC LIMIT +?`, append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list challenges: %w", err)
	}
	return list, total, nil
}

// UserNames returns how the admin pages name each of the given users (User.Name); users
// with no name (or unknown) are left out.
func (s *Store) UserNames(ctx context.Context, userIDs []string) (map[string]string, error) {
	names := map[string]string{}
	if len(userIDs) == 0 {
		return names, nil
	}
	marks, args := inList(userIDs)
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, email, phone_number, username FROM users WHERE user_id IN (`+marks+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("name users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Email, &u.PhoneNumber, &u.Username); err != nil {
			return nil, fmt.Errorf("name users: %w", err)
		}
		if name := u.Name(); name != "" {
			names[u.ID] = name
		}
	}
	return names, rows.Err()
}

// inList is the "?,?,…" of an IN (…) over values, with its arguments.
func inList(values []string) (string, []any) {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?,", len(values)), ","), args
}
