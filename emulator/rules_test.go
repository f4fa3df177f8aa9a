package emulator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeRules(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultRules(t *testing.T) {
	rs, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       RuleInput
		want     string
		wantRule string
	}{
		{"no amount", RuleInput{ActionCode: "withdrawal"}, StateAllow, ""},
		{"small", RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 999.99}}, StateAllow, ""},
		{"1000 exactly", RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 1000.0}}, StateAllow, ""},
		{"1000.01", RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 1000.01}}, StateChallengeRequired, "challenge-withdrawal"},
		{"10000 exactly", RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 10000.0}}, StateChallengeRequired, "challenge-withdrawal"},
		{"10000.01", RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 10000.01}}, StateBlock, "block-large-withdrawal"},
		{"string amount", RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": "50000"}}, StateAllow, ""},
		{"other action", RuleInput{ActionCode: "transfer", Custom: map[string]any{"amount": 50000.0}}, StateAllow, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rule := rs.Evaluate(tt.in)
			id := ""
			if rule != nil {
				id = rule.ID
			}
			if got != tt.want || id != tt.wantRule {
				t.Fatalf("got %s (%q), want %s (%q)", got, id, tt.want, tt.wantRule)
			}
		})
	}
}

func TestRuleOps(t *testing.T) {
	in := RuleInput{ActionCode: "login", IPAddress: "203.0.113.7", UserAgent: "Mozilla/5.0 Firefox", DeviceID: "d1", Email: "Ann@Corp.Example",
		PhoneNumber: "+447700900123", Username: "ann", IsNewDevice: true, IsEnrolled: false,
		Custom: map[string]any{"n": 5.0, "s": "gold", "b": true, "nested": map[string]any{"x": 1.0}}}
	tests := []struct {
		field, op string
		value     any
		want      bool
	}{
		{"custom.n", "eq", 5.0, true},
		{"custom.n", "ne", 5.0, false},
		{"custom.n", "ne", 6.0, true},
		{"custom.n", "ne", "5", false}, // type mismatch never matches
		{"custom.n", "gt", 4.0, true},
		{"custom.n", "gte", 5.0, true},
		{"custom.n", "lt", 5.0, false},
		{"custom.n", "lte", 5.0, true},
		{"custom.s", "gt", 1.0, false},
		{"custom.s", "in", []any{"gold", "silver"}, true},
		{"custom.s", "notIn", []any{"gold"}, false},
		{"custom.s", "notIn", []any{"bronze"}, true},
		{"custom.b", "eq", true, true},
		{"custom.nested.x", "eq", 1.0, true},
		{"custom.missing", "ne", "x", false},
		{"custom.missing", "notIn", []any{"x"}, false},
		{"ipAddress", "in", []any{"203.0.113.7"}, true},
		{"ipAddress", "startsWith", "203.0.113.", true},
		{"userAgent", "contains", "Firefox", true},
		{"userAgent", "endsWith", "Chrome", false},
		{"email", "eq", "ann@corp.example", true},
		{"emailDomain", "eq", "corp.example", true},
		{"emailDomain", "endsWith", ".example", true},
		{"phoneNumber", "startsWith", "+44", true},
		{"deviceId", "eq", "d1", true},
		{"username", "ne", "bob", true},
		{"isNewDevice", "eq", true, true},
		{"isEnrolled", "eq", false, true},
		{"isEnrolled", "eq", "false", false},
		{"actionCode", "eq", "login", true},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.op, func(t *testing.T) {
			c := Condition{Field: tt.field, Op: tt.op, Value: tt.value}
			if err := checkCondition(c); err != nil {
				t.Fatalf("checkCondition: %v", err)
			}
			r := Rule{ID: "r", Conditions: []Condition{c}, Outcome: StateBlock}
			if got := r.matches(in); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
	// An empty string field has no value: no condition holds.
	if (&Rule{Conditions: []Condition{{Field: "ipAddress", Op: "ne", Value: "1.2.3.4"}}}).matches(RuleInput{}) {
		t.Fatal("condition on an absent field matched")
	}
}

func TestRulePriorityAndOrder(t *testing.T) {
	rs, err := ParseRules([]byte(`{"rules":[
		{"id":"late","priority":5,"outcome":"BLOCK"},
		{"id":"first-tie","priority":1,"actionCode":"a","outcome":"REVIEW_REQUIRED"},
		{"id":"second-tie","priority":1,"outcome":"CHALLENGE_REQUIRED"}
	],"defaultOutcome":"BLOCK"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, r := rs.Evaluate(RuleInput{ActionCode: "a"}); got != StateReviewRequired || r.ID != "first-tie" {
		t.Fatalf("a: %s %v", got, r)
	}
	if got, r := rs.Evaluate(RuleInput{ActionCode: "b"}); got != StateChallengeRequired || r.ID != "second-tie" {
		t.Fatalf("b: %s %v", got, r)
	}
	rs, _ = ParseRules([]byte(`{"rules":[],"defaultOutcome":"REVIEW_REQUIRED"}`))
	if got, r := rs.Evaluate(RuleInput{ActionCode: "x"}); got != StateReviewRequired || r != nil {
		t.Fatalf("default: %s %v", got, r)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not json", `{`, "invalid JSON"},
		{"trailing", `{"rules":[]} {}`, "extra data"},
		{"unknown top key", `{"rulez":[]}`, "unknown field"},
		{"unknown rule key", `{"rules":[{"id":"r1","outcome":"ALLOW","when":1}]}`, "unknown field"},
		{"no id", `{"rules":[{"outcome":"ALLOW"}]}`, `rule #1: "id" is required`},
		{"dup id", `{"rules":[{"id":"r","outcome":"ALLOW"},{"id":"r","outcome":"ALLOW"}]}`, `rule "r" (#2): duplicate id`},
		{"bad outcome", `{"rules":[{"id":"r1","outcome":"MAYBE"}]}`, `rule "r1" (#1): outcome "MAYBE"`},
		{"missing outcome", `{"rules":[{"id":"r1"}]}`, `rule "r1" (#1): outcome ""`},
		{"bad default", `{"rules":[],"defaultOutcome":"CHALLENGE_SUCCEEDED"}`, "defaultOutcome"},
		{"bad action", `{"rules":[{"id":"r1","actionCode":"a b","outcome":"ALLOW"}]}`, `rule "r1" (#1): actionCode`},
		{"bad field", `{"rules":[{"id":"r1","conditions":[{"field":"amount","op":"gt","value":1}],"outcome":"ALLOW"}]}`, `rule "r1" (#1): condition #1: unknown field "amount"`},
		{"empty custom", `{"rules":[{"id":"r1","conditions":[{"field":"custom.","op":"eq","value":1}],"outcome":"ALLOW"}]}`, `unknown field "custom."`},
		{"bad op", `{"rules":[{"id":"r1","conditions":[{"field":"custom.a","op":"between","value":1}],"outcome":"ALLOW"}]}`, `unknown op "between"`},
		{"gt string", `{"rules":[{"id":"r1","conditions":[{"field":"custom.a","op":"gt","value":"1"}],"outcome":"ALLOW"}]}`, `needs a number`},
		{"contains number", `{"rules":[{"id":"r1","conditions":[{"field":"ipAddress","op":"contains","value":1}],"outcome":"ALLOW"}]}`, `needs a string`},
		{"in scalar", `{"rules":[{"id":"r1","conditions":[{"field":"ipAddress","op":"in","value":"x"}],"outcome":"ALLOW"}]}`, `needs an array`},
		{"in nested", `{"rules":[{"id":"r1","conditions":[{"field":"ipAddress","op":"in","value":[[1]]}],"outcome":"ALLOW"}]}`, `array items`},
		{"eq null", `{"rules":[{"id":"r1","conditions":[{"field":"ipAddress","op":"eq","value":null}],"outcome":"ALLOW"}]}`, `needs a string, number or boolean`},
		{"priority not int", `{"rules":[{"id":"r1","priority":1.5,"outcome":"ALLOW"}]}`, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// New refuses to start with a bad file, naming the file and rule.
	p := writeRules(t, `{"rules":[{"id":"oops","outcome":"NOPE"}]}`)
	if _, err := New(Config{SecretKey: "k", DBPath: ":memory:", RulesFile: p}); err == nil || !strings.Contains(err.Error(), `rule "oops"`) || !strings.Contains(err.Error(), p) {
		t.Fatalf("New with bad rules: %v", err)
	}
	if _, err := New(Config{SecretKey: "k", DBPath: ":memory:", RulesFile: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("New with missing rules file succeeded")
	}
}

func TestExampleRulesFile(t *testing.T) {
	rs, err := LoadRulesFile("rules.example.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   RuleInput
		want string
	}{
		{RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 20000.0}}, StateBlock},
		{RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 6000.0}}, StateReviewRequired},
		{RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 2000.0}}, StateChallengeRequired},
		{RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 20.0}}, StateAllow},
		{RuleInput{ActionCode: "withdrawal", Custom: map[string]any{"amount": 20.0}, IsNewDevice: true, Email: "a@other.example"}, StateChallengeRequired},
		{RuleInput{ActionCode: "signIn", IPAddress: "203.0.113.8"}, StateBlock},
	}
	for _, tt := range tests {
		if got, _ := rs.Evaluate(tt.in); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.in, got, tt.want)
		}
	}
	// The built-in rules are the example's subset.
	def, _ := DefaultRules()
	if len(def.rules) != 2 {
		t.Fatalf("default rules: %d", len(def.rules))
	}
}
