package listener

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts with errs, then hands out one end of a pipe.
type flakyListener struct {
	errs  []error
	calls int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	c, _ := net.Pipe()
	return c, nil
}
func (f *flakyListener) Close() error   { return nil }
func (f *flakyListener) Addr() net.Addr { return &net.TCPAddr{} }

func TestAcceptRetriesWhenOutOfDescriptors(t *testing.T) {
	tests := []struct {
		name    string
		errs    []error
		wantErr bool
	}{
		{"EMFILE", []error{&net.OpError{Op: "accept", Err: syscall.EMFILE}, &net.OpError{Op: "accept", Err: syscall.EMFILE}}, false},
		{"ENFILE", []error{&net.OpError{Op: "accept", Err: syscall.ENFILE}}, false},
		{"ECONNABORTED", []error{&net.OpError{Op: "accept", Err: syscall.ECONNABORTED}}, false},
		{"closed", []error{net.ErrClosed}, true},
		{"other", []error{errors.New("broken")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &flakyListener{errs: tt.errs}
			c, err := New(inner, 0, nil).Accept()
			if tt.wantErr {
				if err == nil {
					t.Fatal("accepted, want the error passed on")
				}
				return
			}
			if err != nil || c == nil || inner.calls != len(tt.errs)+1 {
				t.Fatalf("Accept = %v, %v after %d calls; want a connection after %d retries", c, err, inner.calls, len(tt.errs))
			}
		})
	}
}

func TestCapOnOpenConnections(t *testing.T) {
	ln := New(&flakyListener{}, 2, nil)
	a, _ := ln.Accept()
	b, _ := ln.Accept()
	third := make(chan net.Conn)
	go func() {
		c, _ := ln.Accept()
		third <- c
	}()
	select {
	case <-third:
		t.Fatal("a third connection while two are open under a cap of 2")
	case <-time.After(50 * time.Millisecond):
	}
	a.Close()
	a.Close() // closing twice gives back one place only
	select {
	case c := <-third:
		c.Close()
	case <-time.After(time.Second):
		t.Fatal("no connection after one closed")
	}
	b.Close()
	// Close ends a waiting Accept.
	full := New(&flakyListener{}, 1, nil)
	full.Accept()
	done := make(chan error)
	go func() { _, err := full.Accept(); done <- err }()
	full.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}
