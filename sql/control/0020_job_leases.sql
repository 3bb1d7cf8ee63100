-- Cluster-wide jobs (README "Running on several hosts"): the jobs process of one host at a
-- time runs each of them. A row per job names its holder (host:ns:pid) until expires_at, which
-- the holder moves forward at every run; another host takes an expired row, and a process of
-- the holder's own host takes the row of one that is gone. epoch counts the changes of holder:
-- every transaction the job commits also updates its row where holder and epoch are still the
-- ones it started with (fences; touches counts those updates and the renewals, so that each
-- one changes the row and says so), so a holder that stalled past its lease and lost it commits
-- nothing more; on a Galera cluster that update also makes its transaction and a concurrent
-- take-over conflict, and one of them fails.
CREATE TABLE job_leases (
	name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	holder VARCHAR(128) NOT NULL,
	epoch BIGINT UNSIGNED NOT NULL,
	expires_at DATETIME(3) NOT NULL,
	touches BIGINT UNSIGNED NOT NULL DEFAULT 0,
	PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
