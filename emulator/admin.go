package emulator

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The admin pages: a dashboard at /admin (the review queue with Approve/Reject, plus
// counts) and one page per kind of state: users (with authenticators), a user's detail,
// actions, challenges and rules. They are sub-pages rather than sections of /admin
// because tests elsewhere (e2e, app) find "the review row" on /admin by its text, and
// rule ids, conditions or other actions mentioning the same amount would match too.
//
// The database has one connection: every query's rows are read fully and closed
// (queryAll) before the next query runs.

const adminCSRFCookie = "emulator_admin_csrf"

// adminListLimit bounds every admin list; the page says so when more exist.
const adminListLimit = 200

type adminUser struct {
	ID, URL, Email, PhoneNumber, Username, DisplayName, Custom, Locale, CreatedAt string
	EmailVerified, PhoneNumberVerified                                            bool
	Auths                                                                         []adminAuth
}

type adminAuth struct {
	ID, Method, Email, PhoneNumber, CreatedAt, VerifiedAt, LastVerifiedAt string
	IsDefault                                                             bool
}

type adminAction struct {
	UserID, UserURL, ActionCode, IdempotencyKey, State, Rules, Custom, CreatedAt, StateUpdatedAt string
	Review                                                                                       bool   // REVIEW_REQUIRED: show Approve/Reject
	CSRF                                                                                         string // for the Approve/Reject form
}

func scanAdminAction(rows *sql.Rows) (adminAction, error) {
	a, err := scanAction(rows)
	if err != nil {
		return adminAction{}, err
	}
	return adminAction{UserID: a.UserID, UserURL: adminUserURL(a.UserID), ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey,
		State: a.State, Rules: ruleIDList(a.RuleIDs), Custom: a.Custom, CreatedAt: isoTime(a.CreatedAt), StateUpdatedAt: isoTime(a.StateUpdatedAt),
		Review: a.State == StateReviewRequired}, nil
}

// withCSRF gives every row the form token its Approve/Reject form needs.
func withCSRF(list []adminAction, csrf string) []adminAction {
	for i := range list {
		list[i].CSRF = csrf
	}
	return list
}

type adminChallenge struct {
	ID, Origin, UserID, UserURL, ActionCode, Method, Channel, Recipient, State, ExpiresAt string
	AttemptsLeft                                                                          int
}

type adminRule struct {
	ID, Name, Description, Action, Outcome string
	Priority                               int
	Conditions                             []string
}

// adminCSRFToken returns the double-submit token: the cookie's value, or a new one set now.
func (e *Emulator) adminCSRFToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(adminCSRFCookie); err == nil && len(c.Value) == 64 {
		return c.Value, nil
	}
	b, err := e.randomBytes(32)
	if err != nil {
		return "", err
	}
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: adminCSRFCookie, Value: v, Path: "/admin", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return v, nil
}

// queryAll runs q and scans every row, closing the rows before it returns (one connection).
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(*sql.Rows) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
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

// countNote is the "not everything is shown" sentence for a bounded list ("" when all are).
func countNote(shown, total int, what string) string {
	if total <= shown {
		return ""
	}
	return fmt.Sprintf("Showing the newest %d of %d %s.", shown, total, what)
}

func adminUserURL(id string) string { return "/admin/users/" + url.PathEscape(id) }

func ruleIDList(raw string) string {
	var ids []string
	_ = json.Unmarshal([]byte(raw), &ids)
	return strings.Join(ids, ", ")
}

func (e *Emulator) count(ctx context.Context, q string, args ...any) (int, error) {
	var n int
	if err := e.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("admin count: %w", err)
	}
	return n, nil
}

// handleAdmin is the dashboard: actions held for review (oldest first, a queue) with
// Approve/Reject, and counts linking to the other admin pages.
func (e *Emulator) handleAdmin(w http.ResponseWriter, r *http.Request) {
	csrf, err := e.adminCSRFToken(w, r)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	ctx := r.Context()
	list, err := queryAll(ctx, e.db, scanAdminAction, `SELECT `+actionColumns+` FROM actions WHERE state = ? ORDER BY created_at, rowid LIMIT ?`, StateReviewRequired, adminListLimit)
	if err != nil {
		e.uiFail(w, r, fmt.Errorf("admin reviews: %w", err))
		return
	}
	var counts struct{ Users, Actions, Reviews, Challenges int }
	err = e.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM actions),
		(SELECT COUNT(*) FROM actions WHERE state = ?), (SELECT COUNT(*) FROM challenges)`, StateReviewRequired).
		Scan(&counts.Users, &counts.Actions, &counts.Reviews, &counts.Challenges)
	if err != nil {
		e.uiFail(w, r, fmt.Errorf("admin counts: %w", err))
		return
	}
	status := map[string]string{"approved": "Approved: the action is now REVIEW_SUCCEEDED.", "rejected": "Rejected: the action is now REVIEW_FAILED.",
		"stale": "That action was no longer waiting for review; nothing changed."}[r.URL.Query().Get("notice")]
	note := ""
	if counts.Reviews > len(list) {
		note = fmt.Sprintf("Showing the oldest %d of %d actions waiting for review.", len(list), counts.Reviews)
	}
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "Admin", "Page": "dashboard", "Wide": true, "Actions": withCSRF(list, csrf), "Note": note,
		"Status": status, "Counts": counts, "RuleCount": len(e.rules.rules), "DefaultOutcome": e.rules.defaultOutcome})
}

// loadAdminUsers returns users (newest first, bounded) with their authenticators.
// where filters the users table ("" = all).
func (e *Emulator) loadAdminUsers(ctx context.Context, where string, args ...any) ([]adminUser, error) {
	if where == "" {
		where = "1 = 1"
	}
	users, err := queryAll(ctx, e.db, func(rows *sql.Rows) (adminUser, error) {
		var u adminUser
		var created int64
		err := rows.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.PhoneNumber, &u.PhoneNumberVerified, &u.Username, &u.DisplayName, &u.Custom, &u.Locale, &created)
		u.URL, u.CreatedAt = adminUserURL(u.ID), isoTime(fromMS(created))
		return u, err
	}, `SELECT `+userColumns+`, created_at FROM users WHERE `+where+` ORDER BY created_at DESC, user_id LIMIT ?`, append(args, adminListLimit)...)
	if err != nil || len(users) == 0 {
		return users, err
	}
	// The same bounded user set, as a subquery: one query for all their authenticators.
	auths, err := queryAll(ctx, e.db, func(rows *sql.Rows) (authenticatorRow, error) {
		var a authenticatorRow
		err := rows.Scan(&a.ID, &a.UserID, &a.Method, &a.Email, &a.PhoneNumber, &a.IsDefault, &a.CreatedAt, &a.VerifiedAt, &a.LastVerifiedAt)
		return a, err
	}, `SELECT authenticator_id, user_id, verification_method, email, phone_number, is_default, created_at, verified_at, last_verified_at
		FROM authenticators WHERE user_id IN (SELECT user_id FROM users WHERE `+where+` ORDER BY created_at DESC, user_id LIMIT ?)
		ORDER BY created_at, rowid`, append(args, adminListLimit)...)
	if err != nil {
		return nil, fmt.Errorf("admin authenticators: %w", err)
	}
	byUser := map[string]int{}
	for i, u := range users {
		byUser[u.ID] = i
	}
	for _, a := range auths {
		if i, ok := byUser[a.UserID]; ok {
			users[i].Auths = append(users[i].Auths, adminAuth{ID: a.ID, Method: a.Method, Email: a.Email, PhoneNumber: a.PhoneNumber, IsDefault: a.IsDefault,
				CreatedAt: isoTime(fromMS(a.CreatedAt)), VerifiedAt: nullableMS(a.VerifiedAt), LastVerifiedAt: nullableMS(a.LastVerifiedAt)})
		}
	}
	return users, nil
}

// loadAdminActions returns actions, newest first and bounded, with their total.
func (e *Emulator) loadAdminActions(ctx context.Context, where string, args ...any) ([]adminAction, int, error) {
	total, err := e.count(ctx, `SELECT COUNT(*) FROM actions WHERE `+where, args...)
	if err != nil {
		return nil, 0, err
	}
	list, err := queryAll(ctx, e.db, scanAdminAction, `SELECT `+actionColumns+` FROM actions WHERE `+where+` ORDER BY created_at DESC, rowid DESC LIMIT ?`, append(args, adminListLimit)...)
	return list, total, err
}

// loadAdminChallenges returns challenges, newest first and bounded, with their total.
func (e *Emulator) loadAdminChallenges(ctx context.Context, where string, args ...any) ([]adminChallenge, int, error) {
	total, err := e.count(ctx, `SELECT COUNT(*) FROM challenges WHERE `+where, args...)
	if err != nil {
		return nil, 0, err
	}
	now, maxAttempts := e.now(), e.limits.MaxAttempts
	list, err := queryAll(ctx, e.db, func(rows *sql.Rows) (adminChallenge, error) {
		c, err := scanChallenge(rows)
		if err != nil {
			return adminChallenge{}, err
		}
		user := c.ClaimedUserID
		if user == "" {
			user = c.UserID
		}
		ac := adminChallenge{ID: c.ID, Origin: c.Origin, UserID: user, ActionCode: c.ActionCode, Method: c.VerificationMethod, Channel: c.Channel,
			Recipient: c.recipient(), ExpiresAt: isoTime(c.ExpiresAt), AttemptsLeft: max(0, maxAttempts-c.Attempts)}
		if user != "" {
			ac.UserURL = adminUserURL(user)
		}
		// The same order of checks as verifyCode, so the page agrees with what verify would say.
		switch {
		case c.Attempts >= maxAttempts:
			ac.State = "FAILED (no attempts left)"
		case c.VerifiedAt.Valid && c.ClaimedUserID != "":
			ac.State = "CLAIMED"
		case c.VerifiedAt.Valid:
			ac.State = "VERIFIED"
		case c.CodeHash == nil:
			ac.State = "USED"
		case !now.Before(c.ExpiresAt):
			ac.State = "EXPIRED"
		default:
			ac.State = "PENDING"
		}
		return ac, nil
	}, `SELECT `+challengeColumns+` FROM challenges WHERE `+where+` ORDER BY created_at DESC, rowid DESC LIMIT ?`, append(args, adminListLimit)...)
	return list, total, err
}

// adminRules lists the rules in evaluation order.
func (e *Emulator) adminRules() []adminRule {
	var out []adminRule
	for _, r := range e.rules.rules {
		ar := adminRule{ID: r.ID, Name: r.Name, Description: r.Description, Action: r.ActionCode, Outcome: r.Outcome, Priority: r.Priority}
		if ar.Action == "" {
			ar.Action = "* (every action)"
		}
		for _, c := range r.Conditions {
			v, _ := json.Marshal(c.Value)
			ar.Conditions = append(ar.Conditions, c.Field+" "+c.Op+" "+string(v))
		}
		out = append(out, ar)
	}
	return out
}

func (e *Emulator) handleAdminUsers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	total, err := e.count(ctx, `SELECT COUNT(*) FROM users`)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	users, err := e.loadAdminUsers(ctx, "")
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "Users", "Page": "users", "Wide": true, "Users": users,
		"Note": countNote(len(users), total, "users")})
}

// handleAdminUser shows one user with its authenticators, actions and challenges.
func (e *Emulator) handleAdminUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("userId")
	if err := validateUserID(id); err != nil {
		e.renderMessage(w, http.StatusBadRequest, "Invalid user id", err.Error()+".")
		return
	}
	csrf, err := e.adminCSRFToken(w, r)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	ctx := r.Context()
	users, err := e.loadAdminUsers(ctx, "user_id = ?", id)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	if len(users) == 0 {
		e.renderMessage(w, http.StatusNotFound, "User not found", fmt.Sprintf("There is no user %q (it may have been deleted, or the emulator reset).", id))
		return
	}
	actions, actionTotal, err := e.loadAdminActions(ctx, "user_id = ?", id)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	challenges, challengeTotal, err := e.loadAdminChallenges(ctx, "user_id = ? OR claimed_user_id = ?", id, id)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "User " + id, "Page": "user", "Wide": true, "User": users[0],
		"Actions": withCSRF(actions, csrf), "ActionsNote": countNote(len(actions), actionTotal, "actions"),
		"Challenges": challenges, "ChallengesNote": countNote(len(challenges), challengeTotal, "challenges")})
}

func (e *Emulator) handleAdminActions(w http.ResponseWriter, r *http.Request) {
	csrf, err := e.adminCSRFToken(w, r)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	actions, total, err := e.loadAdminActions(r.Context(), "1 = 1")
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "Actions", "Page": "actions", "Wide": true,
		"Actions": withCSRF(actions, csrf), "ActionsNote": countNote(len(actions), total, "actions")})
}

func (e *Emulator) handleAdminChallenges(w http.ResponseWriter, r *http.Request) {
	challenges, total, err := e.loadAdminChallenges(r.Context(), "1 = 1")
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "Challenges", "Page": "challenges", "Wide": true,
		"Challenges": challenges, "ChallengesNote": countNote(len(challenges), total, "challenges"), "MaxAttempts": e.limits.MaxAttempts})
}

func (e *Emulator) handleAdminRules(w http.ResponseWriter, r *http.Request) {
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "Rules", "Page": "rules", "Wide": true,
		"RuleList": e.adminRules(), "DefaultOutcome": e.rules.defaultOutcome})
}

// handleAdminReview applies a decision. CSRF: the form's token must equal the cookie's
// (double submit); a cross-site form can neither read nor set that cookie.
func (e *Emulator) handleAdminReview(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		e.renderMessage(w, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return
	}
	cookie, err := r.Cookie(adminCSRFCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(form)) != 1 {
		e.renderMessage(w, http.StatusForbidden, "Forbidden", "The form is missing its security token. Reload the admin page and try again.")
		return
	}
	state := map[string]string{"approve": StateReviewSucceeded, "reject": StateReviewFailed}[r.PostForm.Get("decision")]
	if state == "" {
		e.renderMessage(w, http.StatusBadRequest, "Bad form", "Choose Approve or Reject.")
		return
	}
	userID, action, idem := r.PostForm.Get("userId"), r.PostForm.Get("action"), r.PostForm.Get("idempotencyKey")
	ctx := r.Context()
	changed := false
	err = e.inTx(ctx, func(tx *txn) error {
		var err error
		changed, err = e.updateActionState(ctx, tx, userID, action, idem, state, "", "", StateReviewRequired)
		return err
	})
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	notice := "stale"
	if changed {
		notice = map[string]string{StateReviewSucceeded: "approved", StateReviewFailed: "rejected"}[state]
		e.log.Info("review decided", "user_id", userID, "action", action, "state", state)
	}
	http.Redirect(w, r, "/admin?notice="+notice, http.StatusSeeOther)
}
