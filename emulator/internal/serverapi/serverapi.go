// Package serverapi serves Authsignal's Server API (/v1): each handler checks its request,
// calls one state operation and answers in the API's JSON.
package serverapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/session"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/testcontrols"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
)

// API holds the Server API's dependencies; its methods are the handlers.
type API struct {
	store       *state.Store
	tokens      *token.Issuer
	sessionKeys *session.Keys
	tenantID    string
	now         func() time.Time
	log         *slog.Logger
	baseURL     func(*http.Request) string // the emulator's public URL, for the pre-built UI links
}

// Deps are what the Server API is built on.
type Deps struct {
	Store       *state.Store
	Tokens      *token.Issuer // action tokens (track, claim, the pre-built UI)
	SessionKeys *session.Keys // sessions' access tokens
	TenantID    string
	Now         func() time.Time
	Log         *slog.Logger
	BaseURL     func(*http.Request) string
}

// New returns the Server API.
func New(d Deps) *API {
	return &API{store: d.Store, tokens: d.Tokens, sessionKeys: d.SessionKeys, tenantID: d.TenantID, now: d.Now, log: d.Log, baseURL: d.BaseURL}
}

type challengeRequest struct {
	VerificationMethod vocab.Method   `json:"verificationMethod"`
	Action             string         `json:"action"`
	Email              string         `json:"email"`
	PhoneNumber        string         `json:"phoneNumber"`
	SMSChannel         string         `json:"smsChannel"`
	IdempotencyKey     string         `json:"idempotencyKey"`
	UserID             string         `json:"userId"`
	Scope              string         `json:"scope"`
	Locale             string         `json:"locale"`
	IPAddress          string         `json:"ipAddress"`
	UserAgent          string         `json:"userAgent"`
	DeviceID           string         `json:"deviceId"`
	Custom             map[string]any `json:"custom"`
	ChallengeID        string         `json:"challengeId"`
}

type challengeResponse struct {
	ChallengeID    string `json:"challengeId"`
	IdempotencyKey string `json:"idempotencyKey"`
	ExpiresAt      int64  `json:"expiresAt"`
}

// Challenge serves POST /v1/challenge: a new challenge, or with challengeId a fresh code for one.
func (a *API) Challenge(w http.ResponseWriter, r *http.Request) error {
	var req challengeRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	var c state.Challenge
	var err error
	if req.ChallengeID != "" {
		c, err = a.store.ResendChallenge(r.Context(), state.Resend{ChallengeID: req.ChallengeID, Method: req.VerificationMethod, ActionCode: req.Action, Locale: req.Locale})
	} else {
		c, err = a.createChallenge(r, req)
	}
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, challengeResponse{ChallengeID: c.ID, IdempotencyKey: c.IdempotencyKey, ExpiresAt: c.ExpiresAt.Unix()})
}

func (a *API) createChallenge(r *http.Request, req challengeRequest) (state.Challenge, error) {
	if err := checkOTPMethod("verificationMethod", req.VerificationMethod); err != nil {
		return state.Challenge{}, err
	}
	if req.Action == "" {
		return state.Challenge{}, httpjson.BadRequest("action is required.")
	}
	if err := vocab.ValidateActionCode(req.Action); err != nil {
		return state.Challenge{}, httpjson.BadRequest("action %s.", strings.TrimPrefix(err.Error(), "action code "))
	}
	email, phone, err := checkRecipient(req.VerificationMethod, req.Email, req.PhoneNumber)
	if err != nil {
		return state.Challenge{}, err
	}
	switch req.SMSChannel {
	case "", "DEFAULT", "SMS", "WHATSAPP":
	default:
		return state.Challenge{}, httpjson.BadRequest("smsChannel %q is not one of DEFAULT, SMS, WHATSAPP.", req.SMSChannel)
	}
	if req.UserID != "" {
		if err := vocab.ValidateUserID(req.UserID); err != nil {
			return state.Challenge{}, httpjson.BadRequest("%s.", err)
		}
	}
	if err := httpjson.CheckLengths("idempotencyKey", req.IdempotencyKey, "scope", req.Scope, "locale", req.Locale,
		"ipAddress", req.IPAddress, "userAgent", req.UserAgent, "deviceId", req.DeviceID); err != nil {
		return state.Challenge{}, err
	}
	return a.store.CreateChallenge(r.Context(), state.NewChallenge{Method: req.VerificationMethod, ActionCode: req.Action, Email: email, PhoneNumber: phone,
		SMSChannel: req.SMSChannel, IdempotencyKey: req.IdempotencyKey, UserID: req.UserID, Scope: req.Scope, Locale: req.Locale,
		IPAddress: req.IPAddress, UserAgent: req.UserAgent, DeviceID: req.DeviceID, Custom: req.Custom})
}

type verifyRequest struct {
	ChallengeID      string `json:"challengeId"`
	VerificationCode string `json:"verificationCode"`
}

type verifyResponse struct {
	IsVerified         bool                `json:"isVerified"`
	Email              string              `json:"email,omitempty"`
	PhoneNumber        string              `json:"phoneNumber,omitempty"`
	VerificationMethod vocab.Method        `json:"verificationMethod,omitempty"`
	FailureReason      vocab.FailureReason `json:"failureReason,omitempty"`
}

// Verify serves POST /v1/verify.
func (a *API) Verify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.ChallengeID == "" {
		return httpjson.BadRequest("challengeId is required.")
	}
	if req.VerificationCode == "" {
		return httpjson.BadRequest("verificationCode is required.")
	}
	v, err := a.store.Verify(r.Context(), req.ChallengeID, req.VerificationCode)
	if err != nil {
		return err
	}
	resp := verifyResponse{FailureReason: v.FailureReason}
	if v.Verified {
		c := v.Challenge
		resp = verifyResponse{IsVerified: true, Email: c.Email, PhoneNumber: c.PhoneNumber, VerificationMethod: c.VerificationMethod}
	}
	return httpjson.Write(w, http.StatusOK, resp)
}

type claimRequest struct {
	ChallengeID           string `json:"challengeId"`
	UserID                string `json:"userId"`
	SkipVerificationCheck bool   `json:"skipVerificationCheck"`
}

type claimResponse struct {
	Token              string       `json:"token"`
	VerificationMethod vocab.Method `json:"verificationMethod"`
}

// Claim serves POST /v1/claim (state.Store.Claim).
func (a *API) Claim(w http.ResponseWriter, r *http.Request) error {
	var req claimRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.ChallengeID == "" {
		return httpjson.BadRequest("challengeId is required.")
	}
	if err := vocab.ValidateUserID(req.UserID); err != nil {
		return httpjson.BadRequest("%s.", err)
	}
	c, err := a.store.Claim(r.Context(), req.ChallengeID, req.UserID, req.SkipVerificationCheck)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, claimResponse{Token: c.Token, VerificationMethod: c.Method})
}

type getChallengeResponse struct {
	ChallengeID        string       `json:"challengeId,omitempty"`
	ExpiresAt          int64        `json:"expiresAt,omitempty"`
	VerificationMethod vocab.Method `json:"verificationMethod,omitempty"`
	SMSChannel         string       `json:"smsChannel,omitempty"`
	PhoneNumber        string       `json:"phoneNumber,omitempty"`
	Email              string       `json:"email,omitempty"`
	Action             string       `json:"action,omitempty"`
}

// getChallengeQuery is what GET /v1/challenges filters on (the query), or the body of the
// POST form the .NET and Java SDKs send.
type getChallengeQuery struct {
	ChallengeID        string       `json:"challengeId"`
	UserID             string       `json:"userId"`
	Action             string       `json:"action"`
	VerificationMethod vocab.Method `json:"verificationMethod"`
}

// GetChallenge serves GET (and POST) /v1/challenges: a challenge by id, or the latest one
// of a user (optionally by action and method). No match is an empty object, not a 404:
// the SDKs type every field as optional and Authsignal's own examples read challengeId
// from the answer unchecked.
func (a *API) GetChallenge(w http.ResponseWriter, r *http.Request) error {
	var f getChallengeQuery
	if r.Method == http.MethodPost {
		if err := httpjson.Decode(w, r, &f, true); err != nil {
			return err
		}
	}
	q := r.URL.Query()
	for _, p := range []struct {
		dst  *string
		name string
	}{{&f.ChallengeID, "challengeId"}, {&f.UserID, "userId"}, {&f.Action, "action"}} {
		if *p.dst == "" {
			*p.dst = q.Get(p.name)
		}
	}
	if f.VerificationMethod == "" {
		f.VerificationMethod = vocab.Method(q.Get("verificationMethod"))
	}
	if f.ChallengeID == "" && f.UserID == "" {
		return httpjson.BadRequest("challengeId or userId is required.")
	}
	if f.VerificationMethod != "" && !f.VerificationMethod.Known() {
		return httpjson.BadRequest("verificationMethod %q is not a known verification method.", f.VerificationMethod)
	}
	c, err := a.store.FindChallenge(r.Context(), state.ChallengeQuery{ID: f.ChallengeID, UserID: f.UserID, ActionCode: f.Action, Method: f.VerificationMethod})
	if err != nil {
		return err
	}
	if c == nil {
		return httpjson.Write(w, http.StatusOK, getChallengeResponse{})
	}
	resp := getChallengeResponse{ChallengeID: c.ID, ExpiresAt: c.ExpiresAt.Unix(), SMSChannel: c.SMSChannel, PhoneNumber: c.PhoneNumber,
		Email: c.Email, Action: c.ActionCode}
	if c.Verified() {
		// "The verification method used to complete the challenge. This field can be used to
		// determine if the challenge has been successfully completed" (docs: get-challenge).
		resp.VerificationMethod = c.VerificationMethod
	}
	return httpjson.Write(w, http.StatusOK, resp)
}

type trackRequest struct {
	IdempotencyKey     string         `json:"idempotencyKey"`
	RedirectURL        string         `json:"redirectUrl"`
	RedirectToSettings bool           `json:"redirectToSettings"`
	IPAddress          string         `json:"ipAddress"`
	UserAgent          string         `json:"userAgent"`
	DeviceID           string         `json:"deviceId"`
	Email              string         `json:"email"`
	PhoneNumber        string         `json:"phoneNumber"`
	Username           string         `json:"username"`
	Scope              string         `json:"scope"`
	Custom             map[string]any `json:"custom"`
	ChallengeID        string         `json:"challengeId"`
	Locale             string         `json:"locale"`
	CustomDomain       string         `json:"customDomain"`
	Crypto             any            `json:"crypto"`
}

// Track serves POST /v1/users/{userId}/actions/{action} (state.Store.Track).
func (a *API) Track(w http.ResponseWriter, r *http.Request) error {
	userID, actionCode, err := pathAction(r)
	if err != nil {
		return err
	}
	var req trackRequest
	if err := httpjson.Decode(w, r, &req, true); err != nil {
		return err
	}
	t := state.Track{ActionKey: state.ActionKey{UserID: userID, ActionCode: actionCode, IdempotencyKey: req.IdempotencyKey}, BaseURL: a.baseURL(r),
		RedirectURL: req.RedirectURL, RedirectToSettings: req.RedirectToSettings, IPAddress: req.IPAddress, UserAgent: req.UserAgent,
		DeviceID: req.DeviceID, Username: req.Username, Scope: req.Scope, Locale: req.Locale, Custom: req.Custom}
	if req.Email != "" {
		if t.Email, err = checkEmail("email", req.Email); err != nil {
			return err
		}
	}
	if req.PhoneNumber != "" {
		if t.PhoneNumber, err = checkContactPhone("phoneNumber", req.PhoneNumber); err != nil {
			return err
		}
	}
	if req.RedirectURL != "" {
		if err := vocab.ValidateRedirectURL(req.RedirectURL); err != nil {
			return httpjson.BadRequest("%s.", err)
		}
	}
	if err := httpjson.CheckLengths("idempotencyKey", req.IdempotencyKey, "redirectUrl", req.RedirectURL, "scope", req.Scope,
		"locale", req.Locale, "ipAddress", req.IPAddress, "userAgent", req.UserAgent, "deviceId", req.DeviceID,
		"username", req.Username); err != nil {
		return err
	}
	if t.Forced, err = testcontrols.ForcedRule(req.Custom); err != nil {
		return err
	}
	res, err := a.store.Track(r.Context(), t)
	if err != nil {
		return err
	}
	httpjson.WriteEncoded(w, http.StatusOK, res.JSON)
	return nil
}

type actionResponse struct {
	State              vocab.State     `json:"state"`
	StateUpdatedAt     string          `json:"stateUpdatedAt"`
	CreatedAt          string          `json:"createdAt"`
	VerificationMethod vocab.Method    `json:"verificationMethod,omitempty"`
	RuleIDs            []string        `json:"ruleIds"`
	Rules              []state.RuleRef `json:"rules"`
	Output             map[string]any  `json:"output"`
}

func actionJSON(a state.Action) actionResponse {
	return actionResponse{State: a.State, StateUpdatedAt: vocab.FormatTime(a.StateUpdatedAt), CreatedAt: vocab.FormatTime(a.CreatedAt),
		VerificationMethod: a.VerificationMethod, RuleIDs: nonNil(a.RuleIDs), Rules: nonNil(a.Rules), Output: map[string]any{}}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func pathActionKey(r *http.Request) (state.ActionKey, error) {
	userID, actionCode, err := pathAction(r)
	return state.ActionKey{UserID: userID, ActionCode: actionCode, IdempotencyKey: r.PathValue("idempotencyKey")}, err
}

// GetAction serves GET /v1/users/{userId}/actions/{action}/{idempotencyKey}.
func (a *API) GetAction(w http.ResponseWriter, r *http.Request) error {
	k, err := pathActionKey(r)
	if err != nil {
		return err
	}
	act, err := a.store.Action(r.Context(), k)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, actionJSON(act))
}

type updateActionRequest struct {
	State vocab.State `json:"state"`
}

// UpdateAction serves PATCH /v1/users/{userId}/actions/{action}/{idempotencyKey}.
func (a *API) UpdateAction(w http.ResponseWriter, r *http.Request) error {
	k, err := pathActionKey(r)
	if err != nil {
		return err
	}
	var req updateActionRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.State == "" {
		return httpjson.BadRequest("state is required.")
	}
	if !req.State.Valid() {
		return httpjson.BadRequest("state %q is not a valid action state.", req.State)
	}
	act, err := a.store.SetActionState(r.Context(), k, req.State)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, actionJSON(act))
}

type actionSummary struct {
	ActionCode                string       `json:"actionCode"`
	IdempotencyKey            string       `json:"idempotencyKey"`
	CreatedAt                 string       `json:"createdAt"`
	UpdatedAt                 string       `json:"updatedAt"`
	State                     vocab.State  `json:"state"`
	StateUpdatedAt            string       `json:"stateUpdatedAt"`
	VerificationMethod        vocab.Method `json:"verificationMethod,omitempty"`
	VerifiedByAuthenticatorID string       `json:"verifiedByAuthenticatorId,omitempty"`
	IPAddress                 string       `json:"ipAddress,omitempty"`
	UserAgent                 string       `json:"userAgent,omitempty"`
}

// maxActions bounds GET /v1/users/{userId}/actions.
const maxActions = 1000

// QueryActions serves GET /v1/users/{userId}/actions[?codes=&fromDate=&state=].
func (a *API) QueryActions(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	aq := state.ActionQuery{UserID: userID, Limit: maxActions}
	if codes := q.Get("codes"); codes != "" {
		for _, c := range strings.Split(codes, ",") {
			c = strings.TrimSpace(c)
			if err := vocab.ValidateActionCode(c); err != nil {
				return httpjson.BadRequest("codes: %q is not a valid action code.", c)
			}
			aq.ActionCodes = append(aq.ActionCodes, c)
		}
	}
	if from := q.Get("fromDate"); from != "" {
		if aq.From, err = parseDate(from); err != nil {
			return httpjson.BadRequest("fromDate must be an ISO 8601 date or time, like 2024-05-01T00:00:00Z.")
		}
	}
	if s := vocab.State(q.Get("state")); s != "" {
		if !s.Valid() {
			return httpjson.BadRequest("state %q is not a valid action state.", s)
		}
		aq.State = s
	}
	actions, err := a.store.Actions(r.Context(), aq)
	if err != nil {
		return err
	}
	out := make([]actionSummary, 0, len(actions))
	for _, act := range actions {
		out = append(out, actionSummary{ActionCode: act.ActionCode, IdempotencyKey: act.IdempotencyKey, CreatedAt: vocab.FormatTime(act.CreatedAt),
			UpdatedAt: vocab.FormatTime(act.UpdatedAt), State: act.State, StateUpdatedAt: vocab.FormatTime(act.StateUpdatedAt),
			VerificationMethod: act.VerificationMethod, VerifiedByAuthenticatorID: act.VerifiedByAuthenticatorID, IPAddress: act.IPAddress, UserAgent: act.UserAgent})
	}
	return httpjson.Write(w, http.StatusOK, out)
}

type validateRequest struct {
	Token  string `json:"token"`
	UserID string `json:"userId"`
	Action string `json:"action"`
}

type validateResponse struct {
	IsValid            bool         `json:"isValid"`
	State              vocab.State  `json:"state,omitempty"`
	StateUpdatedAt     string       `json:"stateUpdatedAt,omitempty"`
	UserID             string       `json:"userId,omitempty"`
	Action             string       `json:"action,omitempty"`
	ActionCode         string       `json:"actionCode,omitempty"`
	IdempotencyKey     string       `json:"idempotencyKey,omitempty"`
	VerificationMethod vocab.Method `json:"verificationMethod,omitempty"`
	Error              string       `json:"error,omitempty"`
}

// Validate serves POST /v1/validate: it checks a token and reports its action's current
// state. isValid is true only when that state is CHALLENGE_SUCCEEDED; a genuine token of
// an action in any other state answers isValid false with the action's details, as the
// SDKs' integration tests see the real service do. A bad, tampered or expired token, or
// one for another user or action, is 200 {"isValid": false} too; only a missing token is
// a 400.
func (a *API) Validate(w http.ResponseWriter, r *http.Request) error {
	var req validateRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Token == "" {
		return httpjson.BadRequest("token is required.")
	}
	claims, err := a.tokens.Parse(req.Token)
	if err != nil {
		a.log.Info("token rejected", "reason", token.Reason(err))
		return httpjson.Write(w, http.StatusOK, validateResponse{IsValid: false})
	}
	switch {
	case req.UserID != "" && req.UserID != claims.Subject:
		return httpjson.Write(w, http.StatusOK, validateResponse{IsValid: false, Error: "User is invalid."})
	case req.Action != "" && req.Action != claims.Other.ActionCode:
		return httpjson.Write(w, http.StatusOK, validateResponse{IsValid: false, Error: "Action is invalid."})
	}
	act, err := a.store.Action(r.Context(), state.ActionKey{UserID: claims.Subject, ActionCode: claims.Other.ActionCode, IdempotencyKey: claims.Other.IdempotencyKey})
	if state.IsKind(err, state.NotFound) {
		return httpjson.Write(w, http.StatusOK, validateResponse{IsValid: false})
	}
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, validateResponse{IsValid: act.State == vocab.StateChallengeSucceeded, State: act.State,
		StateUpdatedAt: vocab.FormatTime(act.StateUpdatedAt), UserID: act.UserID, Action: act.ActionCode, ActionCode: act.ActionCode,
		IdempotencyKey: act.IdempotencyKey, VerificationMethod: act.VerificationMethod})
}
