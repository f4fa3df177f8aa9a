// Package listener wraps a server's net.Listener so that running out of file descriptors
// slows it down instead of stopping it, and caps how many connections it holds open.
package listener

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Backoff bounds: the first wait after a failed accept, and the longest one (net/http's).
const (
	firstBackoff = 5 * time.Millisecond
	maxBackoff   = time.Second
)

// Listener accepts as its inner listener does, but retries with a growing wait when the
// process is out of descriptors (EMFILE, ENFILE) or the kernel hiccups (ECONNABORTED,
// ENOBUFS, ENOMEM, timeouts), where a plain Serve loop would give up and take the server
// down; and, with a cap, accepts no more connections while that many are open.
type Listener struct {
	net.Listener
	slots chan struct{} // one per open connection; nil = no cap
	log   *slog.Logger
	done  chan struct{}
	once  sync.Once
}

// New wraps ln. maxConns > 0 caps the open connections: beyond it Accept waits for one to
// close, and new clients wait in the kernel's backlog. log may be nil.
func New(ln net.Listener, maxConns int, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{Listener: ln, log: log, done: make(chan struct{})}
	if maxConns > 0 {
		l.slots = make(chan struct{}, maxConns)
	}
	return l
}

// Accept waits for a free place under the cap, then for a connection.
func (l *Listener) Accept() (net.Conn, error) {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if wait > 0 {
				l.log.Info("accepting connections again")
			}
			return &conn{Conn: c, release: l.release}, nil
		}
		if !retryable(err) {
			l.release()
			return nil, err
		}
		if wait == 0 {
			l.log.Warn("cannot accept connections, retrying", "err", err)
		}
		wait = min(max(2*wait, firstBackoff), maxBackoff)
		select {
		case <-time.After(wait):
		case <-l.done:
			l.release()
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting; connections already open are their server's to close.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *Listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// retryable reports the accept errors that pass: a lack of resources, a connection reset
// before it was accepted, a timeout.
func retryable(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// conn gives its place under the cap back when closed, once.
type conn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
