-- The expiry of sessions writes nothing to cache_invalidations (README "Caching"): every host's
-- cache refuses an expired or idle session by its own clocks already, and the jobs process
-- deletes thousands of them a minute, which would empty every host's cache at each poll. A
-- deleted session writes a row only while it was still valid: not past expires_at and, when
-- the deleting connection set @opsd_expiry_idle_min (the jobs process sets SESSION_IDLE_MIN),
-- not idle for longer than that. A logout, a flush or an operator's DELETE still writes one.
DROP TRIGGER IF EXISTS sessions_cache_delete;
CREATE TRIGGER sessions_cache_delete AFTER DELETE ON sessions FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) SELECT 'session', OLD.id_hash FROM DUAL
	WHERE OLD.expires_at > NOW(3)
	AND NOT (OLD.last_seen_at < NOW(3) - INTERVAL @opsd_expiry_idle_min MINUTE <=> 1);
