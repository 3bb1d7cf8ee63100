-- The IP blocklist (SPEC §11, runbook 4). opsd's workers keep the active
-- entries in memory and refuse their clients before anything else; `opsctl
-- blocklist sync-nginx` writes the same entries as nginx `deny` lines.
--
-- cidr is the normalised text (network address, "/", prefix: 203.0.113.0/24,
-- 2001:db8::/32); a bare address is stored as /32 or /128, an IPv4-mapped
-- IPv6 range (::ffff:a.b.c.d/104) as its IPv4 form. network is the address
-- as 16 bytes (IPv4 as ::ffff:a.b.c.d) and prefix counts bits of the family,
-- so matching needs no text parsing. A removed or expired entry is deleted:
-- its history is in audit_events (security.blocklist_added/_removed).
CREATE TABLE ip_blocklist (
	id BINARY(16) NOT NULL,
	cidr VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	family TINYINT UNSIGNED NOT NULL,
	network BINARY(16) NOT NULL,
	prefix TINYINT UNSIGNED NOT NULL,
	reason VARCHAR(500) NOT NULL,
	-- the user who added it (NULL from opsctl) and the audit actor label
	-- (role or cli:<user>)
	created_by BINARY(16) NULL,
	created_by_label VARCHAR(128) NOT NULL,
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	expires_at DATETIME(3) NULL,
	PRIMARY KEY (id),
	-- one entry per range: a second POST of the same CIDR is a 409
	UNIQUE KEY ip_blocklist_cidr (cidr),
	-- the expiry job
	KEY ip_blocklist_expires (expires_at),
	CONSTRAINT ip_blocklist_family CHECK (family IN (4, 6)),
	CONSTRAINT ip_blocklist_prefix CHECK ((family = 4 AND prefix <= 32) OR (family = 6 AND prefix <= 128))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
