package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"example.com/passwordless/e2e/appserver"
)

// actionTimeout bounds every Playwright action, navigation and assertion, so that a
// broken page fails the test in seconds instead of hanging the suite.
const actionTimeout = 10 * time.Second

// suite is what TestMain shares with the tests: one server and one browser for the
// whole run. Tests stay independent because each one gets its own browser context
// (cookies, storage) and its own user (a unique email or phone number).
var suite *harness

type harness struct {
	root         string // repository root
	artifacts    string // e2e/artifacts: screenshots and HTML of failed tests
	appURL       string // e.g. http://localhost:41234
	emulatorURL  string // e.g. http://localhost:41235
	serverLog    string
	browser      playwright.Browser
	expect       playwright.PlaywrightAssertions
	skipReason   string // set when the browser or driver is missing outside CI
	outboxClient *http.Client
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) (code int) {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	h := &harness{
		root:         root,
		artifacts:    filepath.Join(root, "e2e", "artifacts"),
		expect:       playwright.NewPlaywrightAssertions(float64(actionTimeout.Milliseconds())),
		outboxClient: &http.Client{Timeout: 5 * time.Second},
	}
	suite = h

	// Decide first whether a browser can run at all: there is no point building and
	// starting the server otherwise.
	launch, err := browserSetup(root, os.Getenv)
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
			return 1
		}
		h.skipReason = fmt.Sprintf("skipping the browser suite: %v (CI=true turns this into a failure)", err)
		fmt.Fprintln(os.Stderr, "e2e:", h.skipReason)
		return m.Run()
	}

	// Failure artifacts describe this run only.
	if err := os.RemoveAll(h.artifacts); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: clear artifacts:", err)
	}

	tmp, err := os.MkdirTemp("", "passwordless-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp folder:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	stopServer, err := h.startServer(tmp)
	if stopServer != nil {
		defer stopServer()
	}
	// Keep the server's output when anything went wrong: the temp folder disappears.
	defer func() {
		if code != 0 && h.serverLog != "" {
			h.keepServerLog()
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL:", err)
		return 1
	}

	pw, browser, err := launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: start the browser:", err)
		return 1
	}
	defer func() {
		_ = browser.Close()
		_ = pw.Stop()
	}()
	h.browser = browser

	fmt.Fprintf(os.Stderr, "e2e: app %s, emulator %s, Chromium %s\n", h.appURL, h.emulatorURL, browser.Version())
	return m.Run()
}

// browserSetup checks that the Playwright driver and a Chromium are present and returns
// the function that starts them. It never downloads anything unless the user asked for
// Playwright's own browser with PLAYWRIGHT_BROWSERS=download.
func browserSetup(root string, getenv func(string) string) (func() (*playwright.Playwright, playwright.Browser, error), error) {
	download := getenv("PLAYWRIGHT_BROWSERS") == "download"

	driverDir := getenv("PLAYWRIGHT_DRIVER_PATH")
	if driverDir == "" {
		driverDir = filepath.Join(root, ".cache", "playwright")
	}
	if _, err := os.Stat(filepath.Join(driverDir, "package", "cli.js")); err != nil && !download {
		return nil, fmt.Errorf("no Playwright driver in %s: run `make e2e` (it fetches playwright-core@1.52.0 with npm) or set PLAYWRIGHT_DRIVER_PATH", driverDir)
	}
	// The npm package has no bundled node: use the system one unless told otherwise.
	// (A downloaded driver brings its own node, hence DIR/node.)
	nodePath := getenv("PLAYWRIGHT_NODEJS_PATH")
	if nodePath == "" {
		if _, err := os.Stat(filepath.Join(driverDir, "node")); err != nil {
			p, err := exec.LookPath("node")
			if err != nil && !download {
				return nil, errors.New("no Node.js found: install nodejs (the Playwright driver runs on it) or set PLAYWRIGHT_NODEJS_PATH")
			}
			nodePath = p
		}
	}

	chromium := ""
	if !download {
		chromium = getenv("CHROMIUM_PATH")
		if chromium == "" {
			chromium = "/usr/bin/chromium"
		}
		if _, err := os.Stat(chromium); err != nil {
			return nil, fmt.Errorf("no Chromium at %s: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH", chromium)
		}
	}

	headed := getenv("HEADED") == "1"
	slowMo := 0.0
	if headed {
		slowMo = 250
		if v, err := strconv.Atoi(getenv("SLOWMO")); err == nil && v >= 0 {
			slowMo = float64(v)
		}
	}

	return func() (*playwright.Playwright, playwright.Browser, error) {
		runOpts := &playwright.RunOptions{DriverDirectory: driverDir, SkipInstallBrowsers: true, Verbose: false, Stdout: os.Stderr}
		if nodePath != "" {
			// playwright-go reads this variable each time it starts the driver.
			if err := os.Setenv("PLAYWRIGHT_NODEJS_PATH", nodePath); err != nil {
				return nil, nil, err
			}
		}
		if download {
			opts := *runOpts
			opts.SkipInstallBrowsers = false
			opts.Browsers = []string{"chromium"}
			opts.Verbose = true
			if err := playwright.Install(&opts); err != nil {
				return nil, nil, fmt.Errorf("PLAYWRIGHT_BROWSERS=download: %w", err)
			}
		}
		pw, err := playwright.Run(runOpts)
		if err != nil {
			return nil, nil, fmt.Errorf("start the Playwright driver from %s: %w", driverDir, err)
		}
		launchOpts := playwright.BrowserTypeLaunchOptions{
			Headless: playwright.Bool(!headed),
			Timeout:  playwright.Float(30_000),
			Args: []string{
				"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--disable-background-networking", "--disable-component-update",
				"--disable-sync", "--no-first-run",
			},
		}
		if slowMo > 0 {
			launchOpts.SlowMo = playwright.Float(slowMo)
		}
		if chromium != "" {
			launchOpts.ExecutablePath = playwright.String(chromium)
		}
		browser, err := pw.Chromium.Launch(launchOpts)
		if err != nil {
			_ = pw.Stop()
			if headed && getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
				return nil, nil, fmt.Errorf("HEADED=1 needs a desktop session (no DISPLAY is set): %w", err)
			}
			return nil, nil, fmt.Errorf("launch Chromium %s: %w", chromium, err)
		}
		return pw, browser, nil
	}, nil
}

// startServer builds the program and runs it with the embedded emulator on free ports.
// The returned stop function ends the process; it is non-nil whenever a process started.
func (h *harness) startServer(tmp string) (stop func(), err error) {
	ctx := context.Background()
	bin, err := appserver.Build(ctx, h.root, tmp)
	if err != nil {
		return nil, err
	}
	h.serverLog = filepath.Join(tmp, "server.log")
	logFile, err := os.Create(h.serverLog)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	proc, err := appserver.Start(ctx, bin, appserver.Options{
		DataDir: filepath.Join(tmp, "data"),
		Dir:     tmp,
		Stdout:  logFile,
		Stderr:  logFile,
		Env: []string{
			"EMULATOR_RULES=" + filepath.Join(h.root, "e2e", "testdata", "rules.json"),
			// Every test sends codes from 127.0.0.1: the per-IP limit is not under test here.
			"SEND_LIMIT_PER_IP=1000",
			"LOG_LEVEL=INFO",
		},
	})
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%w (server log: %s)", err, h.serverLog)
	}
	h.appURL, h.emulatorURL = proc.AppURL, proc.EmulatorURL
	return func() {
		_ = proc.Stop()
		logFile.Close()
	}, nil
}

// keepServerLog copies the server's output next to the failure artifacts and says where.
func (h *harness) keepServerLog() {
	data, err := os.ReadFile(h.serverLog)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: read server log:", err)
		return
	}
	if err := os.MkdirAll(h.artifacts, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: artifacts folder:", err)
		return
	}
	kept := filepath.Join(h.artifacts, "server.log")
	if err := os.WriteFile(kept, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: keep server log:", err)
		return
	}
	fmt.Fprintf(os.Stderr, "e2e: server log: %s\n", kept)
}
