package authsignal

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "sk_test_0123456789abcdef"

// recorded is what the fake server saw of one request.
type recorded struct {
	Method     string
	EscapedURI string // path as sent, still escaped, without the query
	Query      url.Values
	Body       []byte
	Header     http.Header
	User, Pass string
	HasAuth    bool
}

// recorder is an httptest server that records requests and answers with a fixed response.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
	status   int
	body     string
	srv      *httptest.Server
}

func newRecorder(t *testing.T, status int, body string) *recorder {
	t.Helper()
	rec := &recorder{status: status, body: body}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{
			Method: r.Method, EscapedURI: strings.SplitN(r.RequestURI, "?", 2)[0], Query: r.URL.Query(),
			Body: data, Header: r.Header.Clone(), User: user, Pass: pass, HasAuth: ok,
		})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.status)
		io.WriteString(w, rec.body)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) client(opts ...Option) *Client {
	return New(testSecret, append([]Option{WithBaseURL(rec.srv.URL + "/v1/"), WithRetryBackoff(0)}, opts...)...)
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.requests...)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	if want == "" {
		if len(got) != 0 {
			t.Errorf("body = %s, want none", got)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body = %s\nwant   %s", got, want)
	}
}

func boolPtr(b bool) *bool { return &b }

func TestMethods(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func(c *Client) (any, error)
		respond string
		method  string
		path    string // escaped, under /v1
		query   url.Values
		body    string // JSON; "" = no body
		want    any
	}{
		{
			name: "challenge email",
			call: func(c *Client) (any, error) {
				return c.Challenge(ctx, ChallengeRequest{VerificationMethod: MethodEmailOTP, Action: "signInWithEmail", Email: "a@example.com", Locale: "en", IPAddress: "10.0.0.1", UserAgent: "UA", DeviceID: "dev1"})
			},
			respond: `{"challengeId":"ch_1","idempotencyKey":"ik_1","expiresAt":1700000600}`,
			method:  "POST", path: "/v1/challenge",
			body: `{"verificationMethod":"EMAIL_OTP","action":"signInWithEmail","email":"a@example.com","locale":"en","ipAddress":"10.0.0.1","userAgent":"UA","deviceId":"dev1"}`,
			want: &ChallengeResponse{ChallengeID: "ch_1", IdempotencyKey: "ik_1", ExpiresAt: 1700000600},
		},
		{
			name: "challenge whatsapp resend with every field",
			call: func(c *Client) (any, error) {
				return c.Challenge(ctx, ChallengeRequest{VerificationMethod: MethodWhatsApp, Action: "signIn", PhoneNumber: "+15551234567", SMSChannel: SMSChannelWhatsApp,
					IdempotencyKey: "ik", UserID: "u1", Scope: ScopeAddAuthenticators, Custom: map[string]any{"k": "v"}, ChallengeID: "ch_9"})
			},
			respond: `{"challengeId":"ch_9","idempotencyKey":"ik","expiresAt":5}`,
			method:  "POST", path: "/v1/challenge",
			body: `{"verificationMethod":"WHATSAPP","action":"signIn","phoneNumber":"+15551234567","smsChannel":"WHATSAPP","idempotencyKey":"ik","userId":"u1","scope":"add:authenticators","custom":{"k":"v"},"challengeId":"ch_9"}`,
			want: &ChallengeResponse{ChallengeID: "ch_9", IdempotencyKey: "ik", ExpiresAt: 5},
		},
		{
			name: "verify",
			call: func(c *Client) (any, error) {
				return c.Verify(ctx, VerifyRequest{ChallengeID: "ch_1", VerificationCode: "123456"})
			},
			respond: `{"isVerified":true,"email":"a@example.com","verificationMethod":"EMAIL_OTP"}`,
			method:  "POST", path: "/v1/verify",
			body: `{"challengeId":"ch_1","verificationCode":"123456"}`,
			want: &VerifyResponse{IsVerified: true, Email: "a@example.com", VerificationMethod: MethodEmailOTP},
		},
		{
			name: "verify wrong code",
			call: func(c *Client) (any, error) {
				return c.Verify(ctx, VerifyRequest{ChallengeID: "ch_1", VerificationCode: "000000"})
			},
			respond: `{"isVerified":false,"failureReason":"MAX_ATTEMPTS_EXCEEDED"}`,
			method:  "POST", path: "/v1/verify",
			body: `{"challengeId":"ch_1","verificationCode":"000000"}`,
			want: &VerifyResponse{FailureReason: FailureMaxAttemptsExceeded},
		},
		{
			name: "claim",
			call: func(c *Client) (any, error) {
				return c.Claim(ctx, ClaimRequest{ChallengeID: "ch_1", UserID: "u1"})
			},
			respond: `{"token":"tok","verificationMethod":"SMS"}`,
			method:  "POST", path: "/v1/claim",
			body: `{"challengeId":"ch_1","userId":"u1"}`,
			want: &ClaimResponse{Token: "tok", VerificationMethod: MethodSMS},
		},
		{
			name: "claim skipping the check",
			call: func(c *Client) (any, error) {
				return c.Claim(ctx, ClaimRequest{ChallengeID: "ch_1", UserID: "u1", SkipVerificationCheck: true})
			},
			respond: `{"token":"tok","verificationMethod":"SMS"}`,
			method:  "POST", path: "/v1/claim",
			body: `{"challengeId":"ch_1","userId":"u1","skipVerificationCheck":true}`,
			want: &ClaimResponse{Token: "tok", VerificationMethod: MethodSMS},
		},
		{
			name: "get challenge",
			call: func(c *Client) (any, error) {
				return c.GetChallenge(ctx, GetChallengeRequest{ChallengeID: "ch 1", Action: "signIn"})
			},
			respond: `{"challengeId":"ch 1","expiresAt":9,"verificationMethod":"SMS","smsChannel":"DEFAULT","phoneNumber":"+15551234567","action":"signIn"}`,
			method:  "GET", path: "/v1/challenges",
			query: url.Values{"challengeId": {"ch 1"}, "action": {"signIn"}},
			want:  &GetChallengeResponse{ChallengeID: "ch 1", ExpiresAt: 9, VerificationMethod: MethodSMS, SMSChannel: SMSChannelDefault, PhoneNumber: "+15551234567", Action: "signIn"},
		},
		{
			name: "track",
			call: func(c *Client) (any, error) {
				return c.Track(ctx, "u1", "withdrawal", TrackAttributes{IdempotencyKey: "w1", RedirectURL: "http://app/cb", Custom: map[string]any{"amount": 1500.25}})
			},
			respond: `{"state":"CHALLENGE_REQUIRED","idempotencyKey":"w1","url":"http://em/challenge?token=t","token":"t","isEnrolled":true,"enrolledVerificationMethods":["EMAIL_OTP"],"allowedVerificationMethods":["EMAIL_OTP","SMS"],"defaultVerificationMethod":"EMAIL_OTP","ruleIds":["r1"]}`,
			method:  "POST", path: "/v1/users/u1/actions/withdrawal",
			body: `{"idempotencyKey":"w1","redirectUrl":"http://app/cb","custom":{"amount":1500.25}}`,
			want: &TrackResponse{State: StateChallengeRequired, IdempotencyKey: "w1", URL: "http://em/challenge?token=t", Token: "t", IsEnrolled: true,
				EnrolledVerificationMethods: []string{"EMAIL_OTP"}, AllowedVerificationMethods: []string{"EMAIL_OTP", "SMS"}, DefaultVerificationMethod: "EMAIL_OTP", RuleIDs: []string{"r1"}},
		},
		{
			name: "track with no attributes sends an empty object",
			call: func(c *Client) (any, error) {
				return c.Track(ctx, "u1", "signIn", TrackAttributes{})
			},
			respond: `{"state":"ALLOW","idempotencyKey":"gen"}`,
			method:  "POST", path: "/v1/users/u1/actions/signIn",
			body: `{}`,
			want: &TrackResponse{State: StateAllow, IdempotencyKey: "gen"},
		},
		{
			name: "get action",
			call: func(c *Client) (any, error) {
				return c.GetAction(ctx, "u1", "withdrawal", "w1")
			},
			respond: `{"state":"REVIEW_REQUIRED","stateUpdatedAt":"2024-01-01T00:00:00.000Z","createdAt":"2024-01-01T00:00:00.000Z","ruleIds":["r1"],"rules":[{"ruleId":"r1","name":"Big","description":"d"}],"output":{"x":1}}`,
			method:  "GET", path: "/v1/users/u1/actions/withdrawal/w1",
			want: &Action{State: StateReviewRequired, StateUpdatedAt: "2024-01-01T00:00:00.000Z", CreatedAt: "2024-01-01T00:00:00.000Z", RuleIDs: []string{"r1"},
				Rules: []Rule{{RuleID: "r1", Name: "Big", Description: "d"}}, Output: map[string]any{"x": float64(1)}},
		},
		{
			name: "update action",
			call: func(c *Client) (any, error) {
				return c.UpdateAction(ctx, "u1", "withdrawal", "w1", UpdateActionRequest{State: StateReviewSucceeded})
			},
			respond: `{"state":"REVIEW_SUCCEEDED","stateUpdatedAt":"s","createdAt":"c"}`,
			method:  "PATCH", path: "/v1/users/u1/actions/withdrawal/w1",
			body: `{"state":"REVIEW_SUCCEEDED"}`,
			want: &Action{State: StateReviewSucceeded, StateUpdatedAt: "s", CreatedAt: "c"},
		},
		{
			name: "query actions",
			call: func(c *Client) (any, error) {
				return c.QueryActions(ctx, "u1", QueryActionsRequest{Codes: []string{"withdrawal", "signIn"}, FromDate: "2024-01-01T00:00:00Z", State: StateAllow})
			},
			respond: `[{"actionCode":"withdrawal","idempotencyKey":"w1","createdAt":"c","updatedAt":"u","state":"ALLOW","stateUpdatedAt":"s","verificationMethod":"SMS","verifiedByAuthenticatorId":"a1","ipAddress":"1.2.3.4","userAgent":"UA"}]`,
			method:  "GET", path: "/v1/users/u1/actions",
			query: url.Values{"codes": {"withdrawal,signIn"}, "fromDate": {"2024-01-01T00:00:00Z"}, "state": {"ALLOW"}},
			want: []ActionSummary{{ActionCode: "withdrawal", IdempotencyKey: "w1", CreatedAt: "c", UpdatedAt: "u", State: StateAllow, StateUpdatedAt: "s",
				VerificationMethod: "SMS", VerifiedByAuthenticatorID: "a1", IPAddress: "1.2.3.4", UserAgent: "UA"}},
		},
		{
			name: "query actions without filters",
			call: func(c *Client) (any, error) {
				return c.QueryActions(ctx, "u1", QueryActionsRequest{})
			},
			respond: `[]`,
			method:  "GET", path: "/v1/users/u1/actions",
			query: url.Values{},
			want:  []ActionSummary{},
		},
		{
			name: "get user",
			call: func(c *Client) (any, error) {
				return c.GetUser(ctx, "u1")
			},
			respond: `{"isEnrolled":true,"email":"a@example.com","emailVerified":true,"phoneNumber":"+15551234567","phoneNumberVerified":false,"username":"al","displayName":"Al","custom":{"tier":"gold"},"enrolledVerificationMethods":["EMAIL_OTP"],"allowedVerificationMethods":["EMAIL_OTP","SMS"],"defaultVerificationMethod":"EMAIL_OTP"}`,
			method:  "GET", path: "/v1/users/u1",
			want: &User{IsEnrolled: true, Email: "a@example.com", EmailVerified: true, PhoneNumber: "+15551234567", Username: "al", DisplayName: "Al",
				Custom: map[string]any{"tier": "gold"}, EnrolledVerificationMethods: []string{"EMAIL_OTP"}, AllowedVerificationMethods: []string{"EMAIL_OTP", "SMS"}, DefaultVerificationMethod: "EMAIL_OTP"},
		},
		{
			name: "update user",
			call: func(c *Client) (any, error) {
				return c.UpdateUser(ctx, "u1", UpdateUserRequest{DisplayName: "Al", EmailVerified: boolPtr(false), Custom: map[string]any{"tier": "gold"}})
			},
			respond: `{"userId":"u1","email":"a@example.com","displayName":"Al","custom":{"tier":"gold"}}`,
			method:  "PATCH", path: "/v1/users/u1",
			body: `{"emailVerified":false,"displayName":"Al","custom":{"tier":"gold"}}`,
			want: &UpdatedUser{UserID: "u1", Email: "a@example.com", DisplayName: "Al", Custom: map[string]any{"tier": "gold"}},
		},
		{
			name: "query users by token",
			call: func(c *Client) (any, error) {
				return c.QueryUsers(ctx, QueryUsersRequest{Token: "tok"})
			},
			respond: `{"users":[{"userId":"u1","emailVerified":false,"phoneNumberVerified":false,"isEnrolled":true}],"tokenPayload":{"sub":"u1"}}`,
			method:  "GET", path: "/v1/users", query: url.Values{"token": {"tok"}},
			want: &QueryUsersResponse{Users: []UserSummary{{UserID: "u1", IsEnrolled: true}}, TokenPayload: json.RawMessage(`{"sub":"u1"}`)},
		},
		{
			name: "delete user",
			call: func(c *Client) (any, error) {
				return nil, c.DeleteUser(ctx, "u1", DeleteUserOptions{})
			},
			respond: `{"success":true}`,
			method:  "DELETE", path: "/v1/users/u1",
		},
		{
			name: "delete user and actions",
			call: func(c *Client) (any, error) {
				return nil, c.DeleteUser(ctx, "u1", DeleteUserOptions{Actions: true})
			},
			respond: `{"success":true}`,
			method:  "DELETE", path: "/v1/users/u1", query: url.Values{"actions": {"true"}},
		},
		{
			name: "query users",
			call: func(c *Client) (any, error) {
				return c.QueryUsers(ctx, QueryUsersRequest{Email: "a+b@example.com", Limit: 10, LastEvaluatedUserID: "u0"})
			},
			respond: `{"users":[{"userId":"u1","email":"a+b@example.com","emailVerified":true,"phoneNumberVerified":false}],"lastEvaluatedUserId":"u1"}`,
			method:  "GET", path: "/v1/users",
			query: url.Values{"email": {"a+b@example.com"}, "limit": {"10"}, "lastEvaluatedUserId": {"u0"}},
			want:  &QueryUsersResponse{Users: []UserSummary{{UserID: "u1", Email: "a+b@example.com", EmailVerified: true}}, LastEvaluatedUserID: "u1"},
		},
		{
			name: "query users by phone",
			call: func(c *Client) (any, error) {
				return c.QueryUsers(ctx, QueryUsersRequest{PhoneNumber: "+15551234567", Username: "al"})
			},
			respond: `{"users":[]}`,
			method:  "GET", path: "/v1/users",
			query: url.Values{"phoneNumber": {"+15551234567"}, "username": {"al"}},
			want:  &QueryUsersResponse{Users: []UserSummary{}},
		},
		{
			name: "get authenticators",
			call: func(c *Client) (any, error) {
				return c.GetAuthenticators(ctx, "u1")
			},
			respond: `[{"userAuthenticatorId":"a1","userId":"u1","verificationMethod":"EMAIL_OTP","email":"a@example.com","createdAt":"c","verifiedAt":"v","lastVerifiedAt":"l","isDefault":true}]`,
			method:  "GET", path: "/v1/users/u1/authenticators",
			want: []UserAuthenticator{{UserAuthenticatorID: "a1", UserID: "u1", VerificationMethod: MethodEmailOTP, Email: "a@example.com", CreatedAt: "c", VerifiedAt: "v", LastVerifiedAt: "l", IsDefault: true}},
		},
		{
			name: "enroll authenticator",
			call: func(c *Client) (any, error) {
				return c.EnrollAuthenticator(ctx, "u1", EnrollAuthenticatorRequest{VerificationMethod: MethodSMS, PhoneNumber: "+15551234567", IsDefault: true})
			},
			respond: `{"authenticator":{"userAuthenticatorId":"a2","userId":"u1","verificationMethod":"SMS","phoneNumber":"+15551234567","createdAt":"c"},"recoveryCodes":["r1"]}`,
			method:  "POST", path: "/v1/users/u1/authenticators",
			body: `{"verificationMethod":"SMS","phoneNumber":"+15551234567","isDefault":true}`,
			want: &EnrollAuthenticatorResponse{Authenticator: UserAuthenticator{UserAuthenticatorID: "a2", UserID: "u1", VerificationMethod: MethodSMS, PhoneNumber: "+15551234567", CreatedAt: "c"}, RecoveryCodes: []string{"r1"}},
		},
		{
			name: "delete authenticator",
			call: func(c *Client) (any, error) {
				return nil, c.DeleteAuthenticator(ctx, "u1", "a2")
			},
			respond: `{"success":true}`,
			method:  "DELETE", path: "/v1/users/u1/authenticators/a2",
		},
		{
			name: "validate",
			call: func(c *Client) (any, error) {
				return c.Validate(ctx, ValidateRequest{Token: "jwt", UserID: "u1", Action: "withdrawal"})
			},
			respond: `{"isValid":true,"state":"CHALLENGE_SUCCEEDED","stateUpdatedAt":"s","userId":"u1","action":"withdrawal","actionCode":"withdrawal","idempotencyKey":"w1","verificationMethod":"EMAIL_OTP"}`,
			method:  "POST", path: "/v1/validate",
			body: `{"token":"jwt","userId":"u1","action":"withdrawal"}`,
			want: &ValidateResponse{IsValid: true, State: StateChallengeSucceeded, StateUpdatedAt: "s", UserID: "u1", Action: "withdrawal", ActionCode: "withdrawal", IdempotencyKey: "w1", VerificationMethod: MethodEmailOTP},
		},
		{
			name: "validate token only",
			call: func(c *Client) (any, error) {
				return c.Validate(ctx, ValidateRequest{Token: "jwt"})
			},
			respond: `{"isValid":false}`,
			method:  "POST", path: "/v1/validate",
			body: `{"token":"jwt"}`,
			want: &ValidateResponse{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, tt.respond)
			got, err := tt.call(rec.client())
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response = %#v\nwant       %#v", got, tt.want)
			}
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.EscapedURI != tt.path {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.EscapedURI, tt.method, tt.path)
			}
			wantQuery := tt.query
			if wantQuery == nil {
				wantQuery = url.Values{}
			}
			if !reflect.DeepEqual(r.Query, wantQuery) {
				t.Errorf("query = %v, want %v", r.Query, wantQuery)
			}
			jsonEqual(t, r.Body, tt.body)
			if !r.HasAuth || r.User != testSecret || r.Pass != "" {
				t.Errorf("basic auth = %v %q:%q, want the secret and an empty password", r.HasAuth, r.User, r.Pass)
			}
			if got := r.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q", got)
			}
			if got := r.Header.Get("User-Agent"); got != UserAgent {
				t.Errorf("User-Agent = %q", got)
			}
			wantCT := ""
			if tt.body != "" {
				wantCT = "application/json"
			}
			if got := r.Header.Get("Content-Type"); got != wantCT {
				t.Errorf("Content-Type = %q, want %q", got, wantCT)
			}
		})
	}
}

func TestPathEscaping(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func(c *Client) error
		path string
	}{
		{"user id with slash and space", func(c *Client) error { _, err := c.GetUser(ctx, "team/a b"); return err }, "/v1/users/team%2Fa%20b"},
		{"user id with query and fragment chars", func(c *Client) error { _, err := c.GetUser(ctx, "a?b#c%d"); return err }, "/v1/users/a%3Fb%23c%25d"},
		{"dot-dot user id", func(c *Client) error { _, err := c.GetUser(ctx, ".."); return err }, "/v1/users/%2E%2E"},
		{"track escapes user and action", func(c *Client) error {
			_, err := c.Track(ctx, "u/1", "with drawal", TrackAttributes{})
			return err
		}, "/v1/users/u%2F1/actions/with%20drawal"},
		{"get action escapes idempotency key", func(c *Client) error {
			_, err := c.GetAction(ctx, "u1", "withdrawal", "k/1?x")
			return err
		}, "/v1/users/u1/actions/withdrawal/k%2F1%3Fx"},
		{"update action escapes every segment", func(c *Client) error {
			_, err := c.UpdateAction(ctx, "u 1", "a/b", "k#1", UpdateActionRequest{State: StateReviewFailed})
			return err
		}, "/v1/users/u%201/actions/a%2Fb/k%231"},
		{"delete authenticator escapes the id", func(c *Client) error { return c.DeleteAuthenticator(ctx, "u1", "auth/../x") }, "/v1/users/u1/authenticators/auth%2F..%2Fx"},
		{"query actions escapes user", func(c *Client) error {
			_, err := c.QueryActions(ctx, "ü/1", QueryActionsRequest{})
			return err
		}, "/v1/users/%C3%BC%2F1/actions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, `{}`)
			// The list endpoints want an array; any JSON decodes for the others.
			if strings.HasSuffix(tt.path, "/actions") {
				rec.body = `[]`
			}
			if err := tt.call(rec.client()); err != nil {
				t.Fatalf("call: %v", err)
			}
			if got := rec.all()[0].EscapedURI; got != tt.path {
				t.Errorf("path = %s, want %s", got, tt.path)
			}
		})
	}
}

func TestEmptyPathParamIsRefused(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t, http.StatusOK, `{}`)
	c := rec.client()
	calls := map[string]func() error{
		"get user":             func() error { _, err := c.GetUser(ctx, ""); return err },
		"track without action": func() error { _, err := c.Track(ctx, "u1", "", TrackAttributes{}); return err },
		"get action without key": func() error {
			_, err := c.GetAction(ctx, "u1", "withdrawal", "")
			return err
		},
		"delete authenticator without id": func() error { return c.DeleteAuthenticator(ctx, "u1", "") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); err == nil {
				t.Fatal("want an error for an empty path parameter")
			}
		})
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestOptions(t *testing.T) {
	if got := New("k").BaseURL(); got != BaseURLUS || DefaultBaseURL != BaseURLUS {
		t.Errorf("default base URL = %q", got)
	}
	if got := New("k", WithBaseURL(BaseURLEU+"/")).BaseURL(); got != BaseURLEU {
		t.Errorf("trailing slash kept: %q", got)
	}
	if got := New("k", WithBaseURL(BaseURLAU)).BaseURL(); got != BaseURLAU {
		t.Errorf("AU base URL = %q", got)
	}
	c := New("k")
	if c.httpClient == nil || c.httpClient.Timeout != 10*time.Second {
		t.Errorf("default http client timeout = %v, want 10s", c.httpClient.Timeout)
	}
	if c.maxRetries != 2 {
		t.Errorf("default retries = %d, want 2", c.maxRetries)
	}
	if New("k", WithHTTPClient(nil)).httpClient == nil {
		t.Error("WithHTTPClient(nil) removed the client")
	}

	// The injected client is the one used.
	rec := newRecorder(t, http.StatusOK, `{"isEnrolled":false}`)
	used := false
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err := rec.client(WithHTTPClient(hc)).GetUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Error("the injected *http.Client was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMalformedResponses(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"not JSON", `<html>hello</html>`, "malformed JSON response"},
		{"wrong shape", `{"challengeId": 42}`, "malformed JSON response"},
		{"empty body", ``, "empty response body"},
		{"too large", `{"challengeId":"` + strings.Repeat("x", maxResponseBytes) + `"}`, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, tt.body)
			_, err := rec.client().Challenge(context.Background(), ChallengeRequest{VerificationMethod: MethodSMS, Action: "a", PhoneNumber: "+15551234567"})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if n := len(rec.all()); n != 1 {
				t.Errorf("%d requests, want 1 (a POST is never repeated)", n)
			}
		})
	}
}

func TestDeleteReportingFailure(t *testing.T) {
	rec := newRecorder(t, http.StatusOK, `{"success":false}`)
	if err := rec.client().DeleteUser(context.Background(), "u1", DeleteUserOptions{}); err == nil {
		t.Fatal("success=false must be an error")
	}
}

func BenchmarkClientTrack(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"state":"ALLOW","idempotencyKey":"w1","isEnrolled":true,"ruleIds":[]}`)
	}))
	defer srv.Close()
	c := New(testSecret, WithBaseURL(srv.URL+"/v1"))
	ctx := context.Background()
	attrs := TrackAttributes{IdempotencyKey: "w1", Custom: map[string]any{"amount": 12.5}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Track(ctx, "u1", "withdrawal", attrs); err != nil {
			b.Fatal(err)
		}
	}
}
