-- Outbox: remember which challenge a message belongs to (filter ?challengeId=), and index
-- the filters of GET /emulator/messages. Older rows keep challenge_id ''.
ALTER TABLE messages ADD COLUMN challenge_id TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_challenge ON messages(challenge_id, seq);
CREATE INDEX messages_channel ON messages(channel, seq);
