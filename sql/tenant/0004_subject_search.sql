-- Subject search over tenant records (README "Runbook 2", step 1): the
-- same generated columns as sql/control/0009_subject_search.sql, for every
-- column the entity table marks as a subject's email, name or phone.
-- Applied to the shared database and to every dedicated one (a migration
-- gives a new target the whole tenant set; `opsctl db migrate` brings the
-- existing dedicated databases up to date). A migration copies and
-- checksums only the columns that are not generated.

ALTER TABLE contacts
	ADD COLUMN name_key VARCHAR(200) AS (TRIM(REGEXP_REPLACE(name, '[[:space:]]+', ' '))) STORED,
	ADD COLUMN email_hash BINARY(32) AS (UNHEX(SHA2(LOWER(TRIM(email)), 256))) STORED,
	ADD COLUMN phone_hash BINARY(32)
		AS (UNHEX(SHA2(NULLIF(REGEXP_REPLACE(phone, '[^0-9]', ''), ''), 256))) STORED,
	ADD KEY contacts_name_key (name_key),
	ADD KEY contacts_email_hash (email_hash),
	ADD KEY contacts_phone_hash (phone_hash);

ALTER TABLE projects
	ADD COLUMN client_name_key VARCHAR(200)
		AS (TRIM(REGEXP_REPLACE(client_name, '[[:space:]]+', ' '))) STORED,
	ADD KEY projects_client_name_key (client_name_key);

ALTER TABLE offices
	ADD COLUMN phone_hash BINARY(32)
		AS (UNHEX(SHA2(NULLIF(REGEXP_REPLACE(phone, '[^0-9]', ''), ''), 256))) STORED,
	ADD COLUMN manager_name_key VARCHAR(200)
		AS (TRIM(REGEXP_REPLACE(manager_name, '[[:space:]]+', ' '))) STORED,
	ADD KEY offices_phone_hash (phone_hash),
	ADD KEY offices_manager_name_key (manager_name_key);
