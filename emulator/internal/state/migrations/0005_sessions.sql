-- Sessions made from a challenge token (POST /v1/sessions). A refresh token is kept only as
-- its SHA-256, so a copy of the database cannot be used to refresh; a used one stays, with
-- used_at, so that its reuse is recognised.
CREATE TABLE sessions (
    session_id          TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    client_id           TEXT NOT NULL,
    verification_method TEXT NOT NULL DEFAULT '',
    access_jti          TEXT NOT NULL DEFAULT '', -- the latest access token's id: the only one accepted
    created_at          INTEGER NOT NULL,
    revoked_at          INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

-- The RSA key that signs session access tokens, made on first use and kept, so that tokens
-- and the published JWKS survive a restart of a file-backed emulator.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_key BLOB NOT NULL, -- PKCS #8, DER
    created_at  INTEGER NOT NULL
);
