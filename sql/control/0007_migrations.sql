-- Tenant migration (SPEC §10). The engine records every step here before it
-- acts, so the jobs process resumes a migration after a crash or restart.

-- capture_changes: tenant writes of the org add a tenant_changelog row in
-- their own transaction. Writes read it (and write_frozen_until, db_mode)
-- with the org row share-locked, so switching it waits for writes in flight.
ALTER TABLE orgs
	ADD COLUMN capture_changes TINYINT(1) NOT NULL DEFAULT 0 AFTER write_frozen_until;

CREATE TABLE migrations (
	id BINARY(16) NOT NULL,
	org_id BINARY(16) NOT NULL,
	direction ENUM('shared_to_dedicated', 'dedicated_to_shared') NOT NULL,
	status ENUM('pending', 'copying', 'catching_up', 'verifying', 'ready_for_cutover',
		'cutting_over', 'completed', 'aborting', 'aborted', 'failed') NOT NULL DEFAULT 'pending',
	-- the step inside a status (cutting_over: freeze, final_catchup, final_verify, switch,
	-- source_cleanup)
	phase VARCHAR(32) NOT NULL DEFAULT '',
	dry_run TINYINT(1) NOT NULL DEFAULT 0,
	chunk_size INT NOT NULL,
	-- the target URI (with the database name), sealed with OPSD_DATA_KEY
	target_sealed TEXT NOT NULL,
	target_redacted VARCHAR(1100) NOT NULL,
	-- dedicated_to_shared: the org's dedicated database as it was at the
	-- start (the org row forgets it at the switch; cleanup still needs it)
	source_sealed TEXT NULL,
	db_name VARCHAR(64) NULL,
	-- set before CREATE DATABASE: abort and dry-run cleanup drop it even
	-- after a crash between the two
	target_db_created TINYINT(1) NOT NULL DEFAULT 0,
	override_legal_hold TINYINT(1) NOT NULL DEFAULT 0,
	reason VARCHAR(500) NOT NULL,
	abort_reason VARCHAR(500) NULL,
	abort_requested_at DATETIME(3) NULL,
	-- change capture: the source changelog id before capture began, and
	-- how far the catch-up has replayed
	snapshot_changelog_id BIGINT NULL,
	applied_changelog_id BIGINT NULL,
	verify_round INT NOT NULL DEFAULT 0,
	verification JSON NULL,
	report JSON NULL,
	freeze_started_at DATETIME(3) NULL,
	freeze_ms INT NULL,
	throttle_reason VARCHAR(200) NULL,
	error VARCHAR(1000) NULL,
	progress_pct_audited INT NOT NULL DEFAULT 0,
	progress_audited_at DATETIME(3) NULL,
	lease_holder VARCHAR(128) NULL,
	lease_until DATETIME(3) NULL,
	copy_started_at DATETIME(3) NULL,
	copy_finished_at DATETIME(3) NULL,
	created_by BINARY(16) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	finished_at DATETIME(3) NULL,
	-- at most one unfinished migration per org, enforced by MariaDB
	active_org BINARY(16) AS (IF(status IN ('completed', 'aborted', 'failed'), NULL, org_id)) PERSISTENT,
	PRIMARY KEY (id),
	UNIQUE KEY migrations_active (active_org),
	KEY migrations_org (org_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Per table: the copy checkpoint (last id copied), the verification
-- checkpoint and its counts and checksums, the cleanup checkpoint.
CREATE TABLE migration_tables (
	migration_id BINARY(16) NOT NULL,
	table_name VARCHAR(64) NOT NULL,
	rows_total BIGINT NOT NULL DEFAULT 0,
	rows_copied BIGINT NOT NULL DEFAULT 0,
	last_id BINARY(16) NULL,
	copy_done TINYINT(1) NOT NULL DEFAULT 0,
	verify_last_id BINARY(16) NULL,
	verify_done TINYINT(1) NOT NULL DEFAULT 0,
	source_rows BIGINT NOT NULL DEFAULT 0,
	target_rows BIGINT NOT NULL DEFAULT 0,
	source_checksum BIGINT UNSIGNED NOT NULL DEFAULT 0,
	target_checksum BIGINT UNSIGNED NOT NULL DEFAULT 0,
	chunks_verified INT NOT NULL DEFAULT 0,
	chunks_mismatched INT NOT NULL DEFAULT 0,
	chunks_repaired INT NOT NULL DEFAULT 0,
	PRIMARY KEY (migration_id, table_name),
	CONSTRAINT migration_tables_fk FOREIGN KEY (migration_id) REFERENCES migrations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
