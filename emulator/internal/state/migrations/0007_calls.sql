-- Call Connect: a call centre's call (referenceId) whose caller was sent a link to confirm
-- who they are (POST /call/start), and how the call centre says it ended (POST /call/finish).
CREATE TABLE calls (
    reference_id TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    user_id      TEXT NOT NULL DEFAULT '',
    username     TEXT NOT NULL DEFAULT '',
    action_code  TEXT NOT NULL,
    locale       TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT '',   -- '' while the call runs; then CHALLENGE_SUCCEEDED or CHALLENGE_FAILED
    payload      TEXT NOT NULL DEFAULT '',   -- finish's payload, JSON or ''
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
