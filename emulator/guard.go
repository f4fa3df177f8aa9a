package emulator

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"example.com/passwordless/emulator/internal/httpjson"
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
			httpjson.WriteError(w, r, e.log, &httpjson.Error{Status: http.StatusForbidden, Code: httpjson.CodeInvalidRequest,
				Description: "This emulator serves only its own host names (127.0.0.1, localhost, or the -public-url host), not " + hostName(r.Host) + "."})
			return
		}
		if write := r.Method != http.MethodGet && r.Method != http.MethodHead; write && (strings.HasPrefix(path, "/emulator/") || strings.HasPrefix(path, "/admin/")) {
			if origin := r.Header.Get("Origin"); origin != "" && !sameHost(origin, r.Host) {
				httpjson.WriteError(w, r, e.log, &httpjson.Error{Status: http.StatusForbidden, Code: httpjson.CodeInvalidRequest,
					Description: "Cross-site requests may not change the emulator's state."})
				return
			}
			if strings.HasPrefix(path, "/emulator/") && r.ContentLength != 0 && !isJSON(r.Header.Get("Content-Type")) {
				httpjson.WriteError(w, r, e.log, &httpjson.Error{Status: http.StatusUnsupportedMediaType, Code: httpjson.CodeInvalidRequest,
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

// securityHeaders sets conservative headers on every response. The pages use no scripts.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin: no Referer (with the page's token in its URL) ever leaves for the app,
		// while the pages' own form posts keep their Origin, which guardLocal checks
		// (no-referrer would make browsers send "Origin: null" on them).
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
		// Set before routing, so 404s, 405s, /v1 errors and panics carry it too.
		h.Set(versionHeader, buildVersion())
		next.ServeHTTP(w, r)
	})
}
