-- Compliance state on the control entities, matching the tenant tables.
ALTER TABLE users
	ADD COLUMN legal_hold_case_ref VARCHAR(100) NULL AFTER legal_hold_at,
	ADD COLUMN pii_stripped_reason VARCHAR(500) NULL AFTER pii_stripped_at,
	ADD COLUMN archived_reason VARCHAR(500) NULL AFTER archived_at;
ALTER TABLE orgs
	ADD COLUMN legal_hold_case_ref VARCHAR(100) NULL AFTER legal_hold_at,
	ADD COLUMN pii_stripped_reason VARCHAR(500) NULL AFTER pii_stripped_at,
	ADD COLUMN archived_reason VARCHAR(500) NULL AFTER archived_at;
