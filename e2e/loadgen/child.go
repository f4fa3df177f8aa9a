package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// findRoot walks up from the working directory to the folder holding this module's go.mod.
func findRoot(root string) (string, error) {
	if root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module example.com/passwordless")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run loadgen from inside the repository, or pass -root or -bin")
		}
		dir = parent
	}
}

// buildApp compiles the app (like `make build`) into dir.
func buildApp(ctx context.Context, root, dir string) (string, error) {
	root, err := findRoot(root)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "passwordless")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// child is the app binary running as a child process, with its embedded emulator.
type child struct {
	cmd         *exec.Cmd
	url         string
	emulatorURL string
	exited      chan struct{}
	waitErr     error
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startChild starts the binary on a fresh or existing dataDir and returns once the app's
// /healthz answers 200, with the time from exec to that first 200.
func startChild(ctx context.Context, bin, dataDir, logLevel string) (*child, time.Duration, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port may be taken between probe and use
		c, took, err := startChildOnce(ctx, bin, dataDir, logLevel)
		if err == nil {
			return c, took, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, lastErr
}

func startChildOnce(ctx context.Context, bin, dataDir, logLevel string) (*child, time.Duration, error) {
	appPort, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	emuPort, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	c := &child{
		url:         "http://127.0.0.1:" + strconv.Itoa(appPort),
		emulatorURL: "http://127.0.0.1:" + strconv.Itoa(emuPort),
		exited:      make(chan struct{}),
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"HOST=127.0.0.1",
		"PORT=" + strconv.Itoa(appPort),
		"BASE_URL=" + c.url,
		"DATA_DIR=" + dataDir,
		"EMULATOR_ADDR=127.0.0.1:" + strconv.Itoa(emuPort),
		"SEND_LIMIT_PER_IP=1000000000",
		"LOG_LEVEL=" + logLevel,
	}
	for _, k := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	c.cmd = exec.Command(bin)
	c.cmd.Env = env
	c.cmd.Stdout = nil // /dev/null: the access log costs the app what it costs it in production
	var stderr bytes.Buffer
	c.cmd.Stderr = &stderr
	setDeathSignal(c.cmd)

	client := &http.Client{Transport: newTransport(1), Timeout: time.Second}
	defer client.CloseIdleConnections()
	t0 := time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { c.waitErr = c.cmd.Wait(); close(c.exited) }()

	deadline := t0.Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, time.Since(t0), nil
			}
		}
		select {
		case <-c.exited:
			return nil, 0, fmt.Errorf("the app exited before serving: %v\n%s", c.waitErr, stderr.String())
		case <-ctx.Done():
			c.stop()
			return nil, 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, 0, fmt.Errorf("the app did not answer /healthz within 15s")
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// stop asks the app to shut down (SIGTERM) and kills it if it has not within 10s.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// rssReading is the memory of a process from /proc/<pid>/status, in bytes.
type rssReading struct{ hwm, rss int64 }

func readRSS(pid int) (rssReading, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssReading{}, err
	}
	defer f.Close()
	var r rssReading
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmHWM":
			r.hwm = n * 1024
		case "VmRSS":
			r.rss = n * 1024
		}
	}
	if r.hwm == 0 {
		return r, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return r, sc.Err()
}
