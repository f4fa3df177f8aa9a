-- Emulator state. Times are Unix milliseconds (UTC).
CREATE TABLE users (
    user_id               TEXT PRIMARY KEY,
    email                 TEXT NOT NULL DEFAULT '',
    email_verified        INTEGER NOT NULL DEFAULT 0,
    phone_number          TEXT NOT NULL DEFAULT '',
    phone_number_verified INTEGER NOT NULL DEFAULT 0,
    username              TEXT NOT NULL DEFAULT '',
    display_name          TEXT NOT NULL DEFAULT '',
    custom                TEXT NOT NULL DEFAULT '',   -- JSON object or ''
    locale                TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL
);
CREATE INDEX users_email ON users(email);
CREATE INDEX users_phone ON users(phone_number);
CREATE INDEX users_username ON users(username);

CREATE TABLE authenticators (
    authenticator_id    TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    verification_method TEXT NOT NULL,
    email               TEXT NOT NULL DEFAULT '',
    phone_number        TEXT NOT NULL DEFAULT '',
    is_default          INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    verified_at         INTEGER,
    last_verified_at    INTEGER
);
CREATE INDEX authenticators_user ON authenticators(user_id, created_at);

-- A challenge is one code delivery target. origin: 'api' (POST /v1/challenge) or 'ui' (pre-built page).
CREATE TABLE challenges (
    challenge_id        TEXT PRIMARY KEY,
    origin              TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL,
    action_code         TEXT NOT NULL,
    verification_method TEXT NOT NULL,
    sms_channel         TEXT NOT NULL DEFAULT '',
    channel             TEXT NOT NULL,            -- EMAIL | SMS | WHATSAPP (delivery)
    email               TEXT NOT NULL DEFAULT '',
    phone_number        TEXT NOT NULL DEFAULT '',
    user_id             TEXT NOT NULL DEFAULT '', -- given at creation
    claimed_user_id     TEXT NOT NULL DEFAULT '',
    authenticator_id    TEXT NOT NULL DEFAULT '', -- ui: the authenticator challenged ('' = enrolment)
    scope               TEXT NOT NULL DEFAULT '',
    locale              TEXT NOT NULL DEFAULT '',
    ip_address          TEXT NOT NULL DEFAULT '',
    user_agent          TEXT NOT NULL DEFAULT '',
    device_id           TEXT NOT NULL DEFAULT '',
    custom              TEXT NOT NULL DEFAULT '',
    code_hash           BLOB,                     -- NULL once used
    expires_at          INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    verified_at         INTEGER,
    created_at          INTEGER NOT NULL
);
CREATE INDEX challenges_user ON challenges(user_id, action_code, created_at);

CREATE TABLE actions (
    user_id                      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    action_code                  TEXT NOT NULL,
    idempotency_key              TEXT NOT NULL,
    state                        TEXT NOT NULL,
    state_updated_at             INTEGER NOT NULL,
    created_at                   INTEGER NOT NULL,
    updated_at                   INTEGER NOT NULL,
    verification_method          TEXT NOT NULL DEFAULT '',
    verified_by_authenticator_id TEXT NOT NULL DEFAULT '',
    rule_ids                     TEXT NOT NULL DEFAULT '[]',
    rules                        TEXT NOT NULL DEFAULT '[]',
    redirect_url                 TEXT NOT NULL DEFAULT '',
    redirect_to_settings         INTEGER NOT NULL DEFAULT 0,
    ip_address                   TEXT NOT NULL DEFAULT '',
    user_agent                   TEXT NOT NULL DEFAULT '',
    device_id                    TEXT NOT NULL DEFAULT '',
    email                        TEXT NOT NULL DEFAULT '',
    phone_number                 TEXT NOT NULL DEFAULT '',
    username                     TEXT NOT NULL DEFAULT '',
    scope                        TEXT NOT NULL DEFAULT '',
    custom                       TEXT NOT NULL DEFAULT '',
    locale                       TEXT NOT NULL DEFAULT '',
    track_response               TEXT NOT NULL DEFAULT '',  -- JSON replayed for the same idempotencyKey
    ui_challenge_id              TEXT NOT NULL DEFAULT '',  -- pre-built page: the code in flight
    PRIMARY KEY (user_id, action_code, idempotency_key)
);
CREATE INDEX actions_state ON actions(state, created_at);
CREATE INDEX actions_user_created ON actions(user_id, created_at);

-- Outbox: every message the emulator "sent".
CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    code       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_recipient ON messages(recipient, seq);

-- Sends per recipient, for the send limits. grp: 'sms' (SMS + WhatsApp) or 'email'.
CREATE TABLE sends (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    grp       TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sent_at   INTEGER NOT NULL
);
CREATE INDEX sends_recipient ON sends(grp, recipient, sent_at);

CREATE TABLE seen_devices (
    user_id       TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
