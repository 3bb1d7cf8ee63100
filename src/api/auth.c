/* Login, logout, the caller's identity, password change and API tokens
 * (README "Identity, sessions and roles", runbook 7). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/login.h"
#include "core/users.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "infra/pwgate.h"
#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static void set_session_cookie(struct req *r, const char *value, long max_age)
{
	char c[256];

	session_set_cookie(value, max_age, c, sizeof(c));
	reply_header(r, "Set-Cookie", c);
}

/* ---- login ------------------------------------------------------------- */

const struct field_spec auth_login_spec[] = {
    {"email", FT_STRING, FIELD_REQUIRED, 1, 254, NULL},
    {"password", FT_STRING, FIELD_REQUIRED, 1, PASSWORD_MAX_LEN, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* 503, not 429: the host is out of capacity, not the client over a quota
 * of its own; Retry-After is short, as a slot frees within a check's time. */
void reply_password_busy(struct req *r)
{
	char v[16];
	struct json_object *d = json_object_new_object();

	snprintf(v, sizeof(v), "%d", PWGATE_RETRY_AFTER_S);
	reply_header(r, "Retry-After", v);
	json_object_object_add(d, "reason", json_object_new_string("password_checks_busy"));
	reply_error(r, E_UNAVAILABLE, "too many password checks in progress; retry shortly", d);
}

static void reply_login_failed(struct req *r)
{
	reply_error(r, E_UNAUTHENTICATED, "invalid email or password", NULL);
}

void api_auth_login(struct req *r)
{
	struct login l = {.user_agent = r->user_agent};
	struct audit_actor client;
	struct json_object *o, *user;
	enum user_err ue;
	char exp[32];

	if (!req_validate_or_reply(r, auth_login_spec))
		return;
	l.email = json_get_str(r->json, "email", "");
	l.password = json_get_str(r->json, "password", "");
	req_actor(r, &client);
	switch (auth_login(r->db, r->arena, r->cfg, &client, &l)) {
	case LOGIN_OK:
		break;
	case LOGIN_THROTTLED:
		reply_rate_limited(r, l.wait_s, r->cfg->login_max_failures);
		return;
	case LOGIN_FAILED:
		reply_login_failed(r);
		return;
	case LOGIN_BUSY:
		reply_password_busy(r);
		return;
	default:
		reply_db_error(r);
		return;
	}
	user = user_get_json(r->db, r->arena, l.user_id, &ue);
	if (!user) {
		reply_db_error(r);
		return;
	}
	format_rfc3339(now_ms() + (int64_t)r->cfg->session_absolute_h * 3600 * 1000, exp);
	set_session_cookie(r, l.cookie, (long)r->cfg->session_absolute_h * 3600);
	o = json_object_new_object();
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "csrfToken", json_object_new_string(l.csrf));
	json_object_object_add(o, "expiresAt", json_object_new_string(exp));
	reply_json(r, 200, o);
}

/* ---- logout, me -------------------------------------------------------- */

void api_auth_logout(struct req *r)
{
	struct audit_actor a;
	struct json_object *o;

	if (r->who->method != AUTH_SESSION) {
		reply_error(r, E_BAD_REQUEST,
		    "logout ends a session; revoke tokens with DELETE /auth/tokens/:id", NULL);
		return;
	}
	req_actor(r, &a);
	if (auth_logout(r->db, &a, r->who) != 0) {
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

/* Every role of the role table, in its order, with whether the caller may
 * grant it (the rule PATCH /users/:id applies) and whether it is an org
 * role: what a role editor offers. */
static struct json_object *role_table_json(permset granter)
{
	struct json_object *a = json_object_new_array();

	for (int i = 0; i < ROLE__MAX; i++) {
		struct json_object *o = json_object_new_object();
		roleset one = (roleset)1 << i;

		json_object_object_add(o, "role", json_object_new_string(role_name((enum role)i)));
		json_object_object_add(o, "grantable",
		    json_object_new_boolean(roles_grantable(granter, one)));
		json_object_object_add(o, "orgRole",
		    json_object_new_boolean((ROLES_ORG & one) != 0));
		json_object_array_add(a, o);
	}
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
	json_object_object_add(o, "roleTable", role_table_json(r->who->perms));
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

const struct field_spec auth_password_spec[] = {
    {"currentPassword", FT_STRING, FIELD_REQUIRED, 1, PASSWORD_MAX_LEN, NULL},
    {"newPassword", FT_STRING, FIELD_REQUIRED, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_auth_password(struct req *r)
{
	struct audit_actor a;
	char cookie[SESSION_COOKIE_VALUE_LEN + 1], csrf[CSRF_TOKEN_LEN + 1];
	struct json_object *o;

	if (!req_validate_or_reply(r, auth_password_spec))
		return;
	if (r->who->method != AUTH_SESSION) {
		reply_error(r, E_FORBIDDEN, "passwords are changed from a session", NULL);
		return;
	}
	req_actor(r, &a);
	switch (auth_change_password(r->db, r->arena, r->cfg, &a, r->user_agent, r->who,
	    json_get_str(r->json, "currentPassword", ""), json_get_str(r->json, "newPassword", ""),
	    cookie, csrf)) {
	case PASSWORD_OK:
		break;
	case PASSWORD_WRONG:
		reply_error(r, E_FORBIDDEN, "the current password is wrong", NULL);
		return;
	case PASSWORD_HASH_FAILED:
		reply_error(r, E_INTERNAL, "internal error", NULL);
		return;
	case PASSWORD_BUSY:
		reply_password_busy(r);
		return;
	default:
		reply_db_error(r);
		return;
	}
	set_session_cookie(r, cookie, (long)r->cfg->session_absolute_h * 3600);
	o = json_object_new_object();
	json_object_object_add(o, "csrfToken", json_object_new_string(csrf));
	reply_json(r, 200, o);
}

/* ---- API tokens -------------------------------------------------------- */

const struct field_spec token_create_spec[] = {
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

/* expiresAt checked against OPSD_TOKEN_MAX_DAYS (absent or null: the
 * longest lifetime); replies itself when refused. */
static bool token_expiry_or_reply(struct req *r, int64_t *expires_ms)
{
	const char *exp = json_get_str(r->json, "expiresAt", NULL);
	int64_t asked = 0;
	char why[128];

	if (exp && !parse_rfc3339(exp, &asked)) {
		reply_field_error(r, "expiresAt", "must be a time in the future");
		return false;
	}
	switch (token_expiry(exp ? &asked : NULL, now_ms(), r->cfg->token_max_days, expires_ms)) {
	case TOKEN_EXPIRY_OK:
		return true;
	case TOKEN_EXPIRY_PAST:
		reply_field_error(r, "expiresAt", "must be a time in the future");
		return false;
	case TOKEN_EXPIRY_TOO_LATE:
	default:
		snprintf(why, sizeof(why),
		    "must be at most %d days from now (OPSD_TOKEN_MAX_DAYS), or absent for that",
		    r->cfg->token_max_days);
		reply_field_error(r, "expiresAt", why);
		return false;
	}
}

void api_tokens_create(struct req *r)
{
	struct audit_actor a;
	char id[UUID_STR_LEN + 1], token[TOKEN_LEN + 1];
	int64_t expires_ms = 0;
	permset scopes;
	struct opsd_uuid u;
	struct db_rows rows;
	struct db_param p[1];
	struct json_object *o;

	if (!req_validate_or_reply(r, token_create_spec))
		return;
	if (r->who->method != AUTH_SESSION) {
		reply_error(r, E_FORBIDDEN, "tokens are created from a session", NULL);
		return;
	}
	if (!scopes_or_reply(r, &scopes) || !token_expiry_or_reply(r, &expires_ms))
		return;
	req_actor(r, &a);
	if (token_create(r->db, &a, r->who->user_id, json_get_str(r->json, "name", ""), scopes,
	        expires_ms, id, token) != 0) {
		reply_db_error(r);
		return;
	}
	uuid_parse(id, &u);
	p[0] = DBP_BLOB(u.b, 16);
	if (db_query(r->db, r->arena, "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE id = ?", p, 1,
	        &rows) != 0 ||
	    rows.nrows != 1) {
		reply_db_error(r);
		return;
	}
	o = token_row_json(&rows, 0);
	/* Shown once: only its hash is kept. */
	json_object_object_add(o, "token", json_object_new_string(token));
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

void api_tokens_delete(struct req *r)
{
	struct audit_actor a;
	struct opsd_uuid id;
	struct json_object *o;
	enum token_rc rc;

	if (!uuid_param_or_reply(r, "id", &id))
		return;
	req_actor(r, &a);
	rc = token_revoke(r->db, r->arena, &a, r->who->user_id, &id, req_param(r, "id"));
	if (rc == TOKEN_DB_ERROR) {
		reply_db_error(r);
		return;
	}
	if (rc == TOKEN_NOT_FOUND) {
		reply_error(r, E_NOT_FOUND, "no such token", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "revoked", json_object_new_boolean(1));
	reply_json(r, 200, o);
}
