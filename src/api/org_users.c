/* The users of one org (README "Runbook 2", /orgs/:orgId/users): an org_admin manages
 * the people of its own org, platform staff those of every org. The org of
 * the path is checked as for tenant records; create and PATCH are the /users
 * paragraphs limited to org roles; DELETE is a soft delete through the
 * legal-hold guard. Users live in the control database whatever the org's
 * tenant database is. */
#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/tenant_db.h"
#include "core/users.h"
#include "infra/db.h"

/* A deleted (archived) user no longer exists for its org's path. */
#define ORG_USERS_SELECT                                                                           \
	"SELECT " USER_COLUMNS " FROM users WHERE org_id = ? AND archived_at IS NULL"

void api_org_users_list(struct req *r)
{
	struct opsd_uuid org;
	struct tenant_org t;
	struct db_param p[1];

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t))
		return;
	p[0] = DBP_BLOB(org.b, 16);
	reply_id_list(r, "org_users", ORG_USERS_SELECT " AND (? = 0 OR id > ?) ORDER BY id LIMIT ?",
	    p, 1, user_row_json);
}

void api_org_users_get(struct req *r)
{
	struct opsd_uuid org, id;
	struct tenant_org t;
	struct db_rows rows;
	struct db_param p[2];

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t) ||
	    !uuid_param_or_reply(r, "id", &id))
		return;
	p[0] = DBP_BLOB(org.b, 16);
	p[1] = DBP_BLOB(id.b, 16);
	if (db_query(r->db, r->arena, ORG_USERS_SELECT " AND id = ?", p, 2, &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_err(r, &user_errors[USER_NOT_FOUND], NULL);
		return;
	}
	reply_json(r, 200, user_row_json(&rows, 0));
}

void api_org_users_create(struct req *r)
{
	struct opsd_uuid org;
	struct tenant_org t;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t))
		return;
	user_create_reply(r, &org);
}

void api_org_users_patch(struct req *r)
{
	struct opsd_uuid org;
	struct tenant_org t;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t))
		return;
	user_patch_reply(r, &org);
}

void api_org_users_delete(struct req *r)
{
	struct opsd_uuid org, id;
	struct tenant_org t;
	struct user_scope scope = {.org = &org, .granter = r->who->perms};
	struct audit_actor a;
	enum user_err e;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t) ||
	    !uuid_param_or_reply(r, "id", &id))
		return;
	req_actor(r, &a);
	e = user_delete(r->db, r->arena, req_param(r, "id"), &scope, &a);
	if (e != USER_OK) {
		reply_err(r, &user_errors[e], NULL);
		return;
	}
	reply_empty(r, 204);
}
