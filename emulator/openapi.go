package emulator

import (
	_ "embed"
	"net/http"
	"runtime/debug"
	"sync"
)

// Version is the emulator's version: sent as X-Emulator-Version on every response and
// the OpenAPI document's info.version (a test keeps the two equal). Bump it when the
// HTTP surface changes.
const Version = "0.4.0"

// versionHeader is the response header carrying the version.
const versionHeader = "X-Emulator-Version"

// The OpenAPI document is hand-written (and checked against routeTable by
// openapi_test.go) rather than generated, so it stays small and readable.
//
//go:embed openapi.json
var openapiJSON []byte

// buildVersion is Version plus the VCS revision when the binary was built from a
// checkout (go build stamps it; go test and go run of a dirty tree may not), so a
// bug report can name the exact commit. Computed once: build info never changes.
var buildVersion = sync.OnceValue(func() string {
	v := Version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += "+" + rev
		if dirty {
			v += ".dirty"
		}
	}
	return v
})

func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openapiJSON)
}
