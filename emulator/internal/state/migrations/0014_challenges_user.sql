-- No query searches challenges by user_id alone: a user's challenges are those made for or
-- claimed by them (user_id OR claimed_user_id), which SQLite scans for anyway, so the index
-- only cost every challenge one more b-tree insert.
DROP INDEX challenges_user;
