-- Retention (SPEC §9): expired audit events are deleted in contiguous runs;
-- each run leaves an anchor naming the seq range it removed, the hash the
-- first removed event linked back to and the hash of the last one, signed
-- with a key derived from OPSD_DATA_KEY. Verification steps over an anchor
-- as if over the events it replaces, so the chain stays checkable, and a
-- forged or edited anchor fails its signature. Runs next to each other are
-- merged, so the table holds about one anchor per kept (held) event.
CREATE TABLE audit_anchors (
	first_seq BIGINT NOT NULL,
	last_seq BIGINT NOT NULL,
	prev_hash BINARY(32) NOT NULL,
	last_hash BINARY(32) NOT NULL,
	-- hex of sha256(signing key)[0..8): names the key without revealing it
	key_id CHAR(16) NOT NULL,
	signature BINARY(32) NOT NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	PRIMARY KEY (first_seq),
	UNIQUE KEY audit_anchors_last (last_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
