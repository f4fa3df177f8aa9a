package emulator

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The emulator's pages and tooling have no login (a development tool on loopback), so a
// web page open in the same browser must not be able to use them:
//   - DNS rebinding: evil.example resolving to 127.0.0.1 makes the browser send the page's
//     requests here with Host: evil.example. Only requests for the emulator's own host
//     names are served (loopback names, and -public-url's host).
//   - Cross-site writes: a form or fetch from another site may not change state under
//     /emulator/ or /admin/ (Origin must be this host), and the JSON tooling takes only
//     application/json bodies, which no cross-site form can send without a CORS preflight.
// The Server API (/v1, behind the secret key) and the health probes are left alone.

// guardLocal applies both checks before routing.
func (e *Emulator) guardLocal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if strings.HasPrefix(path, "/v1/") || path == "/healthz" || path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if !e.ownHost(r.Host) {
			e.writeAPIError(w, &apiError{Status: http.StatusForbidden, Code: codeInvalidRequest,
				Description: "This emulator serves only its own host names (127.0.0.1, localhost, or the -public-url host), not " + hostName(r.Host) + "."})
			return
		}
		if write := r.Method != http.MethodGet && r.Method != http.MethodHead; write && (strings.HasPrefix(path, "/emulator/") || strings.HasPrefix(path, "/admin/")) {
			if origin := r.Header.Get("Origin"); origin != "" && !sameHost(origin, r.Host) {
				e.writeAPIError(w, &apiError{Status: http.StatusForbidden, Code: codeInvalidRequest,
					Description: "Cross-site requests may not change the emulator's state."})
				return
			}
			if strings.HasPrefix(path, "/emulator/") && r.ContentLength != 0 && !isJSON(r.Header.Get("Content-Type")) {
				e.writeAPIError(w, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeInvalidRequest,
					Description: "The emulator's tooling takes JSON bodies only (Content-Type: application/json)."})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ownHost reports whether a request's Host names this emulator: a loopback address,
// localhost, or the public URL's host.
func (e *Emulator) ownHost(hostport string) bool {
	host := hostName(hostport)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	e.mu.Lock()
	public := e.publicURL
	e.mu.Unlock()
	u, err := url.Parse(public)
	return err == nil && public != "" && strings.EqualFold(u.Hostname(), host)
}

// hostName is the host of a Host header, without its port or IPv6 brackets, lower-cased.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

// sameHost reports whether an Origin header names the request's own host and port.
func sameHost(origin, hostport string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, hostport)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}
