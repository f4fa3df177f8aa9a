package emulator

import (
	"context"
	"net/http"
	"testing"
)

func TestForcedState(t *testing.T) {
	env := newEnv(t)
	for _, state := range []string{StateAllow, StateBlock, StateReviewRequired, StateChallengeRequired} {
		t.Run(state, func(t *testing.T) {
			// 50000 would be BLOCK by the default rules: the forced value wins.
			tr := env.apiOK("POST", "/v1/users/force-user/actions/withdrawal", map[string]any{
				"custom": map[string]any{"amount": 50000, ForceStateField: state}})
			ids, _ := tr["ruleIds"].([]any)
			if tr["state"] != state || len(ids) != 1 || ids[0] != ForcedRuleID {
				t.Fatalf("track = state %v ruleIds %v, want %s [%s]", tr["state"], tr["ruleIds"], state, ForcedRuleID)
			}
			a := env.apiOK("GET", "/v1/users/force-user/actions/withdrawal/"+tr["idempotencyKey"].(string), nil)
			rules, _ := a["rules"].([]any)
			if a["state"] != state || len(rules) != 1 || rules[0].(map[string]any)["ruleId"] != ForcedRuleID {
				t.Fatalf("action = %v", a)
			}
		})
	}
	for _, bad := range []any{"NOPE", "allow", StateChallengeSucceeded, 5, true, nil} {
		status, m := env.api("POST", "/v1/users/force-user/actions/withdrawal", map[string]any{"custom": map[string]any{ForceStateField: bad}})
		wantError(t, status, m, http.StatusBadRequest, codeInvalidRequest)
	}
	// Without the field, the rules decide as before.
	if tr := env.apiOK("POST", "/v1/users/force-user/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 50000}}); tr["state"] != StateBlock {
		t.Fatalf("unforced: %v", tr)
	}
}

func TestFailingRecipients(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		name string
		body map[string]any
		to   string
	}{
		{"email", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "anyone@fail.example.com"}, "anyone@fail.example.com"},
		{"email upper case", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "Bob@FAIL.example.com"}, "bob@fail.example.com"},
		{"sms", map[string]any{"verificationMethod": "SMS", "phoneNumber": FailingPhoneNumber}, FailingPhoneNumber},
		{"whatsapp", map[string]any{"verificationMethod": "WHATSAPP", "phoneNumber": FailingPhoneNumber}, FailingPhoneNumber},
		{"sms via whatsapp channel", map[string]any{"verificationMethod": "SMS", "smsChannel": "WHATSAPP", "phoneNumber": FailingPhoneNumber}, FailingPhoneNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["action"] = "signIn"
			tt.body["userId"] = "fail-user"
			status, m := env.api("POST", "/v1/challenge", tt.body)
			wantError(t, status, m, http.StatusBadGateway, codeInvalidConfiguration)
			if msgs := env.messages(tt.to); len(msgs) != 0 {
				t.Fatalf("message stored for a failed delivery: %+v", msgs)
			}
		})
	}
	// The refusal comes before the transaction (state.Store.deliverable), so no send is counted either.
	if c, err := env.emu.store.Counts(context.Background()); err != nil || c.Challenges+c.Users+c.Actions != 0 {
		t.Fatalf("failed deliveries stored state: %+v, %v", c, err)
	}
	// Neighbours of the magic values still work.
	env.challengeEmail("anyone@notfail.example.com")
	env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "signIn", "phoneNumber": "+15555550198"})
}
