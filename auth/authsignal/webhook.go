package authsignal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// WebhookSignatureHeader carries a webhook's signature.
const WebhookSignatureHeader = "X-Signature-V2"

// WebhookTolerance is how old a webhook may be, as the official SDKs check by default.
const WebhookTolerance = 5 * time.Minute

// WebhookEvent is a webhook's envelope; Data is left for the receiver to decode by Type.
type WebhookEvent struct {
	Version  int             `json:"version"`
	ID       string          `json:"id"`
	Source   string          `json:"source"`
	Time     string          `json:"time"`
	TenantID string          `json:"tenantId"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
}

// The reasons VerifyWebhook refuses a request; they name no secret.
var (
	ErrWebhookSignatureFormat = errors.New("webhook signature format is invalid")
	ErrWebhookTooOld          = errors.New("webhook timestamp is outside the tolerance")
	ErrWebhookSignature       = errors.New("webhook signature mismatch")
)

// VerifyWebhook checks a webhook as the official SDKs' webhook.constructEvent does: the
// header is "t=<Unix seconds>,v2=<sig>[,v2=<sig>…]" (several when two keys are active), a
// sig is base64, without padding, of the HMAC-SHA256 of "<t>.<body>" keyed with the secret
// key, and t is at most WebhookTolerance before now. It returns the event.
func VerifyWebhook(secretKey string, header string, body []byte, now time.Time) (*WebhookEvent, error) {
	var ts int64 = -1
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, ErrWebhookSignatureFormat
			}
			ts = n
		case "v2":
			sigs = append(sigs, v)
		}
	}
	if ts < 0 || len(sigs) == 0 {
		return nil, ErrWebhookSignatureFormat
	}
	if time.Unix(ts, 0).Before(now.Add(-WebhookTolerance)) {
		return nil, ErrWebhookTooOld
	}
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	want := []byte(base64.RawStdEncoding.EncodeToString(mac.Sum(nil)))
	ok := false
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) { // constant time
			ok = true
		}
	}
	if !ok {
		return nil, ErrWebhookSignature
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" || ev.ID == "" {
		return nil, errors.New("webhook body is not an Authsignal event")
	}
	return &ev, nil
}
