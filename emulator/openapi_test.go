package emulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The OpenAPI document is hand-written; these tests keep it honest against routeTable
// and against what the handlers actually do.

var openapiMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type openapiOp struct {
	Method, Path string                     // "GET", "/v1/users/{userId}"
	OperationID  string                     `json:"operationId"`
	Parameters   []map[string]any           `json:"parameters"`
	RequestBody  map[string]any             `json:"requestBody"`
	Responses    map[string]json.RawMessage `json:"responses"`
	Security     []map[string][]string      `json:"security"`
	pathParams   []map[string]any           // declared on the path item
}

func (o openapiOp) key() string { return o.Method + " " + o.Path }

type openapiDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title, Version string
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]map[string]any  `json:"components"`
}

func loadOpenAPI(t *testing.T) (openapiDoc, []openapiOp) {
	t.Helper()
	var doc openapiDoc
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	var ops []openapiOp
	for path, item := range doc.Paths {
		var pathParams []map[string]any
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &pathParams); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for name, raw := range item {
			if !slices.Contains(openapiMethods, name) {
				continue
			}
			op := openapiOp{Method: strings.ToUpper(name), Path: path, pathParams: pathParams}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key() < ops[j].key() })
	return doc, ops
}

// tableRoutes is the emulator's routeTable as "METHOD path" keys.
func tableRoutes(t testing.TB) map[string]bool {
	out := map[string]bool{}
	for _, rt := range newEnv(t).emu.table {
		// "/{$}" (exactly "/") only redirects to /outbox: a convenience, not part of the API.
		if rt.path == "/{$}" {
			continue
		}
		out[rt.method+" "+rt.path] = true
	}
	return out
}

// TestOpenAPIMatchesRouteTable: every route is documented, and every documented
// operation is a route. Each failure names the exact routes.
func TestOpenAPIMatchesRouteTable(t *testing.T) {
	_, ops := loadOpenAPI(t)
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.key()] = true
	}
	table := tableRoutes(t)
	var undocumented, unrouted []string
	for k := range table {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !table[k] {
			unrouted = append(unrouted, k)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unrouted)
	if len(undocumented) > 0 {
		t.Errorf("routeTable has %d route(s) missing from openapi.json (document them):\n  %s", len(undocumented), strings.Join(undocumented, "\n  "))
	}
	if len(unrouted) > 0 {
		t.Errorf("openapi.json documents %d operation(s) missing from routeTable (not implemented yet, or a typo):\n  %s", len(unrouted), strings.Join(unrouted, "\n  "))
	}
}

var pathParamRE = regexp.MustCompile(`\{([^}]+)\}`)

// samplePath fills path parameters with plausible values (that name nothing stored).
func samplePath(path string) string {
	samples := map[string]string{"userId": "openapi-user", "action": "signIn", "idempotencyKey": "openapi-key", "userAuthenticatorId": "openapi-auth"}
	return pathParamRE.ReplaceAllStringFunc(path, func(m string) string {
		if v, ok := samples[m[1:len(m)-1]]; ok {
			return v
		}
		return "sample"
	})
}

// isEventStream reports whether the operation answers a never-ending text/event-stream.
func isEventStream(op openapiOp) bool {
	return strings.Contains(string(op.Responses["200"]), "text/event-stream")
}

// unrouted reports whether a response is jsonFallback's "no such route" rather than a
// handler's answer: a "No route …" 404 or a "Method … is not allowed" 405.
func unrouted(status int, body string) bool {
	var e map[string]string
	_ = json.Unmarshal([]byte(body), &e)
	return (status == 404 && strings.HasPrefix(e["errorDescription"], "No route ")) ||
		(status == 405 && strings.HasPrefix(e["errorDescription"], "Method "))
}

// TestOpenAPIOperationsAreServed sends every documented operation (sample path
// parameters, required query parameters, an empty JSON object or form as body) and
// checks it reaches a handler, which answers one of the documented statuses.
func TestOpenAPIOperationsAreServed(t *testing.T) {
	_, ops := loadOpenAPI(t)
	env := newEnv(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The detector itself: unknown routes and wrong methods must read as unrouted, and a
	// handler's own not_found must not.
	for _, c := range []struct {
		method, path string
		want         bool
	}{{"GET", "/emulator/nope", true}, {"PUT", "/healthz", true}, {"GET", "/v1/nope", true}, {"PUT", "/v1/users/u1", true},
		{"GET", "/v1/users/u1/actions/signIn/nope", false}, {"GET", "/admin/users/nope", false}} {
		status, raw, _ := env.do(c.method, c.path, nil, testKey)
		if got := unrouted(status, string(raw)); got != c.want {
			t.Fatalf("unrouted(%s %s → %d %s) = %v, want %v", c.method, c.path, status, raw, got, c.want)
		}
	}
	for _, op := range ops {
		t.Run(op.key(), func(t *testing.T) {
			path := samplePath(op.Path)
			var query []string
			for _, p := range op.Parameters {
				if p["in"] == "query" && p["required"] == true {
					query = append(query, p["name"].(string)+"=openapi%40example.com")
				}
			}
			if slices.ContainsFunc(op.Parameters, func(p map[string]any) bool { return p["$ref"] == "#/components/parameters/token" }) {
				query = append(query, "token=not-a-token")
			}
			if len(query) > 0 {
				path += "?" + strings.Join(query, "&")
			}
			timeout := 10 * time.Second
			if isEventStream(op) {
				timeout = 2 * time.Second // the stream never ends; the headers are enough
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var body io.Reader
			contentType := ""
			if rb := op.RequestBody; rb != nil {
				raw, _ := json.Marshal(rb)
				switch {
				case strings.Contains(string(raw), "application/json"):
					body, contentType = strings.NewReader("{}"), "application/json"
				default: // forms (inline or the shared ChallengeForm)
					body, contentType = strings.NewReader(""), "application/x-www-form-urlencoded"
				}
			}
			req, err := http.NewRequestWithContext(ctx, op.Method, env.srv.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if strings.HasPrefix(op.Path, "/v1/") {
				req.SetBasicAuth(testKey, "")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", op.key(), err)
			}
			defer resp.Body.Close()
			text := ""
			// A live stream never ends: only its headers matter. Anything else is read.
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				raw, _ := io.ReadAll(resp.Body)
				text = string(raw)
			}
			if unrouted(resp.StatusCode, text) {
				t.Fatalf("%s is documented but not routed: %d %s", op.key(), resp.StatusCode, text)
			}
			if _, ok := op.Responses[strconv.Itoa(resp.StatusCode)]; !ok {
				t.Errorf("%s answered %d, which is not among its documented responses %v: %.300s", op.key(), resp.StatusCode, keys(op.Responses), text)
			}
			if v := resp.Header.Get(versionHeader); v != buildVersion() {
				t.Errorf("%s: %s = %q, want %q", op.key(), versionHeader, v, buildVersion())
			}
			// JSON is labelled exactly application/json, errors included (the Python SDK
			// decodes nothing else), and errors carry only the documented codes.
			if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") && ct != "application/json" {
				t.Errorf("%s: Content-Type %q, want exactly application/json", op.key(), ct)
			}
			var e map[string]any
			if resp.StatusCode >= 400 && json.Unmarshal([]byte(text), &e) == nil {
				if code, _ := e["errorCode"].(string); !documentedErrorCodes[code] || e["error"] != code {
					t.Errorf("%s: %d with error code %v / %v, not a documented one", op.key(), resp.StatusCode, e["error"], e["errorCode"])
				}
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIDocument checks the document itself: served as JSON, OpenAPI 3.x with info,
// every operation with responses and a unique operationId, every $ref resolving, path
// parameters declared, and the Server API's Basic auth and error shape.
func TestOpenAPIDocument(t *testing.T) {
	env := newEnv(t)
	status, raw, h := env.do("GET", "/emulator/openapi.json", nil, "")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /emulator/openapi.json: %d %q", status, h.Get("Content-Type"))
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("served document is not JSON: %v", err)
	}
	doc, ops := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Title == "" || doc.Info.Version != Version {
		t.Fatalf("openapi %q, info %+v (version must equal the Version constant %q)", doc.OpenAPI, doc.Info, Version)
	}
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	ids := map[string]string{}
	for _, op := range ops {
		if len(op.Responses) == 0 {
			t.Errorf("%s has no responses", op.key())
		}
		if op.OperationID == "" {
			t.Errorf("%s has no operationId", op.key())
		} else if prev, dup := ids[op.OperationID]; dup {
			t.Errorf("operationId %q used by %s and %s", op.OperationID, prev, op.key())
		}
		ids[op.OperationID] = op.key()
		declared := map[string]bool{}
		for _, p := range append(slices.Clone(op.pathParams), op.Parameters...) {
			if ref, ok := p["$ref"].(string); ok {
				p = doc.Components["parameters"][strings.TrimPrefix(ref, "#/components/parameters/")]
			}
			if p["in"] == "path" {
				declared[p["name"].(string)] = p["required"] == true
			}
		}
		for _, m := range pathParamRE.FindAllStringSubmatch(op.Path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %q is not declared as a required path parameter", op.key(), m[1])
			}
		}
		// The Server API, except the JWKS, which is public like the real one, and the
		// Client API, which takes a token or the tenant id (its preflights take nothing).
		client := strings.HasPrefix(op.Path, "/v1/client/") && !strings.HasPrefix(op.Path, "/v1/client/public/")
		if client && op.Method != "OPTIONS" && (len(op.Security) == 0 || slices.ContainsFunc(op.Security, func(s map[string][]string) bool {
			return s["clientToken"] == nil && s["tenantId"] == nil
		})) {
			t.Errorf("%s: security must be clientToken or tenantId", op.key())
		}
		if strings.HasPrefix(op.Path, "/v1/") && !strings.HasPrefix(op.Path, "/v1/client/") {
			if len(op.Security) != 1 || op.Security[0]["basicAuth"] == nil {
				t.Errorf("%s: security must be basicAuth", op.key())
			}
			for _, code := range []string{"400", "401"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: no %s response", op.key(), code)
				}
			}
			_, ok200 := op.Responses["200"]
			_, ok204 := op.Responses["204"]
			if !ok200 && !ok204 {
				t.Errorf("%s: no 200 or 204 response", op.key())
			}
		}
	}
	if s := doc.Components["securitySchemes"]["basicAuth"]; s["type"] != "http" || s["scheme"] != "basic" {
		t.Errorf("securitySchemes.basicAuth = %v, want HTTP basic", s)
	}
	errSchema, _ := json.Marshal(doc.Components["schemas"]["Error"])
	for _, want := range []string{`"required":["error","errorCode","errorDescription"]`} {
		if !strings.Contains(string(errSchema), want) {
			t.Errorf("Error schema %s lacks %s", errSchema, want)
		}
	}
	for _, name := range []string{"BadRequest", "Unauthorized", "NotFound", "TooManyRequests"} {
		if r, _ := json.Marshal(doc.Components["responses"][name]); !strings.Contains(string(r), `"#/components/schemas/Error"`) {
			t.Errorf("response %s does not use the Error schema: %s", name, r)
		}
	}
	// Every $ref points at something that exists.
	for _, m := range regexp.MustCompile(`"\$ref":\s*"#/components/([^/"]+)/([^"]+)"`).FindAllStringSubmatch(string(openapiJSON), -1) {
		if _, ok := doc.Components[m[1]][m[2]]; !ok {
			t.Errorf("dangling $ref #/components/%s/%s", m[1], m[2])
		}
	}
}
