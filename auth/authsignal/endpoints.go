package authsignal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Challenge sends a one-time code by email, SMS or WhatsApp (POST /challenge).
// Set ChallengeID to re-send the code of an existing challenge.
func (c *Client) Challenge(ctx context.Context, req ChallengeRequest) (*ChallengeResponse, error) {
	var out ChallengeResponse
	if err := c.do(ctx, call{method: http.MethodPost, op: "/challenge", path: "/challenge", body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify checks a one-time code (POST /verify). A wrong code is not an error:
// see VerifyResponse.IsVerified and FailureReason.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*VerifyResponse, error) {
	var out VerifyResponse
	if err := c.do(ctx, call{method: http.MethodPost, op: "/verify", path: "/verify", body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Claim binds a verified challenge to a user (POST /claim).
func (c *Client) Claim(ctx context.Context, req ClaimRequest) (*ClaimResponse, error) {
	var out ClaimResponse
	if err := c.do(ctx, call{method: http.MethodPost, op: "/claim", path: "/claim", body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetChallenge looks up a challenge (GET /challenges).
func (c *Client) GetChallenge(ctx context.Context, req GetChallengeRequest) (*GetChallengeResponse, error) {
	q := url.Values{}
	setIf(q, "challengeId", req.ChallengeID)
	setIf(q, "userId", req.UserID)
	setIf(q, "action", req.Action)
	setIf(q, "verificationMethod", req.VerificationMethod)
	var out GetChallengeResponse
	if err := c.do(ctx, call{method: http.MethodGet, op: "/challenges", path: "/challenges", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Track records an action for a user and returns the rules' verdict
// (POST /users/{userId}/actions/{action}).
func (c *Client) Track(ctx context.Context, userID, action string, attrs TrackAttributes) (*TrackResponse, error) {
	const op = "/users/{userId}/actions/{action}"
	p, err := buildPath(http.MethodPost, op, "/users/%s/actions/%s", userID, action)
	if err != nil {
		return nil, err
	}
	var out TrackResponse
	if err := c.do(ctx, call{method: http.MethodPost, op: op, path: p, body: attrs, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAction reads a tracked action (GET /users/{userId}/actions/{action}/{idempotencyKey}).
func (c *Client) GetAction(ctx context.Context, userID, action, idempotencyKey string) (*Action, error) {
	const op = "/users/{userId}/actions/{action}/{idempotencyKey}"
	p, err := buildPath(http.MethodGet, op, "/users/%s/actions/%s/%s", userID, action, idempotencyKey)
	if err != nil {
		return nil, err
	}
	var out Action
	if err := c.do(ctx, call{method: http.MethodGet, op: op, path: p, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateAction sets the state of a tracked action, e.g. a review decision
// (PATCH /users/{userId}/actions/{action}/{idempotencyKey}).
func (c *Client) UpdateAction(ctx context.Context, userID, action, idempotencyKey string, req UpdateActionRequest) (*Action, error) {
	const op = "/users/{userId}/actions/{action}/{idempotencyKey}"
	p, err := buildPath(http.MethodPatch, op, "/users/%s/actions/%s/%s", userID, action, idempotencyKey)
	if err != nil {
		return nil, err
	}
	var out Action
	if err := c.do(ctx, call{method: http.MethodPatch, op: op, path: p, body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// QueryActions lists a user's actions (GET /users/{userId}/actions).
func (c *Client) QueryActions(ctx context.Context, userID string, req QueryActionsRequest) ([]ActionSummary, error) {
	const op = "/users/{userId}/actions"
	p, err := buildPath(http.MethodGet, op, "/users/%s/actions", userID)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	setIf(q, "codes", strings.Join(req.Codes, ","))
	setIf(q, "fromDate", req.FromDate)
	setIf(q, "state", req.State)
	var out []ActionSummary
	if err := c.do(ctx, call{method: http.MethodGet, op: op, path: p, query: q, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// GetUser reads a user (GET /users/{userId}).
func (c *Client) GetUser(ctx context.Context, userID string) (*User, error) {
	const op = "/users/{userId}"
	p, err := buildPath(http.MethodGet, op, "/users/%s", userID)
	if err != nil {
		return nil, err
	}
	var out User
	if err := c.do(ctx, call{method: http.MethodGet, op: op, path: p, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateUser changes the fields set in req (PATCH /users/{userId}).
func (c *Client) UpdateUser(ctx context.Context, userID string, req UpdateUserRequest) (*UpdatedUser, error) {
	const op = "/users/{userId}"
	p, err := buildPath(http.MethodPatch, op, "/users/%s", userID)
	if err != nil {
		return nil, err
	}
	var out UpdatedUser
	if err := c.do(ctx, call{method: http.MethodPatch, op: op, path: p, body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser deletes a user with their authenticators, and with opts.Actions their
// actions too (DELETE /users/{userId}).
func (c *Client) DeleteUser(ctx context.Context, userID string, opts DeleteUserOptions) error {
	const op = "/users/{userId}"
	p, err := buildPath(http.MethodDelete, op, "/users/%s", userID)
	if err != nil {
		return err
	}
	if opts.Actions {
		p += "?actions=true"
	}
	return c.deleteCall(ctx, op, p)
}

// QueryUsers finds users by email, phone number or username (GET /users).
func (c *Client) QueryUsers(ctx context.Context, req QueryUsersRequest) (*QueryUsersResponse, error) {
	q := url.Values{}
	setIf(q, "email", req.Email)
	setIf(q, "phoneNumber", req.PhoneNumber)
	setIf(q, "username", req.Username)
	setIf(q, "token", req.Token)
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	setIf(q, "lastEvaluatedUserId", req.LastEvaluatedUserID)
	var out QueryUsersResponse
	if err := c.do(ctx, call{method: http.MethodGet, op: "/users", path: "/users", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAuthenticators lists a user's authenticators (GET /users/{userId}/authenticators).
func (c *Client) GetAuthenticators(ctx context.Context, userID string) ([]UserAuthenticator, error) {
	const op = "/users/{userId}/authenticators"
	p, err := buildPath(http.MethodGet, op, "/users/%s/authenticators", userID)
	if err != nil {
		return nil, err
	}
	var out []UserAuthenticator
	if err := c.do(ctx, call{method: http.MethodGet, op: op, path: p, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// EnrollAuthenticator enrolls an email or phone number that you verified yourself
// (POST /users/{userId}/authenticators).
func (c *Client) EnrollAuthenticator(ctx context.Context, userID string, req EnrollAuthenticatorRequest) (*EnrollAuthenticatorResponse, error) {
	const op = "/users/{userId}/authenticators"
	p, err := buildPath(http.MethodPost, op, "/users/%s/authenticators", userID)
	if err != nil {
		return nil, err
	}
	var out EnrollAuthenticatorResponse
	if err := c.do(ctx, call{method: http.MethodPost, op: op, path: p, body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAuthenticator removes one of a user's authenticators
// (DELETE /users/{userId}/authenticators/{userAuthenticatorId}).
func (c *Client) DeleteAuthenticator(ctx context.Context, userID, authenticatorID string) error {
	const op = "/users/{userId}/authenticators/{userAuthenticatorId}"
	p, err := buildPath(http.MethodDelete, op, "/users/%s/authenticators/%s", userID, authenticatorID)
	if err != nil {
		return err
	}
	return c.deleteCall(ctx, op, p)
}

// Validate checks the token the pre-built UI appended to the redirect URL (POST /validate).
func (c *Client) Validate(ctx context.Context, req ValidateRequest) (*ValidateResponse, error) {
	var out ValidateResponse
	if err := c.do(ctx, call{method: http.MethodPost, op: "/validate", path: "/validate", body: req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// deleteCall sends a DELETE that answers {"success": true}.
func (c *Client) deleteCall(ctx context.Context, op, p string) error {
	var out struct {
		Success *bool `json:"success"`
	}
	if err := c.do(ctx, call{method: http.MethodDelete, op: op, path: p, out: &out}); err != nil {
		return err
	}
	if out.Success != nil && !*out.Success {
		return fmt.Errorf("authsignal: DELETE %s: the service answered success=false", op)
	}
	return nil
}

// buildPath fills the %s verbs of format with url.PathEscape'd params. An empty
// param is refused: an empty segment would silently address another endpoint.
func buildPath(method, op, format string, params ...string) (string, error) {
	escaped := make([]any, len(params))
	for i, p := range params {
		if p == "" {
			return "", fmt.Errorf("authsignal: %s %s: %w", method, op, errEmptyPathParam)
		}
		if p == "." || p == ".." {
			// PathEscape leaves dots alone, and a dot segment would be resolved away.
			escaped[i] = strings.Repeat("%2E", len(p))
			continue
		}
		escaped[i] = url.PathEscape(p)
	}
	return fmt.Sprintf(format, escaped...), nil
}

var errEmptyPathParam = errors.New("empty path parameter (user id, action, idempotency key or authenticator id)")

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// The Client API, called from the server with a track token (as the browser SDK would):
// for an email magic link, whose sending and result the server keeps to itself.

// ChallengeEmailMagicLink emails the token's user a magic link to their enrolled
// EMAIL_MAGIC_LINK address (POST /client/challenge/email-magic-link).
func (c *Client) ChallengeEmailMagicLink(ctx context.Context, token string) error {
	var out struct {
		ChallengeID string `json:"challengeId"`
	}
	return c.do(ctx, call{method: http.MethodPost, op: "/client/challenge/email-magic-link", path: "/client/challenge/email-magic-link", body: struct{}{}, out: &out, bearer: token})
}

// MagicLinkStatus is the answer of POST /client/verify/email-magic-link/finalize.
type MagicLinkStatus struct {
	IsVerified  bool   `json:"isVerified"`
	AccessToken string `json:"accessToken,omitempty"` // once verified: validate it
}

// FinalizeEmailMagicLink reports whether the token's magic link was opened.
func (c *Client) FinalizeEmailMagicLink(ctx context.Context, token string) (*MagicLinkStatus, error) {
	var out MagicLinkStatus
	err := c.do(ctx, call{method: http.MethodPost, op: "/client/verify/email-magic-link/finalize", path: "/client/verify/email-magic-link/finalize", body: struct{}{}, out: &out, bearer: token})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
