package authsignal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"
)

// sign is the signing side, written independently of VerifyWebhook (standard base64, its
// padding trimmed, as the Node SDK's .replace("=", "") does).
func sign(key string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "." + body))
	s := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return s[:len(s)-1]
}

func TestVerifyWebhook(t *testing.T) {
	// The body of the Node SDK's own webhook test (authsignal-node test/webhook.test.ts).
	const body = `{"version":1,"id":"bc1598bc-e5d6-4c69-9afb-1a6fe3469d6e","source":"https://authsignal.com","time":"2025-02-20T01:51:56.070Z","tenantId":"7752d28e-e627-4b1b-bb81-b45d68d617bc","type":"email.created","data":{"to":"chris@authsignal.com","code":"157743","userId":"b9f74d36-fcfc-4efc-87f1-3664ab5a7fb0","actionCode":"accountRecovery","idempotencyKey":"ba8c1a7c-775d-4dff-9abe-be798b7b8bb9","verificationMethod":"EMAIL_OTP"}}`
	const key = "test-secret-key-123" // the Go and PHP SDKs' test key
	now := time.Unix(1740016316, 0)
	ts := now.Unix()
	good := "t=" + strconv.FormatInt(ts, 10) + ",v2=" + sign(key, ts, body)

	ev, err := VerifyWebhook(key, good, []byte(body), now)
	if err != nil || ev.Type != "email.created" || ev.ID != "bc1598bc-e5d6-4c69-9afb-1a6fe3469d6e" {
		t.Fatalf("a good webhook: %+v, %v", ev, err)
	}
	twoKeys := "t=" + strconv.FormatInt(ts, 10) + ",v2=" + sign("old-key", ts, body) + ",v2=" + sign(key, ts, body)
	if _, err := VerifyWebhook(key, twoKeys, []byte(body), now); err != nil {
		t.Fatalf("two active keys: %v", err)
	}
	for _, tt := range []struct {
		name   string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"the SDKs' malformed header", "123", body, now, ErrWebhookSignatureFormat},
		{"no signature", "t=" + strconv.FormatInt(ts, 10), body, now, ErrWebhookSignatureFormat},
		{"a bad timestamp", "t=soon,v2=" + sign(key, ts, body), body, now, ErrWebhookSignatureFormat},
		{"too old", good, body, now.Add(WebhookTolerance + time.Second), ErrWebhookTooOld},
		{"a tampered body", good, body[:len(body)-2] + ` }}`, now, ErrWebhookSignature},
		{"another key", "t=" + strconv.FormatInt(ts, 10) + ",v2=" + sign("another", ts, body), body, now, ErrWebhookSignature},
		{"the signature with its padding", good + "=", body, now, ErrWebhookSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := VerifyWebhook(key, tt.header, []byte(tt.body), tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := VerifyWebhook(key, good, []byte(body), now.Add(WebhookTolerance)); err != nil {
		t.Fatalf("exactly at the tolerance: %v", err)
	}
}
