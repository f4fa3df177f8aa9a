-- Send records only count sends in the window; nothing needs their numbers never to be
-- reused, and AUTOINCREMENT costs every send a read and a write of sqlite_sequence.
CREATE TABLE sends_new (
    grp       TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sent_at   INTEGER NOT NULL
);
INSERT INTO sends_new(grp, recipient, sent_at) SELECT grp, recipient, sent_at FROM sends ORDER BY seq;
DROP TABLE sends;
ALTER TABLE sends_new RENAME TO sends;
CREATE INDEX sends_recipient ON sends(grp, recipient, sent_at);
CREATE INDEX sends_sent_at ON sends(sent_at);
DELETE FROM sqlite_sequence WHERE name = 'sends';
