// Package admin is the emulator's admin pages: the review queue with Approve and Reject,
// and one page per kind of state.
package admin

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/pages"
	"example.com/passwordless/emulator/internal/random"
	"example.com/passwordless/emulator/internal/rules"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
	"example.com/passwordless/emulator/internal/webhook"
)

// Admin serves the admin pages.
type Admin struct {
	store       *state.Store
	rules       *rules.Rules
	pages       *pages.Pages
	random      *random.Source
	log         *slog.Logger
	now         func() time.Time
	maxAttempts int
	webhooks    *webhook.Sender
}

// New returns the admin pages over store.
func New(store *state.Store, rs *rules.Rules, p *pages.Pages, r *random.Source, log *slog.Logger, now func() time.Time, maxAttempts int, webhooks *webhook.Sender) *Admin {
	return &Admin{store: store, rules: rs, pages: p, random: r, log: log, now: now, maxAttempts: maxAttempts, webhooks: webhooks}
}

// The admin pages: a dashboard at /admin (the review queue with Approve/Reject, plus
// counts) and one page per kind of state: users (with authenticators), a user's detail,
// actions, challenges and rules. They are sub-pages rather than sections of /admin
// because tests elsewhere (e2e, app) find "the review row" on /admin by its text, and
// rule ids, conditions or other actions mentioning the same amount would match too.

const csrfCookie = "emulator_admin_csrf"

// listLimit bounds every admin list; the page says so when more exist.
const listLimit = 200

type userView struct {
	ID, URL, Name, Email, PhoneNumber, Username, DisplayName, Custom, Locale, CreatedAt string // Name: state.User.Name
	EmailVerified, PhoneNumberVerified                                                  bool
	Auths                                                                               []authView
}

type authView struct {
	ID, Method, Email, PhoneNumber, CreatedAt, VerifiedAt, LastVerifiedAt string
	IsDefault                                                             bool
	Passkey                                                               string // a passkey's credential, for the user page
}

type actionView struct {
	UserID, UserURL, UserName, ActionCode, IdempotencyKey, State, Rules, Custom, CreatedAt, StateUpdatedAt string
	Review                                                                                                 bool   // REVIEW_REQUIRED: show Approve/Reject
	CSRF                                                                                                   string // for the Approve/Reject form
}

type challengeView struct {
	ID, Origin, UserID, UserURL, UserName, ActionCode, Method, Channel, Recipient, State, ExpiresAt string
	AttemptsLeft                                                                                    int
}

type ruleView struct {
	ID, Name, Description, Action, Outcome string
	Priority                               int
	Conditions                             []string
}

func userURL(id string) string { return "/admin/users/" + url.PathEscape(id) }

func userViews(users []state.UserWithAuthenticators) []userView {
	out := make([]userView, 0, len(users))
	for _, u := range users {
		v := userView{ID: u.ID, URL: userURL(u.ID), Email: u.Email, PhoneNumber: u.PhoneNumber, Username: u.Username, DisplayName: u.DisplayName,
			Custom: string(u.Custom), Locale: u.Locale, CreatedAt: vocab.FormatTime(u.CreatedAt), EmailVerified: u.EmailVerified,
			PhoneNumberVerified: u.PhoneNumberVerified, Name: u.Name()}
		for _, a := range u.Authenticators {
			v.Auths = append(v.Auths, authView{ID: a.ID, Method: string(a.Method), Email: a.Email, PhoneNumber: a.PhoneNumber, IsDefault: a.IsDefault,
				CreatedAt: vocab.FormatTime(a.CreatedAt), VerifiedAt: vocab.FormatOptionalTime(a.VerifiedAt), LastVerifiedAt: vocab.FormatOptionalTime(a.LastVerifiedAt)})
		}
		out = append(out, v)
	}
	return out
}

// actionViews gives every row its user's name and the form token its Approve/Reject form needs.
func actionViews(actions []state.Action, names map[string]string, csrf string) []actionView {
	out := make([]actionView, 0, len(actions))
	for _, a := range actions {
		out = append(out, actionView{UserID: a.UserID, UserURL: userURL(a.UserID), UserName: names[a.UserID], ActionCode: a.ActionCode, IdempotencyKey: a.IdempotencyKey,
			State: string(a.State), Rules: strings.Join(a.RuleIDs, ", "), Custom: customLabel(a.Custom), CreatedAt: vocab.FormatTime(a.CreatedAt),
			StateUpdatedAt: vocab.FormatTime(a.StateUpdatedAt), Review: a.State == vocab.StateReviewRequired, CSRF: csrf})
	}
	return out
}

func (ad *Admin) challengeViews(list []state.Challenge, names map[string]string) []challengeView {
	now := ad.now()
	out := make([]challengeView, 0, len(list))
	for _, c := range list {
		user := challengeUser(c)
		v := challengeView{ID: c.ID, Origin: string(c.Origin), UserID: user, UserName: names[user], ActionCode: c.ActionCode, Method: string(c.VerificationMethod),
			Channel: string(c.Channel), Recipient: c.Recipient(), ExpiresAt: vocab.FormatTime(c.ExpiresAt),
			AttemptsLeft: max(0, ad.maxAttempts-c.Attempts), State: string(c.Status(now, ad.maxAttempts))}
		if user != "" {
			v.UserURL = userURL(user)
		}
		out = append(out, v)
	}
	return out
}

// challengeUser is whom a challenge belongs to: the user who claimed it, else the one it
// was created for ("" for an anonymous one).
func challengeUser(c state.Challenge) string { return cmp.Or(c.ClaimedUserID, c.UserID) }

// userNames names the users of the listed actions and challenges (state.UserNames).
func (ad *Admin) userNames(ctx context.Context, actions []state.Action, challenges []state.Challenge) (map[string]string, error) {
	var ids []string
	for _, a := range actions {
		ids = append(ids, a.UserID)
	}
	for _, c := range challenges {
		if u := challengeUser(c); u != "" {
			ids = append(ids, u)
		}
	}
	slices.Sort(ids)
	return ad.store.UserNames(ctx, slices.Compact(ids))
}

// ruleViews lists the rules in evaluation order.
func (ad *Admin) ruleViews() []ruleView {
	var out []ruleView
	for _, r := range ad.rules.List() {
		v := ruleView{ID: r.ID, Name: r.Name, Description: r.Description, Action: r.ActionCode, Outcome: string(r.Outcome), Priority: r.Priority}
		if v.Action == "" {
			v.Action = "* (every action)"
		}
		for _, c := range r.Conditions {
			val, _ := json.Marshal(c.Value)
			v.Conditions = append(v.Conditions, c.Field+" "+c.Op+" "+string(val))
		}
		out = append(out, v)
	}
	return out
}

// countNote is the "not everything is shown" sentence for a bounded list ("" when all are).
func countNote(shown, total int, what string) string {
	if total <= shown {
		return ""
	}
	return fmt.Sprintf("Showing the newest %d of %d %s.", shown, total, what)
}

// csrfToken returns the double-submit token: the cookie's value, or a new one set now.
func (ad *Admin) csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
		return c.Value, nil
	}
	b, err := ad.random.Bytes(32)
	if err != nil {
		return "", err
	}
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/admin", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return v, nil
}

// fail shows an unexpected failure as a page, and logs it.
func (ad *Admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	ad.log.Error("admin page failed", "path", r.URL.Path, "err", err)
	ad.pages.Message(w, http.StatusInternalServerError, "Something went wrong", "The emulator could not show this page; see its log.")
}

// Dashboard serves GET /admin: the actions held for review (oldest first, a queue) with
// Approve and Reject, and counts linking to the other admin pages.
func (ad *Admin) Dashboard(w http.ResponseWriter, r *http.Request) {
	csrf, err := ad.csrfToken(w, r)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	ctx := r.Context()
	list, _, err := ad.store.ListActions(ctx, state.ActionList{State: vocab.StateReviewRequired, OldestFirst: true, Limit: listLimit})
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	counts, err := ad.store.Counts(ctx)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	status := map[string]string{"approved": "Approved: the action is now REVIEW_SUCCEEDED.", "rejected": "Rejected: the action is now REVIEW_FAILED.",
		"stale": "That action was no longer waiting for review; nothing changed."}[r.URL.Query().Get("notice")]
	note := ""
	if counts.Reviews > len(list) {
		note = fmt.Sprintf("Showing the oldest %d of %d actions waiting for review.", len(list), counts.Reviews)
	}
	names, err := ad.userNames(r.Context(), list, nil)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "Admin", "Page": "dashboard", "Wide": true, "Actions": actionViews(list, names, csrf), "Note": note,
		"Status": status, "Counts": counts, "RuleCount": len(ad.rules.List()), "DefaultOutcome": ad.rules.DefaultOutcome()})
}

// Users serves GET /admin/users.
func (ad *Admin) Users(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	counts, err := ad.store.Counts(ctx)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	users, err := ad.store.ListUsers(ctx, "", listLimit)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "Users", "Page": "users", "Wide": true, "Users": userViews(users),
		"Note": countNote(len(users), counts.Users, "users")})
}

// User serves GET /admin/users/{userId}: one user with their authenticators, actions and challenges.
func (ad *Admin) User(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("userId")
	if err := vocab.ValidateUserID(id); err != nil {
		ad.pages.Message(w, http.StatusBadRequest, "Invalid user id", err.Error()+".")
		return
	}
	csrf, err := ad.csrfToken(w, r)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	ctx := r.Context()
	users, err := ad.store.ListUsers(ctx, id, 1)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	if len(users) == 0 {
		ad.pages.Message(w, http.StatusNotFound, "User not found", fmt.Sprintf("There is no user %q (it may have been deleted, or the emulator reset).", id))
		return
	}
	actions, actionTotal, err := ad.store.ListActions(ctx, state.ActionList{UserID: id, Limit: listLimit})
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	challenges, challengeTotal, err := ad.store.ListChallenges(ctx, id, listLimit)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	passkeys, err := ad.store.Passkeys(ctx, id)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	user := userViews(users)[0]
	names := map[string]string{id: user.Name}
	for i, a := range user.Auths {
		if p, ok := passkeys[a.ID]; ok {
			user.Auths[i].Passkey = fmt.Sprintf("credential %s, sign count %d%s", base64.RawURLEncoding.EncodeToString(p.CredentialID), p.SignCount, nameSuffix(p.Name))
		}
	}
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "User " + cmp.Or(user.Name, id), "Page": "user", "Wide": true, "User": user,
		"Actions": actionViews(actions, names, csrf), "ActionsNote": countNote(len(actions), actionTotal, "actions"),
		"Challenges": ad.challengeViews(challenges, names), "ChallengesNote": countNote(len(challenges), challengeTotal, "challenges")})
}

// customLabel shows an action's custom data, its amount formatted first ("amount
// 7,000.00"), the other fields as JSON.
func customLabel(raw json.RawMessage) string {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	amount, ok := m["amount"].(float64)
	if !ok {
		return string(raw)
	}
	delete(m, "amount")
	label := "amount " + vocab.FormatAmount(amount)
	if len(m) > 0 {
		rest, err := json.Marshal(m)
		if err == nil {
			label += " " + string(rest)
		}
	}
	return label
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return ", " + name
}

// Actions serves GET /admin/actions.
func (ad *Admin) Actions(w http.ResponseWriter, r *http.Request) {
	csrf, err := ad.csrfToken(w, r)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	actions, total, err := ad.store.ListActions(r.Context(), state.ActionList{Limit: listLimit})
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	names, err := ad.userNames(r.Context(), actions, nil)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "Actions", "Page": "actions", "Wide": true,
		"Actions": actionViews(actions, names, csrf), "ActionsNote": countNote(len(actions), total, "actions")})
}

// Challenges serves GET /admin/challenges.
func (ad *Admin) Challenges(w http.ResponseWriter, r *http.Request) {
	challenges, total, err := ad.store.ListChallenges(r.Context(), "", listLimit)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	names, err := ad.userNames(r.Context(), nil, challenges)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "Challenges", "Page": "challenges", "Wide": true,
		"Challenges": ad.challengeViews(challenges, names), "ChallengesNote": countNote(len(challenges), total, "challenges"), "MaxAttempts": ad.maxAttempts})
}

// Rules serves GET /admin/rules.
func (ad *Admin) Rules(w http.ResponseWriter, r *http.Request) {
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "Rules", "Page": "rules", "Wide": true,
		"RuleList": ad.ruleViews(), "DefaultOutcome": ad.rules.DefaultOutcome()})
}

// Webhooks serves GET /admin/webhooks: the webhooks sent, newest first, each attempt's
// answer and the body.
func (ad *Admin) Webhooks(w http.ResponseWriter, r *http.Request) {
	ad.pages.Render(w, http.StatusOK, "admin", map[string]any{"Title": "Webhooks", "Page": "webhooks", "Wide": true,
		"Deliveries": ad.webhooks.Deliveries(), "WebhooksOn": ad.webhooks.Enabled()})
}

// Review serves POST /admin/review: Approve or Reject. CSRF: the form's token must equal
// the cookie's (double submit); a cross-site form can neither read nor set that cookie.
func (ad *Admin) Review(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, httpjson.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		ad.pages.Message(w, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return
	}
	cookie, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(form)) != 1 {
		ad.pages.Message(w, http.StatusForbidden, "Forbidden", "The form is missing its security token. Reload the admin page and try again.")
		return
	}
	to := map[string]vocab.State{"approve": vocab.StateReviewSucceeded, "reject": vocab.StateReviewFailed}[r.PostForm.Get("decision")]
	if to == "" {
		ad.pages.Message(w, http.StatusBadRequest, "Bad form", "Choose Approve or Reject.")
		return
	}
	k := state.ActionKey{UserID: r.PostForm.Get("userId"), ActionCode: r.PostForm.Get("action"), IdempotencyKey: r.PostForm.Get("idempotencyKey")}
	changed, err := ad.store.Review(r.Context(), k, to)
	if err != nil {
		ad.fail(w, r, err)
		return
	}
	notice := "stale"
	if changed {
		notice = map[vocab.State]string{vocab.StateReviewSucceeded: "approved", vocab.StateReviewFailed: "rejected"}[to]
	}
	http.Redirect(w, r, "/admin?notice="+notice, http.StatusSeeOther)
}
