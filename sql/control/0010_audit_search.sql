-- Audit search (README "Runbook 4"): GET /audit and `opsctl audit search`
-- filter on the actor's label, the target, the request id and the client
-- address, newest first; each filter gets a key ending in seq, so a page is
-- read from the index in order instead of scanning the table.
--
-- ip_bin is the address as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d,
-- as the blocklist stores networks), so an IPv4 range is one BETWEEN whether
-- the address was recorded as 203.0.113.7 or ::ffff:203.0.113.7. INET6_ATON
-- alone gives 4 bytes for IPv4 text and 16 for IPv6, and a 4-byte range
-- compared with 16-byte values (and the reverse) matches the wrong rows.
-- Text that is not an address gives NULL; the IS_IPV4/IS_IPV6 guards keep
-- INET6_ATON away from it, so no write can fail on this column.
--
-- The column is VIRTUAL: computed, never written by opsd, and not part of
-- an event's canonical form (core/audit_hash.c hashes the columns it names),
-- so the hash chain is unchanged. An INSERT that names every column of the
-- table must leave ip_bin out (or give DEFAULT).
ALTER TABLE audit_events
	ADD COLUMN ip_bin VARBINARY(16) AS (CASE
		WHEN IS_IPV4(ip) THEN CONCAT(0x00000000000000000000FFFF, INET6_ATON(ip))
		WHEN IS_IPV6(ip) THEN INET6_ATON(ip)
	END) VIRTUAL,
	ADD KEY audit_events_actor_label (actor_label, seq),
	ADD KEY audit_events_target (target_type, target_id, seq),
	ADD KEY audit_events_target_id (target_id, seq),
	ADD KEY audit_events_request (request_id, seq),
	ADD KEY audit_events_ip (ip_bin, seq);
