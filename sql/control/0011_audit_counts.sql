-- How many audit events of each action have been written, by every writer:
-- the workers and jobs process of every host and opsctl. GET /metrics renders
-- opsd_audit_events_total{action} from this table, so the alerts of runbook 6
-- fire whichever tool acted, and every host reports the same cluster-wide
-- value.
--
-- audit_append adds one to the event's row in the transaction that inserts
-- the event: the count commits (or rolls back) with the event. Appends are
-- already serialised by the lock on audit_chain_head, so this row adds no
-- waiting of its own.
--
-- The table starts empty rather than from the events already stored: a
-- counter that restarts from 0 is read by Prometheus as a reset, whereas a
-- jump to the historical total would look like a burst of events and fire
-- every alert at the upgrade. Retention never decrements it.
CREATE TABLE audit_action_counts (
	action VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	n BIGINT UNSIGNED NOT NULL,
	PRIMARY KEY (action)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
