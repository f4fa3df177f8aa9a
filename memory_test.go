package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/passwordless/e2e/appserver"

	"example.com/passwordless/internal/testkit"
)

// builtBinary builds the program once for the tests of this package that run it whole.
var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "passwordless-bin-")
	if err != nil {
		return "", err
	}
	return appserver.Build(context.Background(), ".", dir)
})

func testBinary(t *testing.T) string {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// anonymousRequests is how many requests TestAnonymousTrafficKeepsMemoryFlat sends.
const anonymousRequests = 300_000

// Anonymous visitors (no cookies) must not cost the server memory that outlives their
// request: the CSRF defence keeps nothing per visitor. Every request here renders the
// sign-in form, with a fresh CSRF nonce each time, yet the resident memory stays flat.
func TestAnonymousTrafficKeepsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping 300,000 requests to the built binary")
	}
	if raceEnabled {
		t.Skip("under -race the client is several times slower; make unit runs this test without it")
	}
	dir := t.TempDir()
	logs := &testkit.Buffer{}
	p, err := appserver.Start(context.Background(), testBinary(t), appserver.Options{
		DataDir: filepath.Join(dir, "data"), Stdout: logs, Stderr: logs, Env: []string{"LOG_LEVEL=WARN"},
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	defer p.Stop()

	var sent atomic.Int64
	run := func(n int64) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 10 * time.Second} // no cookie jar: every request is a new visitor
				for sent.Add(1) <= n {
					resp, err := client.Get(p.AppURL + "/signin")
					if err != nil {
						t.Errorf("GET /signin: %v", err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("GET /signin: %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		sent.Store(n)
	}
	warm := int64(anonymousRequests / 6)
	run(warm) // the heap, pools and caches reach their working size
	before := residentMiB(t, p.Pid())
	start := time.Now()
	run(anonymousRequests)
	after := residentMiB(t, p.Pid())
	t.Logf("resident memory after %d anonymous requests: %.1f MiB; after %d: %.1f MiB (%.0f req/s)",
		warm, before, anonymousRequests, after, float64(anonymousRequests-warm)/time.Since(start).Seconds())
	// The old in-memory CSRF store grew by ~100 MiB over 350k requests; 20 MiB is well above
	// what the heap and the GC's slack move by.
	if after-before > 20 {
		t.Fatalf("resident memory grew by %.1f MiB over %d anonymous requests", after-before, anonymousRequests-warm)
	}
}

// residentMiB reads a process's resident set size from /proc.
func residentMiB(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here to read the process's memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
