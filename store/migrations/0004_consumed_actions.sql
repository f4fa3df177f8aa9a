-- Authsignal actions whose token the app has acted on, so a token brought back twice
-- (copied, replayed) does nothing the second time: a passkey sign-in starts one session.
CREATE TABLE consumed_actions (
    action_code     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    consumed_at     INTEGER NOT NULL, -- unix nanoseconds, UTC
    PRIMARY KEY (action_code, idempotency_key)
) WITHOUT ROWID;
