package app

import (
	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
)

// WebhookPath is where the app receives Authsignal's webhooks.
const WebhookPath = "/webhooks/authsignal"

// authsignalWebhook receives a webhook: it answers 2xx only for one Authsignal signed in
// the last five minutes, then logs which event it was. An integrator reacts here: to
// authenticator.created and .deleted (say, a security email to the user).
func (s *server) authsignalWebhook(c *fiber.Ctx) error {
	ev, err := authsignal.VerifyWebhook(s.cfg.WebhookSecret, c.Get(authsignal.WebhookSignatureHeader), c.Body(), s.now())
	if err != nil {
		s.log.Warn("webhook refused", "reason", err, "request_id", c.Locals(localReqID))
		return c.Status(fiber.StatusUnauthorized).JSON(fiber.Map{"error": "invalid_signature", "errorDescription": "The webhook's signature is missing, invalid or too old."})
	}
	// Only the type and id: the data of email.created and sms.created holds the code.
	s.log.Info("webhook received", "type", ev.Type, "event_id", ev.ID)
	return c.JSON(fiber.Map{"received": true})
}
