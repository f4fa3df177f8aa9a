-- Email magic links: a message may carry a link (the outbox's "Open link").
ALTER TABLE messages ADD COLUMN link TEXT NOT NULL DEFAULT '';
