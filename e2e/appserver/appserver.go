// Package appserver builds the sample's binary and runs it, with its embedded emulator,
// on free loopback ports: the one way the browser suite, the crash test and the load
// generator start the real program.
package appserver

import (
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

// FindRoot walks up from the working directory to the folder holding this module's go.mod.
func FindRoot() (string, error) {
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
			return "", errors.New("not inside the example.com/passwordless repository")
		}
		dir = parent
	}
}

// Build compiles the program in root (like `make build`) into dir and returns its path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "passwordless")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the app (go build . in %s): %w\n%s", root, err, out)
	}
	return bin, nil
}

// Options says how to run the binary.
type Options struct {
	DataDir string    // DATA_DIR; required
	Dir     string    // working directory ("" = the caller's)
	Stdout  io.Writer // the program's output, its log included (nil = discarded)
	Stderr  io.Writer // its error output, e.g. why it refused to start (nil = discarded)
	// Env adds KEY=VALUE settings (e.g. LOG_LEVEL, SEND_LIMIT_PER_IP, EMULATOR_RULES)
	// after the ones Start sets, so they win.
	Env []string
	// AppPort and EmulatorPort pin the ports, e.g. to restart on the same ones; 0 picks
	// free ports (and Start retries with new ones if another process takes them first).
	AppPort, EmulatorPort int
	// Ready bounds the wait for both /healthz answers (0 = 30s).
	Ready time.Duration
}

// Process is one run of the binary.
type Process struct {
	AppURL, EmulatorURL   string // e.g. http://localhost:41234
	AppPort, EmulatorPort int
	// StartedIn is the time from exec to the app's first 200 from /healthz.
	StartedIn time.Duration

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// appSettings are the variables Start sets itself; the caller's values are dropped so
// a run never talks to the real Authsignal or reuses the caller's data.
var appSettings = map[string]bool{
	"AUTHSIGNAL_SECRET_KEY": true, "AUTHSIGNAL_API_URL": true, "SESSION_SECRET": true,
	"HOST": true, "PORT": true, "BASE_URL": true, "EMULATOR_ADDR": true, "EMULATOR_RULES": true,
	"DATA_DIR": true, "DATABASE_URL": true, "SEND_LIMIT_PER_IP": true, "LOG_LEVEL": true,
}

// Environ is env without the app's own settings (see Start).
func Environ(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !appSettings[name] {
			out = append(out, kv)
		}
	}
	return out
}

// Start runs bin with the embedded emulator and returns once the app's and the
// emulator's /healthz both answer 200. The caller's environment is passed on without the
// app's own settings (so nothing points at the real Authsignal).
func Start(ctx context.Context, bin string, o Options) (*Process, error) {
	if o.DataDir == "" {
		return nil, errors.New("appserver: DataDir is required")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startOnce(ctx, bin, o)
		if err == nil {
			return p, nil
		}
		lastErr = err
		// Only freshly picked ports can be retried: someone may have taken one between
		// the probe and the program's listen.
		if ctx.Err() != nil || o.AppPort != 0 || o.EmulatorPort != 0 {
			break
		}
	}
	return nil, lastErr
}

func startOnce(ctx context.Context, bin string, o Options) (*Process, error) {
	appPort, emuPort := o.AppPort, o.EmulatorPort
	var err error
	if appPort == 0 {
		if appPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if emuPort == 0 {
		if emuPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	// Listening on 127.0.0.1, addressed as localhost: an IP address cannot be a passkey domain.
	p := &Process{
		AppURL:      "http://localhost:" + strconv.Itoa(appPort),
		EmulatorURL: "http://localhost:" + strconv.Itoa(emuPort),
		AppPort:     appPort, EmulatorPort: emuPort,
		exited: make(chan struct{}),
	}
	p.cmd = exec.Command(bin)
	p.cmd.Dir = o.Dir
	p.cmd.Stdout, p.cmd.Stderr = o.Stdout, o.Stderr
	p.cmd.Env = append(Environ(os.Environ()),
		"HOST=127.0.0.1",
		"PORT="+strconv.Itoa(appPort),
		"BASE_URL="+p.AppURL,
		"EMULATOR_ADDR=127.0.0.1:"+strconv.Itoa(emuPort),
		"DATA_DIR="+o.DataDir,
	)
	p.cmd.Env = append(p.cmd.Env, o.Env...)
	setDeathSignal(p.cmd)

	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()

	ready := o.Ready
	if ready <= 0 {
		ready = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, ready)
	defer cancel()
	for i, url := range []string{p.AppURL + "/healthz", p.EmulatorURL + "/healthz"} {
		if err := p.waitHealthy(ctx, url); err != nil {
			p.Kill()
			return nil, err
		}
		if i == 0 {
			p.StartedIn = time.Since(t0)
		}
	}
	return p, nil
}

// waitHealthy polls url until it answers 200, the process exits or ctx ends. It polls
// every millisecond so that StartedIn measures the start, not the polling.
func (p *Process) waitHealthy(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("the app exited before %s answered: %v", url, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 in time (last error: %v)", url, err)
		case <-time.After(time.Millisecond):
		}
	}
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.exited:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop asks for a graceful shutdown (SIGTERM), kills after 10s, and returns how the
// process ended (nil for a clean exit). Safe to repeat.
func (p *Process) Stop() error {
	select {
	case <-p.exited:
		return p.waitErr
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(10 * time.Second):
		p.Kill()
		return errors.New("the app did not stop within 10s of SIGTERM; killed")
	}
}

// Kill ends the process with SIGKILL (a crash) and waits until it is gone. Safe to repeat.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
