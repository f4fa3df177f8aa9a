// Package rules is the emulator's rules engine: it decides the outcome of a tracked action.
package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"example.com/passwordless/emulator/internal/vocab"
)

// Rules decide the outcome of track. Rules run in priority order (lower first, ties
// in file order); the first rule whose action matches and whose conditions all hold wins.
type Rules struct {
	rules          []Rule
	defaultOutcome vocab.State
}

// Rule is one entry of a rules file.
type Rule struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	ActionCode  string      `json:"actionCode"` // "" or "*" = any action
	Priority    int         `json:"priority"`
	Conditions  []Condition `json:"conditions"`
	Outcome     vocab.State `json:"outcome"`
}

// Condition compares one field of the track context with a value.
type Condition struct {
	Field string `json:"field"`
	Op    string `json:"op"`
	Value any    `json:"value"`
}

// Input is what rules can look at.
type Input struct {
	ActionCode  string
	IPAddress   string
	UserAgent   string
	DeviceID    string
	Email       string
	PhoneNumber string
	Username    string
	IsNewDevice bool // deviceId given and never seen before for this user
	IsEnrolled  bool // the user has at least one authenticator
	Custom      map[string]any
}

type rulesFile struct {
	Rules          []Rule      `json:"rules"`
	DefaultOutcome vocab.State `json:"defaultOutcome"`
}

// IsOutcome reports whether s is a state a rule may decide.
func IsOutcome(s vocab.State) bool {
	switch s {
	case vocab.StateAllow, vocab.StateBlock, vocab.StateChallengeRequired, vocab.StateReviewRequired:
		return true
	}
	return false
}

var ruleOps = map[string]bool{"eq": true, "ne": true, "gt": true, "gte": true, "lt": true, "lte": true, "in": true, "notIn": true, "contains": true, "startsWith": true, "endsWith": true}

var ruleFields = map[string]bool{"actionCode": true, "ipAddress": true, "userAgent": true, "deviceId": true, "email": true, "emailDomain": true, "phoneNumber": true, "username": true, "isNewDevice": true, "isEnrolled": true}

// defaultRulesJSON are the built-in rules (rules.example.json has them too, and more).
const defaultRulesJSON = `{
  "rules": [
    {"id": "block-large-withdrawal", "name": "Block large withdrawals", "description": "Withdrawals over 10,000 are refused.",
     "actionCode": "withdrawal", "priority": 10,
     "conditions": [{"field": "custom.amount", "op": "gt", "value": 10000}], "outcome": "BLOCK"},
    {"id": "review-withdrawal-5000", "name": "Review withdrawals from 5,000", "description": "Withdrawals from 5,000 up to 10,000 wait for an analyst on /admin.",
     "actionCode": "withdrawal", "priority": 15,
     "conditions": [{"field": "custom.amount", "op": "gte", "value": 5000}], "outcome": "REVIEW_REQUIRED"},
    {"id": "challenge-withdrawal", "name": "Challenge withdrawals over 1,000", "description": "Withdrawals over 1,000 need a one-time code.",
     "actionCode": "withdrawal", "priority": 20,
     "conditions": [{"field": "custom.amount", "op": "gt", "value": 1000}], "outcome": "CHALLENGE_REQUIRED"}
  ],
  "defaultOutcome": "ALLOW"
}`

// Default returns the built-in rules: withdrawal custom.amount > 10000 → BLOCK,
// ≥ 5000 → REVIEW_REQUIRED, > 1000 → CHALLENGE_REQUIRED, everything else ALLOW.
func Default() (*Rules, error) { return Parse([]byte(defaultRulesJSON)) }

// LoadFile reads and parses a rules file.
func LoadFile(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	rs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

// Parse parses a rules file strictly: unknown keys, ops, fields or outcomes are errors naming the rule.
func Parse(data []byte) (*Rules, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f rulesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("rules: invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("rules: invalid JSON: extra data after the top-level object")
	}
	rs := &Rules{defaultOutcome: f.DefaultOutcome}
	if rs.defaultOutcome == "" {
		rs.defaultOutcome = vocab.StateAllow
	}
	if !IsOutcome(rs.defaultOutcome) {
		return nil, fmt.Errorf("rules: defaultOutcome %q is not one of ALLOW, BLOCK, CHALLENGE_REQUIRED, REVIEW_REQUIRED", rs.defaultOutcome)
	}
	seen := map[string]bool{}
	for i, r := range f.Rules {
		name := fmt.Sprintf("rule #%d", i+1)
		if r.ID != "" {
			name = fmt.Sprintf("rule %q (#%d)", r.ID, i+1)
		}
		if err := checkRule(r); err != nil {
			return nil, fmt.Errorf("rules: %s: %w", name, err)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("rules: %s: duplicate id", name)
		}
		seen[r.ID] = true
		if r.ActionCode == "*" {
			r.ActionCode = ""
		}
		rs.rules = append(rs.rules, r)
	}
	sort.SliceStable(rs.rules, func(i, j int) bool { return rs.rules[i].Priority < rs.rules[j].Priority })
	return rs, nil
}

func checkRule(r Rule) error {
	if r.ID == "" {
		return errors.New(`"id" is required`)
	}
	if !IsOutcome(r.Outcome) {
		return fmt.Errorf("outcome %q is not one of ALLOW, BLOCK, CHALLENGE_REQUIRED, REVIEW_REQUIRED", r.Outcome)
	}
	if r.ActionCode != "" && r.ActionCode != "*" {
		if err := vocab.ValidateActionCode(r.ActionCode); err != nil {
			return fmt.Errorf("actionCode %q: %w", r.ActionCode, err)
		}
	}
	for j, c := range r.Conditions {
		if err := checkCondition(c); err != nil {
			return fmt.Errorf("condition #%d: %w", j+1, err)
		}
	}
	return nil
}

func checkCondition(c Condition) error {
	if !ruleFields[c.Field] {
		name, ok := strings.CutPrefix(c.Field, "custom.")
		if !ok || name == "" || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			return fmt.Errorf("unknown field %q (use custom.<name>, actionCode, ipAddress, userAgent, deviceId, email, emailDomain, phoneNumber, username, isNewDevice or isEnrolled)", c.Field)
		}
	}
	if !ruleOps[c.Op] {
		return fmt.Errorf("unknown op %q (use eq, ne, gt, gte, lt, lte, in, notIn, contains, startsWith or endsWith)", c.Op)
	}
	switch c.Op {
	case "gt", "gte", "lt", "lte":
		if _, ok := c.Value.(float64); !ok {
			return fmt.Errorf("op %q needs a number value", c.Op)
		}
	case "contains", "startsWith", "endsWith":
		if _, ok := c.Value.(string); !ok {
			return fmt.Errorf("op %q needs a string value", c.Op)
		}
	case "in", "notIn":
		list, ok := c.Value.([]any)
		if !ok {
			return fmt.Errorf("op %q needs an array value", c.Op)
		}
		for _, v := range list {
			if !isScalar(v) {
				return fmt.Errorf("op %q: array items must be strings, numbers or booleans", c.Op)
			}
		}
	case "eq", "ne":
		if !isScalar(c.Value) {
			return fmt.Errorf("op %q needs a string, number or boolean value", c.Op)
		}
	}
	return nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, float64, bool:
		return true
	}
	return false
}

// List returns the rules in evaluation order.
func (rs *Rules) List() []Rule { return slices.Clone(rs.rules) }

// DefaultOutcome is the outcome when no rule matches.
func (rs *Rules) DefaultOutcome() vocab.State { return rs.defaultOutcome }

// Evaluate returns the outcome for in and the rule that decided it (nil = default outcome).
func (rs *Rules) Evaluate(in Input) (vocab.State, *Rule) {
	for i := range rs.rules {
		r := &rs.rules[i]
		if r.ActionCode != "" && r.ActionCode != in.ActionCode {
			continue
		}
		if r.matches(in) {
			return r.Outcome, r
		}
	}
	return rs.defaultOutcome, nil
}

func (r *Rule) matches(in Input) bool {
	for _, c := range r.Conditions {
		v, ok := in.field(c.Field)
		if !ok || !c.holds(v) {
			return false
		}
	}
	return true
}

// field returns the value of a field; ok is false when the field has no value (then no condition holds).
func (in Input) field(name string) (any, bool) {
	str := func(s string) (any, bool) { return s, s != "" }
	switch name {
	case "actionCode":
		return str(in.ActionCode)
	case "ipAddress":
		return str(in.IPAddress)
	case "userAgent":
		return str(in.UserAgent)
	case "deviceId":
		return str(in.DeviceID)
	case "email":
		return str(strings.ToLower(in.Email))
	case "emailDomain":
		_, domain, _ := strings.Cut(strings.ToLower(in.Email), "@")
		return str(domain)
	case "phoneNumber":
		return str(in.PhoneNumber)
	case "username":
		return str(in.Username)
	case "isNewDevice":
		return in.IsNewDevice, true
	case "isEnrolled":
		return in.IsEnrolled, true
	}
	path, _ := strings.CutPrefix(name, "custom.")
	var cur any = in.Custom
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok || cur == nil {
			return nil, false
		}
	}
	return cur, true
}

func (c Condition) holds(v any) bool {
	switch c.Op {
	case "eq":
		return scalarEqual(v, c.Value)
	case "ne":
		return sameType(v, c.Value) && !scalarEqual(v, c.Value)
	case "gt", "gte", "lt", "lte":
		a, ok := v.(float64)
		b, _ := c.Value.(float64)
		if !ok {
			return false
		}
		switch c.Op {
		case "gt":
			return a > b
		case "gte":
			return a >= b
		case "lt":
			return a < b
		default:
			return a <= b
		}
	case "in", "notIn":
		list, _ := c.Value.([]any)
		if !isScalar(v) {
			return false
		}
		found := false
		for _, item := range list {
			if scalarEqual(v, item) {
				found = true
				break
			}
		}
		return found == (c.Op == "in")
	case "contains", "startsWith", "endsWith":
		s, ok := v.(string)
		want, _ := c.Value.(string)
		if !ok {
			return false
		}
		switch c.Op {
		case "contains":
			return strings.Contains(s, want)
		case "startsWith":
			return strings.HasPrefix(s, want)
		default:
			return strings.HasSuffix(s, want)
		}
	}
	return false
}

func sameType(a, b any) bool {
	switch a.(type) {
	case string:
		_, ok := b.(string)
		return ok
	case float64:
		_, ok := b.(float64)
		return ok
	case bool:
		_, ok := b.(bool)
		return ok
	}
	return false
}

func scalarEqual(a, b any) bool { return sameType(a, b) && a == b }
