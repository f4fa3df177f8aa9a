-- Authenticator apps (TOTP, RFC 6238). An AUTHENTICATOR_APP authenticator's shared
-- secret, and the last time step a code of it was accepted for, so each code works once.
CREATE TABLE totp_secrets (
    authenticator_id TEXT PRIMARY KEY REFERENCES authenticators(authenticator_id) ON DELETE CASCADE,
    secret           TEXT NOT NULL, -- base32, as in the otpauth URI
    last_step        INTEGER NOT NULL DEFAULT -1
);

-- An app being added: its secret, held with the challenge whose first right code proves
-- the person scanned it, and the step that code was for.
CREATE TABLE totp_enrolments (
    challenge_id TEXT PRIMARY KEY REFERENCES challenges(challenge_id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    uri          TEXT NOT NULL, -- otpauth://totp/…, shown as a QR code
    step         INTEGER NOT NULL DEFAULT -1
);
