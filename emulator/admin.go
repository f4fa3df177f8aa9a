package emulator

import (
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

const adminCSRFCookie = "emulator_admin_csrf"

type reviewRow struct {
	UserID, ActionCode, IdempotencyKey, Custom, Rule, CreatedAt string
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

// handleAdmin lists the actions held for review with Approve/Reject buttons.
func (e *Emulator) handleAdmin(w http.ResponseWriter, r *http.Request) {
	csrf, err := e.adminCSRFToken(w, r)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	rows, err := e.db.QueryContext(r.Context(), `SELECT `+actionColumns+` FROM actions WHERE state = ? ORDER BY created_at, rowid LIMIT 500`, StateReviewRequired)
	if err != nil {
		e.uiFail(w, r, err)
		return
	}
	defer rows.Close()
	var list []reviewRow
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			e.uiFail(w, r, err)
			return
		}
		var ids []string
		_ = json.Unmarshal([]byte(a.RuleIDs), &ids)
		list = append(list, reviewRow{UserID: a.UserID, ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey, Custom: a.Custom,
			Rule: strings.Join(ids, ", "), CreatedAt: isoTime(a.CreatedAt)})
	}
	if err := rows.Err(); err != nil {
		e.uiFail(w, r, err)
		return
	}
	status := map[string]string{"approved": "Approved: the action is now REVIEW_SUCCEEDED.", "rejected": "Rejected: the action is now REVIEW_FAILED.",
		"stale": "That action was no longer waiting for review; nothing changed."}[r.URL.Query().Get("notice")]
	e.render(w, http.StatusOK, "admin", map[string]any{"Title": "Reviews", "Actions": list, "CSRF": csrf, "Status": status})
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
	err = e.inTx(ctx, func(tx *sql.Tx) error {
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
