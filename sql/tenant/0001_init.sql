-- Tenant tables, first migration (SPEC §4): applied to the shared DB and to
-- every dedicated DB. Once applied this file must never change.

-- Written in the same transaction as each tenant write while a migration
-- captures changes; the copier replays rows after its snapshot by id.
CREATE TABLE tenant_changelog (
	id BIGINT NOT NULL AUTO_INCREMENT,
	org_id BINARY(16) NOT NULL,
	table_name VARCHAR(64) NOT NULL,
	row_id BINARY(16) NOT NULL,
	op ENUM('insert', 'update', 'delete') NOT NULL,
	changed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	PRIMARY KEY (id),
	KEY tenant_changelog_org (org_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
