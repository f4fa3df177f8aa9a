-- The pre-built UI address a withdrawal awaiting a challenge was sent to, so that a repeat
-- of the same form (a double click) sends the browser there too.
ALTER TABLE withdrawals ADD COLUMN challenge_url TEXT NOT NULL DEFAULT '';
