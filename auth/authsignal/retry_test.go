package authsignal

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a server that answers the n-th request with the n-th step (the last
// step repeats). A step with status 0 drops the connection without answering.
type scripted struct {
	srv    *httptest.Server
	mu     sync.Mutex
	steps  []int
	bodies []string // request bodies, in order
}

func newScripted(t *testing.T, steps ...int) *scripted {
	t.Helper()
	s := &scripted{steps: steps}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.bodies)
		s.bodies = append(s.bodies, string(data))
		status := s.steps[min(n, len(s.steps)-1)]
		s.mu.Unlock()
		if status == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, `{"isEnrolled":true,"challengeId":"ch_1","success":true}`)
			return
		}
		io.WriteString(w, `{"error":"x","errorCode":"x","errorDescription":"scripted"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) client(opts ...Option) *Client {
	return New(testSecret, append([]Option{WithBaseURL(s.srv.URL + "/v1"), WithRetryBackoff(0)}, opts...)...)
}

func (s *scripted) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	getUser := func(c *Client) error { _, err := c.GetUser(ctx, "u1"); return err }
	challenge := func(c *Client) error {
		_, err := c.Challenge(ctx, ChallengeRequest{VerificationMethod: MethodEmailOTP, Action: "signIn", Email: "a@example.com"})
		return err
	}
	updateUser := func(c *Client) error {
		_, err := c.UpdateUser(ctx, "u1", UpdateUserRequest{DisplayName: "A"})
		return err
	}
	deleteUser := func(c *Client) error { return c.DeleteUser(ctx, "u1", DeleteUserOptions{}) }

	tests := []struct {
		name       string
		steps      []int
		call       func(*Client) error
		opts       []Option
		wantCalls  int
		wantStatus int // 0 = success; -1 = transport error
	}{
		{"GET 5xx is retried up to 2 times", []int{503}, getUser, nil, 3, 503},
		{"GET 5xx then success", []int{500, 502, 200}, getUser, nil, 3, 0},
		{"GET 5xx once then success", []int{504, 200}, getUser, nil, 2, 0},
		{"POST 5xx is not retried", []int{503, 200}, challenge, nil, 1, 503},
		{"PATCH 5xx is not retried", []int{500, 200}, updateUser, nil, 1, 500},
		{"DELETE 5xx is not retried", []int{500, 200}, deleteUser, nil, 1, 500},
		{"GET 400 is never retried", []int{400, 200}, getUser, nil, 1, 400},
		{"GET 401 is never retried", []int{401, 200}, getUser, nil, 1, 401},
		{"GET 404 is never retried", []int{404, 200}, getUser, nil, 1, 404},
		{"GET 429 is never retried", []int{429, 200}, getUser, nil, 1, 429},
		{"POST 429 is never retried", []int{429, 200}, challenge, nil, 1, 429},
		{"connection dropped on GET is retried", []int{0, 200}, getUser, nil, 2, 0},
		{"connection dropped on POST is retried", []int{0, 0, 200}, challenge, nil, 3, 0},
		{"connection dropped on DELETE is retried", []int{0, 200}, deleteUser, nil, 2, 0},
		{"connection errors give up after 2 retries", []int{0}, challenge, nil, 3, -1},
		{"retries can be disabled", []int{503, 200}, getUser, []Option{WithMaxRetries(0)}, 1, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(t, tt.steps...)
			err := tt.call(s.client(tt.opts...))
			if got := len(s.requests()); got != tt.wantCalls {
				t.Errorf("%d requests, want %d", got, tt.wantCalls)
			}
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.wantStatus > 0 && !IsStatus(err, tt.wantStatus):
				t.Errorf("err = %v, want status %d", err, tt.wantStatus)
			case tt.wantStatus == -1:
				var apiErr *Error
				if err == nil || errors.As(err, &apiErr) {
					t.Errorf("err = %v, want a transport error", err)
				}
			}
		})
	}
}

func TestRetriedPOSTResendsTheSameBody(t *testing.T) {
	s := newScripted(t, 0, 0, 200)
	req := ChallengeRequest{VerificationMethod: MethodSMS, Action: "signIn", PhoneNumber: "+15551234567", Custom: map[string]any{"n": 1}}
	if _, err := s.client().Challenge(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	bodies := s.requests()
	if len(bodies) != 3 {
		t.Fatalf("%d requests, want 3", len(bodies))
	}
	for i, b := range bodies {
		if b == "" || b != bodies[0] {
			t.Errorf("attempt %d sent %q, want %q", i+1, b, bodies[0])
		}
	}
}

func TestTransportErrorRetriedForEveryMethod(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			var calls atomic.Int32
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls.Add(1)
				return nil, errors.New("dial tcp: connection refused")
			})}
			c := New(testSecret, WithBaseURL("http://authsignal.invalid/v1"), WithHTTPClient(hc), WithRetryBackoff(0))
			var err error
			ctx := context.Background()
			switch method {
			case http.MethodGet:
				_, err = c.GetUser(ctx, "u1")
			case http.MethodPost:
				_, err = c.Verify(ctx, VerifyRequest{ChallengeID: "c", VerificationCode: "123456"})
			case http.MethodPatch:
				_, err = c.UpdateAction(ctx, "u1", "a", "k", UpdateActionRequest{State: StateReviewSucceeded})
			case http.MethodDelete:
				err = c.DeleteAuthenticator(ctx, "u1", "a1")
			}
			if err == nil || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("err = %v", err)
			}
			if got := calls.Load(); got != 3 {
				t.Errorf("%d attempts, want 3", got)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	hc := &http.Client{Timeout: 50 * time.Millisecond}
	c := New(testSecret, WithBaseURL(srv.URL+"/v1"), WithHTTPClient(hc), WithRetryBackoff(0))
	ctx := context.Background()

	// A POST that timed out may have been acted on: not repeated.
	calls.Store(0)
	if _, err := c.Challenge(ctx, ChallengeRequest{VerificationMethod: MethodSMS, Action: "a", PhoneNumber: "+15551234567"}); err == nil {
		t.Fatal("want a timeout")
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("POST timeout: %d attempts, want 1", got)
	}

	// A GET is safe to repeat.
	calls.Store(0)
	if _, err := c.GetUser(ctx, "u1"); err == nil {
		t.Fatal("want a timeout")
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("GET timeout: %d attempts, want 3", got)
	}
}

func TestContextCancellationStopsRetries(t *testing.T) {
	t.Run("during backoff", func(t *testing.T) {
		var calls atomic.Int32
		attempted := make(chan struct{})
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				close(attempted)
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader(`{"errorCode":"unavailable"}`)), Request: r}, nil
		})}
		c := New(testSecret, WithBaseURL("http://authsignal.invalid/v1"), WithHTTPClient(hc), WithRetryBackoff(time.Hour))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := c.GetUser(ctx, "u1"); done <- err }()
		<-attempted
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if !IsStatus(err, 503) {
				t.Errorf("err = %v, want it to keep the last answer (503)", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the call did not return after cancellation")
		}
		if got := calls.Load(); got != 1 {
			t.Errorf("%d attempts, want 1", got)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		s := newScripted(t, 200)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.client().GetUser(ctx, "u1")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got := len(s.requests()); got != 0 {
			t.Errorf("%d requests, want 0", got)
		}
	})
	t.Run("deadline during a dropped connection", func(t *testing.T) {
		var calls atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			cancel() // the caller gives up while this attempt fails
			return nil, errors.New("connection reset by peer")
		})}
		c := New(testSecret, WithBaseURL("http://authsignal.invalid/v1"), WithHTTPClient(hc), WithRetryBackoff(0))
		if _, err := c.GetUser(ctx, "u1"); err == nil {
			t.Fatal("want an error")
		}
		if got := calls.Load(); got != 1 {
			t.Errorf("%d attempts, want 1 after cancellation", got)
		}
	})
}

func TestBackoffDoubles(t *testing.T) {
	var stamps []time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stamps = append(stamps, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := New(testSecret, WithBaseURL(srv.URL+"/v1"), WithRetryBackoff(20*time.Millisecond))
	if _, err := c.GetUser(context.Background(), "u1"); !IsStatus(err, 503) {
		t.Fatalf("err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stamps) != 3 {
		t.Fatalf("%d attempts, want 3", len(stamps))
	}
	if d := stamps[1].Sub(stamps[0]); d < 20*time.Millisecond {
		t.Errorf("first wait %v, want >= 20ms", d)
	}
	if d := stamps[2].Sub(stamps[1]); d < 40*time.Millisecond {
		t.Errorf("second wait %v, want >= 40ms", d)
	}
}

func TestTransportErrorKeepsUserDataOut(t *testing.T) {
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	})}
	c := New(testSecret, WithBaseURL("http://authsignal.invalid/v1"), WithHTTPClient(hc), WithRetryBackoff(0))
	_, err := c.QueryUsers(context.Background(), QueryUsersRequest{Email: "alice@example.com"})
	if err == nil {
		t.Fatal("want an error")
	}
	if msg := err.Error(); strings.Contains(msg, "alice") || strings.Contains(msg, testSecret) {
		t.Errorf("error repeats user data or the secret: %s", msg)
	}
	if want := "authsignal: GET /users: connection refused"; err.Error() != want {
		t.Errorf("err = %q, want %q", err.Error(), want)
	}
}
