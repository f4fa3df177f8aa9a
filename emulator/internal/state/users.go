package state

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// User is a stored user.
type User struct {
	ID                  string
	Email               string
	EmailVerified       bool
	PhoneNumber         string
	PhoneNumberVerified bool
	Username            string
	DisplayName         string
	Custom              json.RawMessage // a JSON object, or nil
	Locale              string
	CreatedAt           time.Time
}

// Name is how the admin pages name the user: the email, else the phone number, else the
// username ("" for none of them).
func (u User) Name() string { return cmp.Or(u.Email, u.PhoneNumber, u.Username) }

// Enrolment is what a user's authenticators add up to, as track and getUser report it.
type Enrolment struct {
	IsEnrolled    bool
	Methods       []vocab.Method // each once, in enrolment order; never nil
	DefaultMethod vocab.Method
}

// Authenticator is a stored authenticator: an email address or phone number a code can go to.
type Authenticator struct {
	ID             string
	UserID         string
	Method         vocab.Method
	Email          string
	PhoneNumber    string
	IsDefault      bool
	CreatedAt      time.Time
	VerifiedAt     time.Time // zero: never
	LastVerifiedAt time.Time // zero: never
}

const userColumns = `user_id, email, email_verified, phone_number, phone_number_verified, username, display_name, custom, locale, created_at`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var custom string
	var created int64
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.PhoneNumber, &u.PhoneNumberVerified, &u.Username, &u.DisplayName, &custom, &u.Locale, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	if custom != "" {
		u.Custom = json.RawMessage(custom)
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

const authenticatorColumns = `authenticator_id, user_id, verification_method, email, phone_number, is_default, created_at, verified_at, last_verified_at`

func scanAuthenticator(row interface{ Scan(...any) error }) (Authenticator, error) {
	var a Authenticator
	var created int64
	var verified, lastVerified sql.NullInt64
	if err := row.Scan(&a.ID, &a.UserID, &a.Method, &a.Email, &a.PhoneNumber, &a.IsDefault, &created, &verified, &lastVerified); err != nil {
		return a, fmt.Errorf("scan authenticator: %w", err)
	}
	a.CreatedAt, a.VerifiedAt, a.LastVerifiedAt = fromMS(created), nullTime(verified), nullTime(lastVerified)
	return a, nil
}

// queryer is the database or a transaction.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// queryAll runs q and scans every row, closing the rows before it returns (one connection).
func queryAll[T any](ctx context.Context, q queryer, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func listAuthenticators(ctx context.Context, q queryer, userID string) ([]Authenticator, error) {
	auths, err := queryAll(ctx, q, func(rows *sql.Rows) (Authenticator, error) { return scanAuthenticator(rows) },
		`SELECT `+authenticatorColumns+` FROM authenticators WHERE user_id = +? ORDER BY created_at, rowid`, userID)
	if err != nil {
		return nil, fmt.Errorf("list authenticators: %w", err)
	}
	return auths, nil
}

func summarize(auths []Authenticator) Enrolment {
	s := Enrolment{IsEnrolled: len(auths) > 0, Methods: []vocab.Method{}}
	seen := map[vocab.Method]bool{}
	for _, a := range auths {
		if !seen[a.Method] {
			seen[a.Method] = true
			s.Methods = append(s.Methods, a.Method)
		}
		if a.IsDefault {
			s.DefaultMethod = a.Method
		}
	}
	if s.DefaultMethod == "" && len(auths) > 0 {
		s.DefaultMethod = auths[0].Method
	}
	return s
}

// ensureUser returns the user, created when unknown (track, challenge, claim and enrol do,
// like the real service). Read first: the user is known nearly always, and a read is cheaper
// than an insert that does nothing.
func (s *Store) ensureUser(ctx context.Context, tx *txn, userID string) (*User, error) {
	u, err := loadUser(ctx, tx, userID)
	if !errors.Is(err, errNoRow) {
		return u, err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO users(user_id, created_at) VALUES (?, ?)`, userID, ms(now)); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return &User{ID: userID, CreatedAt: fromMS(ms(now))}, nil
}

func loadUser(ctx context.Context, q queryer, userID string) (*User, error) {
	return scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
}

// User returns a user and their enrolment; nil for a user nobody has tracked or enrolled.
func (s *Store) User(ctx context.Context, userID string) (*User, Enrolment, error) {
	u, err := loadUser(ctx, s.db, userID)
	if errors.Is(err, errNoRow) {
		return nil, summarize(nil), nil
	}
	if err != nil {
		return nil, Enrolment{}, err
	}
	auths, err := listAuthenticators(ctx, s.db, userID)
	if err != nil {
		return nil, Enrolment{}, err
	}
	return u, summarize(auths), nil
}

// UserUpdate changes the fields that are set: nil leaves a field as it is, "" clears a text field.
type UserUpdate struct {
	Email, PhoneNumber, Username, DisplayName, Locale *string
	EmailVerified, PhoneNumberVerified                *bool
	Custom                                            *string      // a compact JSON object, or "" to clear
	DefaultMethod                                     vocab.Method // "" = unchanged
}

// UpdateUser applies u, creating the user when unknown (PATCH upserts, as the Go and
// Python SDKs' integration tests show). A new address the caller says it verified is
// copied onto the user's authenticators of that kind ("This will result in any email OTP
// or magic link authenticators being updated", docs: api-reference/server-api/update-user).
func (s *Store) UpdateUser(ctx context.Context, userID string, u UserUpdate) (User, error) {
	var cols []string
	var args []any
	set := func(col string, v any) { cols, args = append(cols, col+" = ?"), append(args, v) }
	for _, f := range []struct {
		col string
		v   *string
	}{{"email", u.Email}, {"phone_number", u.PhoneNumber}, {"username", u.Username}, {"display_name", u.DisplayName}, {"locale", u.Locale}, {"custom", u.Custom}} {
		if f.v != nil {
			set(f.col, *f.v)
		}
	}
	if u.EmailVerified != nil {
		set("email_verified", *u.EmailVerified)
	}
	if u.PhoneNumberVerified != nil {
		set("phone_number_verified", *u.PhoneNumberVerified)
	}
	syncEmail, syncPhone := "", ""
	if u.Email != nil && *u.Email != "" && u.EmailVerified != nil && *u.EmailVerified {
		syncEmail = *u.Email
	}
	// Only a number a code can be sent to becomes an SMS or WhatsApp authenticator's.
	if u.PhoneNumber != nil && vocab.ValidatePhone(*u.PhoneNumber) == nil && u.PhoneNumberVerified != nil && *u.PhoneNumberVerified {
		syncPhone = *u.PhoneNumber
	}
	var out *User
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := s.ensureUser(ctx, tx, userID); err != nil {
			return err
		}
		if len(cols) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET `+strings.Join(cols, ", ")+` WHERE user_id = ?`, append(args, userID)...); err != nil {
				return fmt.Errorf("update user: %w", err)
			}
		}
		// Only an update that can change authenticators needs them listed, before and after.
		var before []Authenticator
		var err error
		if syncEmail != "" || syncPhone != "" || u.DefaultMethod != "" {
			if before, err = listAuthenticators(ctx, tx, userID); err != nil {
				return err
			}
		}
		if syncEmail != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET email = ? WHERE user_id = ? AND verification_method = ?`, syncEmail, userID, vocab.MethodEmailOTP); err != nil {
				return fmt.Errorf("update email authenticators: %w", err)
			}
		}
		if syncPhone != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET phone_number = ? WHERE user_id = ? AND verification_method IN (?, ?)`, syncPhone, userID, vocab.MethodSMS, vocab.MethodWhatsApp); err != nil {
				return fmt.Errorf("update phone authenticators: %w", err)
			}
		}
		if u.DefaultMethod != "" {
			res, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = (authenticator_id =
				(SELECT authenticator_id FROM authenticators WHERE user_id = +?1 AND verification_method = +?2 ORDER BY created_at, rowid LIMIT 1))
				WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM authenticators WHERE user_id = ?1 AND verification_method = ?2)`, userID, u.DefaultMethod)
			if err != nil {
				return fmt.Errorf("set default authenticator: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return refuse(Invalid, "defaultVerificationMethod %s: the user has no authenticator of that kind.", u.DefaultMethod)
			}
		}
		if err := s.announceUpdatedAuthenticators(ctx, tx, before); err != nil {
			return err
		}
		out, err = loadUser(ctx, tx, userID)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return *out, nil
}

// announceUpdatedAuthenticators stages authenticator.updated for each of before's
// authenticators whose address or default flag has changed since.
func (s *Store) announceUpdatedAuthenticators(ctx context.Context, tx *txn, before []Authenticator) error {
	if len(before) == 0 {
		return nil
	}
	after, err := listAuthenticators(ctx, tx, before[0].UserID)
	if err != nil {
		return err
	}
	was := map[string]Authenticator{}
	for _, a := range before {
		was[a.ID] = a
	}
	for _, a := range after {
		if b, ok := was[a.ID]; ok && (b.Email != a.Email || b.PhoneNumber != a.PhoneNumber || b.IsDefault != a.IsDefault) {
			tx.events = append(tx.events, authenticatorUpdated(a, s.now()))
		}
	}
	return nil
}

// DeleteUser deletes a user's data and authenticators; their actions stay unless
// withActions ("If true, the user's action data will also be deleted", docs:
// api-reference/server-api/delete-user). A user with nothing stored is no error, as
// User answers any user id.
func (s *Store) DeleteUser(ctx context.Context, userID string, withActions bool) error {
	return s.inTx(ctx, func(tx *txn) error {
		if err := s.announceDeletedAuthenticators(ctx, tx, userID); err != nil {
			return err
		}
		// Challenges are not keyed by a foreign key (anonymous ones have no user); drop the user's.
		for _, q := range []string{
			`DELETE FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1`,
			`DELETE FROM ceremonies WHERE user_id = ?1`,
			`DELETE FROM authenticators WHERE user_id = ?1`,
			`DELETE FROM seen_devices WHERE user_id = ?1`,
			`DELETE FROM refresh_tokens WHERE session_id IN (SELECT session_id FROM sessions WHERE user_id = ?1)`,
			`DELETE FROM sessions WHERE user_id = ?1`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return fmt.Errorf("delete user data: %w", err)
			}
		}
		if withActions {
			if _, err := tx.ExecContext(ctx, `DELETE FROM actions WHERE user_id = ?`, userID); err != nil {
				return fmt.Errorf("delete user actions: %w", err)
			}
		}
		// The row itself goes unless actions keep it (they reference it): then it is emptied.
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE user_id = ?1 AND NOT EXISTS (SELECT 1 FROM actions WHERE user_id = ?1)`, userID); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = '', email_verified = 0, phone_number = '', phone_number_verified = 0,
			username = '', display_name = '', custom = '', locale = '' WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("clear user: %w", err)
		}
		return nil
	})
}

// UserQuery filters QueryUsers: every non-empty field must match.
type UserQuery struct {
	UserID, Email, PhoneNumber, Username string
	After                                string // the previous page's last user id
	Limit                                int
}

// UserSummary is one user of QueryUsers, with their enrolment.
type UserSummary struct {
	User
	Enrolment
}

// QueryUsers returns the matching users in user id order, at most q.Limit, and the last
// one's id when more follow.
func (s *Store) QueryUsers(ctx context.Context, q UserQuery) ([]UserSummary, string, error) {
	where := []string{"1 = 1"}
	var args []any
	for _, f := range []struct{ cond, v string }{{"user_id = +?", q.UserID}, {"email = +?", q.Email}, {"phone_number = +?", q.PhoneNumber},
		{"username = +?", q.Username}, {"user_id > +?", q.After}} {
		if f.v != "" {
			where, args = append(where, f.cond), append(args, f.v)
		}
	}
	users, err := queryAll(ctx, s.db, func(rows *sql.Rows) (*User, error) { return scanUser(rows) },
		`SELECT `+userColumns+` FROM users WHERE `+strings.Join(where, " AND ")+` ORDER BY user_id LIMIT +?`, append(args, q.Limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("query users: %w", err)
	}
	next := ""
	if len(users) > q.Limit {
		users = users[:q.Limit]
		next = users[q.Limit-1].ID
	}
	out := make([]UserSummary, 0, len(users))
	for _, u := range users {
		auths, err := listAuthenticators(ctx, s.db, u.ID)
		if err != nil {
			return nil, "", err
		}
		out = append(out, UserSummary{User: *u, Enrolment: summarize(auths)})
	}
	return out, next, nil
}

// Authenticators lists a user's authenticators, oldest first; none for an unknown user.
func (s *Store) Authenticators(ctx context.Context, userID string) ([]Authenticator, error) {
	return listAuthenticators(ctx, s.db, userID)
}

// Enroll enrols an email or phone authenticator as verified (the server vouches for it),
// creating the user when unknown and filling the user's contact when it has none.
func (s *Store) Enroll(ctx context.Context, userID string, m vocab.Method, email, phone string, isDefault bool) (Authenticator, error) {
	var a Authenticator
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := s.ensureUser(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		if a, err = s.enrollAuthenticator(ctx, tx, userID, "", m, email, phone, isDefault); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified = 1 WHERE user_id = ? AND email = '' AND ? <> ''`, email, userID, email); err != nil {
			return fmt.Errorf("set user email: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET phone_number = ?, phone_number_verified = 1 WHERE user_id = ? AND phone_number = '' AND ? <> ''`, phone, userID, phone); err != nil {
			return fmt.Errorf("set user phone: %w", err)
		}
		return nil
	})
	return a, err
}

// enrollAuthenticator adds a verified authenticator unless the same method and recipient
// is already enrolled (then it returns that one). The first one becomes the default. id
// is the new one's id; "" makes a fresh one.
func (s *Store) enrollAuthenticator(ctx context.Context, tx *txn, userID, id string, m vocab.Method, email, phone string, isDefault bool) (Authenticator, error) {
	existing, err := listAuthenticators(ctx, tx, userID)
	if err != nil {
		return Authenticator{}, err
	}
	for _, a := range existing {
		if a.Method == m && a.Email == email && a.PhoneNumber == phone {
			return a, nil
		}
	}
	if id == "" {
		if id, err = s.random.UUID(); err != nil {
			return Authenticator{}, err
		}
	}
	now := fromMS(ms(s.now()))
	if len(existing) == 0 {
		isDefault = true
	}
	if isDefault {
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = 0 WHERE user_id = ?`, userID); err != nil {
			return Authenticator{}, fmt.Errorf("reset default authenticator: %w", err)
		}
	}
	a := Authenticator{ID: id, UserID: userID, Method: m, Email: email, PhoneNumber: phone, IsDefault: isDefault, CreatedAt: now, VerifiedAt: now}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authenticators(authenticator_id, user_id, verification_method, email, phone_number, is_default, created_at, verified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.UserID, a.Method, a.Email, a.PhoneNumber, a.IsDefault, ms(now), ms(now)); err != nil {
		return Authenticator{}, fmt.Errorf("insert authenticator: %w", err)
	}
	tx.events = append(tx.events, authenticatorCreated(a))
	return a, nil
}

// DeleteAuthenticator deletes one of a user's authenticators; when it was the default,
// the oldest remaining one becomes the default, so one always exists while any do.
func (s *Store) DeleteAuthenticator(ctx context.Context, userID, authenticatorID string) error {
	return s.inTx(ctx, func(tx *txn) error {
		a, err := scanAuthenticator(tx.QueryRowContext(ctx, `SELECT `+authenticatorColumns+` FROM authenticators WHERE authenticator_id = ? AND user_id = ?`, authenticatorID, userID))
		if errors.Is(err, sql.ErrNoRows) {
			return refuse(NotFound, "Authenticator %q of user %q was not found.", authenticatorID, userID)
		}
		if err != nil {
			return fmt.Errorf("find authenticator: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM authenticators WHERE authenticator_id = ?`, authenticatorID); err != nil {
			return fmt.Errorf("delete authenticator: %w", err)
		}
		tx.events = append(tx.events, authenticatorDeleted(a, s.now()))
		if a.IsDefault {
			if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = 1 WHERE authenticator_id =
				(SELECT authenticator_id FROM authenticators WHERE user_id = +? ORDER BY created_at, rowid LIMIT 1)`, userID); err != nil {
				return fmt.Errorf("promote default authenticator: %w", err)
			}
		}
		return nil
	})
}

// announceDeletedAuthenticators stages authenticator.deleted for each of the user's
// authenticators, which the caller is about to delete with the user.
func (s *Store) announceDeletedAuthenticators(ctx context.Context, tx *txn, userID string) error {
	auths, err := listAuthenticators(ctx, tx, userID)
	if err != nil {
		return err
	}
	for _, a := range auths {
		tx.events = append(tx.events, authenticatorDeleted(a, s.now()))
	}
	return nil
}

// DeleteUserData deletes one user with everything of theirs: authenticators, actions,
// challenges, seen devices, and the outbox messages and send counts of their addresses.
// Addresses another user also has keep theirs, so parallel test runs can clean up after
// themselves instead of resetting everything.
func (s *Store) DeleteUserData(ctx context.Context, userID string) error {
	return s.inTx(ctx, func(tx *txn) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE user_id = ?`, userID).Scan(&n); err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if n == 0 {
			return refuse(NotFound, "User %q was not found.", userID)
		}
		recipients, err := queryAll(ctx, tx, func(rows *sql.Rows) (string, error) {
			var r string
			return r, rows.Scan(&r)
		}, `
			WITH mine(r) AS (
				SELECT email FROM users WHERE user_id = ?1 UNION SELECT phone_number FROM users WHERE user_id = ?1
				UNION SELECT email FROM authenticators WHERE user_id = ?1 UNION SELECT phone_number FROM authenticators WHERE user_id = ?1
				UNION SELECT email FROM actions WHERE user_id = ?1 UNION SELECT phone_number FROM actions WHERE user_id = ?1
				UNION SELECT email FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1
				UNION SELECT phone_number FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1),
			theirs(r) AS (
				SELECT email FROM users WHERE user_id <> ?1 UNION SELECT phone_number FROM users WHERE user_id <> ?1
				UNION SELECT email FROM authenticators WHERE user_id <> ?1 UNION SELECT phone_number FROM authenticators WHERE user_id <> ?1
				UNION SELECT email FROM challenges WHERE user_id NOT IN ('', ?1) OR claimed_user_id NOT IN ('', ?1)
				UNION SELECT phone_number FROM challenges WHERE user_id NOT IN ('', ?1) OR claimed_user_id NOT IN ('', ?1))
			SELECT r FROM mine WHERE r <> '' EXCEPT SELECT r FROM theirs`, userID)
		if err != nil {
			return fmt.Errorf("find user recipients: %w", err)
		}
		for _, rcpt := range recipients {
			for _, q := range []string{
				`DELETE FROM messages WHERE recipient = ?1`,
				`DELETE FROM sends WHERE recipient = ?1`,
				// Anonymous, unclaimed challenges to this user's own addresses (abandoned sign-ins).
				`DELETE FROM challenges WHERE user_id = '' AND claimed_user_id = '' AND (email = ?1 OR phone_number = ?1)`,
			} {
				if _, err := tx.ExecContext(ctx, q, rcpt); err != nil {
					return fmt.Errorf("delete user messages: %w", err)
				}
			}
		}
		if err := s.announceDeletedAuthenticators(ctx, tx, userID); err != nil {
			return err
		}
		// Explicit deletes, children first, rather than relying on ON DELETE CASCADE.
		for _, q := range []string{
			`DELETE FROM seen_devices WHERE user_id = ?1`,
			`DELETE FROM refresh_tokens WHERE session_id IN (SELECT session_id FROM sessions WHERE user_id = ?1)`,
			`DELETE FROM sessions WHERE user_id = ?1`,
			`DELETE FROM actions WHERE user_id = ?1`,
			`DELETE FROM authenticators WHERE user_id = ?1`,
			`DELETE FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1`,
			`DELETE FROM ceremonies WHERE user_id = ?1`,
			`DELETE FROM users WHERE user_id = ?1`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return fmt.Errorf("delete user data: %w", err)
			}
		}
		return nil
	})
}

// setUserContactVerified records a verified email or phone number on the user.
func setUserContactVerified(ctx context.Context, tx *txn, userID, email, phone string) error {
	if email != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified = 1 WHERE user_id = ?`, email, userID); err != nil {
			return fmt.Errorf("set user email: %w", err)
		}
	}
	if phone != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET phone_number = ?, phone_number_verified = 1 WHERE user_id = ?`, phone, userID); err != nil {
			return fmt.Errorf("set user phone: %w", err)
		}
	}
	return nil
}
