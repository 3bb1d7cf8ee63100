/* Signing in and out, password changes, API tokens (see login.h). */
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/auth.h"
#include "core/login.h"
#include "core/principal_cache.h"
#include "core/users.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "infra/pwgate.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"

static struct scrypt_params scrypt_of(const struct opsd_config *cfg)
{
	return (struct scrypt_params){cfg->scrypt_ln, 8, 1};
}

/* ---- login -------------------------------------------------------------- */

struct login_user {
	bool found;
	bool usable; /* enabled and with a password */
	char id[UUID_STR_LEN + 1];
	const char *hash;
};

static int login_lookup(struct db *d, struct arena *a, const char *email, struct login_user *u)
{
	char norm[256];
	struct db_rows rows;
	struct db_param p[1];

	memset(u, 0, sizeof(*u));
	if (!email_normalize(email, norm, sizeof(norm)))
		return 0;
	p[0] = DBP_STR(norm);
	if (db_query(d, a,
	        "SELECT id, password_hash, disabled_at IS NULL FROM users WHERE email = ?", p, 1,
	        &rows) != 0)
		return -1;
	if (rows.nrows != 1 || !dbv_uuid(rows.val[0][0], rows.len[0][0], u->id))
		return 0;
	u->found = true;
	u->hash = rows.val[0][1];
	u->usable = u->hash && strcmp(rows.val[0][2], "1") == 0;
	return 0;
}

/* auth.login_failed or _throttled: an event of its own, about the account
 * when it exists. Its failure is logged, not the login's. */
static void audit_refusal(struct db *d, const struct audit_actor *client, enum audit_action action,
    const struct login_user *u)
{
	if (audit_append_tx(d, client, action, NULL, u->found ? "user" : NULL,
	        u->found ? u->id : NULL, NULL) != 0)
		log_msg(LL_ERROR, "audit_failed", "%s: %s", audit_actions[action].name,
		    db_error(d));
}

struct login_tx {
	const struct opsd_config *cfg;
	const struct audit_actor *client;
	const struct login_user *u;
	const char *rehash;
	struct login *l;
};

static int login_fn(struct db *d, void *arg)
{
	struct login_tx *x = arg;
	struct audit_actor a = {x->u->id, "user", x->client->ip, x->client->request_id};
	struct json_object *payload = json_object_new_object();

	if (x->rehash) {
		struct opsd_uuid id;
		struct db_param p[2];

		uuid_parse(x->u->id, &id);
		p[0] = DBP_STR(x->rehash);
		p[1] = DBP_BLOB(id.b, 16);
		if (db_exec(d, "UPDATE users SET password_hash = ? WHERE id = ?", p, 2, NULL) != 0)
			goto fail;
		json_object_object_add(payload, "rehashed", json_object_new_boolean(1));
	}
	if (session_create(d, x->cfg, x->u->id, x->client->ip, x->l->user_agent, x->l->cookie,
	        x->l->csrf) != 0)
		goto fail;
	return audit_append(d, &a, AA_AUTH_LOGIN_SUCCEEDED, NULL, "user", x->u->id, payload);
fail:
	json_object_put(payload);
	return -1;
}

enum login_rc auth_login(struct db *d, struct arena *a, const struct opsd_config *cfg,
    const struct audit_actor *client, struct login *l)
{
	struct scrypt_params sp = scrypt_of(cfg);
	struct login_user u;
	struct login_tx x = {cfg, client, &u, NULL, l};
	char newhash[PASSWORD_HASH_MAX];
	enum pw_result pw = PW_MISMATCH;

	l->wait_s = login_throttled(d, cfg, l->email, client->ip);
	if (l->wait_s < 0 || login_lookup(d, a, l->email, &u) != 0)
		return LOGIN_DB_ERROR;
	if (l->wait_s > 0) {
		audit_refusal(d, client, AA_AUTH_LOGIN_THROTTLED, &u);
		return LOGIN_THROTTLED;
	}
	/* One slot for the check and the rehash (infra/pwgate.h). */
	if (!pwgate_enter())
		return LOGIN_BUSY;
	/* Unknown and disabled accounts cost the same work as a real check. */
	if (u.usable)
		pw = password_verify(l->password, u.hash, &sp);
	else
		password_burn(l->password, &sp);
	if (pw == PW_OK_REHASH && password_hash(l->password, &sp, newhash, sizeof(newhash)) == 0)
		x.rehash = newhash;
	pwgate_leave();
	if (pw != PW_OK && pw != PW_OK_REHASH) {
		if (login_failed(d, cfg, l->email, client->ip) != 0)
			return LOGIN_DB_ERROR;
		audit_refusal(d, client, AA_AUTH_LOGIN_FAILED, &u);
		return LOGIN_FAILED;
	}
	if (login_succeeded(d, l->email) != 0 || db_tx(d, login_fn, &x) != 0)
		return LOGIN_DB_ERROR;
	str_copy(l->user_id, u.id, sizeof(l->user_id));
	return LOGIN_OK;
}

/* ---- logout, password --------------------------------------------------- */

struct logout_tx {
	const struct audit_actor *actor;
	const struct principal *p;
};

static int logout_fn(struct db *d, void *arg)
{
	struct logout_tx *x = arg;

	if (session_delete(d, x->p->session_id) != 0)
		return -1;
	return audit_append(d, x->actor, AA_AUTH_LOGOUT, NULL, "user", x->p->user_id, NULL);
}

int auth_logout(struct db *d, const struct audit_actor *actor, const struct principal *p)
{
	struct logout_tx x = {actor, p};

	return db_tx(d, logout_fn, &x);
}

struct password_tx {
	const struct opsd_config *cfg;
	const struct audit_actor *actor;
	const char *user_agent;
	const struct principal *p;
	const char *hash;
	char *cookie, *csrf;
};

/* New hash, every session of the user ended, a fresh one for this client. */
static int password_fn(struct db *d, void *arg)
{
	struct password_tx *x = arg;
	struct opsd_uuid id;
	struct db_param p[2];

	uuid_parse(x->p->user_id, &id);
	p[0] = DBP_STR(x->hash);
	p[1] = DBP_BLOB(id.b, 16);
	if (db_exec(d, "UPDATE users SET password_hash = ? WHERE id = ?", p, 2, NULL) != 0 ||
	    sessions_flush(d, FLUSH_USER, x->p->user_id, false, NULL) != 0 ||
	    session_create(d, x->cfg, x->p->user_id, x->actor->ip, x->user_agent, x->cookie,
	        x->csrf) != 0)
		return -1;
	return audit_append(d, x->actor, AA_AUTH_PASSWORD_CHANGED, NULL, "user", x->p->user_id,
	    NULL);
}

enum password_rc auth_change_password(struct db *d, struct arena *a, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *user_agent, const struct principal *p,
    const char *current, const char *new_password, char cookie[SESSION_COOKIE_VALUE_LEN + 1],
    char csrf[CSRF_TOKEN_LEN + 1])
{
	struct scrypt_params sp = scrypt_of(cfg);
	struct password_tx x = {cfg, actor, user_agent, p, NULL, cookie, csrf};
	char hash[PASSWORD_HASH_MAX];
	struct db_rows rows;
	struct opsd_uuid id;
	struct db_param q[1];
	enum pw_result pw = PW_MISMATCH;
	int rc = -1;

	uuid_parse(p->user_id, &id);
	q[0] = DBP_BLOB(id.b, 16);
	if (db_query(d, a, "SELECT password_hash FROM users WHERE id = ?", q, 1, &rows) != 0)
		return PASSWORD_DB_ERROR;
	if (!pwgate_enter())
		return PASSWORD_BUSY;
	if (rows.nrows == 1 && rows.val[0][0])
		pw = password_verify(current, rows.val[0][0], &sp);
	if (pw == PW_OK || pw == PW_OK_REHASH)
		rc = password_hash(new_password, &sp, hash, sizeof(hash));
	pwgate_leave();
	if (pw != PW_OK && pw != PW_OK_REHASH)
		return PASSWORD_WRONG;
	if (rc != 0)
		return PASSWORD_HASH_FAILED;
	x.hash = hash;
	return db_tx(d, password_fn, &x) == 0 ? PASSWORD_OK : PASSWORD_DB_ERROR;
}

/* ---- API tokens --------------------------------------------------------- */

struct json_object *token_row_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 0));
	json_object_object_add(o, "name", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "scopes", dbv_json_csv(rows, i, 2));
	json_object_object_add(o, "expiresAt", dbv_json_time(rows, i, 3));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, i, 4));
	json_object_object_add(o, "lastUsedAt", dbv_json_time(rows, i, 5));
	json_object_object_add(o, "revokedAt", dbv_json_time(rows, i, 6));
	return o;
}

enum token_expiry_rc token_expiry(const int64_t *asked_ms, int64_t now_ms, int max_days,
    int64_t *expires_ms)
{
	int64_t latest = now_ms + (int64_t)max_days * 86400 * 1000;

	*expires_ms = asked_ms ? *asked_ms : latest;
	if (*expires_ms <= now_ms)
		return TOKEN_EXPIRY_PAST;
	return *expires_ms > latest ? TOKEN_EXPIRY_TOO_LATE : TOKEN_EXPIRY_OK;
}

struct token_tx {
	const struct audit_actor *actor;
	const char *owner, *name;
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1];
	const char *token;
	char scopes[1024];
	char expires[DB_TIME_LEN + 1];
	bool has_expiry;
};

static int token_create_fn(struct db *d, void *arg)
{
	struct token_tx *x = arg;
	struct opsd_uuid owner;
	uint8_t hash[32];
	char when[DBV_RFC3339_LEN + 1];
	struct json_object *payload;

	uuid_parse(x->owner, &owner);
	sha256_raw(x->token, strlen(x->token), hash);
	{
		struct db_param p[] = {
		    DBP_BLOB(x->id.b, 16),
		    DBP_BLOB(owner.b, 16),
		    DBP_STR(x->name),
		    DBP_BLOB(hash, 32),
		    DBP_STR(x->scopes),
		    x->has_expiry ? DBP_STR(x->expires) : DBP_NULL,
		};

		if (db_exec(d,
		        "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, expires_at,"
		        " created_at) VALUES (?, ?, ?, ?, ?, ?, NOW(3))",
		        p, countof(p), NULL) != 0)
			return -1;
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "scopes", json_object_new_string(x->scopes));
	if (x->has_expiry && dbv_rfc3339(x->expires, when))
		json_object_object_add(payload, "expiresAt", json_object_new_string(when));
	return audit_append(d, x->actor, AA_AUTH_TOKEN_CREATED, NULL, "api_token", x->id_s,
	    payload);
}

int token_create(struct db *d, const struct audit_actor *actor, const char *owner, const char *name,
    permset scopes, int64_t expires_ms, char id_out[UUID_STR_LEN + 1], char token[TOKEN_LEN + 1])
{
	struct token_tx x = {.actor = actor, .owner = owner, .name = name, .token = token};

	if (expires_ms) {
		db_time_from_ms(expires_ms, x.expires);
		x.has_expiry = true;
	}
	perms_format_csv(scopes, x.scopes, sizeof(x.scopes));
	uuid7_new(&x.id);
	uuid_format(&x.id, x.id_s);
	if (!token_new(token) || db_tx(d, token_create_fn, &x) != 0)
		return -1;
	str_copy(id_out, x.id_s, UUID_STR_LEN + 1);
	return 0;
}

struct revoke_tx {
	struct arena *a;
	const struct audit_actor *actor;
	const char *owner, *id_text;
	const struct opsd_uuid *id;
	bool found;
};

static int token_revoke_fn(struct db *d, void *arg)
{
	struct revoke_tx *x = arg;
	struct opsd_uuid owner;
	unsigned long long n = 0;
	struct db_param p[2];

	uuid_parse(x->owner, &owner);
	p[0] = DBP_BLOB(x->id->b, 16);
	p[1] = DBP_BLOB(owner.b, 16);
	if (db_exec(d,
	        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, NOW(3))"
	        " WHERE id = ? AND user_id = ?",
	        p, 2, &n) != 0)
		return -1;
	pcache_invalidate(PCACHE_INV_USER, x->owner);
	/* Matched rows count even when already revoked (CLIENT_FOUND_ROWS is
	 * off, so check existence separately when nothing changed). */
	x->found = n > 0;
	if (!x->found) {
		struct db_rows rows;

		if (db_query(d, x->a, "SELECT 1 FROM api_tokens WHERE id = ? AND user_id = ?", p, 2,
		        &rows) != 0)
			return -1;
		x->found = rows.nrows == 1;
		return 0;
	}
	return audit_append(d, x->actor, AA_AUTH_TOKEN_REVOKED, NULL, "api_token", x->id_text,
	    NULL);
}

enum token_rc token_revoke(struct db *d, struct arena *a, const struct audit_actor *actor,
    const char *owner, const struct opsd_uuid *id, const char *id_text)
{
	struct revoke_tx x = {a, actor, owner, id_text, id, false};

	if (db_tx(d, token_revoke_fn, &x) != 0)
		return TOKEN_DB_ERROR;
	return x.found ? TOKEN_REVOKED : TOKEN_NOT_FOUND;
}
