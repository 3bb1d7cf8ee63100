-- Each host's nginx and the files opsd generates for it (README "Runbook 4"): every host runs
-- an nginx process that renders the blocklist from ip_blocklist, writes it beside its own
-- nginx.conf, checks it with nginx -t and reloads nginx. These tables say, for the whole
-- cluster, which host applies what and which blocklist entries each host's nginx denies, so
-- that GET /security/blocklist can say whether nginx has applied an entry.

-- One row per host and generated file (file: 'blocklist'), written by that host's nginx process
-- about every 10 s and at each change. A host whose row was not checked for a minute (its
-- OPSD_NGINX_APPLY turned off, or the host gone) is no longer counted as applying.
CREATE TABLE nginx_apply_hosts (
	host VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	file VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	-- the last pass, and what it found: in_sync (nginx runs the current render),
	-- waiting_for_nginx (not running) or failing (last_error says why)
	checked_at DATETIME(3) NOT NULL,
	state VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	last_success_at DATETIME(3) NULL,
	last_error VARCHAR(500) NULL,
	last_error_at DATETIME(3) NULL,
	failures BIGINT UNSIGNED NOT NULL DEFAULT 0,
	PRIMARY KEY (host, file)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A blocklist entry a host's nginx denies: written once nginx was reloaded with a file that
-- holds it (by the nginx process, or `opsctl blocklist sync-nginx`); goes with the entry when
-- it is removed or expires.
CREATE TABLE ip_blocklist_nginx (
	entry_id BINARY(16) NOT NULL,
	host VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	applied_at DATETIME(3) NOT NULL,
	PRIMARY KEY (entry_id, host),
	CONSTRAINT ip_blocklist_nginx_entry FOREIGN KEY (entry_id) REFERENCES ip_blocklist (id)
		ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
