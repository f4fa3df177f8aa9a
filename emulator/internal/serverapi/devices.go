package serverapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"example.com/passwordless/emulator/internal/httpjson"
	"example.com/passwordless/emulator/internal/state"
	"example.com/passwordless/emulator/internal/vocab"
)

// deviceResponse is a device as the API lists it (docs: api-reference/server-api/get-devices,
// update-device).
type deviceResponse struct {
	UserID                 string       `json:"userId"`
	DeviceID               string       `json:"deviceId"`
	CreatedAt              string       `json:"createdAt"`
	AuthenticatedAt        string       `json:"authenticatedAt,omitempty"`
	InvalidatedAt          string       `json:"invalidatedAt,omitempty"`
	LastVerificationMethod vocab.Method `json:"lastVerificationMethod,omitempty"`
	RememberedUntil        string       `json:"rememberedUntil,omitempty"`
}

func deviceJSON(d state.Device) deviceResponse {
	return deviceResponse{UserID: d.UserID, DeviceID: d.DeviceID, CreatedAt: vocab.FormatTime(d.CreatedAt),
		AuthenticatedAt: vocab.FormatOptionalTime(d.AuthenticatedAt), InvalidatedAt: vocab.FormatOptionalTime(d.InvalidatedAt),
		LastVerificationMethod: d.LastVerificationMethod, RememberedUntil: vocab.FormatOptionalTime(d.RememberedUntil)}
}

// pathDevice reads and checks {userId} and {deviceId}.
func pathDevice(r *http.Request) (string, string, error) {
	userID, err := pathUserID(r)
	if err != nil {
		return "", "", err
	}
	deviceID := r.PathValue("deviceId")
	if deviceID == "" {
		return "", "", httpjson.BadRequest("deviceId is required.")
	}
	if err := httpjson.CheckLengths("deviceId", deviceID); err != nil {
		return "", "", err
	}
	return userID, deviceID, nil
}

// GetDevices serves GET /v1/users/{userId}/devices: the device ids the user's actions were
// tracked with, oldest first.
func (a *API) GetDevices(w http.ResponseWriter, r *http.Request) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	ds, err := a.store.Devices(r.Context(), userID)
	if err != nil {
		return err
	}
	out := make([]deviceResponse, len(ds))
	for i, d := range ds {
		out[i] = deviceJSON(d)
	}
	return httpjson.Write(w, http.StatusOK, out)
}

// UpdateDevice serves PATCH /v1/users/{userId}/devices/{deviceId}: {rememberedUntil}, a
// future time, or null to forget the device.
func (a *API) UpdateDevice(w http.ResponseWriter, r *http.Request) error {
	userID, deviceID, err := pathDevice(r)
	if err != nil {
		return err
	}
	var req struct {
		RememberedUntil json.RawMessage `json:"rememberedUntil"`
	}
	if err := httpjson.Decode(w, r, &req, false); err != nil {
		return err
	}
	var until time.Time
	switch raw := bytes.TrimSpace(req.RememberedUntil); {
	case len(raw) == 0:
		return httpjson.BadRequest("rememberedUntil is required: a future ISO 8601 time, or null.")
	case string(raw) == "null":
	default:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return httpjson.BadRequest("rememberedUntil must be an ISO 8601 time or null.")
		}
		if until, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return httpjson.BadRequest("rememberedUntil must be an ISO 8601 time, like 2030-01-01T00:00:00Z.")
		}
		if !until.After(a.now()) {
			return httpjson.BadRequest("rememberedUntil must be in the future.")
		}
	}
	d, err := a.store.RememberDevice(r.Context(), userID, deviceID, until)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, deviceJSON(d))
}

// InvalidateDevice serves POST /v1/users/{userId}/devices/{deviceId}/invalidate: the device
// counts as new on the user's next actions ("treating it as if it were a new device", docs:
// api-reference/server-api/invalidate-device), until a challenge succeeds on it.
func (a *API) InvalidateDevice(w http.ResponseWriter, r *http.Request) error {
	userID, deviceID, err := pathDevice(r)
	if err != nil {
		return err
	}
	d, err := a.store.InvalidateDevice(r.Context(), userID, deviceID)
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusOK, deviceJSON(d))
}
