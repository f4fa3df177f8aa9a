package app

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/passwordless/auth/authsignal"
	"example.com/passwordless/store"
)

// Sign-in methods (GET /methods): how a person signs in and confirms it is them, as
// Authsignal has them, masked. They add an email or a phone number (a code to it proves
// it), remove a method (never the last, nor the last address they sign in with by code),
// and choose the default. Adding and removing need a recent sign-in: a session left open
// on a shared computer cannot rewire the account. Someone who lost a method signs in with
// another and removes the lost one here.

// recentSignIn is how fresh the sign-in must be to add or remove a method.
const recentSignIn = 10 * time.Minute

// addressPurpose signs the pending addition of an address (the challenge, the method, the
// address and the user) into the code form, so nothing is kept server-side meanwhile.
const addressPurpose = "add-address"

// methodRow is one sign-in method as the page shows it.
type methodRow struct {
	ID, Label, Method string
	IsDefault         bool
}

// addableMethod is a method an address is added as: a code method, or Email link.
func addableMethod(key string) (signInMethod, bool) {
	if key == linkSignIn.Key {
		return linkSignIn, true
	}
	return findMethod(key)
}

// methodLabel names an authenticator for its owner, its address masked.
func methodLabel(a authsignal.UserAuthenticator) string {
	switch a.VerificationMethod {
	case authsignal.MethodEmailOTP:
		return "Email code to " + maskEmail(a.Email)
	case "EMAIL_MAGIC_LINK":
		return "Email link to " + maskEmail(a.Email)
	case authsignal.MethodSMS:
		return "SMS to " + maskPhone(a.PhoneNumber)
	case authsignal.MethodWhatsApp:
		return "WhatsApp to " + maskPhone(a.PhoneNumber)
	case "AUTHENTICATOR_APP":
		return "Authenticator app"
	case "PASSKEY":
		return "Passkey"
	}
	return a.VerificationMethod
}

func maskEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" {
		return e
	}
	return string([]rune(local)[0]) + "…@" + domain
}

func maskPhone(p string) string {
	if len(p) <= 6 {
		return p
	}
	return p[:3] + "…" + p[len(p)-2:]
}

// fresh reports whether the session began within recentSignIn.
func (s *server) fresh(c *fiber.Ctx) bool {
	at, ok := c.Locals(localSignedIn).(time.Time)
	return ok && s.now().Sub(at) < recentSignIn
}

// methodsPage serves GET /methods.
func (s *server) methodsPage(c *fiber.Ctx) error {
	return s.renderMethods(c, fiber.StatusOK, "", noticeFor(c), nil)
}

func (s *server) renderMethods(c *fiber.Ctx, status int, errMsg, notice string, form fiber.Map) error {
	user, _ := currentUser(c)
	auths, err := s.authsignal.GetAuthenticators(c.UserContext(), user.ID)
	if err != nil {
		st, msg := s.authsignalFailure(c, "list authenticators", err)
		return s.renderError(c, st, msg)
	}
	rows := make([]methodRow, 0, len(auths))
	for _, a := range auths {
		rows = append(rows, methodRow{ID: a.UserAuthenticatorID, Label: methodLabel(a), Method: a.VerificationMethod, IsDefault: a.IsDefault})
	}
	if form == nil {
		form = fiber.Map{}
	}
	return s.render(c, status, "methods", page{Title: "Sign-in methods", Error: errMsg, Notice: notice,
		Data: fiber.Map{"Methods": rows, "Removable": len(rows) > 1, "Fresh": s.fresh(c), "Form": form, "Channels": append(signInMethods(), linkSignIn)}})
}

// notStale refuses a change on a session that began too long ago.
func (s *server) notStale(c *fiber.Ctx) (bool, error) {
	if s.fresh(c) {
		return true, nil
	}
	return false, s.renderMethods(c, fiber.StatusForbidden, "For your security, sign in again to change your sign-in methods: the last sign-in was more than 10 minutes ago.", "", nil)
}

// addAddress serves POST /methods/address {method, email | phone}: a code to the new
// address; the next form takes it.
func (s *server) addAddress(c *fiber.Ctx) error {
	if ok, err := s.notStale(c); !ok {
		return err
	}
	user, _ := currentUser(c)
	form := fiber.Map{"Method": c.FormValue("method"), "Email": c.FormValue("email"), "Phone": c.FormValue("phone")}
	method, ok := addableMethod(c.FormValue("method"))
	if !ok {
		return s.renderMethods(c, fiber.StatusBadRequest, "Choose Email, SMS, WhatsApp or Email link.", "", form)
	}
	var recipient string
	var err error
	if method.byEmail() {
		recipient, err = normalizeEmail(c.FormValue("email"))
	} else {
		recipient, err = normalizePhone(c.FormValue("phone"))
	}
	if err != nil {
		return s.renderMethods(c, fiber.StatusBadRequest, err.Error(), "", form)
	}
	// An account has one email and one phone number to sign in with: another one would
	// quietly replace it (and its methods would sign in elsewhere).
	if method.byEmail() {
		if user.Email != "" && !strings.EqualFold(user.Email, recipient) {
			return s.renderMethods(c, fiber.StatusConflict, "Your account has an email address already ("+maskEmail(user.Email)+"): remove its methods first to use another.", "", form)
		}
	} else if user.Phone != "" && user.Phone != recipient {
		return s.renderMethods(c, fiber.StatusConflict, "Your account has a phone number already ("+maskPhone(user.Phone)+"): remove its methods first to use another.", "", form)
	}
	if status, refusal := s.guessLock(c, recipient); refusal != "" {
		return s.renderMethods(c, status, refusal, "", form)
	}
	release, status, refusal := s.reserveSend(c, recipient)
	if refusal != "" {
		return s.renderMethods(c, status, refusal, "", form)
	}
	proof := method // a link address is proved by a code to it, like an email
	if method.Key == linkSignIn.Key {
		proof, _ = findMethod("email")
	}
	req := authsignal.ChallengeRequest{VerificationMethod: proof.VerificationMethod, Action: "addSignInMethod", UserID: user.ID,
		IPAddress: c.IP(), UserAgent: c.Get(fiber.HeaderUserAgent), DeviceID: deviceID(c), Locale: preferredLocale(c.Get(fiber.HeaderAcceptLanguage))}
	if proof.Key == "email" {
		req.Email = recipient
	} else {
		req.PhoneNumber = recipient
	}
	challenge, err := s.authsignal.Challenge(c.UserContext(), req)
	if answeredWithError(err) {
		release()
	}
	if err != nil {
		st, msg := s.authsignalFailure(c, "send code", err)
		return s.renderMethods(c, st, msg, "", form)
	}
	pending, err := s.sessions.SignValue(addressPurpose, strings.Join([]string{user.ID, method.Key, recipient, challenge.ChallengeID}, "\n"), s.cfg.PendingTTL)
	if err != nil {
		return fmt.Errorf("sign pending address: %w", err)
	}
	return s.renderAddressCode(c, fiber.StatusOK, pending, method, recipient, "")
}

func (s *server) renderAddressCode(c *fiber.Ctx, status int, pending string, method signInMethod, recipient, errMsg string) error {
	return s.render(c, status, "methods-verify", page{Title: "Confirm the new address", Error: errMsg,
		Data: fiber.Map{"Pending": pending, "Method": method.Label, "Recipient": recipient}})
}

// verifyAddress serves POST /methods/address/verify {pending, code}: the right code adds
// the address to the user's, to sign in and confirm with.
func (s *server) verifyAddress(c *fiber.Ctx) error {
	if ok, err := s.notStale(c); !ok {
		return err
	}
	user, _ := currentUser(c)
	pending := c.FormValue("pending")
	value, err := s.sessions.VerifyValue(addressPurpose, pending)
	parts := strings.Split(value, "\n")
	if err != nil || len(parts) != 4 || parts[0] != user.ID {
		return s.renderMethods(c, fiber.StatusBadRequest, "That code form has expired. Add the address again.", "", nil)
	}
	method, _ := addableMethod(parts[1])
	recipient, challengeID := parts[2], parts[3]
	code := strings.TrimSpace(c.FormValue("code"))
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return s.renderAddressCode(c, fiber.StatusUnprocessableEntity, pending, method, recipient, "Enter the 6-digit code we sent.")
	}
	if status, refusal := s.guessLock(c, recipient); refusal != "" {
		return s.renderMethods(c, status, refusal, "", nil)
	}
	res, err := s.authsignal.Verify(c.UserContext(), authsignal.VerifyRequest{ChallengeID: challengeID, VerificationCode: code})
	if err != nil {
		st, msg := s.authsignalFailure(c, "verify code", err)
		return s.renderAddressCode(c, st, pending, method, recipient, msg)
	}
	if !res.IsVerified {
		s.recordGuess(c, recipient, code)
		if res.FailureReason == authsignal.FailureMaxAttemptsExceeded {
			return s.renderMethods(c, fiber.StatusUnprocessableEntity, "Too many wrong codes. Add the address again to get a new code.", "", nil)
		}
		return s.renderAddressCode(c, fiber.StatusUnprocessableEntity, pending, method, recipient, wrongCodeMessage)
	}
	proofKey := method.Key
	if proofKey == linkSignIn.Key {
		proofKey = "email"
	}
	if !verifiedAddressMatches(store.PendingSignIn{Method: proofKey, Recipient: recipient}, res) {
		return s.renderMethods(c, fiber.StatusBadRequest, "We couldn't confirm that address with the sign-in service. Add it again.", "", nil)
	}
	column := "phone"
	if proofKey == "email" {
		column = "email"
	}
	if err := s.store.SetUserAddress(c.UserContext(), user.ID, column, recipient); errors.Is(err, store.ErrAddressTaken) {
		return s.renderMethods(c, fiber.StatusConflict, "That address is another account's. Sign in with it to use that account.", "", nil)
	} else if err != nil {
		return fmt.Errorf("set address: %w", err)
	}
	if err := s.ensureEnrolled(c.UserContext(), user.ID, method, recipient); err != nil {
		st, msg := s.authsignalFailure(c, "enroll authenticator", err)
		return s.renderMethods(c, st, msg, "", nil)
	}
	s.log.Info("sign-in method added", "method", method.Key, "user_id", user.ID)
	return c.Redirect("/methods?notice=method-added", fiber.StatusSeeOther)
}

// removeMethod serves POST /methods/:id/remove. The last method stays, and so does the
// last email or phone number the user signs in with by code.
func (s *server) removeMethod(c *fiber.Ctx) error {
	if ok, err := s.notStale(c); !ok {
		return err
	}
	user, _ := currentUser(c)
	ctx := c.UserContext()
	auths, err := s.authsignal.GetAuthenticators(ctx, user.ID)
	if err != nil {
		st, msg := s.authsignalFailure(c, "list authenticators", err)
		return s.renderMethods(c, st, msg, "", nil)
	}
	var target *authsignal.UserAuthenticator
	var rest []authsignal.UserAuthenticator
	for i, a := range auths {
		if a.UserAuthenticatorID == c.Params("id") {
			target = &auths[i]
		} else {
			rest = append(rest, a)
		}
	}
	switch {
	case target == nil:
		return s.renderMethods(c, fiber.StatusNotFound, "That method is not one of yours any more.", "", nil)
	case len(rest) == 0:
		return s.renderMethods(c, fiber.StatusConflict, "This is your only sign-in method: add another before you remove it.", "", nil)
	}
	// The address it confirms leaves the account too, unless another method still uses it.
	clear := ""
	switch {
	case target.Email != "" && strings.EqualFold(target.Email, user.Email) && !usesEmail(rest, user.Email):
		clear = "email"
	case target.PhoneNumber != "" && target.PhoneNumber == user.Phone && !usesPhone(rest, user.Phone):
		clear = "phone"
	}
	if clear == "email" && user.Phone == "" || clear == "phone" && user.Email == "" {
		return s.renderMethods(c, fiber.StatusConflict, "This is the only email or phone number you sign in with by code: add another before you remove it.", "", nil)
	}
	if err := s.authsignal.DeleteAuthenticator(ctx, user.ID, target.UserAuthenticatorID); err != nil {
		st, msg := s.authsignalFailure(c, "delete authenticator", err)
		return s.renderMethods(c, st, msg, "", nil)
	}
	if clear != "" {
		if err := s.store.ClearUserAddress(ctx, user.ID, clear); err != nil {
			return fmt.Errorf("clear address: %w", err)
		}
	}
	s.log.Info("sign-in method removed", "method", target.VerificationMethod, "user_id", user.ID)
	return c.Redirect("/methods?notice=method-removed", fiber.StatusSeeOther)
}

func usesEmail(auths []authsignal.UserAuthenticator, email string) bool {
	for _, a := range auths {
		if a.Email != "" && strings.EqualFold(a.Email, email) {
			return true
		}
	}
	return false
}

func usesPhone(auths []authsignal.UserAuthenticator, phone string) bool {
	for _, a := range auths {
		if a.PhoneNumber != "" && a.PhoneNumber == phone {
			return true
		}
	}
	return false
}

// defaultMethod serves POST /methods/:id/default: the pre-built UI offers that method first.
func (s *server) defaultMethod(c *fiber.Ctx) error {
	user, _ := currentUser(c)
	ctx := c.UserContext()
	auths, err := s.authsignal.GetAuthenticators(ctx, user.ID)
	if err != nil {
		st, msg := s.authsignalFailure(c, "list authenticators", err)
		return s.renderMethods(c, st, msg, "", nil)
	}
	for _, a := range auths {
		if a.UserAuthenticatorID == c.Params("id") {
			if _, err := s.authsignal.UpdateUser(ctx, user.ID, authsignal.UpdateUserRequest{DefaultVerificationMethod: a.VerificationMethod}); err != nil {
				st, msg := s.authsignalFailure(c, "update user", err)
				return s.renderMethods(c, st, msg, "", nil)
			}
			return c.Redirect("/methods?notice=method-default", fiber.StatusSeeOther)
		}
	}
	return s.renderMethods(c, fiber.StatusNotFound, "That method is not one of yours any more.", "", nil)
}
