package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// Forced outcomes for tests, like the magic values of providers' test modes. They are
// all listed here, kept few, and documented in README.md ("Forced outcomes").
//
//   - track with custom.emulatorForceState = ALLOW | BLOCK | REVIEW_REQUIRED |
//     CHALLENGE_REQUIRED answers that state without evaluating the rules; ruleIds is
//     ["emulator-force"] so the outcome is visibly synthetic.
//   - a challenge to any address at fail.example.com, or to +15555550199, fails as a
//     provider (email/SMS gateway) failure would: 502 invalid_configuration, nothing stored or sent.
const (
	ForceStateField    = "emulatorForceState"
	ForcedRuleID       = "emulator-force"
	FailingEmailDomain = "fail.example.com"
	FailingPhoneNumber = "+15555550199"
)

// forcedState reads custom.emulatorForceState: "" when absent, else a rule outcome.
func forcedState(custom map[string]any) (string, error) {
	v, ok := custom[ForceStateField]
	if !ok {
		return "", nil
	}
	s, _ := v.(string)
	if !ruleOutcomes[s] {
		return "", badRequest("custom.%s must be one of ALLOW, BLOCK, REVIEW_REQUIRED, CHALLENGE_REQUIRED (got %s).", ForceStateField, jsonish(v))
	}
	return s, nil
}

// forcedRule is the synthetic rule reported for a forced state.
func forcedRule(state string) *Rule {
	return &Rule{ID: ForcedRuleID, Name: "Forced by the emulator",
		Description: fmt.Sprintf("custom.%s forced %s (emulator test mode); no rule was evaluated.", ForceStateField, state)}
}

// isFailingRecipient reports whether delivery to this (normalized) email or phone always fails.
func isFailingRecipient(recipient string) bool {
	if recipient == FailingPhoneNumber {
		return true
	}
	_, domain, ok := strings.Cut(recipient, "@")
	return ok && strings.EqualFold(domain, FailingEmailDomain)
}

// deliveryFailure is the error for a send to a failing recipient, nil otherwise.
func deliveryFailure(channel, recipient string) error {
	if !isFailingRecipient(recipient) {
		return nil
	}
	what := "SMS"
	switch channel {
	case ChannelEmail:
		what = "email"
	case ChannelWhatsApp:
		what = "WhatsApp message"
	}
	return &apiError{Status: http.StatusBadGateway, Code: codeInvalidConfiguration,
		Description: fmt.Sprintf("The %s could not be delivered: the provider refused it (emulator test recipient that always fails).", what)}
}

// jsonish renders a decoded JSON value for an error message.
func jsonish(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}
