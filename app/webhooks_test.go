package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The emulator announces the authenticator a sign-in enrols, and the app's receiver takes
// it: the whole path a tenant's webhook takes, signature included.
func TestWebhookReceiverTakesTheEmulatorsWebhooks(t *testing.T) {
	e := newTestEnv(t)
	e.signedIn()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), `msg="webhook received" type=authenticator.created`) {
		if time.Now().After(deadline) {
			t.Fatalf("no authenticator.created received; log:\n%s", e.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(e.logs.String(), "webhook refused") {
		t.Fatalf("a webhook of the emulator was refused:\n%s", e.logs.String())
	}
}

func TestWebhookReceiverRefusesForgeries(t *testing.T) {
	e := newTestEnv(t)
	body := `{"version":1,"id":"ev-1","source":"https://authsignal.com","time":"2025-01-01T00:00:00.000Z","tenantId":"t","type":"authenticator.deleted","data":{}}`
	signed := func(key string, at time.Time) string {
		ts := strconv.FormatInt(at.Unix(), 10)
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(ts + "." + body))
		return "t=" + ts + ",v2=" + base64.RawStdEncoding.EncodeToString(mac.Sum(nil))
	}
	post := func(signature string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.appURL+WebhookPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signature != "" {
			req.Header.Set("X-Signature-V2", signature)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, tt := range []struct {
		name      string
		signature string
		want      int
	}{
		{"signed with the secret key, no cookie or CSRF token", signed(testSecret, e.clock.Now()), 200},
		{"unsigned", "", 401},
		{"signed with another key", signed("someone-else", e.clock.Now()), 401},
		{"a replay older than five minutes", signed(testSecret, e.clock.Now().Add(-6*time.Minute)), 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(tt.signature); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
		})
	}
}
