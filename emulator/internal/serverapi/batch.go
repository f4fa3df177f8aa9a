package serverapi

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// maxBatch is the most items one batch enrolment takes (docs:
// api-reference/server-api/batch-enroll-verified-authenticators).
const maxBatch = 1000

type batchItem struct {
	UserID              string       `json:"userId"`
	VerificationMethod  vocab.Method `json:"verificationMethod"`
	CredentialID        string       `json:"credentialId"`
	CredentialPublicKey string       `json:"credentialPublicKey"`
	Name                string       `json:"name"`
	Transports          []string     `json:"transports"`
	AAGUID              string       `json:"aaguid"`
}

type batchFailure struct {
	UserID           string `json:"userId"`
	CredentialID     string `json:"credentialId"`
	ErrorCode        string `json:"errorCode"`
	ErrorDescription string `json:"errorDescription"`
}

type batchResponse struct {
	Total     int            `json:"total"`
	Succeeded int            `json:"succeeded"`
	Failed    int            `json:"failed"`
	Failures  []batchFailure `json:"failures"`
}

// decodeBase64URL reads base64url with or without padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// check validates one item; the refusal is a sentence for its failure.
func (it batchItem) check() (state.PasskeyEnrolment, string) {
	e := state.PasskeyEnrolment{UserID: it.UserID}
	if err := vocab.ValidateUserID(it.UserID); err != nil {
		return e, err.Error() + "."
	}
	if it.VerificationMethod != vocab.MethodPasskey {
		return e, "verificationMethod must be PASSKEY."
	}
	id, err := decodeBase64URL(it.CredentialID)
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return e, "credentialId must be base64url, 1 to 1023 bytes."
	}
	key, err := decodeBase64URL(it.CredentialPublicKey)
	if err != nil || len(key) == 0 || len(key) > 2048 {
		return e, "credentialPublicKey must be base64url."
	}
	if _, err := webauthncose.ParsePublicKey(key); err != nil {
		return e, "credentialPublicKey is not a COSE public key."
	}
	if len(it.Name) > 255 || len(it.AAGUID) > 36 || len(it.Transports) > 8 {
		return e, "name (255), aaguid (36) or transports (8) is too long."
	}
	e.CredentialID, e.PublicKey, e.Name, e.AAGUID, e.Transports = id, key, it.Name, it.AAGUID, it.Transports
	return e, ""
}

// BatchEnroll serves POST /v1/users/authenticators: passkeys made elsewhere, enrolled as
// verified, each item on its own; the answer counts them and names each failure.
func (a *API) BatchEnroll(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Authenticators []batchItem `json:"authenticators"`
	}
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	switch n := len(req.Authenticators); {
	case n == 0:
		return httpjson.BadRequest("authenticators is required: 1 to %d items.", maxBatch)
	case n > maxBatch:
		return httpjson.BadRequest("authenticators holds at most %d items.", maxBatch)
	}
	resp := batchResponse{Total: len(req.Authenticators), Failures: []batchFailure{}}
	var valid []state.PasskeyEnrolment
	var index []int // valid[i] is request item index[i]
	for i, it := range req.Authenticators {
		e, refusal := it.check()
		if refusal != "" {
			resp.Failures = append(resp.Failures, batchFailure{UserID: it.UserID, CredentialID: it.CredentialID, ErrorCode: httpjson.CodeInvalidRequest, ErrorDescription: refusal})
			continue
		}
		valid, index = append(valid, e), append(index, i)
	}
	failures, err := a.store.BatchEnrollPasskeys(r.Context(), valid)
	if err != nil {
		return err
	}
	for _, f := range failures {
		it := req.Authenticators[index[f.Index]]
		code := httpjson.CodeInvalidRequest
		if f.Kind == state.Conflict {
			code = "conflict" // the code in the docs' example
		}
		resp.Failures = append(resp.Failures, batchFailure{UserID: it.UserID, CredentialID: it.CredentialID, ErrorCode: code, ErrorDescription: f.Description})
	}
	resp.Failed = len(resp.Failures)
	resp.Succeeded = resp.Total - resp.Failed
	a.log.Info("batch enrolment", "total", resp.Total, "succeeded", resp.Succeeded, "failed", resp.Failed)
	return httpjson.Write(w, http.StatusOK, resp)
}
