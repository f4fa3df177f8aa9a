// Package authsignal is a small, typed client for Authsignal's Server API
// (https://docs.authsignal.com/api/server-api): one-time-code challenges,
// track/validate for actions, users and authenticators.
//
// The client speaks exactly the wire shapes of the real service, so pointing it
// at the local emulator or at a region of Authsignal is only a matter of the base
// URL and the secret key:
//
//	client := authsignal.New(secret, authsignal.WithBaseURL(authsignal.BaseURLEU))
//	res, err := client.Challenge(ctx, authsignal.ChallengeRequest{...})
//
// Failed calls return an *Error (see IsCode and IsStatus). The client never logs.
package authsignal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Server API base URLs of the Authsignal regions. Pick the one your tenant lives in.
const (
	BaseURLUS      = "https://api.authsignal.com/v1"
	BaseURLAU      = "https://au.api.authsignal.com/v1"
	BaseURLEU      = "https://eu.api.authsignal.com/v1"
	DefaultBaseURL = BaseURLUS
)

// UserAgent is sent with every request.
const UserAgent = "passwordless-sample-go/1.0"

const (
	// DefaultTimeout bounds each attempt of the default *http.Client.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxRetries is how many times a retryable failure is retried, as the
	// official SDKs do.
	DefaultMaxRetries = 2
	// DefaultRetryBackoff is the wait before the first retry; it doubles after that.
	DefaultRetryBackoff = 100 * time.Millisecond
	// maxResponseBytes caps how much of a response body is read: Server API
	// answers are small, and an unbounded read would let a broken proxy exhaust memory.
	maxResponseBytes = 1 << 20
	// maxSnippetBytes caps the part of a non-JSON error body kept in an *Error.
	maxSnippetBytes = 200
)

// Client calls the Authsignal Server API. It is safe for concurrent use.
type Client struct {
	secretKey  string
	baseURL    string
	httpClient *http.Client
	maxRetries int
	backoff    time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the Server API base URL, including the /v1 path, for example
// BaseURLEU or "http://127.0.0.1:4000/v1" for the emulator. A trailing slash is ignored.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient sets the *http.Client used for requests (its Timeout bounds each
// attempt). nil keeps the default client, which has a 10 s timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.httpClient = hc
		}
	}
}

// WithMaxRetries sets how many times a retryable failure is retried (default 2;
// 0 disables retries; negative values count as 0).
func WithMaxRetries(n int) Option {
	return func(c *Client) { c.maxRetries = max(n, 0) }
}

// WithRetryBackoff sets the wait before the first retry (default 100 ms); it
// doubles for each further retry. 0 retries at once, which tests use.
func WithRetryBackoff(d time.Duration) Option {
	return func(c *Client) { c.backoff = max(d, 0) }
}

// New returns a client that authenticates with secretKey (HTTP Basic, the key as
// the username and an empty password) against DefaultBaseURL unless an option
// says otherwise.
func New(secretKey string, opts ...Option) *Client {
	c := &Client{
		secretKey:  secretKey,
		baseURL:    DefaultBaseURL,
		httpClient: &http.Client{Timeout: DefaultTimeout},
		maxRetries: DefaultMaxRetries,
		backoff:    DefaultRetryBackoff,
	}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// BaseURL reports the Server API base URL the client calls.
func (c *Client) BaseURL() string { return c.baseURL }

// call describes one API request. op names the endpoint by its route template
// (e.g. "GET /users/{userId}") so that errors identify the call without carrying
// user data from the path or query.
type call struct {
	method string
	op     string
	path   string     // already escaped, relative to the base URL, starting with "/"
	query  url.Values // optional
	body   any        // optional; marshalled to JSON once so every attempt re-sends the same bytes
	out    any        // optional; where the JSON response is decoded
	bearer string     // a Client API call's token; "" = the secret key (the Server API)
}

// do runs a call with the retry policy of the official SDKs: a request that got
// no response at all is retried whatever the method (except a timed-out non-GET,
// which the service may already have acted on), a 5xx only for GET, and nothing
// else (never a 4xx).
func (c *Client) do(ctx context.Context, cl call) error {
	op := cl.method + " " + cl.op
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("authsignal: %s: encode request: %w", op, err)
		}
	}
	target := c.baseURL + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}

	for attempt := 1; ; attempt++ {
		retry, err := c.attempt(ctx, cl, op, target, payload)
		if err == nil || !retry || attempt > c.maxRetries {
			return err
		}
		if waitErr := c.wait(ctx, attempt); waitErr != nil {
			// Keep the last answer (IsStatus still works) and the reason we stopped.
			return fmt.Errorf("%w (retry abandoned: %w)", err, waitErr)
		}
	}
}

// wait sleeps before the retry that follows attempt number attempt (1-based),
// or returns early with the context's error.
func (c *Client) wait(ctx context.Context, attempt int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := c.backoff << min(attempt-1, 10) // capped so a large WithMaxRetries can't overflow
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// attempt sends one request and reports whether a failure may be retried.
func (c *Client) attempt(ctx context.Context, cl call, op, target string, payload []byte) (retry bool, err error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return false, fmt.Errorf("authsignal: %s: build request: %w", op, err)
	}
	if cl.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+cl.bearer)
	} else {
		req.SetBasicAuth(c.secretKey, "")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		retry = isRetryableTransportError(ctx, cl.method, err)
		// *url.Error repeats the whole URL, whose query may hold an email or phone
		// number; op already names the endpoint.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return retry, fmt.Errorf("authsignal: %s: %w", op, err)
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()

	data, readErr := readLimited(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := newError(op, resp.StatusCode, data, c.secretKey)
		return resp.StatusCode >= 500 && cl.method == http.MethodGet, apiErr
	}
	if readErr != nil {
		// The body broke off midway: no complete answer, same as a connection error
		// for a GET; for other methods the service has acted, so don't repeat it.
		return cl.method == http.MethodGet && !errors.Is(readErr, errTooLarge), fmt.Errorf("authsignal: %s: read response: %w", op, readErr)
	}
	if cl.out == nil {
		return false, nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return false, fmt.Errorf("authsignal: %s: empty response body (status %d)", op, resp.StatusCode)
	}
	if err := json.Unmarshal(data, cl.out); err != nil {
		return false, fmt.Errorf("authsignal: %s: malformed JSON response (status %d, Content-Type %q): %w",
			op, resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return false, nil
}

var errTooLarge = fmt.Errorf("response body exceeds %d bytes", maxResponseBytes)

// readLimited reads at most maxResponseBytes; a larger body is an error (with
// the first maxResponseBytes returned, enough for an error snippet).
func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return data, err
	}
	if len(data) > maxResponseBytes {
		return data[:maxResponseBytes], errTooLarge
	}
	return data, nil
}

// isRetryableTransportError reports whether a request that got no response may
// be sent again. The caller's cancellation or deadline always ends the call. A
// timed-out attempt is retried only for GET: a POST may have reached the service
// (a second /challenge would send a second code).
func isRetryableTransportError(ctx context.Context, method string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	// Checked before the context errors: an http.Client timeout also matches
	// context.DeadlineExceeded.
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return method == http.MethodGet
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return true
}
