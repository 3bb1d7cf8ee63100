/* Users and orgs for platform admins (issue "Identity"): create, list, read,
 * and PATCH with the grant rule — you can only give what you hold. The
 * create and PATCH paragraphs are shared with /orgs/:orgId/users. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/users.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/json.h"
#include "lib/util.h"

/* The roles array as a roleset; replies itself on an unknown role, one
 * outside allowed, or one the caller may not grant. */
static bool roles_or_reply(struct req *r, struct json_object *arr, roleset allowed, roleset *out)
{
	*out = 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(arr, i));
		int role = role_from_name(name);

		if (role < 0 || !(allowed & (roleset)1 << role)) {
			char why[160];

			snprintf(why, sizeof(why), "%s: %.60s",
			    role < 0 ? "unknown role" : "not an org role", name);
			reply_field_error(r, "roles", why);
			return false;
		}
		*out |= (roleset)1 << role;
	}
	if (!roles_grantable(r->who->perms, *out)) {
		reply_error(r, E_FORBIDDEN, "you can only grant roles whose permissions you hold",
		    NULL);
		return false;
	}
	return true;
}

/* The body of a new user; /users also takes orgId and service, an org's
 * path gives the org itself. */
#define USER_FIELDS                                                                                \
	{"email", FT_STRING, FIELD_REQUIRED, 3, 254, NULL},                                        \
	    {"name", FT_STRING, FIELD_REQUIRED, 1, 200, NULL},                                     \
	    {"password", FT_STRING, FIELD_NULLABLE, PASSWORD_MIN_LEN, 1024, NULL},                 \
	{                                                                                          \
		"roles", FT_STRING_ARRAY, FIELD_REQUIRED, 1, ROLE__MAX, NULL                       \
	}

const struct field_spec user_create_spec[] = {
    USER_FIELDS,
    {"orgId", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
    {"service", FT_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};
const struct field_spec org_user_create_spec[] = {
    USER_FIELDS,
    {NULL, 0, 0, 0, 0, NULL},
};

void user_create_reply(struct req *r, const struct opsd_uuid *org)
{
	struct user_input in = {0};
	struct audit_actor a;
	char id[UUID_STR_LEN + 1], org_s[UUID_STR_LEN + 1];
	struct json_object *user;
	enum user_err e;

	if (!req_validate_or_reply(r, org ? org_user_create_spec : user_create_spec) ||
	    !roles_or_reply(r, json_object_object_get(r->json, "roles"),
	        org ? ROLES_ORG : ROLES_ALL, &in.roles))
		return;
	if (org) {
		uuid_format(org, org_s);
		in.org_id = org_s;
	} else {
		in.org_id = json_get_str(r->json, "orgId", NULL);
	}
	in.service = json_get_bool(r->json, "service", false);
	in.email = json_get_str(r->json, "email", NULL);
	in.name = json_get_str(r->json, "name", NULL);
	in.password = json_get_str(r->json, "password", NULL);
	req_actor(r, &a);
	e = user_create(r->db, r->cfg, &in, &a, id);
	if (e == USER_BUSY) {
		reply_password_busy(r);
		return;
	}
	if (e != USER_OK) {
		reply_err(r, &user_errors[e], NULL);
		return;
	}
	user = user_get_json(r->db, r->arena, id, &e);
	if (!user) {
		reply_err(r, &user_errors[e], NULL);
		return;
	}
	reply_json(r, 201, user);
}

void api_users_create(struct req *r)
{
	user_create_reply(r, NULL);
}

/* A caller bound to an org (org_admin, member) sees that org only;
 * platform staff see every org. */
static bool org_bound(const struct req *r, struct opsd_uuid *org)
{
	return r->who->org_id[0] && uuid_parse(r->who->org_id, org);
}

void api_users_list(struct req *r)
{
	struct opsd_uuid org;
	bool bound = org_bound(r, &org);
	struct db_param p[] = {DBP_I64(bound), bound ? DBP_BLOB(org.b, 16) : DBP_NULL};

	reply_id_list(r, "users",
	    "SELECT " USER_COLUMNS " FROM users WHERE (? = 0 OR org_id = ?)"
	    " AND (? = 0 OR id > ?) ORDER BY id LIMIT ?",
	    p, 2, user_row_json);
}

void api_users_get(struct req *r)
{
	struct opsd_uuid id;
	enum user_err e;
	struct json_object *user;

	if (!uuid_param_or_reply(r, "id", &id))
		return;
	user = user_get_json(r->db, r->arena, req_param(r, "id"), &e);
	if (!user) {
		reply_err(r, &user_errors[e], NULL);
		return;
	}
	if (r->who->org_id[0]) {
		const char *org = json_object_get_string(json_object_object_get(user, "orgId"));

		if (!org || strcasecmp(org, r->who->org_id) != 0) {
			json_object_put(user);
			reply_err(r, &user_errors[USER_NOT_FOUND], NULL);
			return;
		}
	}
	reply_json(r, 200, user);
}

const struct field_spec user_patch_spec[] = {
    {"roles", FT_STRING_ARRAY, 0, 1, ROLE__MAX, NULL},
    {"disabled", FT_BOOL, 0, 0, 0, NULL},
    {"name", FT_STRING, 0, 1, 200, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void user_patch_reply(struct req *r, const struct opsd_uuid *org)
{
	struct user_scope scope = {.org = org, .granter = r->who->perms};
	struct user_change c = {0};
	struct opsd_uuid id;
	struct audit_actor a;
	struct json_object *roles, *user = NULL;
	enum user_err e;

	if (!uuid_param_or_reply(r, "id", &id) || !req_validate_or_reply(r, user_patch_spec))
		return;
	roles = json_object_object_get(r->json, "roles");
	c.set_roles = roles != NULL;
	c.set_disabled = json_object_object_get(r->json, "disabled") != NULL;
	c.disabled = json_get_bool(r->json, "disabled", false);
	c.name = json_get_str(r->json, "name", NULL);
	if (c.set_roles && !roles_or_reply(r, roles, org ? ROLES_ORG : ROLES_ALL, &c.roles))
		return;
	req_actor(r, &a);
	e = user_update(r->db, r->arena, req_param(r, "id"), &scope, &c, &a);
	if (e == USER_OK)
		user = user_get_json(r->db, r->arena, req_param(r, "id"), &e);
	if (e != USER_OK) {
		reply_err(r, &user_errors[e], NULL);
		return;
	}
	reply_json(r, 200, user);
}

void api_users_patch(struct req *r)
{
	user_patch_reply(r, NULL);
}

/* ---- orgs -------------------------------------------------------------- */

#define ORG_COLUMNS "id, name, slug, db_mode, legal_hold, created_at, updated_at"

static struct json_object *org_row_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 0));
	json_object_object_add(o, "name", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "slug", dbv_json_str(rows, i, 2));
	json_object_object_add(o, "dbMode", dbv_json_str(rows, i, 3));
	json_object_object_add(o, "legalHold", dbv_json_bool(rows, i, 4));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, i, 5));
	json_object_object_add(o, "updatedAt", dbv_json_time(rows, i, 6));
	return o;
}

static bool slug_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

const struct field_spec org_create_spec[] = {
    {"name", FT_STRING, FIELD_REQUIRED, 1, 200, NULL},
    {"slug", FT_STRING, FIELD_REQUIRED, 2, 63, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static void reply_org(struct req *r, const struct opsd_uuid *id, int status)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id->b, 16)};

	if (db_query(r->db, r->arena, "SELECT " ORG_COLUMNS " FROM orgs WHERE id = ?", p, 1,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such org", NULL);
		return;
	}
	reply_json(r, status, org_row_json(&rows, 0));
}

void api_orgs_create(struct req *r)
{
	struct audit_actor a;
	struct opsd_uuid id;
	int rc;

	if (!req_validate_or_reply(r, org_create_spec))
		return;
	if (!slug_valid(json_get_str(r->json, "slug", ""))) {
		reply_field_error(r, "slug",
		    "lower-case letters, digits and '-', 2 to 63 characters");
		return;
	}
	req_actor(r, &a);
	rc = org_create(r->db, &a, json_get_str(r->json, "name", ""),
	    json_get_str(r->json, "slug", ""), &id);
	if (rc > 0) {
		reply_error(r, E_CONFLICT, "an org with this slug already exists", NULL);
		return;
	}
	if (rc < 0) {
		reply_db_error(r);
		return;
	}
	reply_org(r, &id, 201);
}

void api_orgs_list(struct req *r)
{
	struct opsd_uuid org;
	bool bound = org_bound(r, &org);
	struct db_param p[] = {DBP_I64(bound), bound ? DBP_BLOB(org.b, 16) : DBP_NULL};

	reply_id_list(r, "orgs",
	    "SELECT " ORG_COLUMNS " FROM orgs WHERE (? = 0 OR id = ?)"
	    " AND (? = 0 OR id > ?) ORDER BY id LIMIT ?",
	    p, 2, org_row_json);
}

void api_orgs_get(struct req *r)
{
	struct opsd_uuid id;

	if (!uuid_param_or_reply(r, "id", &id))
		return;
	if (r->who->org_id[0] && strcasecmp(r->who->org_id, req_param(r, "id")) != 0) {
		reply_error(r, E_NOT_FOUND, "no such org", NULL);
		return;
	}
	reply_org(r, &id, 200);
}
