-- Every send trims the records older than the send window (DELETE ... WHERE sent_at <= ?),
-- which without this index scans the whole table: up to ten minutes of sends.
CREATE INDEX sends_sent_at ON sends(sent_at);
