// Package e2e is the browser suite: it builds the real program, starts it with the
// embedded Authsignal emulator on random ports and a temporary data folder, and drives
// every flow in Chromium through Playwright (playwright-go), by role and label only.
//
// Run it with `make e2e` (or `bash e2e/run.sh [go test flags]`), which installs Debian's
// Chromium and the Playwright driver when they are missing. See run.sh for the variables
// it honours (CHROMIUM_PATH, PLAYWRIGHT_DRIVER_PATH, PLAYWRIGHT_BROWSERS=download, HEADED=1).
package e2e
