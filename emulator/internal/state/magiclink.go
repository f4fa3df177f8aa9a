package state

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"

	"example.com/passwordless/emulator/internal/vocab"
)

// Email magic links: an email with a link holding a secret, instead of a code. Opening
// the link (and confirming: a link scanner that only fetches it verifies nothing) checks
// the secret like a code, with the same lifetime and attempt limit, and settles the
// action; the browser that asked learns it by polling (the Client API's finalize) or by
// its "Continue" (the pre-built UI).

var magicLinkSurface = surface{name: "magic link", load: clientAction}

// MagicLink is a link on its way.
type MagicLink struct {
	ChallengeID     string
	AuthenticatorID string // the enrolled one, or the id the new address will get
}

// sendMagicLink sends a link for the action to email, the user's authenticator authID,
// or (authID "") a new address enrolled as newAuthID once opened. linkBase is the
// emulator's base URL, where the link points.
func (s *Store) sendMagicLink(ctx context.Context, tx *txn, a *Action, authID, newAuthID, email, linkBase string) (string, error) {
	if err := s.deliverable(vocab.ChannelEmail, email); err != nil {
		return "", err
	}
	id, err := s.random.UUID()
	if err != nil {
		return "", err
	}
	raw, err := s.random.Bytes(32)
	if err != nil {
		return "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	link := linkBase + "/magic-link/" + url.PathEscape(id) + "?secret=" + secret
	minutes := int(math.Ceil(s.limits.CodeTTL.Minutes()))
	subject, body := "Your sign-in link", fmt.Sprintf("Open this link to confirm it is you: %s\nIt works once, for %d minutes. If you did not ask for it, ignore this email.", link, minutes)
	if vocab.Language(a.Locale) == "es" {
		subject, body = "Tu enlace de acceso", fmt.Sprintf("Abre este enlace para confirmar que eres tú: %s\nFunciona una vez, durante %d minutos. Si no lo pediste, ignora este correo.", link, minutes)
	}
	if _, err := s.sendMessage(ctx, tx, Message{ChallengeID: id, Channel: vocab.ChannelEmail, To: email, Subject: subject, Body: body, Link: link}); err != nil {
		return "", err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO challenges(challenge_id, origin, idempotency_key, action_code, verification_method, channel,
		email, user_id, authenticator_id, new_authenticator_id, locale, code_hash, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, OriginPrebuilt, a.IdempotencyKey, a.ActionCode, vocab.MethodEmailMagicLink, vocab.ChannelEmail, email, a.UserID, authID, newAuthID,
		a.Locale, codeHash(id, secret), ms(now.Add(s.limits.CodeTTL)), ms(now)); err != nil {
		return "", fmt.Errorf("insert magic link challenge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE actions SET ui_challenge_id = ?, updated_at = ? WHERE user_id = ? AND action_code = ? AND idempotency_key = ?`,
		id, ms(now), a.UserID, a.ActionCode, a.IdempotencyKey); err != nil {
		return "", fmt.Errorf("link magic link challenge: %w", err)
	}
	return id, nil
}

// SendClientMagicLink sends a link for the Client API's action: to email (a new address,
// or an enrolled one), or with email "" to the user's enrolled magic-link address.
func (s *Store) SendClientMagicLink(ctx context.Context, k ActionKey, email string, mayAdd bool, linkBase string) (MagicLink, error) {
	var out MagicLink
	err := s.inTxSending(ctx, func(tx *txn) error {
		a, err := clientAction(ctx, tx, k)
		if err != nil {
			return err
		}
		auths, err := listAuthenticators(ctx, tx, k.UserID)
		if err != nil {
			return err
		}
		for _, au := range auths {
			if au.Method == vocab.MethodEmailMagicLink && (email == "" || au.Email == email) {
				out.AuthenticatorID = au.ID
				out.ChallengeID, err = s.sendMagicLink(ctx, tx, a, au.ID, "", au.Email, linkBase)
				return err
			}
		}
		if email == "" {
			return refuse(Invalid, "The user has no EMAIL_MAGIC_LINK authenticator.")
		}
		if len(auths) > 0 && !mayAdd {
			return refuse(Forbidden, "The user is already enrolled: adding an authenticator needs a token with the add:authenticators scope.")
		}
		if out.AuthenticatorID, err = s.random.UUID(); err != nil {
			return err
		}
		out.ChallengeID, err = s.sendMagicLink(ctx, tx, a, "", out.AuthenticatorID, email, linkBase)
		return err
	})
	return out, err
}

// MagicLinkPage is what the page a link opens shows: where it went, and whether it can
// still be used.
type MagicLinkPage struct {
	Email  string
	Usable bool
}

// MagicLinkFor looks a link's challenge up, for the page that asks to confirm it.
func (s *Store) MagicLinkFor(ctx context.Context, challengeID string) (MagicLinkPage, error) {
	c, err := s.loadMagicLink(ctx, challengeID)
	if err != nil {
		return MagicLinkPage{}, err
	}
	return MagicLinkPage{Email: c.Email, Usable: c.Status(s.now(), s.limits.MaxAttempts) == StatusPending}, nil
}

// loadMagicLink is a link's challenge; one that is not a link is as unknown.
func (s *Store) loadMagicLink(ctx context.Context, challengeID string) (*Challenge, error) {
	c, err := loadChallenge(ctx, s.db, challengeID, OriginPrebuilt)
	if errors.Is(err, errNoRow) || (err == nil && c.VerificationMethod != vocab.MethodEmailMagicLink) {
		return nil, refuse(NotFound, "This link is not known: it may be from before a reset.")
	}
	return c, err
}

// OpenMagicLink checks a link's secret. Right: the action succeeds (a new address is
// enrolled first), as with a right code.
func (s *Store) OpenMagicLink(ctx context.Context, challengeID, secret string) (PageVerification, error) {
	c, err := s.loadMagicLink(ctx, challengeID)
	if err != nil {
		return PageVerification{}, err
	}
	k := ActionKey{UserID: c.UserID, ActionCode: c.ActionCode, IdempotencyKey: c.IdempotencyKey}
	a, err := loadAction(ctx, s.db, k)
	if err != nil {
		return PageVerification{}, err
	}
	if a.PageChallengeID != c.ID {
		return PageVerification{Verification: Verification{FailureReason: vocab.FailureInvalidOrExpired, Challenge: *c}, Action: *a},
			refuse(Conflict, "This link was replaced by a newer one, or was used already.")
	}
	return s.verifyActionCode(ctx, k, secret, magicLinkSurface)
}

// MagicLinkVerified reports whether the action's latest magic link was opened, and the
// authenticator it verified (the Client API's finalize, which the SDK polls).
func (s *Store) MagicLinkVerified(ctx context.Context, k ActionKey) (bool, *Authenticator, error) {
	var verified sql.NullInt64
	var authID, newAuthID string
	err := s.db.QueryRowContext(ctx, `SELECT verified_at, authenticator_id, new_authenticator_id FROM challenges
		WHERE user_id = +? AND action_code = +? AND idempotency_key = +? AND verification_method = +? ORDER BY created_at DESC LIMIT 1`,
		k.UserID, k.ActionCode, k.IdempotencyKey, vocab.MethodEmailMagicLink).Scan(&verified, &authID, &newAuthID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil, refuse(Invalid, "No magic link was sent for this action: send one first.")
	}
	if err != nil {
		return false, nil, fmt.Errorf("load magic link: %w", err)
	}
	if !verified.Valid {
		return false, nil, nil
	}
	if authID == "" {
		authID = newAuthID
	}
	auths, err := listAuthenticators(ctx, s.db, k.UserID)
	if err != nil {
		return false, nil, err
	}
	for i := range auths {
		if auths[i].ID == authID {
			return true, &auths[i], nil
		}
	}
	return true, nil, nil
}
