package emulator

import (
	"os"
	"path/filepath"
	"testing"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/testcontrols"
	"example.com/passwordless/emulator/internal/vocab"
)

// The API's names as plain strings, the type decoded JSON holds: a vocab.State inside an
// any never equals the string "ALLOW" inside another.
const (
	StateAllow              = string(vocab.StateAllow)
	StateBlock              = string(vocab.StateBlock)
	StateChallengeRequired  = string(vocab.StateChallengeRequired)
	StateChallengeSucceeded = string(vocab.StateChallengeSucceeded)
	StateChallengeFailed    = string(vocab.StateChallengeFailed)
	StateReviewRequired     = string(vocab.StateReviewRequired)
	StateReviewSucceeded    = string(vocab.StateReviewSucceeded)
	StateReviewFailed       = string(vocab.StateReviewFailed)

	MethodEmailOTP = string(vocab.MethodEmailOTP)
	MethodWhatsApp = string(vocab.MethodWhatsApp)
	ChannelEmail   = string(vocab.ChannelEmail)

	FailureInvalidOrExpired   = string(vocab.FailureInvalidOrExpired)
	FailureMaxAttemptsReached = string(vocab.FailureMaxAttemptsReached)

	ForceStateField    = testcontrols.ForceStateField
	ForcedRuleID       = testcontrols.ForcedRuleID
	FailingEmailDomain = testcontrols.FailingEmailDomain
	FailingPhoneNumber = testcontrols.FailingPhoneNumber

	codeInvalidRequest       = httpjson.CodeInvalidRequest
	codeInvalidConfiguration = httpjson.CodeInvalidConfiguration
)

// Message is an outbox message as GET /emulator/messages answers it.
type Message = state.Message

// writeRules writes a rules file for a test and returns its path.
func writeRules(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
