package state

import (
	"context"
	"errors"

	"example.com/passwordless/emulator/internal/vocab"
)

// The Client API's code operations, on the action its token names. Unlike the pre-built
// UI, it may challenge an action that was allowed (a user with no authenticator is
// allowed, and enrols through the Client API) or already succeeded (its access token
// lets the person add another method), but not one that was blocked, is held for review
// or has failed.

var clientSurface = surface{name: "Client API", load: clientAction}

// clientAction loads an action the Client API may challenge.
func clientAction(ctx context.Context, q queryer, k ActionKey) (*Action, error) {
	a, err := loadAction(ctx, q, k)
	if errors.Is(err, errNoRow) {
		return nil, actionNotFound(k)
	}
	if err != nil {
		return nil, err
	}
	switch a.State {
	case vocab.StateAllow, vocab.StateChallengeRequired, vocab.StateChallengeSucceeded:
		return a, nil
	}
	return nil, refuse(Conflict, "This action cannot be challenged (its state is %s).", a.State)
}

// CheckClientAction refuses an action the Client API may not challenge, before a
// ceremony starts for it (its end checks again).
func (s *Store) CheckClientAction(ctx context.Context, k ActionKey) error {
	_, err := clientAction(ctx, s.db, k)
	return err
}

// ClientCode is a code the Client API sends: to the user's enrolled authenticator of
// Method, or, with an address, to a new one that verifying the code enrols.
type ClientCode struct {
	Method             vocab.Method
	Email, PhoneNumber string // normalized; both "" to challenge the enrolled one
	// MayAdd is whether the token's scope lets it add an authenticator for a user who has
	// one already (add:authenticators).
	MayAdd bool
}

// ClientCodeSent is a code on its way.
type ClientCodeSent struct {
	ChallengeID     string
	AuthenticatorID string // the enrolled one challenged, or the id the new address will get
}

// SendClientCode sends a code for the action; it replaces the action's code in flight.
func (s *Store) SendClientCode(ctx context.Context, k ActionKey, c ClientCode) (ClientCodeSent, error) {
	var out ClientCodeSent
	err := s.inTxSending(ctx, func(tx *txn) error {
		a, err := clientAction(ctx, tx, k)
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, k.UserID)
		if err != nil {
			return err
		}
		if c.Email == "" && c.PhoneNumber == "" {
			for _, au := range auths {
				if au.Method == c.Method {
					out.AuthenticatorID = au.ID
					out.ChallengeID, err = s.startActionChallenge(ctx, tx, a, au.ID, "", au.Method, au.Email, au.PhoneNumber)
					return err
				}
			}
			return refuse(Invalid, "The user has no %s authenticator.", c.Method)
		}
		for _, au := range auths {
			if au.Method == c.Method && au.Email == c.Email && au.PhoneNumber == c.PhoneNumber {
				out.AuthenticatorID = au.ID // enrolled already: this is a challenge of it
				out.ChallengeID, err = s.startActionChallenge(ctx, tx, a, au.ID, "", au.Method, au.Email, au.PhoneNumber)
				return err
			}
		}
		if len(auths) > 0 && !c.MayAdd {
			return refuse(Forbidden, "The user is already enrolled: adding an authenticator needs a token with the add:authenticators scope.")
		}
		if out.AuthenticatorID, err = s.random.UUID(); err != nil {
			return err
		}
		out.ChallengeID, err = s.startActionChallenge(ctx, tx, a, "", out.AuthenticatorID, c.Method, c.Email, c.PhoneNumber)
		return err
	})
	return out, err
}

// ClientVerification is the result of a code given to the Client API.
type ClientVerification struct {
	PageVerification
	Authenticator *Authenticator // the authenticator verified; nil unless Verified
}

// VerifyClientCode checks a code against the action's code in flight, which must be one
// of method. Right: the action succeeds (a new address is enrolled first).
func (s *Store) VerifyClientCode(ctx context.Context, k ActionKey, m vocab.Method, code string) (ClientVerification, error) {
	a, err := clientAction(ctx, s.db, k)
	if err != nil {
		return ClientVerification{}, err
	}
	if c, err := pendingChallenge(ctx, s.db, a); err != nil {
		return ClientVerification{}, err
	} else if c == nil || c.VerificationMethod != m {
		return ClientVerification{}, refuse(Invalid, "No %s code is in flight for this action: start a challenge first.", m)
	}
	v, err := s.verifyActionCode(ctx, k, code, clientSurface)
	if err != nil {
		return ClientVerification{}, err
	}
	out := ClientVerification{PageVerification: v}
	if v.Verified {
		auths, err := listAuthenticators(ctx, s.db, k.UserID)
		if err != nil {
			return ClientVerification{}, err
		}
		a, err := loadAction(ctx, s.db, k)
		if err != nil {
			return ClientVerification{}, err
		}
		for i := range auths {
			if auths[i].ID == a.VerifiedByAuthenticatorID {
				out.Authenticator = &auths[i]
			}
		}
	}
	return out, nil
}
