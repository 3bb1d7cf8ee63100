/* Login, logout, the caller's identity, password change and API tokens
 * (README "Identity, sessions and roles", runbook 7). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/users.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static struct scrypt_params scrypt_of(const struct req *r)
{
	return (struct scrypt_params){r->cfg->scrypt_ln, 8, 1};
}

static void set_session_cookie(struct req *r, const char *value, long max_age)
{
	char c[256];

	session_set_cookie(value, max_age, c, sizeof(c));
	reply_header(r, "Set-Cookie", c);
}

/* ---- login ------------------------------------------------------------- */

static const struct field_spec login_spec[] = {
    {"email", FT_STRING, FIELD_REQUIRED, 1, 254, NULL},
    {"password", FT_STRING, FIELD_REQUIRED, 1, PASSWORD_MAX_LEN, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

struct login_user {
	bool found;
	bool usable; /* enabled and with a password */
	char id[UUID_STR_LEN + 1];
	const char *hash;
};

static int login_lookup(struct req *r, const char *email, struct login_user *u)
{
	char norm[256];
	struct db_rows rows;
	struct db_param p[1];

	memset(u, 0, sizeof(*u));
	if (!email_normalize(email, norm, sizeof(norm)))
		return 0;
	p[0] = DBP_STR(norm);
	if (db_query(r->db, r->arena,
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

static void reply_login_failed(struct req *r)
{
	reply_error(r, E_UNAUTHENTICATED, "invalid email or password", NULL);
}

struct login_tx {
	struct req *r;
	const struct login_user *u;
	const char *rehash;
	char cookie[SESSION_COOKIE_VALUE_LEN + 1];
	char csrf[CSRF_TOKEN_LEN + 1];
};

static int login_fn(struct db *d, void *arg)
{
	struct login_tx *x = arg;
	struct req *r = x->r;
	struct audit_actor a = {x->u->id, "user", r->remote_addr, r->request_id};
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
	if (session_create(d, r->cfg, x->u->id, r->remote_addr, r->user_agent, x->cookie,
	        x->csrf) != 0)
		goto fail;
	return audit_append(d, &a, AA_AUTH_LOGIN_SUCCEEDED, NULL, "user", x->u->id, payload);
fail:
	json_object_put(payload);
	return -1;
}

static void audit_login(struct req *r, enum audit_action action, const struct login_user *u)
{
	struct audit_actor a;

	req_actor(r, &a);
	if (audit_append_tx(r->db, &a, action, NULL, u && u->found ? "user" : NULL,
	        u && u->found ? u->id : NULL, NULL) != 0)
		log_msg(LL_ERROR, "audit_failed", "%s: %s", audit_actions[action].name,
		    db_error(r->db));
}

void api_auth_login(struct req *r)
{
	struct scrypt_params sp = scrypt_of(r);
	struct login_user u;
	struct login_tx x = {.r = r, .u = &u};
	char newhash[PASSWORD_HASH_MAX];
	enum pw_result pw = PW_MISMATCH;
	const char *email, *password;
	struct json_object *o, *user;
	enum user_err ue;
	char exp[32];
	long wait;

	if (!req_validate_or_reply(r, login_spec))
		return;
	email = json_get_str(r->json, "email", "");
	password = json_get_str(r->json, "password", "");
	wait = login_throttled(r->db, r->cfg, email, r->remote_addr);
	if (wait < 0 || login_lookup(r, email, &u) != 0) {
		reply_db_error(r);
		return;
	}
	if (wait > 0) {
		audit_login(r, AA_AUTH_LOGIN_THROTTLED, &u);
		reply_rate_limited(r, wait, r->cfg->login_max_failures);
		return;
	}
	/* Unknown and disabled accounts cost the same work as a real check. */
	if (u.usable)
		pw = password_verify(password, u.hash, &sp);
	else
		password_burn(password, &sp);
	if (pw != PW_OK && pw != PW_OK_REHASH) {
		if (login_failed(r->db, r->cfg, email, r->remote_addr) != 0) {
			reply_db_error(r);
			return;
		}
		audit_login(r, AA_AUTH_LOGIN_FAILED, &u);
		reply_login_failed(r);
		return;
	}
	if (pw == PW_OK_REHASH && password_hash(password, &sp, newhash, sizeof(newhash)) == 0)
		x.rehash = newhash;
	if (login_succeeded(r->db, email) != 0 || db_tx(r->db, login_fn, &x) != 0) {
		reply_db_error(r);
		return;
	}
	user = user_get_json(r->db, r->arena, u.id, &ue);
	if (!user) {
		reply_db_error(r);
		return;
	}
	format_rfc3339(now_ms() + (int64_t)r->cfg->session_absolute_h * 3600 * 1000, exp);
	set_session_cookie(r, x.cookie, (long)r->cfg->session_absolute_h * 3600);
	o = json_object_new_object();
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "csrfToken", json_object_new_string(x.csrf));
	json_object_object_add(o, "expiresAt", json_object_new_string(exp));
	reply_json(r, 200, o);
}

/* ---- logout, me -------------------------------------------------------- */

struct logout_tx {
	struct req *r;
};

static int logout_fn(struct db *d, void *arg)
{
	struct req *r = ((struct logout_tx *)arg)->r;
	struct audit_actor a;

	req_actor(r, &a);
	if (session_delete(d, r->who->session_id) != 0)
		return -1;
	return audit_append(d, &a, AA_AUTH_LOGOUT, NULL, "user", r->who->user_id, NULL);
}

void api_auth_logout(struct req *r)
{
	struct logout_tx x = {r};
	struct json_object *o;

	if (r->who->method != AUTH_SESSION) {
		reply_error(r, E_BAD_REQUEST,
		    "logout ends a session; revoke tokens with DELETE /auth/tokens/:id", NULL);
		return;
	}
	if (db_tx(r->db, logout_fn, &x) != 0) {
		reply_db_error(r);
		return;
	}
	set_session_cookie(r, NULL, 0);
	o = json_object_new_object();
	json_object_object_add(o, "loggedOut", json_object_new_boolean(1));
	reply_json(r, 200, o);
}

static struct json_object *perms_json(permset perms)
{
	struct json_object *a = json_object_new_array();

	for (int i = 0; i < PERM__MAX; i++)
		if (perms_have(perms, (enum perm)i))
			json_object_array_add(a, json_object_new_string(perm_name((enum perm)i)));
	return a;
}

void api_auth_me(struct req *r)
{
	enum user_err ue;
	struct json_object *user = user_get_json(r->db, r->arena, r->who->user_id, &ue);
	struct json_object *o;

	if (!user) {
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "permissions", perms_json(r->who->perms));
	json_object_object_add(o, "authMethod",
	    json_object_new_string(r->who->method == AUTH_SESSION ? "session" : "token"));
	if (r->who->method == AUTH_SESSION) {
		char csrf[CSRF_TOKEN_LEN + 1];

		session_csrf_token(r->cfg->session_secret, r->who->session_id, csrf);
		json_object_object_add(o, "csrfToken", json_object_new_string(csrf));
	}
	reply_json(r, 200, o);
}

/* ---- password ---------------------------------------------------------- */

static const struct field_spec password_spec[] = {
    {"currentPassword", FT_STRING, FIELD_REQUIRED, 1, PASSWORD_MAX_LEN, NULL},
    {"newPassword", FT_STRING, FIELD_REQUIRED, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

struct password_tx {
	struct req *r;
	const char *hash;
	char cookie[SESSION_COOKIE_VALUE_LEN + 1];
	char csrf[CSRF_TOKEN_LEN + 1];
};

/* New hash, every session of the user ended, a fresh one for this client. */
static int password_fn(struct db *d, void *arg)
{
	struct password_tx *x = arg;
	struct req *r = x->r;
	struct audit_actor a;
	struct opsd_uuid id;
	struct db_param p[2];

	req_actor(r, &a);
	uuid_parse(r->who->user_id, &id);
	p[0] = DBP_STR(x->hash);
	p[1] = DBP_BLOB(id.b, 16);
	if (db_exec(d, "UPDATE users SET password_hash = ? WHERE id = ?", p, 2, NULL) != 0 ||
	    sessions_flush(d, FLUSH_USER, r->who->user_id, false, NULL) != 0 ||
	    session_create(d, r->cfg, r->who->user_id, r->remote_addr, r->user_agent, x->cookie,
	        x->csrf) != 0)
		return -1;
	return audit_append(d, &a, AA_AUTH_PASSWORD_CHANGED, NULL, "user", r->who->user_id, NULL);
}

void api_auth_password(struct req *r)
{
	struct scrypt_params sp = scrypt_of(r);
	struct password_tx x = {.r = r};
	char hash[PASSWORD_HASH_MAX];
	struct db_rows rows;
	struct opsd_uuid id;
	struct db_param p[1];
	struct json_object *o;
	enum pw_result pw = PW_MISMATCH;

	if (!req_validate_or_reply(r, password_spec))
		return;
	if (r->who->method != AUTH_SESSION) {
		reply_error(r, E_FORBIDDEN, "passwords are changed from a session", NULL);
		return;
	}
	uuid_parse(r->who->user_id, &id);
	p[0] = DBP_BLOB(id.b, 16);
	if (db_query(r->db, r->arena, "SELECT password_hash FROM users WHERE id = ?", p, 1,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows == 1 && rows.val[0][0])
		pw = password_verify(json_get_str(r->json, "currentPassword", ""), rows.val[0][0],
		    &sp);
	if (pw != PW_OK && pw != PW_OK_REHASH) {
		reply_error(r, E_FORBIDDEN, "the current password is wrong", NULL);
		return;
	}
	if (password_hash(json_get_str(r->json, "newPassword", ""), &sp, hash, sizeof(hash)) != 0) {
		reply_error(r, E_INTERNAL, "internal error", NULL);
		return;
	}
	x.hash = hash;
	if (db_tx(r->db, password_fn, &x) != 0) {
		reply_db_error(r);
		return;
	}
	set_session_cookie(r, x.cookie, (long)r->cfg->session_absolute_h * 3600);
	o = json_object_new_object();
	json_object_object_add(o, "csrfToken", json_object_new_string(x.csrf));
	reply_json(r, 200, o);
}

/* ---- API tokens -------------------------------------------------------- */

static const struct field_spec token_spec[] = {
    {"name", FT_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"scopes", FT_STRING_ARRAY, FIELD_REQUIRED, 1, PERM__MAX, NULL},
    {"expiresAt", FT_TIME, FIELD_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The scopes array as a permission set; replies itself on unknown names or
 * permissions the caller does not hold. */
static bool scopes_or_reply(struct req *r, permset *out)
{
	struct json_object *arr = json_object_object_get(r->json, "scopes");
	struct json_object *missing = json_object_new_array();

	*out = 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(arr, i));
		int p = perm_from_name(name);

		if (p < 0) {
			char why[160];

			snprintf(why, sizeof(why), "unknown permission: %.100s", name);
			json_object_put(missing);
			reply_field_error(r, "scopes", why);
			return false;
		}
		if (!perms_have(r->who->perms, (enum perm)p))
			json_object_array_add(missing, json_object_new_string(name));
		*out |= (permset)1 << p;
	}
	if (json_object_array_length(missing) > 0) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "scopes", missing);
		reply_error(r, E_FORBIDDEN, "a token cannot hold permissions its owner lacks", d);
		return false;
	}
	json_object_put(missing);
	return true;
}

struct token_tx {
	struct req *r;
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1];
	char token[TOKEN_LEN + 1];
	char scopes[1024];
	char expires[DB_TIME_LEN + 1];
	bool has_expiry;
};

static int token_create_fn(struct db *d, void *arg)
{
	struct token_tx *x = arg;
	struct req *r = x->r;
	struct audit_actor a;
	struct opsd_uuid owner;
	uint8_t hash[32];
	struct json_object *payload = json_object_new_object();

	req_actor(r, &a);
	uuid_parse(r->who->user_id, &owner);
	sha256_raw(x->token, strlen(x->token), hash);
	{
		struct db_param p[] = {
		    DBP_BLOB(x->id.b, 16),
		    DBP_BLOB(owner.b, 16),
		    DBP_STR(json_get_str(r->json, "name", "")),
		    DBP_BLOB(hash, 32),
		    DBP_STR(x->scopes),
		    x->has_expiry ? DBP_STR(x->expires) : DBP_NULL,
		};

		if (db_exec(d,
		        "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, expires_at,"
		        " created_at) VALUES (?, ?, ?, ?, ?, ?, NOW(3))",
		        p, countof(p), NULL) != 0) {
			json_object_put(payload);
			return -1;
		}
	}
	json_object_object_add(payload, "scopes", json_object_new_string(x->scopes));
	return audit_append(d, &a, AA_AUTH_TOKEN_CREATED, NULL, "api_token", x->id_s, payload);
}

#define TOKEN_COLUMNS "id, name, scopes, expires_at, created_at, last_used_at, revoked_at"

static struct json_object *token_row_json(const struct db_rows *rows, size_t i)
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

void api_tokens_create(struct req *r)
{
	struct token_tx x = {.r = r};
	const char *exp;
	permset scopes;
	struct db_rows rows;
	struct db_param p[1];
	struct json_object *o;

	if (!req_validate_or_reply(r, token_spec))
		return;
	if (r->who->method != AUTH_SESSION) {
		reply_error(r, E_FORBIDDEN, "tokens are created from a session", NULL);
		return;
	}
	if (!scopes_or_reply(r, &scopes))
		return;
	exp = json_get_str(r->json, "expiresAt", NULL);
	if (exp) {
		int64_t ms;

		if (!parse_rfc3339(exp, &ms) || ms <= now_ms()) {
			reply_field_error(r, "expiresAt", "must be a time in the future");
			return;
		}
		db_time_from_ms(ms, x.expires);
		x.has_expiry = true;
	}
	perms_format_csv(scopes, x.scopes, sizeof(x.scopes));
	uuid7_new(&x.id);
	uuid_format(&x.id, x.id_s);
	if (!token_new(x.token) || db_tx(r->db, token_create_fn, &x) != 0) {
		reply_db_error(r);
		return;
	}
	p[0] = DBP_BLOB(x.id.b, 16);
	if (db_query(r->db, r->arena, "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE id = ?", p, 1,
	        &rows) != 0 ||
	    rows.nrows != 1) {
		reply_db_error(r);
		return;
	}
	o = token_row_json(&rows, 0);
	/* Shown once: only its hash is kept. */
	json_object_object_add(o, "token", json_object_new_string(x.token));
	reply_json(r, 201, o);
}

void api_tokens_list(struct req *r)
{
	struct opsd_uuid owner;
	struct db_param p[1];

	uuid_parse(r->who->user_id, &owner);
	p[0] = DBP_BLOB(owner.b, 16);
	reply_id_list(r, "tokens",
	    "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE user_id = ?"
	    " AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?",
	    p, 1, token_row_json);
}

struct revoke_tx {
	struct req *r;
	struct opsd_uuid id;
	bool found;
};

static int token_revoke_fn(struct db *d, void *arg)
{
	struct revoke_tx *x = arg;
	struct req *r = x->r;
	struct audit_actor a;
	struct opsd_uuid owner;
	unsigned long long n = 0;
	struct db_param p[2];

	req_actor(r, &a);
	uuid_parse(r->who->user_id, &owner);
	p[0] = DBP_BLOB(x->id.b, 16);
	p[1] = DBP_BLOB(owner.b, 16);
	if (db_exec(d,
	        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, NOW(3))"
	        " WHERE id = ? AND user_id = ?",
	        p, 2, &n) != 0)
		return -1;
	/* Matched rows count even when already revoked (CLIENT_FOUND_ROWS is
	 * off, so check existence separately when nothing changed). */
	x->found = n > 0;
	if (!x->found) {
		struct db_rows rows;

		if (db_query(d, r->arena, "SELECT 1 FROM api_tokens WHERE id = ? AND user_id = ?",
		        p, 2, &rows) != 0)
			return -1;
		x->found = rows.nrows == 1;
		return 0;
	}
	return audit_append(d, &a, AA_AUTH_TOKEN_REVOKED, NULL, "api_token", req_param(r, "id"),
	    NULL);
}

void api_tokens_delete(struct req *r)
{
	struct revoke_tx x = {.r = r};
	struct json_object *o;

	if (!uuid_param_or_reply(r, "id", &x.id))
		return;
	if (db_tx(r->db, token_revoke_fn, &x) != 0) {
		reply_db_error(r);
		return;
	}
	if (!x.found) {
		reply_error(r, E_NOT_FOUND, "no such token", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "revoked", json_object_new_boolean(1));
	reply_json(r, 200, o);
}
