-- Subject search (README "Runbook 2", step 1): each column the entity table
-- marks as a subject's email, name or phone gets a STORED generated column
-- holding its normalised form, with an index. Being generated, it follows
-- the column: strip-PII overwrites the column and the old value can no
-- longer be found. Emails and phones are kept only as SHA-256 of the
-- normalised value (exact match); names as the text with whitespace runs
-- collapsed and trimmed (prefix match, the collation ignores case and
-- accents). A migration copies and checksums only the other columns.

ALTER TABLE users
	ADD COLUMN email_hash BINARY(32) AS (UNHEX(SHA2(LOWER(TRIM(email)), 256))) STORED,
	ADD COLUMN name_key VARCHAR(200) AS (TRIM(REGEXP_REPLACE(name, '[[:space:]]+', ' '))) STORED,
	ADD KEY users_email_hash (email_hash),
	ADD KEY users_name_key (name_key);

ALTER TABLE orgs
	ADD COLUMN name_key VARCHAR(200) AS (TRIM(REGEXP_REPLACE(name, '[[:space:]]+', ' '))) STORED,
	ADD KEY orgs_name_key (name_key);
