-- The Client API. A code sent to enrol a new address names the authenticator it will
-- become, so enrolment can answer with its id before the code is verified.
ALTER TABLE challenges ADD COLUMN new_authenticator_id TEXT NOT NULL DEFAULT '';

-- WebAuthn ceremonies in flight: the options sent (go-webauthn's session data, JSON),
-- for the action the ceremony is for, or for a discoverable sign-in (no user yet). Each is
-- used once: checking an answer deletes it, whatever the outcome.
CREATE TABLE ceremonies (
    ceremony_id     TEXT PRIMARY KEY,           -- the Client API's challengeId
    kind            TEXT NOT NULL,              -- registration | authentication
    user_id         TEXT NOT NULL DEFAULT '',   -- '' for a discoverable sign-in
    action_code     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL DEFAULT '',   -- '' until a discoverable sign-in succeeds
    session         BLOB,                       -- NULL until the options are sent
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX ceremonies_expires ON ceremonies(expires_at);
