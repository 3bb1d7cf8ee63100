-- Legal documents and their acceptance (SPEC §7, runbook 1).
CREATE TABLE legal_documents (
	id BINARY(16) NOT NULL,
	type VARCHAR(32) NOT NULL,
	version VARCHAR(64) NOT NULL,
	content MEDIUMTEXT NOT NULL,
	content_sha256 CHAR(64) NOT NULL,
	-- The current version of a type is the one with the latest
	-- effective_at that is not in the future.
	effective_at DATETIME(3) NOT NULL,
	created_by BINARY(16) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	-- notify: the jobs process emails every active user in batches,
	-- remembering the last user id done; notified_at when finished.
	notify TINYINT(1) NOT NULL DEFAULT 0,
	notify_after BINARY(16) NULL,
	notified_at DATETIME(3) NULL,
	PRIMARY KEY (id),
	UNIQUE KEY legal_documents_version (type, version),
	KEY legal_documents_current (type, effective_at),
	KEY legal_documents_notify (notify, notified_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE legal_acceptances (
	user_id BINARY(16) NOT NULL,
	document_id BINARY(16) NOT NULL,
	accepted_at DATETIME(3) NOT NULL,
	ip VARCHAR(45) NULL,
	user_agent VARCHAR(255) NULL,
	PRIMARY KEY (user_id, document_id),
	KEY legal_acceptances_document (document_id),
	CONSTRAINT legal_acceptances_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
	CONSTRAINT legal_acceptances_doc_fk FOREIGN KEY (document_id) REFERENCES legal_documents (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
