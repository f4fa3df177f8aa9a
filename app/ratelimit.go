package app

import (
	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/store"
)

// The app's limits on one-time codes: sends per client IP and per address, and wrong codes
// per address. They are counted in the store, not in this process, so that they hold
// however many instances serve the app. When the store cannot count, the app sends and
// checks nothing (it fails closed) and says so.

const (
	sendsPerIPKind      = "send-ip"
	sendsPerAddressKind = "send-address"
	guessesKind         = "guess-address"
)

const tooManySendsMessage = "Too many codes were requested. Wait a few minutes, then try again."

// limitsUnavailableMessage is the page's sentence when the store could not count a limit.
const limitsUnavailableMessage = "Sign-in is unavailable for a moment. Please try again shortly."

func (s *server) guessLimit(recipient string) store.Limit {
	return store.Limit{Kind: guessesKind, Value: recipient, Max: s.cfg.GuessesPerAddress, Window: s.cfg.GuessWindow}
}

// reserveSend takes one code from the IP's budget and the address's, or from neither (a
// refusal by the address's limit costs the IP nothing), and returns how to give both back
// when no code went out after all. refusal is "" when the code may go, else the sentence
// to show with status.
func (s *server) reserveSend(c *fiber.Ctx, recipient string) (release func(), status int, refusal string) {
	ctx := c.UserContext()
	r, ok, err := s.store.Reserve(ctx,
		store.Limit{Kind: sendsPerIPKind, Value: c.IP(), Max: s.cfg.SendsPerIP, Window: s.cfg.SendWindow},
		store.Limit{Kind: sendsPerAddressKind, Value: recipient, Max: s.cfg.SendsPerAddress, Window: s.cfg.SendWindow})
	if err != nil {
		s.log.Error("reserve a code send", "request_id", c.Locals(localReqID), "err", err)
		return nil, fiber.StatusServiceUnavailable, limitsUnavailableMessage
	}
	if !ok {
		return nil, fiber.StatusTooManyRequests, tooManySendsMessage
	}
	return func() {
		if err := s.store.Release(ctx, r); err != nil {
			s.log.Warn("release a code send", "request_id", c.Locals(localReqID), "err", err)
		}
	}, 0, ""
}

// guessLock says whether wrong codes have paused sign-in with the address: refusal is ""
// when they have not, else the sentence to show with status.
func (s *server) guessLock(c *fiber.Ctx, recipient string) (status int, refusal string) {
	until, locked, err := s.store.LockedUntil(c.UserContext(), s.guessLimit(recipient))
	if err != nil {
		s.log.Error("check wrong codes", "request_id", c.Locals(localReqID), "err", err)
		return fiber.StatusServiceUnavailable, limitsUnavailableMessage
	}
	if locked {
		return fiber.StatusTooManyRequests, lockedMessage(until)
	}
	return 0, ""
}

// recordGuess counts a wrong code against the address, once per distinct code: sending the
// same one again (a double click, or the right code after a concurrent submission used it)
// is not another guess. The store keeps only a hash of it. A failure to count is logged;
// the next guess's guessLock then fails closed too.
func (s *server) recordGuess(c *fiber.Ctx, recipient, code string) {
	if err := s.store.RecordFailure(c.UserContext(), s.guessLimit(recipient), code); err != nil {
		s.log.Error("count a wrong code", "request_id", c.Locals(localReqID), "err", err)
	}
}
