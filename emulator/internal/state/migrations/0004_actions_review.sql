-- Every track inserts an action, and every index on actions is one more page written per
-- commit. Only the review queue (the admin's list and count of REVIEW_REQUIRED actions)
-- asked for actions by state, so it gets a partial index holding just those actions.
-- SQLite uses it when a query names the state literally (docs/performance.md).
DROP INDEX actions_state;
CREATE INDEX actions_review ON actions(created_at) WHERE state = 'REVIEW_REQUIRED';
