-- Passkeys: a PASSKEY authenticator's WebAuthn credential. Batch enrolment imports them
-- (POST /v1/users/authenticators); a credential belongs to one user only.
CREATE TABLE passkeys (
    authenticator_id TEXT PRIMARY KEY REFERENCES authenticators(authenticator_id) ON DELETE CASCADE,
    credential_id    BLOB NOT NULL UNIQUE,
    public_key       BLOB NOT NULL,            -- COSE_Key
    sign_count       INTEGER NOT NULL DEFAULT 0,
    aaguid           TEXT NOT NULL DEFAULT '',
    name             TEXT NOT NULL DEFAULT '',
    transports       TEXT NOT NULL DEFAULT '[]' -- JSON array of strings
);
