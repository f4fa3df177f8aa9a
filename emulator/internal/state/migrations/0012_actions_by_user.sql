-- Every track inserts an action, and each index on actions is one more page written per
-- commit. A user's actions are found by the primary key, which begins with user_id; listing
-- them newest first then sorts that user's actions, which stays cheap at the hundreds of
-- actions a user of a development tool has (docs/performance.md).
DROP INDEX actions_user_created;
