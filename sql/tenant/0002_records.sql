-- Tenant records (SPEC §4, §8): every row has org_id; every entity that
-- can hold personal data carries legal_hold, pii_stripped_at, archived_at
-- and updated_at. Applied to the shared DB and to every dedicated DB.

CREATE TABLE contacts (
	id BINARY(16) NOT NULL,
	org_id BINARY(16) NOT NULL,
	name VARCHAR(200) NULL,
	email VARCHAR(254) NULL,
	phone VARCHAR(64) NULL,
	address VARCHAR(500) NULL,
	notes TEXT NULL,
	legal_hold TINYINT(1) NOT NULL DEFAULT 0,
	legal_hold_reason VARCHAR(500) NULL,
	legal_hold_case_ref VARCHAR(100) NULL,
	legal_hold_at DATETIME(3) NULL,
	pii_stripped_at DATETIME(3) NULL,
	pii_stripped_reason VARCHAR(500) NULL,
	archived_at DATETIME(3) NULL,
	archived_reason VARCHAR(500) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	PRIMARY KEY (id),
	KEY contacts_org (org_id, id),
	KEY contacts_archive (org_id, archived_at, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE projects (
	id BINARY(16) NOT NULL,
	org_id BINARY(16) NOT NULL,
	name VARCHAR(200) NOT NULL,
	client_name VARCHAR(200) NULL,
	description TEXT NULL,
	budget DECIMAL(14, 2) NULL,
	status ENUM('planned', 'active', 'on_hold', 'completed', 'cancelled') NOT NULL DEFAULT 'planned',
	legal_hold TINYINT(1) NOT NULL DEFAULT 0,
	legal_hold_reason VARCHAR(500) NULL,
	legal_hold_case_ref VARCHAR(100) NULL,
	legal_hold_at DATETIME(3) NULL,
	pii_stripped_at DATETIME(3) NULL,
	pii_stripped_reason VARCHAR(500) NULL,
	archived_at DATETIME(3) NULL,
	archived_reason VARCHAR(500) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	PRIMARY KEY (id),
	KEY projects_org (org_id, id),
	KEY projects_archive (org_id, archived_at, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE offices (
	id BINARY(16) NOT NULL,
	org_id BINARY(16) NOT NULL,
	name VARCHAR(200) NOT NULL,
	address VARCHAR(500) NULL,
	phone VARCHAR(64) NULL,
	manager_name VARCHAR(200) NULL,
	legal_hold TINYINT(1) NOT NULL DEFAULT 0,
	legal_hold_reason VARCHAR(500) NULL,
	legal_hold_case_ref VARCHAR(100) NULL,
	legal_hold_at DATETIME(3) NULL,
	pii_stripped_at DATETIME(3) NULL,
	pii_stripped_reason VARCHAR(500) NULL,
	archived_at DATETIME(3) NULL,
	archived_reason VARCHAR(500) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	PRIMARY KEY (id),
	KEY offices_org (org_id, id),
	KEY offices_archive (org_id, archived_at, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
