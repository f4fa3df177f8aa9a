package emulator

import (
	"net/http"
	"testing"
)

// userWithData gives userID an email sign-in (claimed, then enrolled as the app does), an SMS authenticator, a tracked
// action with a device and a pending SMS challenge, all with their own addresses.
func (env *testEnv) userWithData(userID, email, phone string) {
	env.t.Helper()
	id := env.challengeEmail(email)
	env.verify(id, env.lastCode(email))
	env.apiOK("POST", "/v1/claim", map[string]any{"challengeId": id, "userId": userID})
	env.enrol(userID, email)
	env.apiOK("POST", "/v1/users/"+userID+"/authenticators", map[string]any{"verificationMethod": "SMS", "phoneNumber": phone})
	env.apiOK("POST", "/v1/users/"+userID+"/actions/withdrawal", map[string]any{"deviceId": "dev-" + userID, "custom": map[string]any{"amount": 10}})
	env.apiOK("POST", "/v1/challenge", map[string]any{"verificationMethod": "SMS", "action": "stepUp", "phoneNumber": phone, "userId": userID})
}

func TestScopedDeleteLeavesOtherUsersAlone(t *testing.T) {
	env := newEnv(t)
	env.userWithData("alice", "alice@example.com", "+15555550001")
	env.userWithData("bob", "bob@example.com", "+15555550002")
	// An address both users share keeps its messages.
	env.apiOK("POST", "/v1/users/bob/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "shared@example.com"})
	env.apiOK("POST", "/v1/users/alice/authenticators", map[string]any{"verificationMethod": "EMAIL_OTP", "email": "shared@example.com"})
	env.challengeEmail("shared@example.com")

	status, raw, _ := env.do("DELETE", "/emulator/users/alice", nil, "")
	if status != http.StatusOK {
		t.Fatalf("delete alice: %d %s", status, raw)
	}
	// Row by row, table by table: state's TestDeleteUserDataLeavesOthersAlone.
	if u := env.apiOK("GET", "/v1/users/alice", nil); u["isEnrolled"] != false || u["email"] != nil {
		t.Fatalf("alice = %v", u)
	}
	if l := env.apiList("GET", "/v1/users/alice/actions"); len(l) != 0 {
		t.Fatalf("alice's actions: %v", l)
	}
	for _, to := range []string{"alice@example.com", "+15555550001"} {
		if msgs := env.messages(to); len(msgs) != 0 {
			t.Errorf("alice's messages to %s remain: %d", to, len(msgs))
		}
	}
	for _, to := range []string{"bob@example.com", "+15555550002", "shared@example.com"} {
		if msgs := env.messages(to); len(msgs) == 0 {
			t.Errorf("messages to %s were deleted", to)
		}
	}
	if u := env.apiOK("GET", "/v1/users/bob", nil); u["isEnrolled"] != true || u["email"] != "bob@example.com" {
		t.Fatalf("bob = %v", u)
	}
	if l := env.apiList("GET", "/v1/users/bob/actions"); len(l) != 3 { // sign-in (claim), withdrawal, stepUp
		t.Fatalf("bob's actions: %v", l)
	}

	// Unknown user: JSON 404; a bad id: JSON 400.
	status, raw, h := env.do("DELETE", "/emulator/users/alice", nil, "")
	if status != http.StatusNotFound || h.Get("Content-Type") != "application/json" {
		t.Fatalf("second delete: %d %s", status, raw)
	}
	if status, _, _ := env.do("DELETE", "/emulator/users/%20x", nil, ""); status != http.StatusBadRequest {
		t.Fatalf("bad user id: %d", status)
	}
}
