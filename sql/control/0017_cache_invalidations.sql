-- What each host's shared-memory cache of signed-in principals and legal acceptance states
-- must forget (README "Caching"). The triggers below write a row for every change that ends or
-- alters a credential or a user's acceptances, whoever makes it (opsd, opsctl, an operator's
-- SQL), in the transaction of the change. Every host polls the rows after the last id it
-- applied (and those of the last 10 s again: an id handed out earlier may commit later) a few
-- times a second; the jobs process deletes rows older than an hour.
CREATE TABLE cache_invalidations (
	id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
	-- user: every entry of the user (subject: users.id); session: one session (subject:
	-- sessions.id_hash); token: one API token (subject: api_tokens.token_hash); all: every entry
	kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	subject VARBINARY(32) NULL,
	created_at DATETIME(3) NOT NULL DEFAULT NOW(3),
	PRIMARY KEY (id),
	KEY cache_invalidations_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A session ends (logout, flush, expiry) or is moved back in time or to another user; the
-- once-a-minute touch of last_seen_at moves it forward and writes nothing.
CREATE TRIGGER sessions_cache_delete AFTER DELETE ON sessions FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) VALUES ('session', OLD.id_hash);
CREATE TRIGGER sessions_cache_update AFTER UPDATE ON sessions FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) SELECT 'session', OLD.id_hash FROM DUAL
	WHERE NEW.last_seen_at < OLD.last_seen_at OR NOT (NEW.expires_at <=> OLD.expires_at)
	OR NOT (NEW.user_id <=> OLD.user_id) OR NOT (NEW.id_hash <=> OLD.id_hash);

-- A token is revoked, deleted, or its expiry, scopes or owner change (not last_used_at).
CREATE TRIGGER api_tokens_cache_delete AFTER DELETE ON api_tokens FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) VALUES ('token', OLD.token_hash);
CREATE TRIGGER api_tokens_cache_update AFTER UPDATE ON api_tokens FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) SELECT 'token', OLD.token_hash FROM DUAL
	WHERE NOT (NEW.revoked_at <=> OLD.revoked_at) OR NOT (NEW.expires_at <=> OLD.expires_at)
	OR NOT (NEW.scopes <=> OLD.scopes) OR NOT (NEW.user_id <=> OLD.user_id)
	OR NOT (NEW.token_hash <=> OLD.token_hash);

-- What a principal is made of: roles, org, service flag, disabled or archived.
CREATE TRIGGER users_cache_update AFTER UPDATE ON users FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) SELECT 'user', OLD.id FROM DUAL
	WHERE NOT (NEW.roles <=> OLD.roles) OR NOT (NEW.org_id <=> OLD.org_id)
	OR NOT (NEW.service <=> OLD.service) OR NOT (NEW.disabled_at <=> OLD.disabled_at)
	OR NOT (NEW.archived_at <=> OLD.archived_at);
CREATE TRIGGER users_cache_delete AFTER DELETE ON users FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) VALUES ('user', OLD.id);

-- A user's acceptances (the cached acceptance state of the current documents).
CREATE TRIGGER legal_acceptances_cache_insert AFTER INSERT ON legal_acceptances FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) VALUES ('user', NEW.user_id);
CREATE TRIGGER legal_acceptances_cache_update AFTER UPDATE ON legal_acceptances FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) VALUES ('user', OLD.user_id);
CREATE TRIGGER legal_acceptances_cache_delete AFTER DELETE ON legal_acceptances FOR EACH ROW
	INSERT INTO cache_invalidations (kind, subject) VALUES ('user', OLD.user_id);
