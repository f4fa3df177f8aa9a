// Package callconnect serves Authsignal's Call Connect API (POST /call/start, /call/finish),
// which a call centre uses to send a caller a link that confirms who they are.
package callconnect

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// API holds the Call Connect API's dependencies; its methods are the handlers.
type API struct {
	store   *state.Store
	log     *slog.Logger
	baseURL func(*http.Request) string
}

// New returns the Call Connect API over store.
func New(store *state.Store, log *slog.Logger, baseURL func(*http.Request) string) *API {
	return &API{store: store, log: log, baseURL: baseURL}
}

type startRequest struct {
	ReferenceID string        `json:"referenceId"`
	PhoneNumber string        `json:"phoneNumber"`
	Country     string        `json:"country"`
	UserID      string        `json:"userId"`
	Username    string        `json:"username"`
	Channel     vocab.Channel `json:"channel"`
	Email       string        `json:"email"`
	Locale      string        `json:"locale"`
	ActionCode  string        `json:"actionCode"`
}

type startResponse struct {
	MessageID   string        `json:"messageId"`
	Channel     vocab.Channel `json:"channel"`
	PhoneNumber string        `json:"phoneNumber,omitempty"`
	Email       string        `json:"email,omitempty"`
}

// localeRE is the documented locale pattern (docs: api-reference/call-connect-api/start-call-connect).
var localeRE = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)

// check validates a start request and turns it into a state.NewCall.
func (req startRequest) check() (state.NewCall, error) {
	n := state.NewCall{ReferenceID: req.ReferenceID, UserID: req.UserID, Username: req.Username, ActionCode: req.ActionCode, Locale: req.Locale, Channel: req.Channel}
	switch {
	case req.ReferenceID == "":
		return n, httpjson.BadRequest("referenceId is required.")
	case len(req.ReferenceID) > 255 || len(req.Username) > 255:
		return n, httpjson.BadRequest("referenceId and username are at most 255 characters.")
	case req.Locale != "" && !localeRE.MatchString(req.Locale):
		return n, httpjson.BadRequest("locale must look like en or en-US.")
	}
	if n.ActionCode == "" {
		n.ActionCode = "call" // the documented default
	}
	if err := vocab.ValidateActionCode(n.ActionCode); err != nil {
		return n, httpjson.BadRequest("actionCode: %s.", err)
	}
	if req.UserID != "" {
		if err := vocab.ValidateUserID(req.UserID); err != nil {
			return n, httpjson.BadRequest("%s.", err)
		}
	}
	if n.Channel == "" {
		n.Channel = vocab.ChannelWhatsApp // what the Node SDK's integration test gets for a phone number
		if req.PhoneNumber == "" && req.Email != "" {
			n.Channel = vocab.ChannelEmail
		}
	}
	switch n.Channel {
	case vocab.ChannelEmail:
		email := vocab.NormalizeEmail(req.Email)
		if err := vocab.ValidateEmail(email); err != nil {
			return n, httpjson.BadRequest("email is required for EMAIL and must be valid: %s.", err)
		}
		n.To = email
	case vocab.ChannelSMS, vocab.ChannelWhatsApp:
		phone := strings.TrimSpace(req.PhoneNumber)
		if err := vocab.ValidatePhone(phone); err != nil {
			if req.Country != "" {
				return n, httpjson.BadRequest("phoneNumber must be in E.164 format: the emulator does not read local numbers with country.")
			}
			return n, httpjson.BadRequest("phoneNumber is required for %s and must be valid: %s.", n.Channel, err)
		}
		n.To = phone
	default:
		return n, httpjson.BadRequest("channel must be WHATSAPP, SMS or EMAIL.")
	}
	return n, nil
}

// Start serves POST /call/start: a message with the caller's link, to the outbox.
func (a *API) Start(w http.ResponseWriter, r *http.Request) error {
	var req startRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	n, err := req.check()
	if err != nil {
		return err
	}
	n.LinkBase = a.baseURL(r)
	m, err := a.store.StartCall(r.Context(), n)
	if err != nil {
		return err
	}
	resp := startResponse{MessageID: m.ID, Channel: n.Channel}
	if n.Channel == vocab.ChannelEmail {
		resp.Email = n.To
	} else {
		resp.PhoneNumber = n.To
	}
	return httpjson.Write(w, http.StatusOK, resp)
}

type finishRequest struct {
	ReferenceID string          `json:"referenceId"`
	State       vocab.State     `json:"state"`
	UserID      string          `json:"userId"`
	Payload     json.RawMessage `json:"payload"`
}

// Finish serves POST /call/finish: how the call ended, CHALLENGE_SUCCEEDED or
// CHALLENGE_FAILED, with an optional payload object.
func (a *API) Finish(w http.ResponseWriter, r *http.Request) error {
	var req finishRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.ReferenceID == "":
		return httpjson.BadRequest("referenceId is required.")
	case req.State != vocab.StateChallengeSucceeded && req.State != vocab.StateChallengeFailed:
		return httpjson.BadRequest("state must be CHALLENGE_SUCCEEDED or CHALLENGE_FAILED.")
	}
	if req.UserID != "" {
		if err := vocab.ValidateUserID(req.UserID); err != nil {
			return httpjson.BadRequest("%s.", err)
		}
	}
	payload := ""
	if p := strings.TrimSpace(string(req.Payload)); p != "" && p != "null" {
		if !strings.HasPrefix(p, "{") {
			return httpjson.BadRequest("payload must be an object.")
		}
		payload = p
	}
	if err := a.store.FinishCall(r.Context(), req.ReferenceID, req.State, req.UserID, payload); err != nil {
		return err
	}
	a.log.Info("call finished", "state", req.State)
	return httpjson.Write(w, http.StatusOK, map[string]bool{"success": true})
}

type callResponse struct {
	ReferenceID string          `json:"referenceId"`
	MessageID   string          `json:"messageId"`
	Channel     vocab.Channel   `json:"channel"`
	To          string          `json:"to"`
	UserID      string          `json:"userId,omitempty"`
	Username    string          `json:"username,omitempty"`
	ActionCode  string          `json:"actionCode"`
	State       vocab.State     `json:"state,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	StartedAt   string          `json:"startedAt"`
	FinishedAt  string          `json:"finishedAt,omitempty"`
}

// GetCall serves GET /emulator/calls/{referenceId}, the page the caller's link opens in the
// emulator: the call as recorded.
func (a *API) GetCall(w http.ResponseWriter, r *http.Request) error {
	c, err := a.store.Call(r.Context(), r.PathValue("referenceId"))
	if err != nil {
		return err
	}
	resp := callResponse{ReferenceID: c.ReferenceID, MessageID: c.MessageID, Channel: c.Channel, To: c.To, UserID: c.UserID, Username: c.Username,
		ActionCode: c.ActionCode, State: c.State, StartedAt: vocab.FormatTime(c.StartedAt), FinishedAt: vocab.FormatOptionalTime(c.FinishedAt)}
	if c.Payload != "" {
		resp.Payload = json.RawMessage(c.Payload)
	}
	return httpjson.Write(w, http.StatusOK, resp)
}
