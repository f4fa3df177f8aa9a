package serverapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/token"
	"example.com/passwordless/emulator/internal/vocab"
)

// parseDate reads an ISO 8601 time, or a date (midnight UTC).
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse("2006-01-02", s)
	}
	return t, err
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
	EnrolledVerificationMethods []vocab.Method  `json:"enrolledVerificationMethods"`
	AllowedVerificationMethods  []vocab.Method  `json:"allowedVerificationMethods"`
	DefaultVerificationMethod   vocab.Method    `json:"defaultVerificationMethod,omitempty"`
}

// GetUser serves GET /v1/users/{userId}. Like the real service, a user nobody has tracked
// yet is simply not enrolled, so integrators can call getUser before a user's first action.
func (a *API) GetUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	u, e, err := a.store.User(r.Context(), userID)
	if err != nil {
		return err
	}
	resp := userResponse{IsEnrolled: e.IsEnrolled, EnrolledVerificationMethods: e.Methods, AllowedVerificationMethods: vocab.AllowedMethods,
		DefaultVerificationMethod: e.DefaultMethod}
	if u != nil {
		resp.Email, resp.EmailVerified, resp.PhoneNumber, resp.PhoneNumberVerified = u.Email, u.EmailVerified, u.PhoneNumber, u.PhoneNumberVerified
		resp.Username, resp.DisplayName, resp.Custom, resp.Locale = u.Username, u.DisplayName, u.Custom, u.Locale
	}
	return httpjson.Write(w, http.StatusOK, resp)
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
	DefaultVerificationMethod *vocab.Method   `json:"defaultVerificationMethod"`
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

// check validates the request and turns it into a state.UserUpdate.
func (req updateUserRequest) check() (state.UserUpdate, error) {
	u := state.UserUpdate{EmailVerified: req.EmailVerified, PhoneNumberVerified: req.PhoneNumberVerified}
	if req.Email != nil {
		email := ""
		if *req.Email != "" {
			var err error
			if email, err = checkEmail("email", *req.Email); err != nil {
				return u, err
			}
		}
		u.Email = &email
	}
	if req.PhoneNumber != nil {
		phone, err := checkContactPhone("phoneNumber", *req.PhoneNumber)
		if err != nil {
			return u, err
		}
		u.PhoneNumber = &phone
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  **string
	}{{"username", req.Username, &u.Username}, {"displayName", req.DisplayName, &u.DisplayName}, {"locale", req.Locale, &u.Locale}} {
		if f.v != nil {
			if err := httpjson.CheckLengths(f.name, *f.v); err != nil {
				return u, err
			}
			*f.dst = f.v
		}
	}
	if req.Custom != nil {
		custom, err := checkCustomObject(req.Custom)
		if err != nil {
			return u, err
		}
		u.Custom = &custom
	}
	if m := req.DefaultVerificationMethod; m != nil && *m != "" {
		if !m.Known() {
			return u, httpjson.BadRequest("defaultVerificationMethod %q is not a known verification method.", *m)
		}
		u.DefaultMethod = *m
	}
	return u, nil
}

// UpdateUser serves PATCH /v1/users/{userId}, and the POST form of it that the Ruby and
// Java SDKs (and older Node, .NET and Python ones) still send.
func (a *API) UpdateUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	var req updateUserRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	update, err := req.check()
	if err != nil {
		return err
	}
	u, err := a.store.UpdateUser(r.Context(), userID, update)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, updatedUserJSON(u))
}

func updatedUserJSON(u state.User) updatedUserResponse {
	return updatedUserResponse{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, PhoneNumber: u.PhoneNumber,
		PhoneNumberVerified: u.PhoneNumberVerified, Username: u.Username, DisplayName: u.DisplayName, Custom: u.Custom}
}

// DeleteUser serves DELETE /v1/users/{userId}[?actions=true] (state.Store.DeleteUser).
func (a *API) DeleteUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	withActions := false
	if v := r.URL.Query().Get("actions"); v != "" {
		if withActions, err = strconv.ParseBool(v); err != nil {
			return httpjson.BadRequest("actions must be true or false.")
		}
	}
	if err := a.store.DeleteUser(r.Context(), userID, withActions); err != nil {
		return err
	}
	a.log.Info("user deleted", "user_id", userID, "actions", withActions)
	return httpjson.Write(w, http.StatusOK, map[string]bool{"success": true})
}

// queryUsersItem is one user of GET /v1/users: the SDKs' fields (userId, email and phone with
// their verified flags, username) and the docs' example's (displayName, isEnrolled,
// enrolledVerificationMethods, createdAt).
type queryUsersItem struct {
	UserID                      string         `json:"userId"`
	Email                       string         `json:"email,omitempty"`
	EmailVerified               bool           `json:"emailVerified"`
	PhoneNumber                 string         `json:"phoneNumber,omitempty"`
	PhoneNumberVerified         bool           `json:"phoneNumberVerified"`
	Username                    string         `json:"username,omitempty"`
	DisplayName                 string         `json:"displayName,omitempty"`
	IsEnrolled                  bool           `json:"isEnrolled"`
	EnrolledVerificationMethods []vocab.Method `json:"enrolledVerificationMethods"`
	CreatedAt                   string         `json:"createdAt"`
}

type queryUsersResponse struct {
	Users               []queryUsersItem `json:"users"`
	LastEvaluatedUserID string           `json:"lastEvaluatedUserId,omitempty"`
	TokenPayload        *token.Claims    `json:"tokenPayload,omitempty"` // the decoded claims of ?token=
}

// QueryUsers serves GET /v1/users. At least one filter is required, as the Go and PHP SDKs'
// tests note the real API requires; ?token= finds the token's user and echoes its claims.
func (a *API) QueryUsers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	uq := state.UserQuery{Limit: 100, Email: vocab.NormalizeEmail(q.Get("email")), PhoneNumber: strings.TrimSpace(q.Get("phoneNumber")),
		Username: q.Get("username"), After: q.Get("lastEvaluatedUserId")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return httpjson.BadRequest("limit must be a whole number from 1 to 1000.")
		}
		uq.Limit = n
	}
	if q.Get("email") == "" && q.Get("phoneNumber") == "" && q.Get("username") == "" && q.Get("token") == "" {
		return httpjson.BadRequest("At least one of email, phoneNumber, username or token is required.")
	}
	var resp queryUsersResponse
	if v := q.Get("token"); v != "" {
		claims, err := a.tokens.Parse(v)
		if err != nil {
			return httpjson.BadRequest("token is invalid or has expired.")
		}
		resp.TokenPayload, uq.UserID = claims, claims.Subject
	}
	users, next, err := a.store.QueryUsers(r.Context(), uq)
	if err != nil {
		return err
	}
	resp.Users, resp.LastEvaluatedUserID = make([]queryUsersItem, 0, len(users)), next
	for _, u := range users {
		resp.Users = append(resp.Users, queryUsersItem{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, PhoneNumber: u.PhoneNumber,
			PhoneNumberVerified: u.PhoneNumberVerified, Username: u.Username, DisplayName: u.DisplayName, IsEnrolled: u.IsEnrolled,
			EnrolledVerificationMethods: u.Methods, CreatedAt: vocab.FormatTime(u.CreatedAt)})
	}
	return httpjson.Write(w, http.StatusOK, resp)
}

// GetAuthenticators serves GET /v1/users/{userId}/authenticators: an empty list for an
// unknown user, as GetUser answers any user.
func (a *API) GetAuthenticators(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	auths, err := a.store.Authenticators(r.Context(), userID)
	if err != nil {
		return err
	}
	passkeys, err := a.store.Passkeys(r.Context(), userID)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, httpjson.Authenticators(auths, passkeys, false))
}

type enrollRequest struct {
	VerificationMethod vocab.Method `json:"verificationMethod"`
	OOBChannel         vocab.Method `json:"oobChannel"` // older form of verificationMethod
	Email              string       `json:"email"`
	PhoneNumber        string       `json:"phoneNumber"`
	OTPURI             string       `json:"otpUri"` // AUTHENTICATOR_APP
	IsDefault          bool         `json:"isDefault"`
}

type enrollResponse struct {
	Authenticator httpjson.UserAuthenticator `json:"authenticator"`
	RecoveryCodes []string                   `json:"recoveryCodes,omitempty"`
}

// EnrollAuthenticator serves POST /v1/users/{userId}/authenticators (state.Store.Enroll).
func (a *API) EnrollAuthenticator(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	var req enrollRequest
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	method, name := req.VerificationMethod, "verificationMethod"
	if method == "" && req.OOBChannel != "" {
		method, name = req.OOBChannel, "oobChannel"
	}
	if method == vocab.MethodAuthenticatorApp {
		if req.OTPURI == "" || len(req.OTPURI) > 2048 {
			return httpjson.BadRequest("otpUri is required for AUTHENTICATOR_APP (an otpauth://totp/… URI, at most 2,048 characters).")
		}
		au, err := a.store.EnrollTOTP(r.Context(), userID, req.OTPURI, req.IsDefault)
		if err != nil {
			return err
		}
		return httpjson.Write(w, http.StatusOK, enrollResponse{Authenticator: httpjson.Authenticator(au, nil, false)})
	}
	if method != vocab.MethodEmailMagicLink { // enrolled by its email, as EMAIL_OTP
		if err := checkOTPMethod(name, method); err != nil {
			return err
		}
	}
	email, phone, err := checkRecipient(method, req.Email, req.PhoneNumber)
	if err != nil {
		return err
	}
	au, err := a.store.Enroll(r.Context(), userID, method, email, phone, req.IsDefault)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, enrollResponse{Authenticator: httpjson.Authenticator(au, nil, false)})
}

// DeleteAuthenticator serves DELETE /v1/users/{userId}/authenticators/{userAuthenticatorId}.
func (a *API) DeleteAuthenticator(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteAuthenticator(r.Context(), userID, r.PathValue("userAuthenticatorId")); err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, map[string]bool{"success": true})
}
