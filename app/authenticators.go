package app

import (
	"context"
	"fmt"
	"strings"

	"example.com/passwordless/auth/authsignal"
)

// ensureEnrolled makes the address a user signed in with one of their authenticators on
// Authsignal, so that a rule can step them up with it later: Authsignal answers ALLOW (with
// isEnrolled false), not CHALLENGE_REQUIRED, for a user with no authenticator, and claiming
// the sign-in's challenge is not documented to enrol anything. An address already enrolled
// is left alone, so calling it on every sign-in is safe.
func (s *server) ensureEnrolled(ctx context.Context, userID string, method signInMethod, recipient string) error {
	auths, err := s.authsignal.GetAuthenticators(ctx, userID)
	if err != nil {
		return fmt.Errorf("list authenticators: %w", err)
	}
	for _, a := range auths {
		if a.VerificationMethod == method.VerificationMethod &&
			(strings.EqualFold(a.Email, recipient) && a.Email != "" || a.PhoneNumber == recipient && a.PhoneNumber != "") {
			return nil
		}
	}
	req := authsignal.EnrollAuthenticatorRequest{VerificationMethod: method.VerificationMethod}
	if method.byEmail() {
		req.Email = recipient
	} else {
		req.PhoneNumber = recipient
	}
	if _, err := s.authsignal.EnrollAuthenticator(ctx, userID, req); err != nil {
		return fmt.Errorf("enroll %s authenticator: %w", method.Key, err)
	}
	return nil
}
