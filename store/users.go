package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is a person who signed in with a verified email or phone number.
// Exactly one of Email and Phone is usually set. LastSignInAt is zero and
// LastSignInMethod empty until the first TouchSignIn.
type User struct {
	ID, Email, Phone        string
	LastSignInMethod        string // "email", "sms" or "whatsapp"
	CreatedAt, LastSignInAt time.Time
}

// NormalizeEmail is the form emails are stored and looked up in: trimmed and
// lower-cased, so "Ada@Example.com " and "ada@example.com" are one user.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// FindOrCreateUserByEmail returns the user with this email (compared after
// NormalizeEmail), creating it with a demo account if it does not exist.
// created reports whether this call created the user. Safe to call
// concurrently: exactly one user and one account are ever created per email.
func (s *Store) FindOrCreateUserByEmail(ctx context.Context, email string) (User, bool, error) {
	email = NormalizeEmail(email)
	if email == "" {
		return User{}, false, errors.New("find or create user by email: empty email")
	}
	u, created, err := s.findOrCreateUser(ctx, "email", email)
	if err != nil {
		return User{}, false, fmt.Errorf("find or create user by email: %w", err)
	}
	return u, created, nil
}

// FindOrCreateUserByPhone is FindOrCreateUserByEmail for an E.164 phone number
// (validated by the caller; the store only trims spaces).
func (s *Store) FindOrCreateUserByPhone(ctx context.Context, phone string) (User, bool, error) {
	phone = strings.TrimSpace(phone)
	if phone == "" {
		return User{}, false, errors.New("find or create user by phone: empty phone")
	}
	u, created, err := s.findOrCreateUser(ctx, "phone", phone)
	if err != nil {
		return User{}, false, fmt.Errorf("find or create user by phone: %w", err)
	}
	return u, created, nil
}

// findOrCreateUser inserts the user unless the unique column already holds value, then
// reads it back, in one transaction; the account is created only by the insert that
// actually happened. Of two concurrent calls, SQLite runs one after the other; in
// PostgreSQL the second insert waits for the first's row and, once it commits, does
// nothing, and the read that follows (a new statement, a new snapshot) finds it.
func (s *Store) findOrCreateUser(ctx context.Context, column, value string) (User, bool, error) {
	// column is one of two constants chosen above, never user input.
	if column != "email" && column != "phone" {
		return User{}, false, fmt.Errorf("unknown user column %q", column)
	}
	// Generate the id before the transaction: reading randomness while holding
	// the write lock would only lengthen it.
	id, err := NewID(s.rand)
	if err != nil {
		return User{}, false, err
	}
	var u User
	var created bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, fmt.Sprintf(s.q.insertUser, column), id, value, toDB(s.now()))
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		n, err := affected(res, "insert user")
		if err != nil {
			return err
		}
		if n == 1 {
			created = true
			if _, err := tx.ExecContext(ctx, s.q.insertAccount, id, DemoBalanceCents); err != nil {
				return fmt.Errorf("insert account: %w", err)
			}
		}
		u, err = scanUser(tx.QueryRowContext(ctx, fmt.Sprintf(s.q.userBy, column), value))
		if err != nil {
			return fmt.Errorf("read user: %w", err)
		}
		return nil
	})
	if err != nil {
		return User{}, false, err
	}
	return u, created, nil
}

// GetUser returns the user with this id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.e.reader().QueryRowContext(ctx, fmt.Sprintf(s.q.userBy, "id"), id))
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

// TouchSignIn records now as the user's last sign-in time, and how they signed in.
func (s *Store) TouchSignIn(ctx context.Context, userID, method string) error {
	res, err := s.e.writer().ExecContext(ctx, s.q.touchSignIn, toDB(s.now()), method, userID)
	if err != nil {
		return fmt.Errorf("touch sign-in of user %s: %w", userID, err)
	}
	return rowsOrNotFound(res, "touch sign-in of user "+userID)
}

// Balance returns the user's balance in cents, or ErrNotFound.
func (s *Store) Balance(ctx context.Context, userID string) (int64, error) {
	return s.balance(ctx, s.e.reader(), userID)
}

// rowQueryer is *sql.DB or *sql.Tx.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) balance(ctx context.Context, q rowQueryer, userID string) (int64, error) {
	var cents int64
	err := q.QueryRowContext(ctx, s.q.balance, userID).Scan(&cents)
	if err != nil {
		return 0, fmt.Errorf("balance of user %s: %w", userID, notFound(err))
	}
	return cents, nil
}

const userColumns = `id, email, phone, last_sign_in_method, created_at, last_sign_in_at`

func scanUser(row *sql.Row) (User, error) {
	var u User
	var email, phone sql.NullString
	var created int64
	var lastSignIn sql.NullInt64
	if err := row.Scan(&u.ID, &email, &phone, &u.LastSignInMethod, &created, &lastSignIn); err != nil {
		return User{}, notFound(err)
	}
	u.Email, u.Phone = email.String, phone.String
	u.CreatedAt = fromDB(created)
	u.LastSignInAt = fromNullDB(lastSignIn)
	return u, nil
}

// ConsumeAction records that the app acted on an Authsignal action's token and reports
// whether this was the first time: of two concurrent calls, exactly one gets true.
func (s *Store) ConsumeAction(ctx context.Context, actionCode, idempotencyKey string) (bool, error) {
	if actionCode == "" || idempotencyKey == "" {
		return false, fmt.Errorf("consume action: empty action code or idempotency key")
	}
	res, err := s.e.writer().ExecContext(ctx, s.q.consumeAction, actionCode, idempotencyKey, toDB(s.now()))
	if err != nil {
		return false, fmt.Errorf("consume action %s: %w", actionCode, err)
	}
	n, err := affected(res, "consume action "+actionCode)
	return n == 1, err
}

// ErrAddressTaken is an email or phone number another user signs in with.
var ErrAddressTaken = errors.New("address belongs to another user")

// ErrLastAddress is removing the only email or phone number a user has: every user keeps
// one to sign in with a code.
var ErrLastAddress = errors.New("the user's only address")

// SetUserAddress gives the user an email (column "email") or phone number ("phone") to
// sign in with, replacing the one they had; ErrAddressTaken when another user has it.
// The column's unique index decides, in one statement, so two users claiming one address
// at once cannot both get it.
func (s *Store) SetUserAddress(ctx context.Context, userID, column, value string) error {
	if column != "email" && column != "phone" {
		return fmt.Errorf("unknown user column %q", column)
	}
	if column == "email" {
		value = NormalizeEmail(value)
	}
	res, err := s.e.writer().ExecContext(ctx, fmt.Sprintf(s.q.setAddress, column), value, userID)
	if s.e.isUniqueViolation(err) {
		return fmt.Errorf("set user %s: %w", column, ErrAddressTaken)
	}
	if err != nil {
		return fmt.Errorf("set user %s: %w", column, err)
	}
	return rowsOrNotFound(res, "set address of user "+userID)
}

// ClearUserAddress removes the user's email or phone number; ErrLastAddress when it is
// their only one.
func (s *Store) ClearUserAddress(ctx context.Context, userID, column string) error {
	other := map[string]string{"email": "phone", "phone": "email"}[column]
	if other == "" {
		return fmt.Errorf("unknown user column %q", column)
	}
	res, err := s.e.writer().ExecContext(ctx, fmt.Sprintf(s.q.clearAddress, column, other), userID)
	if err != nil {
		return fmt.Errorf("clear user %s: %w", column, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if _, err := s.GetUser(ctx, userID); err != nil {
			return err
		}
		return ErrLastAddress
	}
	return nil
}

// FindUserByEmail returns the user who signs in with email, or ErrNotFound; it creates
// nobody (a sign-in by link goes only to a known address).
func (s *Store) FindUserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(s.e.reader().QueryRowContext(ctx, fmt.Sprintf(s.q.userBy, "email"), NormalizeEmail(email)))
	if err != nil {
		return User{}, fmt.Errorf("find user by email: %w", err)
	}
	return u, nil
}
