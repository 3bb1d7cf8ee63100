-- Verification checkpoints: a position of the audit chain that a
-- verification reached clean (the event seq and its hash), where that
-- verification began, how many events it replayed, when and by whom.
-- Incremental verification starts after the newest one, so it costs the
-- events appended since. Each row is signed like a retention anchor (an
-- HMAC under a key derived from OPSD_DATA_KEY, named by key_id, signed
-- again by opsctl data-key rotate), so an edited or forged checkpoint does
-- not verify; each one recorded appends audit.verified naming its seq, so a
-- deleted one shows in a full verification.
CREATE TABLE audit_checkpoints (
	seq BIGINT NOT NULL,
	from_seq BIGINT NOT NULL,
	events BIGINT NOT NULL,
	hash BINARY(32) NOT NULL,
	verified_at DATETIME(3) NOT NULL,
	verified_by VARCHAR(190) NOT NULL,
	key_id CHAR(16) NOT NULL,
	signature BINARY(32) NOT NULL,
	PRIMARY KEY (seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
