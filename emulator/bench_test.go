package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"example.com/passwordless/emulator/internal/state"
)

// benchCall serves one request in-process (no network) and decodes the JSON answer.
func benchCall(b *testing.B, h http.Handler, method, path string, body any) map[string]any {
	j, _ := json.Marshal(body)
	req := httptest.NewRequest(method, path, bytes.NewReader(j))
	req.SetBasicAuth(testKey, "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	var m map[string]any
	json.Unmarshal(rec.Body.Bytes(), &m)
	return m
}

func benchEnv(b *testing.B) *Emulator {
	lim := DefaultLimits()
	lim.EmailPerWindow = 1 << 30 // measure the work, not the limiter's refusals
	emu, err := New(Config{SecretKey: testKey, DBPath: b.TempDir() + "/bench.db", Limits: lim})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { emu.Close() })
	return emu
}

func BenchmarkChallengeVerify(b *testing.B) {
	emu := benchEnv(b)
	h := emu.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		email := fmt.Sprintf("bench%d@example.com", i%1000)
		c := benchCall(b, h, "POST", "/v1/challenge", map[string]any{"verificationMethod": "EMAIL_OTP", "action": "signInWithEmail", "email": email})
		msgs, err := emu.store.Messages(b.Context(), state.MessageFilter{To: email}, 0, 1) // the newest
		if err != nil || len(msgs) == 0 {
			b.Fatal("no message", err)
		}
		v := benchCall(b, h, "POST", "/v1/verify", map[string]any{"challengeId": c["challengeId"], "verificationCode": msgs[0].Code})
		if v["isVerified"] != true {
			b.Fatalf("verify %v", v)
		}
	}
}

func BenchmarkTrack(b *testing.B) {
	emu := benchEnv(b)
	h := emu.Handler()
	amounts := []float64{50, 1500, 20000}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchCall(b, h, "POST", fmt.Sprintf("/v1/users/u%d/actions/withdrawal", i%100), map[string]any{
			"custom": map[string]any{"amount": amounts[i%3]}, "deviceId": "d1", "ipAddress": "198.51.100.7", "redirectUrl": "http://localhost:3000/cb"})
	}
}

func BenchmarkValidate(b *testing.B) {
	emu := benchEnv(b)
	h := emu.Handler()
	tr := benchCall(b, h, "POST", "/v1/users/u1/actions/withdrawal", map[string]any{"custom": map[string]any{"amount": 1500}})
	body := map[string]any{"token": tr["token"]}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v := benchCall(b, h, "POST", "/v1/validate", body); v["isValid"] != true {
			b.Fatalf("validate %v", v)
		}
	}
}
