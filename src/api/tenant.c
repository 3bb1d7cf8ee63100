/* Tenant records (SPEC §8): contacts, projects and offices under
 * /orgs/:orgId/, driven by the entity table, reached through the one
 * routing function and guarded by the one legal-hold check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "lib/arena.h"
#include "core/audit.h"
#include "core/auth.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "core/entity.h"
#include "core/legal_hold.h"
#include "core/tenant_db.h"
#include "lib/json.h"
#include "http/router.h"
#include "core/users.h"
#include "lib/util.h"

#define MAX_COLS 8
#define STATE_COLUMNS                                                                              \
	"legal_hold, pii_stripped_at IS NOT NULL, archived_at IS NOT NULL,"                        \
	" created_at, updated_at"

/* SELECT of an entity: id, its org (org_id; an org's own id), its columns,
 * the state columns, then the caller's WHERE/ORDER text (fixed strings only). */
const char *tenant_select_sql(const struct entity *e, const char *tail, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "SELECT id, %s", e->org_column);

	for (size_t i = 0; i < e->ncols && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, ", %s", e->cols[i].column);
	snprintf(buf + n, len > n ? len - n : 0, ", " STATE_COLUMNS " FROM %s %s", e->table, tail);
	return buf;
}

struct json_object *tenant_record_json(const struct entity *e, const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();
	size_t c = 2;

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 0));
	json_object_object_add(o, "orgId", dbv_json_uuid(rows, i, 1));
	for (size_t k = 0; k < e->ncols; k++, c++) {
		const char *v = rows->val[i][c];

		if (e->cols[k].type == FT_NUMBER && v)
			json_object_object_add(o, e->cols[k].field,
			    json_object_new_double_s(strtod(v, NULL), v));
		else
			json_object_object_add(o, e->cols[k].field, dbv_json_str(rows, i, c));
	}
	json_object_object_add(o, "legalHold", dbv_json_bool(rows, i, c));
	json_object_object_add(o, "piiStripped", dbv_json_bool(rows, i, c + 1));
	json_object_object_add(o, "archived", dbv_json_bool(rows, i, c + 2));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, i, c + 3));
	json_object_object_add(o, "updatedAt", dbv_json_time(rows, i, c + 4));
	return o;
}

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
static const struct field_spec *spec_of(const struct entity *e, bool create)
{
	static struct field_spec specs[16][2][MAX_COLS + 1];
	size_t ei = (size_t)(e - entities);
	struct field_spec *s = specs[ei][create];

	if (s[0].name == NULL)
		for (size_t i = 0; i < e->ncols && i < MAX_COLS; i++) {
			const struct entity_column *c = &e->cols[i];

			s[i] = (struct field_spec){c->field, c->type,
			    (create && c->required ? FIELD_REQUIRED : 0) |
			        (c->required ? 0 : FIELD_NULLABLE),
			    c->type == FT_STRING ? 1 : 0, c->max, c->choices};
		}
	return s;
}

/* Email columns must hold an address; stored lower-cased. */
static bool emails_or_reply(struct req *r, const struct entity *e, char (*norm)[256])
{
	for (size_t i = 0; i < e->ncols; i++) {
		const char *v = json_get_str(r->json, e->cols[i].field, NULL);

		if (!e->cols[i].email || !v)
			continue;
		if (!email_normalize(v, norm[i], sizeof(norm[i]))) {
			reply_field_error(r, e->cols[i].field, "not a valid email address");
			return false;
		}
	}
	return true;
}

/* The value of column i from the body as a parameter. */
static struct db_param col_param(struct req *r, const struct entity_column *c, char *buf,
    size_t len, const char *email)
{
	struct json_object *v = json_object_object_get(r->json, c->field);

	if (!v)
		return DBP_NULL;
	if (c->type == FT_NUMBER) {
		snprintf(buf, len, "%.2f", json_object_get_double(v));
		return DBP_STR(buf);
	}
	return DBP_STR(c->email ? email : json_object_get_string(v));
}

static void reply_record(struct req *r, const struct entity *e, struct db *d,
    const struct opsd_uuid *id, int status)
{
	char sql[512];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id->b, 16)};

	if (db_query(d, r->arena, tenant_select_sql(e, "WHERE id = ?", sql, sizeof(sql)), p, 1,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	reply_json(r, status, tenant_record_json(e, &rows, 0));
}

static struct json_object *fields_given(struct req *r, const struct entity *e)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < e->ncols; i++)
		if (json_object_object_get_ex(r->json, e->cols[i].field, NULL))
			json_object_array_add(a, json_object_new_string(e->cols[i].field));
	return a;
}

static int audit_tenant(struct db *d, struct req *r, enum audit_action action,
    const struct entity *e, const char *org, const char *id, struct json_object *fields)
{
	struct audit_actor a;
	struct json_object *payload = json_object_new_object();

	req_actor(r, &a);
	json_object_object_add(payload, "entity", json_object_new_string(e->name));
	if (fields)
		json_object_object_add(payload, "fields", fields);
	return audit_append(d, &a, action, org, e->name, id, payload);
}

/* ---- list, get --------------------------------------------------------- */

static struct json_object *entity_row(const struct db_rows *rows, size_t i, const void *ctx)
{
	return tenant_record_json(ctx, rows, i);
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
	    tenant_select_sql(e, "WHERE org_id = ? AND (? = 0 OR id > ?) ORDER BY id LIMIT ?", sql,
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
	        tenant_select_sql(e, "WHERE id = ? AND org_id = ?", sql, sizeof(sql)), p, 2,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	reply_json(r, 200, tenant_record_json(e, &rows, 0));
}

/* ---- create ------------------------------------------------------------ */

struct write_tx {
	struct req *r;
	const struct entity *e;
	struct opsd_uuid org, id;
	char org_s[UUID_STR_LEN + 1], id_s[UUID_STR_LEN + 1];
	char emails[MAX_COLS][256];
	int outcome; /* 0 done, 1 not found, 2 held */
	/* The database the write went to: the answer reads the record back
	 * from there, even when a migration switched the org's database
	 * between routing the request and writing. */
	struct db *tdb;
};

static int create_fn(struct tenant_tx *tx, void *arg)
{
	struct write_tx *x = arg;
	const struct entity *e = x->e;
	char sql[512], nums[MAX_COLS][40];
	struct db_param p[MAX_COLS + 2];
	size_t n, np = 0;

	x->tdb = tx->tdb;
	n = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (id, org_id", e->table);
	p[np++] = DBP_BLOB(x->id.b, 16);
	p[np++] = DBP_BLOB(x->org.b, 16);
	for (size_t i = 0; i < e->ncols; i++) {
		if (!json_object_object_get_ex(x->r->json, e->cols[i].field, NULL))
			continue;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", %s", e->cols[i].column);
		p[np++] = col_param(x->r, &e->cols[i], nums[i], sizeof(nums[i]), x->emails[i]);
	}
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, ") VALUES (?, ?");
	for (size_t i = 2; i < np; i++)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", ?");
	snprintf(sql + n, sizeof(sql) - n, ")");
	if (db_exec(tx->tdb, sql, p, np, NULL) != 0 ||
	    tenant_changelog_add(tx, e, x->id.b, "insert") != 0)
		return -1;
	return audit_tenant(tx->control, x->r, AA_TENANT_CREATED, e, x->org_s, x->id_s,
	    fields_given(x->r, e));
}

static bool write_or_reply(struct req *r, struct write_tx *x,
    int (*fn)(struct tenant_tx *, void *));

void api_tenant_create(struct req *r)
{
	struct write_tx x = {.r = r, .e = r->route->entity};
	struct tenant_org t;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &x.org, &t) ||
	    !req_validate_or_reply(r, spec_of(x.e, true)) || !emails_or_reply(r, x.e, x.emails))
		return;
	if (strcmp(x.e->name, "contacts") == 0 && !json_get_str(r->json, "name", NULL) &&
	    !json_get_str(r->json, "email", NULL)) {
		reply_field_error(r, "name", "a contact needs a name or an email");
		return;
	}
	uuid7_new(&x.id);
	if (!write_or_reply(r, &x, create_fn))
		return;
	reply_record(r, x.e, x.tdb, &x.id, 201);
}

/* ---- update, delete ---------------------------------------------------- */

/* The record must exist in this org and pass the legal-hold guard. */
static int guarded(struct tenant_tx *tx, struct write_tx *x)
{
	x->tdb = tx->tdb;
	struct db_rows rows;
	char sql[160];
	bool held;
	struct db_param p[] = {DBP_BLOB(x->id.b, 16), DBP_BLOB(x->org.b, 16)};
	int rc;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = ? AND org_id = ?", x->e->table);
	if (db_query(tx->tdb, x->r->arena, sql, p, 2, &rows) != 0)
		return -1;
	if (rows.nrows != 1) {
		x->outcome = 1;
		return 1;
	}
	rc = legal_hold_guard(tx->tdb, tx->control, x->r->arena, x->e, x->id.b, &held);
	if (rc != 0) {
		x->outcome = rc > 0 ? 1 : 0;
		return rc;
	}
	if (held) {
		x->outcome = 2;
		return 1;
	}
	return 0;
}

static int patch_fn(struct tenant_tx *tx, void *arg)
{
	struct write_tx *x = arg;
	const struct entity *e = x->e;
	char sql[512], nums[MAX_COLS][40];
	struct db_param p[MAX_COLS + 2];
	size_t n, np = 0;
	int rc = guarded(tx, x);

	if (rc != 0)
		return rc;
	n = (size_t)snprintf(sql, sizeof(sql), "UPDATE %s SET updated_at = NOW(3)", e->table);
	for (size_t i = 0; i < e->ncols; i++) {
		if (!json_object_object_get_ex(x->r->json, e->cols[i].field, NULL))
			continue;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", %s = ?", e->cols[i].column);
		p[np++] = col_param(x->r, &e->cols[i], nums[i], sizeof(nums[i]), x->emails[i]);
	}
	snprintf(sql + n, sizeof(sql) - n, " WHERE id = ?");
	p[np++] = DBP_BLOB(x->id.b, 16);
	if (db_exec(tx->tdb, sql, p, np, NULL) != 0 ||
	    tenant_changelog_add(tx, e, x->id.b, "update") != 0)
		return -1;
	return audit_tenant(tx->control, x->r, AA_TENANT_UPDATED, e, x->org_s, x->id_s,
	    fields_given(x->r, e));
}

static int delete_fn(struct tenant_tx *tx, void *arg)
{
	struct write_tx *x = arg;
	char sql[128];
	struct db_param p[] = {DBP_BLOB(x->id.b, 16)};
	int rc = guarded(tx, x);

	if (rc != 0)
		return rc;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", x->e->table);
	if (db_exec(tx->tdb, sql, p, 1, NULL) != 0 ||
	    tenant_changelog_add(tx, x->e, x->id.b, "delete") != 0)
		return -1;
	return audit_tenant(tx->control, x->r, AA_TENANT_DELETED, x->e, x->org_s, x->id_s, NULL);
}

static bool write_or_reply(struct req *r, struct write_tx *x, int (*fn)(struct tenant_tx *, void *))
{
	enum tenant_rc rc;

	uuid_format(&x->org, x->org_s);
	uuid_format(&x->id, x->id_s);
	x->outcome = 0;
	rc = tenant_write(r->db, r->cfg, r->arena, x->org.b, fn, x);
	if (rc == TENANT_OK)
		return true;
	if (rc != TENANT_REFUSED)
		reply_err(r, &tenant_errors[rc], NULL);
	else if (x->outcome == 2)
		reply_error(r, E_LEGAL_HOLD, "the record or its org is on legal hold", NULL);
	else
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
	return false;
}

void api_tenant_patch(struct req *r)
{
	struct write_tx x = {.r = r, .e = r->route->entity};
	struct tenant_org t;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &x.org, &t) ||
	    !uuid_param_or_reply(r, "id", &x.id) ||
	    !req_validate_or_reply(r, spec_of(x.e, false)) || !emails_or_reply(r, x.e, x.emails))
		return;
	if (!write_or_reply(r, &x, patch_fn))
		return;
	reply_record(r, x.e, x.tdb, &x.id, 200);
}

void api_tenant_delete(struct req *r)
{
	struct write_tx x = {.r = r, .e = r->route->entity};
	struct tenant_org t;
	struct json_object *o;

	if (!tenant_org_or_reply(r, req_param(r, "orgId"), &x.org, &t) ||
	    !uuid_param_or_reply(r, "id", &x.id))
		return;
	if (!write_or_reply(r, &x, delete_fn))
		return;
	o = json_object_new_object();
	json_object_object_add(o, "deleted", json_object_new_boolean(1));
	reply_json(r, 200, o);
}
