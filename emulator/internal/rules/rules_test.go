package rules

import (
	"strings"
	"testing"

	"example.com/passwordless/emulator/internal/vocab"
)

func TestDefaultRules(t *testing.T) {
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       Input
		want     vocab.State
		wantRule string
	}{
		{"no amount", Input{ActionCode: "withdrawal"}, vocab.StateAllow, ""},
		{"small", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 999.99}}, vocab.StateAllow, ""},
		{"1000 exactly", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 1000.0}}, vocab.StateAllow, ""},
		{"1000.01", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 1000.01}}, vocab.StateChallengeRequired, "challenge-withdrawal"},
		{"4999.99", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 4999.99}}, vocab.StateChallengeRequired, "challenge-withdrawal"},
		{"5000 exactly", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 5000.0}}, vocab.StateReviewRequired, "review-withdrawal-5000"},
		{"10000 exactly", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 10000.0}}, vocab.StateReviewRequired, "review-withdrawal-5000"},
		{"10000.01", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 10000.01}}, vocab.StateBlock, "block-large-withdrawal"},
		{"string amount", Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": "50000"}}, vocab.StateAllow, ""},
		{"other action", Input{ActionCode: "transfer", Custom: map[string]any{"amount": 50000.0}}, vocab.StateAllow, ""},
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
	in := Input{ActionCode: "login", IPAddress: "203.0.113.7", UserAgent: "Mozilla/5.0 Firefox", DeviceID: "d1", Email: "Ann@Corp.Example",
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
			r := Rule{ID: "r", Conditions: []Condition{c}, Outcome: vocab.StateBlock}
			if got := r.matches(in); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
	// An empty string field has no value: no condition holds.
	if (&Rule{Conditions: []Condition{{Field: "ipAddress", Op: "ne", Value: "1.2.3.4"}}}).matches(Input{}) {
		t.Fatal("condition on an absent field matched")
	}
}

func TestRulePriorityAndOrder(t *testing.T) {
	rs, err := Parse([]byte(`{"rules":[
		{"id":"late","priority":5,"outcome":"BLOCK"},
		{"id":"first-tie","priority":1,"actionCode":"a","outcome":"REVIEW_REQUIRED"},
		{"id":"second-tie","priority":1,"outcome":"CHALLENGE_REQUIRED"}
	],"defaultOutcome":"BLOCK"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, r := rs.Evaluate(Input{ActionCode: "a"}); got != vocab.StateReviewRequired || r.ID != "first-tie" {
		t.Fatalf("a: %s %v", got, r)
	}
	if got, r := rs.Evaluate(Input{ActionCode: "b"}); got != vocab.StateChallengeRequired || r.ID != "second-tie" {
		t.Fatalf("b: %s %v", got, r)
	}
	rs, _ = Parse([]byte(`{"rules":[],"defaultOutcome":"REVIEW_REQUIRED"}`))
	if got, r := rs.Evaluate(Input{ActionCode: "x"}); got != vocab.StateReviewRequired || r != nil {
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
			_, err := Parse([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestExampleRulesFile(t *testing.T) {
	rs, err := LoadFile("../../rules.example.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   Input
		want vocab.State
	}{
		{Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 20000.0}}, vocab.StateBlock},
		{Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 6000.0}}, vocab.StateReviewRequired},
		{Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 2000.0}}, vocab.StateChallengeRequired},
		{Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 20.0}}, vocab.StateAllow},
		{Input{ActionCode: "withdrawal", Custom: map[string]any{"amount": 20.0}, IsNewDevice: true, Email: "a@other.example"}, vocab.StateChallengeRequired},
		{Input{ActionCode: "signIn", IPAddress: "203.0.113.8"}, vocab.StateBlock},
	}
	for _, tt := range tests {
		if got, _ := rs.Evaluate(tt.in); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.in, got, tt.want)
		}
	}
	// The built-in rules are the example's subset.
	def, _ := Default()
	ids := map[string]bool{}
	for _, r := range rs.rules {
		ids[r.ID] = true
	}
	if len(def.rules) != 3 {
		t.Fatalf("default rules: %d", len(def.rules))
	}
	for _, r := range def.rules {
		if !ids[r.ID] {
			t.Errorf("built-in rule %s is not in rules.example.json", r.ID)
		}
	}
}
