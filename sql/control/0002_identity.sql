-- Identity, sessions, API tokens, login throttling and the audit log
-- (SPEC §6, §9). Applied once; later changes go in new files.

CREATE TABLE users (
	id BINARY(16) NOT NULL,
	-- NULL for platform staff (superadmin, platform_admin, compliance, …).
	org_id BINARY(16) NULL,
	-- Stored lower-cased: the unique key is what makes emails case-insensitive.
	email VARCHAR(254) NOT NULL,
	name VARCHAR(200) NOT NULL DEFAULT '',
	-- PHC string ($scrypt$…); NULL for service principals that only use tokens.
	password_hash VARCHAR(255) NULL,
	-- Comma list of role names, validated against the role table in the code.
	roles VARCHAR(255) NOT NULL,
	service TINYINT(1) NOT NULL DEFAULT 0,
	disabled_at DATETIME(3) NULL,
	legal_hold TINYINT(1) NOT NULL DEFAULT 0,
	legal_hold_reason VARCHAR(500) NULL,
	legal_hold_at DATETIME(3) NULL,
	pii_stripped_at DATETIME(3) NULL,
	archived_at DATETIME(3) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	PRIMARY KEY (id),
	UNIQUE KEY users_email (email),
	KEY users_org (org_id, id),
	CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The session store of every worker on every host: only sha256(session id)
-- is kept, so a dump of this table opens no session.
CREATE TABLE sessions (
	id_hash BINARY(32) NOT NULL,
	user_id BINARY(16) NOT NULL,
	created_at DATETIME(3) NOT NULL,
	last_seen_at DATETIME(3) NOT NULL,
	-- Absolute end (SESSION_ABSOLUTE_H after login).
	expires_at DATETIME(3) NOT NULL,
	ip VARCHAR(45) NULL,
	user_agent VARCHAR(255) NULL,
	PRIMARY KEY (id_hash),
	KEY sessions_user (user_id),
	KEY sessions_expires (expires_at),
	CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE api_tokens (
	id BINARY(16) NOT NULL,
	user_id BINARY(16) NOT NULL,
	name VARCHAR(100) NOT NULL,
	-- sha256 of the whole token string; the token itself is shown once.
	token_hash BINARY(32) NOT NULL,
	-- Comma list of permission names; effective = owner's permissions ∩ scopes.
	scopes VARCHAR(1000) NOT NULL,
	expires_at DATETIME(3) NULL,
	revoked_at DATETIME(3) NULL,
	last_used_at DATETIME(3) NULL,
	created_at DATETIME(3) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY api_tokens_hash (token_hash),
	KEY api_tokens_user (user_id, id),
	CONSTRAINT api_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Failed logins per account and per IP (keyed by sha256, so no email or IP
-- is kept here); shared by every host through the database.
CREATE TABLE login_throttle (
	scope ENUM('account', 'ip') NOT NULL,
	key_hash BINARY(32) NOT NULL,
	failures INT NOT NULL DEFAULT 0,
	window_start DATETIME(3) NOT NULL,
	locked_until DATETIME(3) NULL,
	PRIMARY KEY (scope, key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Append-only, hash-chained (SPEC §9). seq orders the chain; hash is
-- sha256 of the canonical form of the row including prev_hash.
CREATE TABLE audit_events (
	seq BIGINT NOT NULL,
	id BINARY(16) NOT NULL,
	occurred_at DATETIME(3) NOT NULL,
	actor_id BINARY(16) NULL,
	actor_label VARCHAR(64) NOT NULL,
	org_id BINARY(16) NULL,
	action VARCHAR(64) NOT NULL,
	target_type VARCHAR(32) NULL,
	target_id VARCHAR(64) NULL,
	ip VARCHAR(45) NULL,
	request_id VARCHAR(64) NULL,
	payload TEXT NOT NULL,
	prev_hash BINARY(32) NOT NULL,
	hash BINARY(32) NOT NULL,
	PRIMARY KEY (seq),
	UNIQUE KEY audit_events_id (id),
	KEY audit_events_action (action, seq),
	KEY audit_events_actor (actor_id, seq),
	KEY audit_events_org (org_id, seq),
	KEY audit_events_time (occurred_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The chain head: appending locks this one row, so events from every worker
-- and host form one line.
CREATE TABLE audit_chain_head (
	id TINYINT NOT NULL,
	seq BIGINT NOT NULL,
	hash BINARY(32) NOT NULL,
	PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, REPEAT(CHAR(0), 32));
