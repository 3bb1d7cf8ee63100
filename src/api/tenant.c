/* Tenant records (README, "Tenant records"): contacts, projects and offices
 * under /orgs/:orgId/, driven by the entity table, reached through the one
 * routing function. The writes are core/records.c; these handlers check the
 * caller's org and the body, and answer. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/entity.h"
#include "core/records.h"
#include "core/tenant_db.h"
#include "http/router.h"
#include "infra/db.h"
#include "lib/json.h"

/* The org of the path: platform staff see every org, org members only
 * their own; anything else is "not found". */
bool tenant_org_or_reply(struct req *r, const char *id, struct opsd_uuid *org, struct tenant_org *t)
{
	enum tenant_rc rc;

	if (!id || !uuid_parse(id, org) ||
	    (r->who->org_id[0] && strcasecmp(r->who->org_id, id) != 0)) {
		reply_error(r, E_NOT_FOUND, "no such org", NULL);
		return false;
	}
	rc = tenant_org_db(r->db, r->cfg, r->arena, org->b, t);
	if (rc != TENANT_OK)
		reply_err(r, &tenant_errors[rc], NULL);
	return rc == TENANT_OK;
}

/* Field specs from the entity table: create (required columns required) or
 * patch (everything optional, null clears an optional column). */
const struct field_spec *tenant_spec(const struct entity *e, bool create)
{
	static struct field_spec specs[ENTITY__MAX][2][ENTITY_MAX_COLS + 1];
	size_t ei = (size_t)(e - entities);
	struct field_spec *s = specs[ei][create];

	if (s[0].name == NULL)
		for (size_t i = 0; i < e->ncols && i < ENTITY_MAX_COLS; i++) {
			const struct entity_column *c = &e->cols[i];

			s[i] = (struct field_spec){c->field, c->type,
			    (create && c->required ? FIELD_REQUIRED : 0) |
			        (c->required ? 0 : FIELD_NULLABLE),
			    c->type == FT_STRING ? 1 : 0, c->max, c->choices};
		}
	return s;
}

/* The body against the entity table: the spec, then email columns. */
static bool body_or_reply(struct req *r, const struct entity *e, bool create)
{
	const char *bad;

	if (!req_validate_or_reply(r, tenant_spec(e, create)))
		return false;
	if ((bad = record_bad_email(e, r->json)) != NULL) {
		reply_field_error(r, bad, "not a valid email address");
		return false;
	}
	return true;
}

/* The record as it is now in d, with status. */
static void reply_record(struct req *r, const struct entity *e, struct db *d,
    const struct opsd_uuid *id, int status)
{
	char sql[512];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id->b, 16)};

	if (db_query(d, r->arena, record_select_sql(e, "WHERE id = ?", sql, sizeof(sql)), p, 1,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	reply_json(r, status, record_json(e, &rows, 0));
}

/* true when the write went through; else its refusal is answered. */
static bool written_or_reply(struct req *r, enum tenant_rc rc, const struct record_write *w)
{
	if (rc == TENANT_OK)
		return true;
	if (rc != TENANT_REFUSED)
		reply_err(r, &tenant_errors[rc], NULL);
	else if (w->held)
		reply_error(r, E_LEGAL_HOLD, "the record or its org is on legal hold", NULL);
	else
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
	return false;
}

/* ---- list, get --------------------------------------------------------- */

static struct json_object *entity_row(const struct db_rows *rows, size_t i, const void *ctx)
{
	return record_json(ctx, rows, i);
}

void api_tenant_list(struct req *r)
{
	const struct entity *e = r->route->entity;
	struct opsd_uuid org;
	struct tenant_org t;
	char sql[512];
	struct db_param p[1];

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t))
		return;
	p[0] = DBP_BLOB(org.b, 16);
	reply_id_list_in(r, t.db, e->name,
	    record_select_sql(e, "WHERE org_id = ? AND (? = 0 OR id > ?) ORDER BY id LIMIT ?", sql,
	        sizeof(sql)),
	    p, 1, entity_row, e);
}

void api_tenant_get(struct req *r)
{
	const struct entity *e = r->route->entity;
	struct opsd_uuid org, id;
	struct tenant_org t;
	char sql[512];
	struct db_rows rows;
	struct db_param p[2];

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &org, &t) ||
	    !uuid_param_or_reply(r, "id", &id))
		return;
	p[0] = DBP_BLOB(id.b, 16);
	p[1] = DBP_BLOB(org.b, 16);
	if (db_query(t.db, r->arena,
	        record_select_sql(e, "WHERE id = ? AND org_id = ?", sql, sizeof(sql)), p, 2,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	reply_json(r, 200, record_json(e, &rows, 0));
}

/* ---- create, update, delete -------------------------------------------- */

void api_tenant_create(struct req *r)
{
	struct audit_actor a;
	struct record_write w = {.e = r->route->entity, .actor = &a};
	struct tenant_org t;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &w.org, &t) ||
	    !body_or_reply(r, w.e, true))
		return;
	if (w.e == &entities[ENTITY_CONTACTS] && !json_get_str(r->json, "name", NULL) &&
	    !json_get_str(r->json, "email", NULL)) {
		reply_field_error(r, "name", "a contact needs a name or an email");
		return;
	}
	uuid7_new(&w.id);
	w.body = r->json;
	req_actor(r, &a);
	if (written_or_reply(r, record_create(r->db, r->cfg, r->arena, &w), &w))
		reply_record(r, w.e, w.tdb, &w.id, 201);
}

void api_tenant_patch(struct req *r)
{
	struct audit_actor a;
	struct record_write w = {.e = r->route->entity, .actor = &a};
	struct tenant_org t;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &w.org, &t) ||
	    !uuid_param_or_reply(r, "id", &w.id) || !body_or_reply(r, w.e, false))
		return;
	w.body = r->json;
	req_actor(r, &a);
	if (written_or_reply(r, record_update(r->db, r->cfg, r->arena, &w), &w))
		reply_record(r, w.e, w.tdb, &w.id, 200);
}

void api_tenant_delete(struct req *r)
{
	struct audit_actor a;
	struct record_write w = {.e = r->route->entity, .actor = &a};
	struct tenant_org t;
	struct json_object *o;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &w.org, &t) ||
	    !uuid_param_or_reply(r, "id", &w.id))
		return;
	req_actor(r, &a);
	if (!written_or_reply(r, record_delete(r->db, r->cfg, r->arena, &w), &w))
		return;
	o = json_object_new_object();
	json_object_object_add(o, "deleted", json_object_new_boolean(1));
	reply_json(r, 200, o);
}
