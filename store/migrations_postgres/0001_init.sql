-- The PostgreSQL schema: the end state of the SQLite migrations 0001-0005. Later changes
-- come as numbered files in both folders. Times are UTC unix nanoseconds (BIGINT)
-- everywhere, as in SQLite, so they sort and compare as numbers.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT UNIQUE,              -- lower-cased and trimmed by the store
    phone               TEXT UNIQUE,              -- E.164, validated by the app
    created_at          BIGINT NOT NULL,
    last_sign_in_at     BIGINT,                   -- NULL until the first TouchSignIn
    last_sign_in_method TEXT NOT NULL DEFAULT '', -- "email", "sms" or "whatsapp"
    CHECK (email IS NOT NULL OR phone IS NOT NULL)
);

CREATE TABLE accounts (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    -- The CHECK is the last line of defence against overdrawing; SettleWithdrawal
    -- also guards the debit with "balance_cents >= amount".
    balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0)
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,              -- the JWT's jti
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT                         -- NULL while the session is live
);
CREATE INDEX sessions_user_id ON sessions(user_id);

CREATE TABLE pending_signins (
    id             TEXT PRIMARY KEY,
    challenge_id   TEXT NOT NULL,
    method         TEXT NOT NULL,             -- email | sms | whatsapp | link
    recipient      TEXT NOT NULL,
    wrong_attempts INTEGER NOT NULL DEFAULT 0 CHECK (wrong_attempts >= 0),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE TABLE withdrawals (
    id               TEXT PRIMARY KEY,        -- also the Authsignal idempotencyKey
    -- The order of insertion, which breaks ties of created_at (SQLite's rowid).
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amount_cents     BIGINT NOT NULL CHECK (amount_cents > 0),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'awaiting_challenge', 'held', 'completed', 'blocked', 'failed')),
    authsignal_state TEXT NOT NULL DEFAULT '',
    -- The pre-built UI address a withdrawal awaiting a challenge was sent to, so that a
    -- repeat of the same form (a double click) sends the browser there too.
    challenge_url    TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX withdrawals_user_created ON withdrawals(user_id, created_at);
-- The reconciler's question: which withdrawals have been pending or awaiting a challenge
-- for too long.
CREATE INDEX withdrawals_state_updated ON withdrawals(state, updated_at);

-- Authsignal actions whose token the app has acted on, so a token brought back twice
-- (copied, replayed) does nothing the second time: a passkey sign-in starts one session.
CREATE TABLE consumed_actions (
    action_code     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    consumed_at     BIGINT NOT NULL,
    PRIMARY KEY (action_code, idempotency_key)
);

-- Events counted against the app's limits (codes sent per IP and per address, wrong codes
-- per address), shared by every instance. key and tag are SHA-256 digests in hex: the
-- table holds no address, IP or code.
CREATE TABLE limit_events (
    key        TEXT NOT NULL,
    id         TEXT NOT NULL,                 -- the reservation or failure that added it (random)
    tag        TEXT NOT NULL DEFAULT '',      -- one tag counts once within the window ('' = untagged)
    expires_at BIGINT NOT NULL,               -- when it stops counting: its time plus its window
    PRIMARY KEY (key, id)
);
CREATE INDEX limit_events_key_expires ON limit_events(key, expires_at);
-- The sweep of every expired event.
CREATE INDEX limit_events_expires ON limit_events(expires_at);
