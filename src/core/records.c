/* Tenant records: the SELECT, the JSON and the writes (see records.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/batch.h"
#include "core/entity.h"
#include "core/legal_hold.h"
#include "core/records.h"
#include "core/tenant_db.h"
#include "core/users.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define STATE_COLUMNS                                                                              \
	"legal_hold, pii_stripped_at IS NOT NULL, archived_at IS NOT NULL,"                        \
	" created_at, updated_at"

const char *record_select_sql(const struct entity *e, const char *tail, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "SELECT id, %s", e->org_column);

	for (size_t i = 0; i < e->ncols && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, ", %s", e->cols[i].column);
	snprintf(buf + n, len > n ? len - n : 0, ", " STATE_COLUMNS " FROM %s %s", e->table, tail);
	return buf;
}

struct json_object *record_json(const struct entity *e, const struct db_rows *rows, size_t i)
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

const char *record_bad_email(const struct entity *e, struct json_object *body)
{
	char norm[256];

	for (size_t i = 0; i < e->ncols; i++) {
		const char *v = json_get_str(body, e->cols[i].field, NULL);

		if (e->cols[i].email && v && !email_normalize(v, norm, sizeof(norm)))
			return e->cols[i].field;
	}
	return NULL;
}

/* The values of a write: one parameter per column the body gives, email
 * columns lower-cased, numbers with two decimals. */
struct values {
	struct db_param p[ENTITY_MAX_COLS];
	bool given[ENTITY_MAX_COLS];
	char text[ENTITY_MAX_COLS][256];
};

static void values_of(const struct entity *e, struct json_object *body, struct values *v)
{
	for (size_t i = 0; i < e->ncols && i < ENTITY_MAX_COLS; i++) {
		const struct entity_column *c = &e->cols[i];
		struct json_object *j = json_object_object_get(body, c->field);

		v->given[i] = json_object_object_get_ex(body, c->field, NULL);
		if (!j) {
			v->p[i] = DBP_NULL;
		} else if (c->type == FT_NUMBER) {
			snprintf(v->text[i], sizeof(v->text[i]), "%.2f", json_object_get_double(j));
			v->p[i] = DBP_STR(v->text[i]);
		} else if (c->email && email_normalize(json_object_get_string(j), v->text[i],
		                           sizeof(v->text[i]))) {
			v->p[i] = DBP_STR(v->text[i]);
		} else {
			v->p[i] = DBP_STR(json_object_get_string(j));
		}
	}
}

/* Appends fmt (", %s" or ", %s = ?") to sql for every column the body
 * gives, and that column's value to p[*np]. The length of sql now. */
static size_t given_columns(const struct entity *e, const struct values *v, const char *fmt,
    char *sql, size_t len, size_t n, struct db_param *p, size_t *np)
{
	for (size_t i = 0; i < e->ncols && i < ENTITY_MAX_COLS; i++) {
		if (!v->given[i])
			continue;
		n += (size_t)snprintf(sql + n, n < len ? len - n : 0, fmt, e->cols[i].column);
		p[(*np)++] = v->p[i];
	}
	return n;
}

/* tenant.created/updated/deleted: the entity and, for a create or update,
 * the names of the fields given. */
static int audit_write(struct tenant_tx *tx, const struct record_write *w, enum audit_action action)
{
	struct json_object *payload = json_object_new_object();
	char org_s[UUID_STR_LEN + 1], id_s[UUID_STR_LEN + 1];

	uuid_format(&w->org, org_s);
	uuid_format(&w->id, id_s);
	json_object_object_add(payload, "entity", json_object_new_string(w->e->name));
	if (w->body) {
		struct json_object *fields = json_object_new_array();

		for (size_t i = 0; i < w->e->ncols; i++)
			if (json_object_object_get_ex(w->body, w->e->cols[i].field, NULL))
				json_object_array_add(fields,
				    json_object_new_string(w->e->cols[i].field));
		json_object_object_add(payload, "fields", fields);
	}
	return audit_append(tx->control, w->actor, action, org_s, w->e->name, id_s, payload);
}

static int create_fn(struct tenant_tx *tx, void *arg)
{
	struct record_write *w = arg;
	const struct entity *e = w->e;
	struct values v;
	char sql[512];
	struct db_param p[ENTITY_MAX_COLS + 2];
	size_t n, np = 0;

	w->tdb = tx->tdb;
	values_of(e, w->body, &v);
	n = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (id, org_id", e->table);
	p[np++] = DBP_BLOB(w->id.b, 16);
	p[np++] = DBP_BLOB(w->org.b, 16);
	n = given_columns(e, &v, ", %s", sql, sizeof(sql), n, p, &np);
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, ") VALUES (?, ?");
	for (size_t i = 2; i < np; i++)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", ?");
	snprintf(sql + n, sizeof(sql) - n, ")");
	if (db_exec(tx->tdb, sql, p, np, NULL) != 0 ||
	    tenant_changelog_add(tx, e, w->id.b, "insert") != 0)
		return -1;
	return audit_write(tx, w, AA_TENANT_CREATED);
}

/* The record must exist in this org and pass the legal-hold guard: 0, 1
 * (refused: w->held says why) or -1. */
static int guarded(struct tenant_tx *tx, struct record_write *w)
{
	struct db_rows rows;
	char sql[160];
	bool held;
	struct db_param p[] = {DBP_BLOB(w->id.b, 16), DBP_BLOB(w->org.b, 16)};
	int rc;

	w->tdb = tx->tdb;
	w->held = false;
	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = ? AND org_id = ?", w->e->table);
	if (db_query(tx->tdb, tx->a, sql, p, 2, &rows) != 0)
		return -1;
	if (rows.nrows != 1)
		return 1;
	rc = legal_hold_guard(tx->tdb, tx->control, tx->a, w->e, w->id.b, &held);
	if (rc != 0)
		return rc;
	w->held = held;
	return held ? 1 : 0;
}

static int update_fn(struct tenant_tx *tx, void *arg)
{
	struct record_write *w = arg;
	const struct entity *e = w->e;
	struct values v;
	char sql[512];
	struct db_param p[ENTITY_MAX_COLS + 1];
	size_t n, np = 0;
	int rc = guarded(tx, w);

	if (rc != 0)
		return rc;
	values_of(e, w->body, &v);
	n = (size_t)snprintf(sql, sizeof(sql), "UPDATE %s SET updated_at = NOW(3)", e->table);
	n = given_columns(e, &v, ", %s = ?", sql, sizeof(sql), n, p, &np);
	snprintf(sql + n, sizeof(sql) - n, " WHERE id = ?");
	p[np++] = DBP_BLOB(w->id.b, 16);
	if (db_exec(tx->tdb, sql, p, np, NULL) != 0 ||
	    tenant_changelog_add(tx, e, w->id.b, "update") != 0)
		return -1;
	return audit_write(tx, w, AA_TENANT_UPDATED);
}

static int delete_fn(struct tenant_tx *tx, void *arg)
{
	struct record_write *w = arg;
	char sql[128];
	struct db_param p[] = {DBP_BLOB(w->id.b, 16)};
	int rc = guarded(tx, w);

	if (rc != 0)
		return rc;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", w->e->table);
	if (db_exec(tx->tdb, sql, p, 1, NULL) != 0 ||
	    tenant_changelog_add(tx, w->e, w->id.b, "delete") != 0)
		return -1;
	return audit_write(tx, w, AA_TENANT_DELETED);
}

enum tenant_rc record_create(struct db *control, const struct opsd_config *cfg, struct arena *a,
    struct record_write *w)
{
	return tenant_write(control, cfg, a, w->org.b, create_fn, w);
}

enum tenant_rc record_update(struct db *control, const struct opsd_config *cfg, struct arena *a,
    struct record_write *w)
{
	return tenant_write(control, cfg, a, w->org.b, update_fn, w);
}

enum tenant_rc record_delete(struct db *control, const struct opsd_config *cfg, struct arena *a,
    struct record_write *w)
{
	w->body = NULL;
	return tenant_write(control, cfg, a, w->org.b, delete_fn, w);
}

/* ---- exports (runbook 2) ----------------------------------------------- */

int record_audit_export(struct db *control, const struct audit_actor *actor, const struct entity *e,
    const char *org, const char *id, long long n, const char *format)
{
	struct json_object *payload = json_object_new_object();

	json_object_object_add(payload, "entity", json_object_new_string(e->name));
	json_object_object_add(payload, "count", json_object_new_int64(n));
	json_object_object_add(payload, "format", json_object_new_string(format));
	/* audit_append_tx consumes the payload. */
	if (audit_append_tx(control, actor, AA_COMPLIANCE_EXPORTED, org, e->name, id, payload) !=
	    0) {
		log_msg(LL_ERROR, "audit_failed", "compliance.exported: %s", db_error(control));
		return -1;
	}
	return 0;
}

enum tenant_rc record_export_subject(struct db *control, const struct opsd_config *cfg,
    struct arena *a, const struct audit_actor *actor, const struct entity *e,
    const struct opsd_uuid *id, struct json_object **out)
{
	char sql[512], now[32], subject[UUID_STR_LEN + 1], org[UUID_STR_LEN + 1];
	struct db_param p[1] = {DBP_BLOB(id->b, 16)};
	struct db_rows rows;
	struct db *d;
	enum tenant_rc rc;

	*out = NULL;
	if ((rc = record_db(control, cfg, a, e, id, &d)) != TENANT_OK)
		return rc;
	if (db_query(d, a, record_select_sql(e, "WHERE id = ?", sql, sizeof(sql)), p, 1, &rows) !=
	    0)
		return TENANT_DB_ERROR;
	if (rows.nrows != 1)
		return TENANT_NO_ORG;
	uuid_format(id, subject);
	/* A subject's personal data leaves only on the record: no event, no export. */
	if (record_audit_export(control, actor, e,
	        dbv_uuid(rows.val[0][1], rows.len[0][1], org) ? org : NULL, subject, 1,
	        "json") != 0)
		return TENANT_DB_ERROR;
	format_rfc3339(now_ms(), now);
	*out = json_object_new_object();
	json_object_object_add(*out, "entity", json_object_new_string(e->name));
	json_object_object_add(*out, "id", json_object_new_string(subject));
	json_object_object_add(*out, "exportedAt", json_object_new_string(now));
	json_object_object_add(*out, "record", record_json(e, &rows, 0));
	return TENANT_OK;
}
