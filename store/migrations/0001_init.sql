-- Times are UTC unix nanoseconds (INTEGER) everywhere, so they sort and compare as numbers.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT UNIQUE,           -- lower-cased and trimmed by the store
    phone           TEXT UNIQUE,           -- E.164, validated by the app
    created_at      INTEGER NOT NULL,
    last_sign_in_at INTEGER,               -- NULL until the first TouchSignIn
    CHECK (email IS NOT NULL OR phone IS NOT NULL)
);

CREATE TABLE accounts (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    -- The CHECK is the last line of defence against overdrawing; SettleWithdrawal
    -- also guards the debit with "balance_cents >= amount".
    balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0)
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,           -- the JWT's jti
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER                     -- NULL while the session is live
);
CREATE INDEX sessions_user_id ON sessions(user_id);

CREATE TABLE pending_signins (
    id             TEXT PRIMARY KEY,
    challenge_id   TEXT NOT NULL,
    method         TEXT NOT NULL,          -- email | sms | whatsapp
    recipient      TEXT NOT NULL,
    wrong_attempts INTEGER NOT NULL DEFAULT 0 CHECK (wrong_attempts >= 0),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);

CREATE TABLE withdrawals (
    id               TEXT PRIMARY KEY,     -- also the Authsignal idempotencyKey
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amount_cents     INTEGER NOT NULL CHECK (amount_cents > 0),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'awaiting_challenge', 'held', 'completed', 'blocked', 'failed')),
    authsignal_state TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX withdrawals_user_created ON withdrawals(user_id, created_at);
