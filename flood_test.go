package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/passwordless/e2e/appserver"

	"example.com/passwordless/internal/testkit"
)

// floodConns is how many idle, half-sent connections the flood holds: well past the
// child's descriptor limit (floodFDLimit).
const (
	floodConns   = 1200
	floodFDLimit = 256
)

// A flood of idle connections, past the process's descriptor limit, must not take the
// server down (accept4's EMFILE used to end Serve, and with it the program): once the
// flood ends it answers again, the app and its embedded emulator both.
func TestConnectionFloodDoesNotStopTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the connection flood of the built binary")
	}
	dir := t.TempDir()
	// The child runs with a low descriptor limit, set by a shell before it execs the binary.
	wrapper := filepath.Join(dir, "low-fd-limit.sh")
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 1\nexec %q \"$@\"\n", floodFDLimit, testBinary(t))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  []string
	}{
		{"with the default caps", nil},
		{"without caps: out of descriptors", []string{"MAX_CONNS=100000", "MAX_CONNS_PER_IP=0"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &testkit.Buffer{}
			p, err := appserver.Start(context.Background(), wrapper, appserver.Options{
				DataDir: filepath.Join(dir, fmt.Sprint("data", i)), Stdout: logs, Stderr: logs,
				Env: append([]string{"LOG_LEVEL=WARN"}, tt.env...),
			})
			if err != nil {
				t.Fatalf("start: %v\n%s", err, logs.String())
			}
			defer p.Stop()

			conns := flood(p.AppURL)
			time.Sleep(time.Second) // the server meets the flood
			if gone, err := p.Exited(); gone {
				t.Fatalf("the program exited under the flood (%v):\n%s", err, logs.String())
			}
			for _, c := range conns {
				c.Close()
			}
			for _, url := range []string{p.AppURL + "/healthz", p.AppURL + "/signin", p.EmulatorURL + "/healthz"} {
				if err := answersWithin(url, 15*time.Second); err != nil {
					t.Fatalf("after the flood: %v\n%s", err, logs.String())
				}
			}
		})
	}
}

// flood opens floodConns connections that each send half a request and then wait.
func flood(baseURL string) []net.Conn {
	addr := baseURL[len("http://"):]
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for range floodConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return // the backlog is full: the flood is as big as it gets
			}
			c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: flood\r\n")) // and never the blank line
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return conns
}

// answersWithin polls url until it answers 200.
func answersWithin(url string, d time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(d)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", url, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// One address may hold at most MAX_CONNS_PER_IP connections; the next is told so at once.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a run of the built binary")
	}
	logs := &testkit.Buffer{}
	p, err := appserver.Start(context.Background(), testBinary(t), appserver.Options{
		DataDir: filepath.Join(t.TempDir(), "data"), Stdout: logs, Stderr: logs, Env: []string{"LOG_LEVEL=WARN", "MAX_CONNS_PER_IP=4"},
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	defer p.Stop()
	addr := p.AppURL[len("http://"):]
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // all four accepted
	fifth, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fifth.Close()
	fifth.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := fifth.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 429") {
		t.Fatalf("the fifth connection from one address read %q, want a 429", got)
	}
}
