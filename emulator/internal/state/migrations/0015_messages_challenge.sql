-- Every send wrote a random page of this index (challenge ids are random); only the
-- outbox's challengeId filter, a tooling read, used it, and a scan of the whole outbox at its
-- cap takes under a millisecond (docs/performance.md).
DROP INDEX messages_challenge;
