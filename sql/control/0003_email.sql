-- The email outbox (SPEC §12): every message is queued here first and sent
-- by the jobs process, so nothing is lost when the SMTP relay is down.
CREATE TABLE email_outbox (
	id BINARY(16) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	to_addr VARCHAR(254) NOT NULL,
	subject VARCHAR(998) NOT NULL,
	body MEDIUMTEXT NOT NULL,
	status ENUM('queued', 'sending', 'sent', 'failed', 'suppressed') NOT NULL,
	attempts INT NOT NULL DEFAULT 0,
	next_attempt_at DATETIME(3) NOT NULL,
	-- A claim by one jobs process (any host) until claimed_until.
	claimed_by VARCHAR(128) NULL,
	claimed_until DATETIME(3) NULL,
	last_smtp_status INT NULL,
	last_error VARCHAR(500) NULL,
	request_id VARCHAR(64) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	sent_at DATETIME(3) NULL,
	updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	PRIMARY KEY (id),
	KEY email_outbox_due (status, next_attempt_at),
	KEY email_outbox_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
