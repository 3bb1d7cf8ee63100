#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/auth.h"
#include "core/principal_cache.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/util.h"

/* Fills the principal from a users row: id, org_id, roles, service. */
static bool principal_from_row(struct principal *p, const struct db_rows *rows, size_t uc)
{
	char *const *v = rows->val[0];
	const char *bad;

	if (!dbv_uuid(v[uc], rows->len[0][uc], p->user_id))
		return false;
	if (!v[uc + 1] || !dbv_uuid(v[uc + 1], rows->len[0][uc + 1], p->org_id))
		p->org_id[0] = '\0';
	if (!roles_parse_csv(v[uc + 2], &p->roles, &bad))
		return false;
	p->service = v[uc + 3] && strcmp(v[uc + 3], "0") != 0;
	p->perms = role_perms(p->roles);
	return true;
}

/* The principal of a cached entry. */
static void principal_from_cache(struct principal *p, const struct pcache_principal *c)
{
	str_copy(p->user_id, c->user_id, sizeof(p->user_id));
	str_copy(p->org_id, c->org_id, sizeof(p->org_id));
	str_copy(p->token_id, c->token_id, sizeof(p->token_id));
	p->roles = c->roles;
	p->perms = c->perms;
	p->service = c->service;
}

static void cache_from_principal(struct pcache_principal *c, const struct principal *p,
    const struct db_rows *rows, size_t expires_col, int64_t now)
{
	char *const *v = rows->val[0];

	memset(c, 0, sizeof(*c));
	str_copy(c->user_id, p->user_id, sizeof(c->user_id));
	str_copy(c->org_id, p->org_id, sizeof(c->org_id));
	str_copy(c->token_id, p->token_id, sizeof(c->token_id));
	c->roles = p->roles;
	c->perms = p->perms;
	c->service = p->service;
	/* the database's clock, as distances from now: hosts' clocks need not agree with it */
	c->expires_ms = v[expires_col] ? now + strtoll(v[expires_col], NULL, 10) : 0;
	c->seen_ms = v[expires_col + 1] ? now - strtoll(v[expires_col + 1], NULL, 10) : 0;
}

/* How each credential is looked up, touched and cached. */
static const struct credential {
	enum pcache_kind kind;
	enum auth_method method;
	const char *touch_sql;
} credentials[] = {
    [PCACHE_SESSION] = {PCACHE_SESSION, AUTH_SESSION,
        "UPDATE sessions s JOIN users u ON u.id = s.user_id SET s.last_seen_at = NOW(3)"
        " WHERE s.id_hash = ? AND s.expires_at > NOW(3) AND u.disabled_at IS NULL"},
    [PCACHE_TOKEN] = {PCACHE_TOKEN, AUTH_TOKEN,
        "UPDATE api_tokens t JOIN users u ON u.id = t.user_id SET t.last_used_at = NOW(3)"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL"},
};

/* The idle clock moves at most once a minute: one write per credential per minute, not per
 * request, whether the principal came from the cache or the database. */
#define TOUCH_EVERY_MS 60000

/* A cached principal, if the cache has one still valid for this credential. AUTH_REJECTED
 * means "not from the cache": the caller asks the database. */
static enum auth_result from_cache(const struct auth_input *in, const struct credential *cr,
    const uint8_t hash[32], const uint8_t key[32], struct principal *p)
{
	struct pcache_principal c;
	int64_t now = now_ms();
	unsigned long long touched = 0;

	if (!pcache_get(key, cr->kind, &c))
		return AUTH_REJECTED;
	if ((c.expires_ms && now >= c.expires_ms) ||
	    (cr->kind == PCACHE_SESSION &&
	        now - c.seen_ms >= (int64_t)in->cfg->session_idle_min * 60000)) {
		pcache_drop(key);
		return AUTH_REJECTED;
	}
	if (c.seen_ms == 0 || now - c.seen_ms >= TOUCH_EVERY_MS) {
		struct db_param u[] = {DBP_BLOB(hash, 32)};

		if (db_exec(in->db, cr->touch_sql, u, countof(u), &touched) != 0)
			return AUTH_DB_ERROR;
		/* gone, or its user disabled, on another host and not polled yet: the database
		 * decides */
		if (touched == 0) {
			pcache_drop(key);
			return AUTH_REJECTED;
		}
		pcache_touched(key, now);
	}
	principal_from_cache(p, &c);
	p->method = cr->method;
	return AUTH_OK;
}

/* After a database lookup: the touch it asked for (column 0), then the entry. */
static enum auth_result looked_up(const struct auth_input *in, const struct credential *cr,
    const struct db_rows *rows, size_t expires_col, const uint8_t hash[32], const uint8_t key[32],
    uint64_t epoch, struct principal *p)
{
	struct pcache_principal c;
	int64_t now = now_ms();

	p->method = cr->method;
	cache_from_principal(&c, p, rows, expires_col, now);
	if (rows->val[0][0] && strcmp(rows->val[0][0], "1") == 0) {
		struct db_param u[] = {DBP_BLOB(hash, 32)};

		if (db_exec(in->db, cr->touch_sql, u, countof(u), NULL) != 0)
			return AUTH_DB_ERROR;
		c.seen_ms = now;
	}
	pcache_put(key, &c, epoch);
	return AUTH_OK;
}

static enum auth_result auth_session(const struct auth_input *in, struct principal *p)
{
	const struct credential *cr = &credentials[PCACHE_SESSION];
	struct db_rows rows;
	uint8_t hash[32], key[32];
	enum auth_result ar;
	uint64_t epoch;

	if (!in->cfg->session_secret ||
	    !session_cookie_parse(in->cfg->session_secret, in->cookie, p->session_id))
		return AUTH_REJECTED;
	sha256_raw(p->session_id, SESSION_ID_LEN, hash);
	pcache_key(PCACHE_SESSION, hash, key);
	if ((ar = from_cache(in, cr, hash, key, p)) != AUTH_REJECTED)
		return ar;
	epoch = pcache_epoch();
	{
		struct db_param q[] = {DBP_BLOB(hash, 32), DBP_I64(in->cfg->session_idle_min)};

		if (db_query(in->db, in->arena,
		        "SELECT s.last_seen_at < NOW(3) - INTERVAL 60 SECOND, u.id, u.org_id, u.roles,"
		        " u.service, TIMESTAMPDIFF(MICROSECOND, NOW(3), s.expires_at) DIV 1000,"
		        " TIMESTAMPDIFF(MICROSECOND, s.last_seen_at, NOW(3)) DIV 1000"
		        " FROM sessions s JOIN users u ON u.id = s.user_id"
		        " WHERE s.id_hash = ? AND s.expires_at > NOW(3)"
		        " AND s.last_seen_at > NOW(3) - INTERVAL ? MINUTE AND u.disabled_at IS NULL",
		        q, countof(q), &rows) != 0)
			return AUTH_DB_ERROR;
	}
	if (rows.nrows != 1 || !principal_from_row(p, &rows, 1))
		return AUTH_REJECTED;
	return looked_up(in, cr, &rows, 5, hash, key, epoch, p);
}

static enum auth_result auth_token(const struct auth_input *in, struct principal *p,
    const char *token)
{
	const struct credential *cr = &credentials[PCACHE_TOKEN];
	struct db_rows rows;
	uint8_t hash[32], key[32];
	permset scopes;
	const char *bad;
	enum auth_result ar;
	uint64_t epoch;

	if (!token_well_formed(token))
		return AUTH_REJECTED;
	sha256_raw(token, strlen(token), hash);
	pcache_key(PCACHE_TOKEN, hash, key);
	if ((ar = from_cache(in, cr, hash, key, p)) != AUTH_REJECTED)
		return ar;
	epoch = pcache_epoch();
	{
		struct db_param q[] = {DBP_BLOB(hash, 32)};

		if (db_query(in->db, in->arena,
		        "SELECT t.last_used_at IS NULL OR t.last_used_at < NOW(3) - INTERVAL 60 SECOND,"
		        " u.id, u.org_id, u.roles, u.service, t.id, t.scopes,"
		        " TIMESTAMPDIFF(MICROSECOND, NOW(3), t.expires_at) DIV 1000,"
		        " TIMESTAMPDIFF(MICROSECOND, t.last_used_at, NOW(3)) DIV 1000"
		        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
		        " WHERE t.token_hash = ? AND t.revoked_at IS NULL"
		        " AND (t.expires_at IS NULL OR t.expires_at > NOW(3)) AND u.disabled_at IS NULL",
		        q, countof(q), &rows) != 0)
			return AUTH_DB_ERROR;
	}
	if (rows.nrows != 1 || !principal_from_row(p, &rows, 1) ||
	    !dbv_uuid(rows.val[0][5], rows.len[0][5], p->token_id) ||
	    !perms_parse_csv(rows.val[0][6], &scopes, &bad))
		return AUTH_REJECTED;
	/* Scopes only ever narrow what the owner holds today. */
	p->perms &= scopes;
	return looked_up(in, cr, &rows, 7, hash, key, epoch, p);
}

enum auth_result auth_authenticate(const struct auth_input *in, struct principal *p)
{
	memset(p, 0, sizeof(*p));
	if (in->authorization && *in->authorization) {
		const char *a = in->authorization;

		/* RFC 6750 §2.1: "Bearer" is case-insensitive, then one space. */
		if (strncasecmp(a, "Bearer ", 7) != 0)
			return AUTH_REJECTED;
		return auth_token(in, p, a + 7);
	}
	if (in->cookie && strstr(in->cookie, SESSION_COOKIE_NAME))
		return auth_session(in, p);
	return AUTH_ANONYMOUS;
}

const char *principal_label(const struct principal *p)
{
	for (int i = 0; i < ROLE__MAX; i++)
		if (p->roles & (1u << i))
			return role_name((enum role)i);
	return "none";
}

int session_create(struct db *d, const struct opsd_config *cfg, const char *user_id, const char *ip,
    const char *user_agent, char cookie[SESSION_COOKIE_VALUE_LEN + 1],
    char csrf[CSRF_TOKEN_LEN + 1])
{
	uint8_t id[SESSION_ID_LEN], hash[32];
	struct opsd_uuid u;
	char ua[256];

	if (!uuid_parse(user_id, &u) || !random_bytes(id, sizeof(id)))
		return -1;
	sha256_raw(id, sizeof(id), hash);
	str_copy_utf8(ua, user_agent, sizeof(ua));
	{
		struct db_param p[] = {
		    DBP_BLOB(hash, 32),
		    DBP_BLOB(u.b, 16),
		    DBP_I64((long long)cfg->session_absolute_h * 3600),
		    DBP_STR(ip),
		    DBP_STR(ua),
		};

		if (db_exec(d,
		        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at,"
		        " ip, user_agent) VALUES (?, ?, NOW(3), NOW(3), NOW(3) + INTERVAL ? SECOND, ?, ?)",
		        p, countof(p), NULL) != 0)
			return -1;
	}
	session_cookie_value(cfg->session_secret, id, cookie);
	session_csrf_token(cfg->session_secret, id, csrf);
	return 0;
}

int session_delete(struct db *d, const uint8_t id[SESSION_ID_LEN])
{
	uint8_t hash[32];
	struct db_param p[1];

	sha256_raw(id, SESSION_ID_LEN, hash);
	p[0] = DBP_BLOB(hash, 32);
	pcache_invalidate(PCACHE_INV_SESSION, hash);
	return db_exec(d, "DELETE FROM sessions WHERE id_hash = ?", p, 1, NULL);
}

/* One statement per scope; the table keeps them next to each other. */
static const struct flush_sql {
	const char *sessions;
	const char *tokens;
} flush_sql[] = {
    [FLUSH_ALL] = {"DELETE FROM sessions",
        "UPDATE api_tokens SET revoked_at = NOW(3) WHERE revoked_at IS NULL"},
    [FLUSH_USER] = {"DELETE FROM sessions WHERE user_id = ?",
        "UPDATE api_tokens SET revoked_at = NOW(3) WHERE revoked_at IS NULL AND user_id = ?"},
    [FLUSH_ORG] = {"DELETE s FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.org_id = ?",
        "UPDATE api_tokens t JOIN users u ON u.id = t.user_id SET t.revoked_at = NOW(3)"
        " WHERE t.revoked_at IS NULL AND u.org_id = ?"},
};

static const enum pcache_inv flush_inv[] = {
    [FLUSH_ALL] = PCACHE_INV_ALL,
    [FLUSH_USER] = PCACHE_INV_USER,
    [FLUSH_ORG] = PCACHE_INV_ORG,
};

/* One statement of flush_sql for scope (and its entries of this host's cache); -1 on a malformed
 * id. */
static int flush_exec(struct db *d, enum flush_scope scope, const char *id, bool tokens,
    unsigned long long *count)
{
	struct opsd_uuid u;
	struct db_param p[1];
	size_t np = 0;

	if (scope != FLUSH_ALL) {
		if (!id || !uuid_parse(id, &u))
			return -1;
		p[0] = DBP_BLOB(u.b, 16);
		np = 1;
	}
	pcache_invalidate(flush_inv[scope], id);
	return db_exec(d, tokens ? flush_sql[scope].tokens : flush_sql[scope].sessions, p, np,
	    count);
}

int sessions_flush(struct db *d, enum flush_scope scope, const char *id, bool revoke_tokens,
    unsigned long long *count)
{
	if (flush_exec(d, scope, id, false, count) != 0)
		return -1;
	return revoke_tokens ? flush_exec(d, scope, id, true, NULL) : 0;
}

int tokens_revoke_scope(struct db *d, enum flush_scope scope, const char *id,
    unsigned long long *count)
{
	return flush_exec(d, scope, id, true, count);
}

const char *flush_scope_name(enum flush_scope s)
{
	static const char *const names[] =
	    {[FLUSH_ALL] = "all", [FLUSH_USER] = "user", [FLUSH_ORG] = "org"};

	return (size_t)s < countof(names) ? names[s] : "?";
}

struct flush_tx {
	const struct audit_actor *actor;
	enum flush_scope scope;
	const char *id;
	struct flush_result *res;
};

static int flush_fn(struct db *d, void *arg)
{
	struct flush_tx *x = arg;
	struct flush_result *res = x->res;
	struct json_object *payload;

	res->sessions = res->tokens = 0; /* db_tx may run this again after a deadlock */
	if (flush_exec(d, x->scope, x->id, false, &res->sessions) != 0 ||
	    (res->with_tokens && flush_exec(d, x->scope, x->id, true, &res->tokens) != 0))
		return -1;
	payload = json_object_new_object();
	json_object_object_add(payload, "scope",
	    json_object_new_string(flush_scope_name(x->scope)));
	json_object_object_add(payload, "flushed", json_object_new_int64((int64_t)res->sessions));
	json_object_object_add(payload, "tokens", json_object_new_boolean(res->with_tokens));
	if (res->with_tokens)
		json_object_object_add(payload, "tokensRevoked",
		    json_object_new_int64((int64_t)res->tokens));
	if (res->reason)
		json_object_object_add(payload, "reason", json_object_new_string(res->reason));
	return audit_append(d, x->actor, AA_SECURITY_SESSIONS_FLUSHED,
	    x->scope == FLUSH_ORG ? x->id : NULL,
	    x->scope == FLUSH_ALL ? NULL : flush_scope_name(x->scope), x->id, payload);
}

int sessions_flush_audited(struct db *d, const struct audit_actor *actor, enum flush_scope scope,
    const char *id, struct flush_result *res)
{
	struct flush_tx x = {actor, scope, scope == FLUSH_ALL ? NULL : id, res};

	return db_tx(d, flush_fn, &x);
}

/* Throttle keys are hashes, so the table holds no email or address. */
static void throttle_key(const char *kind, const char *value, uint8_t out[32])
{
	char buf[320];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s:", kind);

	for (const char *s = value ? value : ""; *s && n < sizeof(buf) - 1; s++)
		buf[n++] = (char)tolower((unsigned char)*s);
	sha256_raw(buf, n, out);
}

long login_throttled(struct db *d, const struct opsd_config *cfg, const char *email, const char *ip)
{
	struct arena *a = arena_new(1024);
	uint8_t ka[32], ki[32];
	struct db_rows rows;
	long wait = -1;

	(void)cfg;
	if (!a)
		return -1;
	throttle_key("account", email, ka);
	throttle_key("ip", ip, ki);
	{
		struct db_param p[] = {DBP_BLOB(ka, 32), DBP_BLOB(ki, 32)};

		if (db_query(d, a,
		        "SELECT COALESCE(MAX(CEIL(TIMESTAMPDIFF(MICROSECOND, NOW(3), locked_until)"
		        " / 1000000)), 0) FROM login_throttle WHERE locked_until > NOW(3)"
		        " AND ((scope = 'account' AND key_hash = ?) OR (scope = 'ip' AND key_hash = ?))",
		        p, countof(p), &rows) == 0)
			wait = rows.nrows == 1 && rows.val[0][0] ? strtol(rows.val[0][0], NULL, 10)
			                                         : 0;
	}
	arena_free(a);
	return wait;
}

static int throttle_fail(struct db *d, const char *scope, const uint8_t key[32], int max)
{
	/* Assignments run left to right and see earlier results, so the lock is
	 * computed from the old counters before they change. */
	struct db_param p[] = {DBP_STR(scope), DBP_BLOB(key, 32), DBP_I64(max), DBP_I64(max)};

	return db_exec(d,
	    "INSERT INTO login_throttle (scope, key_hash, failures, window_start, locked_until)"
	    " VALUES (?, ?, 1, NOW(3), IF(1 >= ?, NOW(3) + INTERVAL 15 MINUTE, NULL))"
	    " ON DUPLICATE KEY UPDATE"
	    " locked_until = IF(IF(window_start < NOW(3) - INTERVAL 15 MINUTE, 0, failures) + 1 >= ?,"
	    "   NOW(3) + INTERVAL 15 MINUTE, locked_until),"
	    " failures = IF(window_start < NOW(3) - INTERVAL 15 MINUTE, 1, failures + 1),"
	    " window_start = IF(window_start < NOW(3) - INTERVAL 15 MINUTE, NOW(3), window_start)",
	    p, countof(p), NULL);
}

int login_failed(struct db *d, const struct opsd_config *cfg, const char *email, const char *ip)
{
	uint8_t ka[32], ki[32];

	throttle_key("account", email, ka);
	throttle_key("ip", ip, ki);
	if (throttle_fail(d, "account", ka, cfg->login_max_failures) != 0 ||
	    throttle_fail(d, "ip", ki, cfg->login_ip_max_failures) != 0)
		return -1;
	return 0;
}

int login_succeeded(struct db *d, const char *email)
{
	uint8_t ka[32];
	struct db_param p[1];

	throttle_key("account", email, ka);
	p[0] = DBP_BLOB(ka, 32);
	return db_exec(d, "DELETE FROM login_throttle WHERE scope = 'account' AND key_hash = ?", p,
	    1, NULL);
}

/* The variable tells the feed's trigger that sessions idle for longer are no news to any
 * host's cache (sql/control/0019_cache_feed_expiry.sql): their deletion writes no row. One
 * transaction, so that the variable and the deletes share a connection, and so that the jobs
 * process fences it with the job's lease (README "Running on several hosts"). */
static int expire_fn(struct db *d, void *arg)
{
	const struct opsd_config *cfg = arg;
	struct db_param p[] = {DBP_I64(cfg->session_idle_min)};

	if (db_exec(d, "SET @opsd_expiry_idle_min = ?", p, 1, NULL) != 0)
		return -1;
	/* A failed DELETE ends the run with its own error (db_tx retries a deadlock);
	 * the variable then stays set until the next run: it only spares rows for
	 * sessions every host's cache refuses by its own clock anyway. */
	if (db_exec(d,
	        "DELETE FROM sessions WHERE expires_at < NOW(3)"
	        " OR last_seen_at < NOW(3) - INTERVAL ? MINUTE LIMIT 5000",
	        p, 1, NULL) != 0)
		return -1;
	if (db_exec(d, "SET @opsd_expiry_idle_min = NULL", NULL, 0, NULL) != 0 ||
	    pcache_feed_expire(d) != 0)
		return -1;
	return db_exec(d,
	    "DELETE FROM login_throttle WHERE window_start < NOW(3) - INTERVAL 15 MINUTE"
	    " AND (locked_until IS NULL OR locked_until < NOW(3)) LIMIT 5000",
	    NULL, 0, NULL);
}

int sessions_expire(struct db *d, const struct opsd_config *cfg)
{
	return db_tx(d, expire_fn, (void *)cfg);
}
