-- The pre-built UI address a withdrawal awaiting a challenge was sent to, so that a repeat
-- of the same form (a double click) sends the browser there too.
ALTER TABLE withdrawals ADD COLUMN challenge_url TEXT NOT NULL DEFAULT '';

-- The reconciler's question: which withdrawals have been pending or awaiting a challenge
-- for too long.
CREATE INDEX withdrawals_state_updated ON withdrawals(state, updated_at);
