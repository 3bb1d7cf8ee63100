-- A migration's reason is optional (README "Runbook 3": the request names
-- the org, the direction, the chunk size and the target). An absent reason
-- is stored as NULL, never as an empty string.
ALTER TABLE migrations MODIFY reason VARCHAR(500) NULL;
