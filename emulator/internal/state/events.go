package state

import (
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// Event is a change that webhooks announce, staged by a part and sent once it commits.
type Event struct {
	Type string
	Data any
}

// authenticatorEvent is the data of authenticator.created, .updated and .deleted (docs:
// advanced-usage/webhooks/authenticator-created, authenticator-updated, authenticator-deleted).
type authenticatorEvent struct {
	UserID              string       `json:"userId"`
	VerificationMethod  vocab.Method `json:"verificationMethod"`
	UserAuthenticatorID string       `json:"userAuthenticatorId"`
	CreatedAt           string       `json:"createdAt,omitempty"`
	UpdatedAt           string       `json:"updatedAt,omitempty"`
	DeletedAt           string       `json:"deletedAt,omitempty"`
	Email               string       `json:"email,omitempty"`
	PhoneNumber         string       `json:"phoneNumber,omitempty"`
}

func authenticatorCreated(a Authenticator) Event {
	return Event{Type: "authenticator.created", Data: authenticatorEvent{UserID: a.UserID, VerificationMethod: a.Method,
		UserAuthenticatorID: a.ID, CreatedAt: vocab.FormatTime(a.CreatedAt), Email: a.Email, PhoneNumber: a.PhoneNumber}}
}

func authenticatorDeleted(a Authenticator, at time.Time) Event {
	return Event{Type: "authenticator.deleted", Data: authenticatorEvent{UserID: a.UserID, VerificationMethod: a.Method,
		UserAuthenticatorID: a.ID, CreatedAt: vocab.FormatTime(a.CreatedAt), DeletedAt: vocab.FormatTime(at), Email: a.Email, PhoneNumber: a.PhoneNumber}}
}

func authenticatorUpdated(a Authenticator, at time.Time) Event {
	return Event{Type: "authenticator.updated", Data: authenticatorEvent{UserID: a.UserID, VerificationMethod: a.Method,
		UserAuthenticatorID: a.ID, UpdatedAt: vocab.FormatTime(at), Email: a.Email, PhoneNumber: a.PhoneNumber}}
}
