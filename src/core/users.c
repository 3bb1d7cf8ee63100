#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/auth.h"
#include "core/entity.h"
#include "core/legal_hold.h"
#include "core/users.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "infra/pwgate.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/util.h"

bool email_normalize(const char *in, char *out, size_t out_len)
{
	size_t n = in ? strlen(in) : 0, at = 0, ats = 0;

	if (n < 3 || n > 254 || n >= out_len)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		/* No spaces, controls or header-breaking characters, and ASCII only:
		 * the database collation folds accents and widths, so a non-ASCII
		 * spelling would reach the same account under another throttle key. */
		if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == ';' ||
		    c == '"' || c == '\\')
			return false;
		if (c == '@') {
			at = i;
			ats++;
		}
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return ats == 1 && at > 0 && at < 65 && at < n - 1 && out[n - 1] != '.' &&
	       out[at + 1] != '.';
}

bool password_acceptable(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;

	return n >= PASSWORD_MIN_LEN && n <= PASSWORD_MAX_LEN;
}

static struct scrypt_params scrypt_of(const struct opsd_config *cfg)
{
	return (struct scrypt_params){cfg->scrypt_ln, 8, 1};
}

struct create_ctx {
	const struct user_input *in;
	const struct audit_actor *actor;
	struct opsd_uuid id, org;
	const char *email;
	const char *hash;
	char *id_s;
	enum user_err err;
};

static int create_fn(struct db *d, void *arg)
{
	struct create_ctx *c = arg;
	const struct user_input *in = c->in;
	char roles[256];

	c->err = USER_OK; /* db_tx may run this again after a deadlock */
	struct json_object *payload;

	roles_format_csv(in->roles, roles, sizeof(roles));
	{
		struct db_param p[] = {
		    DBP_BLOB(c->id.b, 16),
		    in->org_id ? DBP_BLOB(c->org.b, 16) : DBP_NULL,
		    DBP_STR(c->email),
		    DBP_STR(in->name ? in->name : ""),
		    DBP_STR(c->hash),
		    DBP_STR(roles),
		    DBP_I64(in->service),
		};

		if (db_exec(d,
		        "INSERT INTO users (id, org_id, email, name, password_hash, roles, service)"
		        " VALUES (?, ?, ?, ?, ?, ?, ?)",
		        p, countof(p), NULL) != 0) {
			c->err = db_duplicate(d) ? USER_DUPLICATE : USER_DB_ERROR;
			return c->err == USER_DUPLICATE ? 1 : -1;
		}
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "roles", json_object_new_string(roles));
	json_object_object_add(payload, "service", json_object_new_boolean(in->service));
	if (audit_append(d, c->actor, AA_USER_CREATED, in->org_id, "user", c->id_s, payload) != 0) {
		c->err = USER_DB_ERROR;
		return -1;
	}
	return 0;
}

/* One hash under the host's password check slots (infra/pwgate.h). */
static enum user_err hash_in_slot(const struct opsd_config *cfg, const char *password,
    char hash[PASSWORD_HASH_MAX])
{
	struct scrypt_params sp = scrypt_of(cfg);
	int rc;

	if (!pwgate_enter())
		return USER_BUSY;
	rc = password_hash(password, &sp, hash, PASSWORD_HASH_MAX);
	pwgate_leave();
	return rc == 0 ? USER_OK : USER_DB_ERROR;
}

enum user_err user_create(struct db *d, const struct opsd_config *cfg, const struct user_input *in,
    const struct audit_actor *actor, char id_out[UUID_STR_LEN + 1])
{
	struct create_ctx c = {.in = in, .actor = actor, .err = USER_OK, .id_s = id_out};
	char email[256], hash[PASSWORD_HASH_MAX];
	enum user_err e;

	if (!email_normalize(in->email, email, sizeof(email)))
		return USER_BAD_EMAIL;
	if (in->password && !password_acceptable(in->password))
		return USER_BAD_PASSWORD;
	if ((in->roles & ROLES_ORG) && !in->org_id)
		return USER_ORG_REQUIRED;
	if (in->org_id && !uuid_parse(in->org_id, &c.org))
		return USER_NO_SUCH_ORG;
	if (in->password && (e = hash_in_slot(cfg, in->password, hash)) != USER_OK)
		return e;
	c.email = email;
	c.hash = in->password ? hash : NULL;
	uuid7_new(&c.id);
	uuid_format(&c.id, id_out);
	if (in->org_id) {
		struct arena *a = arena_new(1024);
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(c.org.b, 16)};
		int rc = a ? db_query(d, a, "SELECT 1 FROM orgs WHERE id = ?", p, 1, &rows) : -1;
		bool found = rc == 0 && rows.nrows == 1;

		arena_free(a);
		if (rc != 0)
			return USER_DB_ERROR;
		if (!found)
			return USER_NO_SUCH_ORG;
	}
	if (db_tx(d, create_fn, &c) < 0)
		return c.err != USER_OK ? c.err : USER_DB_ERROR;
	return c.err;
}

struct pw_ctx {
	struct opsd_uuid id;
	const char *user_id;
	const char *hash;
	permset granter;
	const struct audit_actor *actor;
	unsigned long long affected;
};

static int set_password_fn(struct db *d, void *arg)
{
	struct pw_ctx *c = arg;
	struct db_param p[] = {DBP_STR(c->hash), DBP_BLOB(c->id.b, 16)};
	struct arena *a = arena_new(1024);
	struct db_rows rows;
	roleset current = 0;
	const char *bad;
	int rc;

	/* The grant rule, as PATCH /users/:id: whoever sets the password of an
	 * account can act as it, so only a principal that could grant all of
	 * its roles may (a platform_admin cannot take over a superadmin). */
	if (!a)
		return -1;
	rc = db_query(d, a, "SELECT roles FROM users WHERE id = ? FOR UPDATE", p + 1, 1, &rows);
	if (rc == 0 && rows.nrows == 1 && !roles_parse_csv(rows.val[0][0], &current, &bad))
		current = ~(roleset)0; /* unreadable roles: refused, whoever asks */
	arena_free(a);
	if (rc != 0)
		return -1;
	if (rows.nrows == 0)
		return 1;
	if (!roles_grantable(c->granter, current))
		return 2;
	if (db_exec(d, "UPDATE users SET password_hash = ? WHERE id = ?", p, countof(p),
	        &c->affected) != 0)
		return -1;
	if (c->affected == 0)
		return 1;
	/* A reset (opsctl) ends every session and token of the account. */
	if (sessions_flush(d, FLUSH_USER, c->user_id, true, NULL) != 0)
		return -1;
	return audit_append(d, c->actor, AA_AUTH_PASSWORD_CHANGED, NULL, "user", c->user_id, NULL);
}

enum user_err user_set_password(struct db *d, const struct opsd_config *cfg, const char *user_id,
    const char *password, permset granter, const struct audit_actor *actor)
{
	char hash[PASSWORD_HASH_MAX];
	struct pw_ctx c = {.user_id = user_id, .hash = hash, .granter = granter, .actor = actor};
	enum user_err e;
	int rc;

	if (!password_acceptable(password))
		return USER_BAD_PASSWORD;
	if (!uuid_parse(user_id, &c.id))
		return USER_NOT_FOUND;
	if ((e = hash_in_slot(cfg, password, hash)) != USER_OK)
		return e;
	rc = db_tx(d, set_password_fn, &c);
	if (rc < 0)
		return USER_DB_ERROR;
	return rc == 1 ? USER_NOT_FOUND : rc == 2 ? USER_NOT_GRANTABLE : USER_OK;
}

enum user_err user_find_by_email(struct db *d, const char *email, char id_out[UUID_STR_LEN + 1])
{
	struct arena *a = arena_new(1024);
	char norm[256];
	struct db_rows rows;
	enum user_err e = USER_NOT_FOUND;

	if (!email_normalize(email, norm, sizeof(norm)))
		return USER_NOT_FOUND;
	if (!a)
		return USER_DB_ERROR;
	{
		struct db_param p[] = {DBP_STR(norm)};

		if (db_query(d, a, "SELECT id FROM users WHERE email = ?", p, 1, &rows) != 0)
			e = USER_DB_ERROR;
		else if (rows.nrows == 1 && dbv_uuid(rows.val[0][0], rows.len[0][0], id_out))
			e = USER_OK;
	}
	arena_free(a);
	return e;
}

struct json_object *user_row_json(const struct db_rows *rows, size_t r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, r, 0));
	json_object_object_add(o, "email", dbv_json_str(rows, r, 1));
	json_object_object_add(o, "name", dbv_json_str(rows, r, 2));
	json_object_object_add(o, "roles", dbv_json_csv(rows, r, 3));
	json_object_object_add(o, "orgId", dbv_json_uuid(rows, r, 4));
	json_object_object_add(o, "service", dbv_json_bool(rows, r, 5));
	json_object_object_add(o, "disabled", dbv_json_bool(rows, r, 6));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, r, 7));
	json_object_object_add(o, "updatedAt", dbv_json_time(rows, r, 8));
	return o;
}

struct json_object *user_get_json(struct db *d, struct arena *a, const char *id, enum user_err *err)
{
	struct opsd_uuid u;
	struct db_rows rows;
	struct db_param p[1];

	*err = USER_NOT_FOUND;
	if (!uuid_parse(id, &u))
		return NULL;
	p[0] = DBP_BLOB(u.b, 16);
	if (db_query(d, a, "SELECT " USER_COLUMNS " FROM users WHERE id = ?", p, 1, &rows) != 0) {
		*err = USER_DB_ERROR;
		return NULL;
	}
	if (rows.nrows != 1)
		return NULL;
	*err = USER_OK;
	return user_row_json(&rows, 0);
}

/* ---- update, delete ---------------------------------------------------- */

struct change_ctx {
	struct arena *a;
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1]; /* canonical, whatever case the caller wrote */
	const struct user_scope *scope;
	const struct user_change *c;
	const struct audit_actor *actor;
	char org[UUID_STR_LEN + 1]; /* the user's org, "" for platform staff */
	bool held, archived;
	enum user_err err;
};

static bool is_self(const struct audit_actor *actor, const struct opsd_uuid *id)
{
	struct opsd_uuid me;

	return actor->user_id && uuid_parse(actor->user_id, &me) && memcmp(me.b, id->b, 16) == 0;
}

/* The user's row, locked by the legal-hold guard, within the caller's
 * reach: 0, or 1/-1 with x->err saying why. */
static int lock_in_scope(struct db *d, struct change_ctx *x)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->id.b, 16)};
	roleset current;
	const char *bad;
	int rc;

	x->err = USER_OK; /* db_tx may run the transaction again after a deadlock */
	rc = legal_hold_guard(d, d, x->a, &entities[ENTITY_USERS], x->id.b, &x->held);
	if (rc != 0) {
		x->err = rc > 0 ? USER_NOT_FOUND : USER_DB_ERROR;
		return rc;
	}
	if (db_query(d, x->a,
	        "SELECT roles, org_id, archived_at IS NOT NULL FROM users WHERE id = ?", p, 1,
	        &rows) != 0 ||
	    rows.nrows != 1) {
		x->err = USER_DB_ERROR;
		return -1;
	}
	x->org[0] = '\0';
	if (rows.val[0][1])
		dbv_uuid(rows.val[0][1], rows.len[0][1], x->org);
	x->archived = strcmp(rows.val[0][2], "1") == 0;
	/* Another org's user, or a deleted one, does not exist for an org's path. */
	if (x->scope->org && (x->archived || !rows.val[0][1] || rows.len[0][1] != 16 ||
	                         memcmp(rows.val[0][1], x->scope->org->b, 16) != 0)) {
		x->err = USER_NOT_FOUND;
		return 1;
	}
	if (!roles_parse_csv(rows.val[0][0], &current, &bad))
		current = 0;
	if (!roles_grantable(x->scope->granter, current)) {
		x->err = USER_NOT_GRANTABLE;
		return 1;
	}
	return 0;
}

static int update_fn(struct db *d, void *arg)
{
	struct change_ctx *x = arg;
	const struct user_change *c = x->c;
	struct json_object *payload;
	char roles[256];
	bool revoke = c->set_roles || (c->set_disabled && c->disabled);
	int rc = lock_in_scope(d, x);

	if (rc != 0)
		return rc;
	/* A hold freezes what the record says (its name), not who may act: new
	 * roles and disabling stay possible on a held account, so a compromised
	 * or departing user under investigation can still be contained. */
	if (x->held && c->name) {
		x->err = USER_LEGAL_HOLD;
		return 1;
	}
	/* Deleting or archiving ended the account for good: its email stays
	 * taken and its history kept, but it never signs in again. */
	if (x->archived && c->set_disabled && !c->disabled) {
		x->err = USER_ARCHIVED;
		return 1;
	}
	roles_format_csv(c->roles, roles, sizeof(roles));
	{
		struct db_param p[] = {
		    DBP_I64(c->set_roles),
		    DBP_STR(roles),
		    DBP_I64(c->set_disabled),
		    DBP_I64(c->disabled),
		    DBP_I64(c->name != NULL),
		    DBP_STR(c->name ? c->name : ""),
		    DBP_BLOB(x->id.b, 16),
		};

		if (db_exec(d,
		        "UPDATE users SET roles = IF(?, ?, roles),"
		        " disabled_at = IF(?, IF(?, COALESCE(disabled_at, NOW(3)), NULL), disabled_at),"
		        " name = IF(?, ?, name) WHERE id = ?",
		        p, countof(p), NULL) != 0)
			goto fail;
	}
	/* New roles or a disabled account: every credential ends now. */
	if (revoke && sessions_flush(d, FLUSH_USER, x->id_s, true, NULL) != 0)
		goto fail;
	payload = json_object_new_object();
	if (c->set_roles)
		json_object_object_add(payload, "roles", json_object_new_string(roles));
	if (c->set_disabled)
		json_object_object_add(payload, "disabled", json_object_new_boolean(c->disabled));
	if (c->name)
		json_object_object_add(payload, "nameChanged", json_object_new_boolean(1));
	json_object_object_add(payload, "credentialsRevoked", json_object_new_boolean(revoke));
	if (audit_append(d, x->actor,
	        c->set_disabled && c->disabled ? AA_USER_DISABLED : AA_USER_UPDATED,
	        x->org[0] ? x->org : NULL, "user", x->id_s, payload) != 0)
		goto fail;
	return 0;
fail:
	x->err = USER_DB_ERROR;
	return -1;
}

enum user_err user_update(struct db *d, struct arena *a, const char *id, const struct user_scope *s,
    const struct user_change *c, const struct audit_actor *actor)
{
	struct change_ctx x = {.a = a, .scope = s, .c = c, .actor = actor};

	if (!uuid_parse(id, &x.id))
		return USER_NOT_FOUND;
	uuid_format(&x.id, x.id_s);
	if ((c->set_roles || c->set_disabled) && is_self(actor, &x.id))
		return USER_SELF;
	if (db_tx(d, update_fn, &x) < 0)
		return USER_DB_ERROR;
	return x.err;
}

static int delete_fn(struct db *d, void *arg)
{
	struct change_ctx *x = arg;
	struct json_object *payload;
	struct db_param p[] = {DBP_BLOB(x->id.b, 16)};
	int rc = lock_in_scope(d, x);

	if (rc != 0)
		return rc;
	if (x->archived) {
		x->err = USER_NOT_FOUND;
		return 1;
	}
	if (x->held) {
		x->err = USER_LEGAL_HOLD;
		return 1;
	}
	if (db_exec(d,
	        "UPDATE users SET archived_at = NOW(3), archived_reason = 'deleted' WHERE id = ?",
	        p, 1, NULL) != 0 ||
	    user_lock_out(d, x->id.b) != 0) {
		x->err = USER_DB_ERROR;
		return -1;
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "credentialsRevoked", json_object_new_boolean(1));
	if (audit_append(d, x->actor, AA_USER_DELETED, x->org[0] ? x->org : NULL, "user", x->id_s,
	        payload) != 0) {
		x->err = USER_DB_ERROR;
		return -1;
	}
	return 0;
}

enum user_err user_delete(struct db *d, struct arena *a, const char *id, const struct user_scope *s,
    const struct audit_actor *actor)
{
	struct change_ctx x = {.a = a, .scope = s, .actor = actor};

	if (!uuid_parse(id, &x.id))
		return USER_NOT_FOUND;
	uuid_format(&x.id, x.id_s);
	if (is_self(actor, &x.id))
		return USER_SELF;
	if (db_tx(d, delete_fn, &x) < 0)
		return USER_DB_ERROR;
	return x.err;
}

int user_lock_out(struct db *d, const uint8_t id[16])
{
	struct db_param p[] = {DBP_BLOB(id, 16)};
	struct opsd_uuid u;
	char s[UUID_STR_LEN + 1];

	memcpy(u.b, id, 16);
	uuid_format(&u, s);
	if (db_exec(d, "UPDATE users SET disabled_at = COALESCE(disabled_at, NOW(3)) WHERE id = ?",
	        p, 1, NULL) != 0)
		return -1;
	return sessions_flush(d, FLUSH_USER, s, true, NULL);
}

/* ---- orgs ---------------------------------------------------------------- */

struct org_tx {
	const struct audit_actor *actor;
	const char *name, *slug;
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1];
	bool duplicate;
};

static int org_create_fn(struct db *d, void *arg)
{
	struct org_tx *x = arg;
	struct json_object *payload = json_object_new_object();
	struct db_param p[] = {DBP_BLOB(x->id.b, 16), DBP_STR(x->name), DBP_STR(x->slug)};

	if (db_exec(d, "INSERT INTO orgs (id, name, slug) VALUES (?, ?, ?)", p, countof(p), NULL) !=
	    0) {
		json_object_put(payload);
		x->duplicate = db_duplicate(d);
		return x->duplicate ? 1 : -1;
	}
	json_object_object_add(payload, "slug", json_object_new_string(x->slug));
	return audit_append(d, x->actor, AA_ORG_CREATED, x->id_s, "org", x->id_s, payload);
}

int org_create(struct db *d, const struct audit_actor *actor, const char *name, const char *slug,
    struct opsd_uuid *id)
{
	struct org_tx x = {.actor = actor, .name = name, .slug = slug};
	int rc;

	uuid7_new(&x.id);
	uuid_format(&x.id, x.id_s);
	rc = db_tx(d, org_create_fn, &x);
	*id = x.id;
	return x.duplicate ? 1 : rc != 0 ? -1 : 0;
}
