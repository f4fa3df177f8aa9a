package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ensureUser creates the user when unknown (track, challenge, claim and enrol do, like the real service).
func (e *Emulator) ensureUser(ctx context.Context, tx *txn, userID string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO users(user_id, created_at) VALUES (?, ?) ON CONFLICT(user_id) DO NOTHING`, userID, ms(e.now())); err != nil {
		return fmt.Errorf("ensure user: %w", err)
	}
	return nil
}

func userExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, userID string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE user_id = ?`, userID).Scan(&n); err != nil {
		return false, fmt.Errorf("find user: %w", err)
	}
	return n > 0, nil
}

// setUserContactVerified records a verified email or phone number on the user.
func (e *Emulator) setUserContactVerified(ctx context.Context, tx *txn, userID, email, phone string) error {
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

// authenticatorRow is a stored authenticator.
type authenticatorRow struct {
	ID, UserID, Method, Email, PhoneNumber string
	IsDefault                              bool
	CreatedAt                              int64
	VerifiedAt, LastVerifiedAt             sql.NullInt64
}

// userAuthenticator is the API's UserAuthenticator shape.
type userAuthenticator struct {
	UserAuthenticatorID string `json:"userAuthenticatorId"`
	UserID              string `json:"userId"`
	VerificationMethod  string `json:"verificationMethod"`
	Email               string `json:"email,omitempty"`
	PhoneNumber         string `json:"phoneNumber,omitempty"`
	CreatedAt           string `json:"createdAt"`
	VerifiedAt          string `json:"verifiedAt,omitempty"`
	LastVerifiedAt      string `json:"lastVerifiedAt,omitempty"`
	IsDefault           bool   `json:"isDefault"`
}

func (a authenticatorRow) api() userAuthenticator {
	return userAuthenticator{UserAuthenticatorID: a.ID, UserID: a.UserID, VerificationMethod: a.Method, Email: a.Email, PhoneNumber: a.PhoneNumber,
		CreatedAt: isoTime(fromMS(a.CreatedAt)), VerifiedAt: nullableMS(a.VerifiedAt), LastVerifiedAt: nullableMS(a.LastVerifiedAt), IsDefault: a.IsDefault}
}

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func listAuthenticators(ctx context.Context, q queryer, userID string) ([]authenticatorRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT authenticator_id, user_id, verification_method, email, phone_number, is_default, created_at, verified_at, last_verified_at
		FROM authenticators WHERE user_id = ? ORDER BY created_at, rowid`, userID)
	if err != nil {
		return nil, fmt.Errorf("list authenticators: %w", err)
	}
	defer rows.Close()
	var out []authenticatorRow
	for rows.Next() {
		var a authenticatorRow
		if err := rows.Scan(&a.ID, &a.UserID, &a.Method, &a.Email, &a.PhoneNumber, &a.IsDefault, &a.CreatedAt, &a.VerifiedAt, &a.LastVerifiedAt); err != nil {
			return nil, fmt.Errorf("scan authenticator: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// enrollAuthenticator adds a verified authenticator unless the same method and recipient
// is already enrolled (then it returns that one). The first one becomes the default.
func (e *Emulator) enrollAuthenticator(ctx context.Context, tx *txn, userID, method, email, phone string, isDefault bool) (authenticatorRow, error) {
	existing, err := listAuthenticators(ctx, tx, userID)
	if err != nil {
		return authenticatorRow{}, err
	}
	for _, a := range existing {
		if a.Method == method && a.Email == email && a.PhoneNumber == phone {
			return a, nil
		}
	}
	id, err := e.newUUID()
	if err != nil {
		return authenticatorRow{}, err
	}
	now := ms(e.now())
	if len(existing) == 0 {
		isDefault = true
	}
	if isDefault {
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = 0 WHERE user_id = ?`, userID); err != nil {
			return authenticatorRow{}, fmt.Errorf("reset default authenticator: %w", err)
		}
	}
	a := authenticatorRow{ID: id, UserID: userID, Method: method, Email: email, PhoneNumber: phone, IsDefault: isDefault, CreatedAt: now,
		VerifiedAt: sql.NullInt64{Int64: now, Valid: true}}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authenticators(authenticator_id, user_id, verification_method, email, phone_number, is_default, created_at, verified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.UserID, a.Method, a.Email, a.PhoneNumber, a.IsDefault, a.CreatedAt, now); err != nil {
		return authenticatorRow{}, fmt.Errorf("insert authenticator: %w", err)
	}
	return a, nil
}

// enrolmentSummary is what track and GET user report about a user's authenticators.
type enrolmentSummary struct {
	IsEnrolled                  bool
	EnrolledVerificationMethods []string
	DefaultVerificationMethod   string
}

var allowedVerificationMethods = []string{MethodEmailOTP, MethodSMS, MethodWhatsApp}

func summarize(auths []authenticatorRow) enrolmentSummary {
	s := enrolmentSummary{IsEnrolled: len(auths) > 0, EnrolledVerificationMethods: []string{}}
	seen := map[string]bool{}
	for _, a := range auths {
		if !seen[a.Method] {
			seen[a.Method] = true
			s.EnrolledVerificationMethods = append(s.EnrolledVerificationMethods, a.Method)
		}
		if a.IsDefault {
			s.DefaultVerificationMethod = a.Method
		}
	}
	if s.DefaultVerificationMethod == "" && len(auths) > 0 {
		s.DefaultVerificationMethod = auths[0].Method
	}
	return s
}

type userRow struct {
	ID, Email, PhoneNumber, Username, DisplayName, Custom, Locale string
	EmailVerified, PhoneNumberVerified                            bool
}

const userColumns = `user_id, email, email_verified, phone_number, phone_number_verified, username, display_name, custom, locale`

func scanUser(row interface{ Scan(...any) error }) (*userRow, error) {
	var u userRow
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.PhoneNumber, &u.PhoneNumberVerified, &u.Username, &u.DisplayName, &u.Custom, &u.Locale)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return &u, nil
}

func rawCustom(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

type userResponse struct {
	IsEnrolled                  bool            `json:"isEnrolled"`
	Email                       string          `json:"email,omitempty"`
	EmailVerified               bool            `json:"emailVerified"`
	PhoneNumber                 string          `json:"phoneNumber,omitempty"`
	PhoneNumberVerified         bool            `json:"phoneNumberVerified"`
	Username                    string          `json:"username,omitempty"`
	DisplayName                 string          `json:"displayName,omitempty"`
	Custom                      json.RawMessage `json:"custom,omitempty"`
	Locale                      string          `json:"locale,omitempty"`
	EnrolledVerificationMethods []string        `json:"enrolledVerificationMethods"`
	AllowedVerificationMethods  []string        `json:"allowedVerificationMethods"`
	DefaultVerificationMethod   string          `json:"defaultVerificationMethod,omitempty"`
}

// pathUserID reads and checks the {userId} path segment.
func pathUserID(r *http.Request) (string, error) {
	id := r.PathValue("userId")
	if err := validateUserID(id); err != nil {
		return "", badRequest("%s.", err)
	}
	return id, nil
}

func (e *Emulator) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := scanUser(e.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
	if errors.Is(err, errNotFound) {
		// Like the real service: a user nobody has tracked yet is simply not enrolled, so
		// integrators can call getUser before a user's first action.
		e.writeJSON(w, http.StatusOK, userResponse{EnrolledVerificationMethods: []string{}, AllowedVerificationMethods: allowedVerificationMethods})
		return nil
	}
	if err != nil {
		return err
	}
	auths, err := listAuthenticators(ctx, e.db, userID)
	if err != nil {
		return err
	}
	s := summarize(auths)
	e.writeJSON(w, http.StatusOK, userResponse{IsEnrolled: s.IsEnrolled, Email: u.Email, EmailVerified: u.EmailVerified, PhoneNumber: u.PhoneNumber,
		PhoneNumberVerified: u.PhoneNumberVerified, Username: u.Username, DisplayName: u.DisplayName, Custom: rawCustom(u.Custom), Locale: u.Locale,
		EnrolledVerificationMethods: s.EnrolledVerificationMethods, AllowedVerificationMethods: allowedVerificationMethods, DefaultVerificationMethod: s.DefaultVerificationMethod})
	return nil
}

// updateUserRequest uses pointers so omitted fields stay unchanged; null or "" clears a text field.
type updateUserRequest struct {
	Email                     *string         `json:"email"`
	EmailVerified             *bool           `json:"emailVerified"`
	PhoneNumber               *string         `json:"phoneNumber"`
	PhoneNumberVerified       *bool           `json:"phoneNumberVerified"`
	Username                  *string         `json:"username"`
	DisplayName               *string         `json:"displayName"`
	Custom                    json.RawMessage `json:"custom"`
	Locale                    *string         `json:"locale"`
	DefaultVerificationMethod *string         `json:"defaultVerificationMethod"`
}

// updatedUserResponse is the answer of PATCH (and the legacy POST) /v1/users/{userId}: the
// documented fields, plus the verified flags the Node SDK's integration test asserts.
type updatedUserResponse struct {
	UserID              string          `json:"userId"`
	Email               string          `json:"email,omitempty"`
	EmailVerified       bool            `json:"emailVerified"`
	PhoneNumber         string          `json:"phoneNumber,omitempty"`
	PhoneNumberVerified bool            `json:"phoneNumberVerified"`
	Username            string          `json:"username,omitempty"`
	DisplayName         string          `json:"displayName,omitempty"`
	Custom              json.RawMessage `json:"custom,omitempty"`
}

// userUpdate is a checked updateUserRequest: the columns to set, in order.
type userUpdate struct {
	cols []string
	args []any
	// syncEmail / syncPhone: a new address the caller says it verified, to copy onto the
	// user's authenticators of that kind ("This will result in any email OTP or magic link
	// authenticators being updated", docs: api-reference/server-api/update-user).
	syncEmail, syncPhone string
	defaultMethod        string
}

func (u *userUpdate) set(col string, v any) {
	u.cols, u.args = append(u.cols, col+" = ?"), append(u.args, v)
}

// check validates the request and turns it into a userUpdate.
func (req updateUserRequest) check() (*userUpdate, error) {
	u := &userUpdate{}
	if req.Email != nil {
		email := ""
		if *req.Email != "" {
			var err error
			if email, err = checkEmail("email", *req.Email); err != nil {
				return nil, err
			}
		}
		u.set("email", email)
		if email != "" && req.EmailVerified != nil && *req.EmailVerified {
			u.syncEmail = email
		}
	}
	if req.PhoneNumber != nil {
		phone, err := checkContactPhone("phoneNumber", *req.PhoneNumber)
		if err != nil {
			return nil, err
		}
		u.set("phone_number", phone)
		// Only a number a code can be sent to becomes an SMS/WhatsApp authenticator's.
		if ValidatePhone(phone) == nil && req.PhoneNumberVerified != nil && *req.PhoneNumberVerified {
			u.syncPhone = phone
		}
	}
	if req.EmailVerified != nil {
		u.set("email_verified", *req.EmailVerified)
	}
	if req.PhoneNumberVerified != nil {
		u.set("phone_number_verified", *req.PhoneNumberVerified)
	}
	for _, f := range []struct {
		col, name string
		v         *string
	}{{"username", "username", req.Username}, {"display_name", "displayName", req.DisplayName}, {"locale", "locale", req.Locale}} {
		if f.v != nil {
			if err := checkLengths(field{f.name, *f.v}); err != nil {
				return nil, err
			}
			u.set(f.col, *f.v)
		}
	}
	if req.Custom != nil {
		custom, err := customObject(req.Custom)
		if err != nil {
			return nil, err
		}
		u.set("custom", custom)
	}
	if req.DefaultVerificationMethod != nil && *req.DefaultVerificationMethod != "" {
		if !allVerificationMethods[*req.DefaultVerificationMethod] {
			return nil, badRequest("defaultVerificationMethod %q is not a known verification method.", *req.DefaultVerificationMethod)
		}
		u.defaultMethod = *req.DefaultVerificationMethod
	}
	return u, nil
}

// customObject checks a custom field: a JSON object (stored compact) or null (cleared).
func customObject(raw json.RawMessage) (string, error) {
	custom := strings.TrimSpace(string(raw))
	if custom == "null" {
		return "", nil
	}
	var m map[string]any
	if !strings.HasPrefix(custom, "{") || json.Unmarshal(raw, &m) != nil {
		return "", badRequest("Field \"custom\" must be of type object.")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", badRequest("custom could not be stored: %s.", err)
	}
	return string(b), nil
}

// apply writes the update inside tx, creating the user when unknown (PATCH upserts, as the
// Go and Python SDKs' integration tests show).
func (u *userUpdate) apply(ctx context.Context, e *Emulator, tx *txn, userID string) error {
	if err := e.ensureUser(ctx, tx, userID); err != nil {
		return err
	}
	if len(u.cols) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET `+strings.Join(u.cols, ", ")+` WHERE user_id = ?`, append(u.args, userID)...); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
	}
	if u.syncEmail != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET email = ? WHERE user_id = ? AND verification_method = ?`, u.syncEmail, userID, MethodEmailOTP); err != nil {
			return fmt.Errorf("update email authenticators: %w", err)
		}
	}
	if u.syncPhone != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET phone_number = ? WHERE user_id = ? AND verification_method IN (?, ?)`, u.syncPhone, userID, MethodSMS, MethodWhatsApp); err != nil {
			return fmt.Errorf("update phone authenticators: %w", err)
		}
	}
	if u.defaultMethod != "" {
		res, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = (authenticator_id =
			(SELECT authenticator_id FROM authenticators WHERE user_id = ?1 AND verification_method = ?2 ORDER BY created_at, rowid LIMIT 1))
			WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM authenticators WHERE user_id = ?1 AND verification_method = ?2)`, userID, u.defaultMethod)
		if err != nil {
			return fmt.Errorf("set default authenticator: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return badRequest("defaultVerificationMethod %s: the user has no authenticator of that kind.", u.defaultMethod)
		}
	}
	return nil
}

// handleUpdateUser serves PATCH /v1/users/{userId}, and the POST form of it that the Ruby
// and Java SDKs (and older Node, .NET and Python ones) still send.
func (e *Emulator) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	var req updateUserRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	update, err := req.check()
	if err != nil {
		return err
	}
	ctx := r.Context()
	var u *userRow
	err = e.inTx(ctx, func(tx *txn) error {
		if err := update.apply(ctx, e, tx, userID); err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
		return err
	})
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, updatedUserResponse{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, PhoneNumber: u.PhoneNumber,
		PhoneNumberVerified: u.PhoneNumberVerified, Username: u.Username, DisplayName: u.DisplayName, Custom: rawCustom(u.Custom)})
	return nil
}

// handleDeleteUser serves DELETE /v1/users/{userId}: the user's data and authenticators go;
// its actions stay unless ?actions=true ("If true, the user's action data will also be
// deleted", docs: api-reference/server-api/delete-user). A user with nothing stored answers
// success too, as GET answers any user id.
func (e *Emulator) handleDeleteUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	withActions := false
	if v := r.URL.Query().Get("actions"); v != "" {
		if withActions, err = strconv.ParseBool(v); err != nil {
			return badRequest("actions must be true or false.")
		}
	}
	ctx := r.Context()
	err = e.inTx(ctx, func(tx *txn) error {
		// Challenges are not keyed by a foreign key (anonymous ones have no user); drop the user's.
		for _, q := range []string{
			`DELETE FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1`,
			`DELETE FROM authenticators WHERE user_id = ?1`,
			`DELETE FROM seen_devices WHERE user_id = ?1`,
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
	if err != nil {
		return err
	}
	e.log.Info("user deleted", "user_id", userID, "actions", withActions)
	e.writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return nil
}

// queryUsersItem is one user of GET /v1/users: the SDKs' fields (userId, email and phone with
// their verified flags, username) and the docs' example's (displayName, isEnrolled,
// enrolledVerificationMethods, createdAt).
type queryUsersItem struct {
	UserID                      string   `json:"userId"`
	Email                       string   `json:"email,omitempty"`
	EmailVerified               bool     `json:"emailVerified"`
	PhoneNumber                 string   `json:"phoneNumber,omitempty"`
	PhoneNumberVerified         bool     `json:"phoneNumberVerified"`
	Username                    string   `json:"username,omitempty"`
	DisplayName                 string   `json:"displayName,omitempty"`
	IsEnrolled                  bool     `json:"isEnrolled"`
	EnrolledVerificationMethods []string `json:"enrolledVerificationMethods"`
	CreatedAt                   string   `json:"createdAt"`
}

type queryUsersResponse struct {
	Users               []queryUsersItem `json:"users"`
	LastEvaluatedUserID string           `json:"lastEvaluatedUserId,omitempty"`
	TokenPayload        *actionClaims    `json:"tokenPayload,omitempty"` // the decoded claims of ?token=
}

// handleQueryUsers serves GET /v1/users. At least one filter is required, as the Go and PHP
// SDKs' tests note the real API requires; ?token= finds the token's user and echoes its claims.
func (e *Emulator) handleQueryUsers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit must be a whole number from 1 to 1000.")
		}
		limit = n
	}
	if q.Get("email") == "" && q.Get("phoneNumber") == "" && q.Get("username") == "" && q.Get("token") == "" {
		return badRequest("At least one of email, phoneNumber, username or token is required.")
	}
	var resp queryUsersResponse
	where := []string{"1 = 1"}
	var args []any
	if v := q.Get("token"); v != "" {
		claims, err := e.parseToken(v)
		if err != nil {
			return badRequest("token is invalid or has expired.")
		}
		resp.TokenPayload = claims
		where, args = append(where, "user_id = ?"), append(args, claims.Subject)
	}
	if v := q.Get("email"); v != "" {
		where, args = append(where, "email = ?"), append(args, normalizeEmail(v))
	}
	if v := q.Get("phoneNumber"); v != "" {
		where, args = append(where, "phone_number = ?"), append(args, strings.TrimSpace(v))
	}
	if v := q.Get("username"); v != "" {
		where, args = append(where, "username = ?"), append(args, v)
	}
	if v := q.Get("lastEvaluatedUserId"); v != "" {
		where, args = append(where, "user_id > ?"), append(args, v)
	}
	ctx := r.Context()
	users, err := e.queryUsers(ctx, `SELECT `+userColumns+`, created_at FROM users WHERE `+strings.Join(where, " AND ")+` ORDER BY user_id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return err
	}
	if len(users) > limit {
		users = users[:limit]
		resp.LastEvaluatedUserID = users[limit-1].UserID
	}
	resp.Users = users
	e.writeJSON(w, http.StatusOK, resp)
	return nil
}

// queryUsers runs a users query (userColumns, created_at) and adds each user's enrolment.
func (e *Emulator) queryUsers(ctx context.Context, query string, args ...any) ([]queryUsersItem, error) {
	rows, err := e.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	defer rows.Close()
	users := []queryUsersItem{}
	for rows.Next() {
		var u userRow
		var created int64
		if err := rows.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.PhoneNumber, &u.PhoneNumberVerified, &u.Username, &u.DisplayName, &u.Custom, &u.Locale, &created); err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		users = append(users, queryUsersItem{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, PhoneNumber: u.PhoneNumber,
			PhoneNumberVerified: u.PhoneNumberVerified, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: isoTime(fromMS(created))})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	rows.Close()
	for i := range users {
		auths, err := listAuthenticators(ctx, e.db, users[i].UserID)
		if err != nil {
			return nil, err
		}
		s := summarize(auths)
		users[i].IsEnrolled, users[i].EnrolledVerificationMethods = s.IsEnrolled, s.EnrolledVerificationMethods
	}
	return users, nil
}

func (e *Emulator) handleGetAuthenticators(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// An unknown user has no authenticators: an empty list, as for getUser above.
	auths, err := listAuthenticators(ctx, e.db, userID)
	if err != nil {
		return err
	}
	out := []userAuthenticator{}
	for _, a := range auths {
		out = append(out, a.api())
	}
	e.writeJSON(w, http.StatusOK, out)
	return nil
}

type enrollRequest struct {
	VerificationMethod string `json:"verificationMethod"`
	OOBChannel         string `json:"oobChannel"` // older form of verificationMethod
	Email              string `json:"email"`
	PhoneNumber        string `json:"phoneNumber"`
	IsDefault          bool   `json:"isDefault"`
}

type enrollResponse struct {
	Authenticator userAuthenticator `json:"authenticator"`
	RecoveryCodes []string          `json:"recoveryCodes,omitempty"`
}

// handleEnrollAuthenticator enrols an email/phone authenticator as verified: the server
// vouches for it. Creates the user if unknown.
func (e *Emulator) handleEnrollAuthenticator(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	var req enrollRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	method, field := req.VerificationMethod, "verificationMethod"
	if method == "" && req.OOBChannel != "" {
		method, field = req.OOBChannel, "oobChannel"
	}
	if err := checkOTPMethod(field, method); err != nil {
		return err
	}
	email, phone, err := checkRecipient(method, req.Email, req.PhoneNumber)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var a authenticatorRow
	err = e.inTx(ctx, func(tx *txn) error {
		if err := e.ensureUser(ctx, tx, userID); err != nil {
			return err
		}
		a, err = e.enrollAuthenticator(ctx, tx, userID, method, email, phone, req.IsDefault)
		if err != nil {
			return err
		}
		// Fill the user's contact when it has none yet.
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified = 1 WHERE user_id = ? AND email = '' AND ? <> ''`, email, userID, email); err != nil {
			return fmt.Errorf("set user email: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET phone_number = ?, phone_number_verified = 1 WHERE user_id = ? AND phone_number = '' AND ? <> ''`, phone, userID, phone); err != nil {
			return fmt.Errorf("set user phone: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, enrollResponse{Authenticator: a.api()})
	return nil
}

func (e *Emulator) handleDeleteAuthenticator(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	authID := r.PathValue("userAuthenticatorId")
	ctx := r.Context()
	err = e.inTx(ctx, func(tx *txn) error {
		var wasDefault bool
		err := tx.QueryRowContext(ctx, `SELECT is_default FROM authenticators WHERE authenticator_id = ? AND user_id = ?`, authID, userID).Scan(&wasDefault)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("Authenticator %q of user %q was not found.", authID, userID)
		}
		if err != nil {
			return fmt.Errorf("find authenticator: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM authenticators WHERE authenticator_id = ?`, authID); err != nil {
			return fmt.Errorf("delete authenticator: %w", err)
		}
		if wasDefault {
			// Promote the oldest remaining one, so a default always exists while any do.
			if _, err := tx.ExecContext(ctx, `UPDATE authenticators SET is_default = 1 WHERE authenticator_id =
				(SELECT authenticator_id FROM authenticators WHERE user_id = ? ORDER BY created_at, rowid LIMIT 1)`, userID); err != nil {
				return fmt.Errorf("promote default authenticator: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return nil
}

// handleEmulatorDeleteUser serves DELETE /emulator/users/{userId}: the user with their
// authenticators, actions, challenges and seen devices, plus the outbox messages and send
// counts of their email addresses and phone numbers. Every other user is left alone, so
// parallel test runs can clean up after themselves instead of resetting everything.
func (e *Emulator) handleEmulatorDeleteUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = e.inTx(ctx, func(tx *txn) error {
		if ok, err := userExists(ctx, tx, userID); err != nil {
			return err
		} else if !ok {
			return notFound("User %q was not found.", userID)
		}
		return deleteUserData(ctx, tx, userID)
	})
	if err != nil {
		return err
	}
	e.log.Info("user and their data deleted", "user_id", userID)
	e.writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return nil
}

// deleteUserData removes one user and everything of theirs inside tx. Recipients (emails,
// phone numbers) that another user also has keep their messages and send counts.
func deleteUserData(ctx context.Context, tx *txn, userID string) error {
	rows, err := tx.QueryContext(ctx, `
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
	var recipients []string
	for rows.Next() {
		var rcpt string
		if err := rows.Scan(&rcpt); err != nil {
			rows.Close()
			return fmt.Errorf("scan recipient: %w", err)
		}
		recipients = append(recipients, rcpt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
	// Explicit deletes, children first, rather than relying on ON DELETE CASCADE.
	for _, q := range []string{
		`DELETE FROM seen_devices WHERE user_id = ?1`,
		`DELETE FROM actions WHERE user_id = ?1`,
		`DELETE FROM authenticators WHERE user_id = ?1`,
		`DELETE FROM challenges WHERE user_id = ?1 OR claimed_user_id = ?1`,
		`DELETE FROM users WHERE user_id = ?1`,
	} {
		if _, err := tx.ExecContext(ctx, q, userID); err != nil {
			return fmt.Errorf("delete user data: %w", err)
		}
	}
	return nil
}
