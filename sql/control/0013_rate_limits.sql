-- Rate limits set at run time (README "Runbook 4"): PUT /security/rate-limits and
-- `opsctl ratelimit set` store a value here, and it overrides the variable of the
-- environment or OPSD_ENV_FILE until it is cleared (PUT with null, `opsctl
-- ratelimit set --NAME env`), which deletes its row. Its history is in
-- audit_events (security.rate_limits_changed, old and new values).
--
-- name is the limit's name in the API (userPerMin, tokenPerMin, ipPerMin, burst
-- for opsd's buckets; nginxApiRate, nginxApiBurst, nginxLoginRate,
-- nginxLoginBurst, nginxConnLimit for nginx's zones); value is its text as the
-- API shows it ("60", "10r/s"), checked by opsd before it is written and again
-- when it is read.
CREATE TABLE rate_limits (
	name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	value VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	reason VARCHAR(500) NOT NULL,
	-- who set it: the user (NULL from opsctl) and the audit actor label
	set_by BINARY(16) NULL,
	set_by_label VARCHAR(128) NOT NULL,
	set_at DATETIME(3) NOT NULL,
	PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row. Every change adds one to generation in the transaction that writes
-- rate_limits: each worker of every host reads this row (one primary-key
-- lookup) at most a second after its last look and reloads rate_limits only
-- when the number moved. The row also serialises changes (SELECT … FOR UPDATE).
--
-- nginx_generation counts the changes of nginx's values; whoever renders
-- nginx's limits include from them (rate_limits_nginx_conf), tests it with
-- nginx -t and reloads nginx records the generation it applied in
-- nginx_applied_generation: GET /security/rate-limits says nginxApplied while
-- the two are equal.
CREATE TABLE rate_limits_state (
	id TINYINT UNSIGNED NOT NULL,
	generation BIGINT UNSIGNED NOT NULL,
	nginx_generation BIGINT UNSIGNED NOT NULL,
	nginx_applied_generation BIGINT UNSIGNED NOT NULL,
	nginx_applied_at DATETIME(3) NULL,
	PRIMARY KEY (id),
	CONSTRAINT rate_limits_state_one_row CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO rate_limits_state (id, generation, nginx_generation, nginx_applied_generation)
VALUES (1, 0, 0, 0);
