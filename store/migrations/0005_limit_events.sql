-- Events counted against the app's limits (codes sent per IP and per address, wrong codes
-- per address), here rather than in a process's memory so that every instance counts the
-- same. key and tag are SHA-256 digests in hex: the table holds no address, IP or code.
CREATE TABLE limit_events (
    key        TEXT NOT NULL,
    id         TEXT NOT NULL,              -- the reservation or failure that added it (random)
    tag        TEXT NOT NULL DEFAULT '',   -- one tag counts once within the window ('' = untagged)
    expires_at INTEGER NOT NULL,           -- when it stops counting: its time plus its window
    PRIMARY KEY (key, id)
) WITHOUT ROWID;
CREATE INDEX limit_events_key_expires ON limit_events(key, expires_at);
-- The sweep of every expired event.
CREATE INDEX limit_events_expires ON limit_events(expires_at);
