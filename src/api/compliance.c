/* Runbook 2: legal holds, PII stripping and the compliance state of a
 * record, for every entity of the entity table. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "lib/arena.h"
#include "core/audit.h"
#include "core/auth.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "core/entity.h"
#include "core/legal_hold.h"
#include "core/tenant_db.h"
#include "lib/json.h"
#include "core/users.h"
#include "lib/util.h"

#define MAX_IDS 1000

/* entity and ids[] of a compliance body, or a 400 reply. */
static bool target_or_reply(struct req *r, const struct entity **e, struct opsd_uuid **ids,
    size_t *n)
{
	struct json_object *arr = json_object_object_get(r->json, "ids");

	*e = entity_find(json_get_str(r->json, "entity", ""));
	*n = json_object_array_length(arr);
	*ids = arena_calloc(r->arena, *n ? *n : 1, sizeof(**ids));
	if (!*ids) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return false;
	}
	for (size_t i = 0; i < *n; i++)
		if (!uuid_parse(json_object_get_string(json_object_array_get_idx(arr, i)),
		        &(*ids)[i])) {
			reply_field_error(r, "ids", "every id must be a UUID");
			return false;
		}
	return true;
}

/* The group's compliance.* event: entity, ids, outcome counts and reason,
 * never a value of the records. */
static int audit_batch(struct db *control, struct id_batch *b, enum audit_action action)
{
	struct audit_actor a;
	struct json_object *payload = json_object_new_object();

	req_actor(b->r, &a);
	json_object_object_add(payload, "entity", json_object_new_string(b->e->name));
	json_object_object_add(payload, "ids", id_batch_group_ids(b));
	json_object_object_add(payload, "counts", id_batch_group_counts(b));
	json_object_object_add(payload, "reason",
	    json_object_new_string(json_get_str(b->r->json, "reason", "")));
	return audit_append(control, &a, action, b->org, b->e->name, NULL, payload);
}

/* Records a changed tenant row for a migration's catch-up. */
static int changed(struct id_batch *b, const struct opsd_uuid *id)
{
	return b->tx ? tenant_changelog_add(b->tx, b->e, id->b, "update") : 0;
}

/* ---- legal hold -------------------------------------------------------- */

static struct field_spec hold_spec[] = {
    ENTITY_FIELD,
    {"ids", FT_STRING_ARRAY, FIELD_REQUIRED, 1, MAX_IDS, NULL},
    {"hold", FT_BOOL, FIELD_REQUIRED, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"caseRef", FT_STRING, FIELD_NULLABLE, 1, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static int hold_ids(struct db *d, struct db *control, struct id_batch *b)
{
	bool hold = json_get_bool(b->r->json, "hold", false);
	char sql[256], check[128];

	snprintf(sql, sizeof(sql),
	    "UPDATE %s SET legal_hold = ?, legal_hold_reason = ?, legal_hold_case_ref = ?,"
	    " legal_hold_at = IF(?, NOW(3), NULL) WHERE id = ? AND legal_hold <> ?",
	    b->e->table);
	snprintf(check, sizeof(check), "SELECT 1 FROM %s WHERE id = ? FOR UPDATE", b->e->table);
	for (size_t k = 0; k < b->nidx; k++) {
		const struct opsd_uuid *id = &b->ids[b->idx[k]];
		unsigned long long n = 0;
		struct db_rows rows;
		struct db_param q[] = {DBP_BLOB(id->b, 16)};
		struct db_param p[] = {
		    DBP_I64(hold),
		    DBP_STR(hold ? json_get_str(b->r->json, "reason", "") : NULL),
		    DBP_STR(hold ? json_get_str(b->r->json, "caseRef", NULL) : NULL),
		    DBP_I64(hold),
		    DBP_BLOB(id->b, 16),
		    DBP_I64(hold),
		};

		if (db_query(d, b->r->arena, check, q, 1, &rows) != 0)
			return -1;
		if (rows.nrows != 1) {
			b->what[b->idx[k]] = "not_found";
			continue;
		}
		if (db_exec(d, sql, p, countof(p), &n) != 0 || (n && changed(b, id) != 0))
			return -1;
		b->what[b->idx[k]] = n ? (hold ? "held" : "released") : "already";
	}
	return audit_batch(control, b,
	    hold ? AA_COMPLIANCE_LEGAL_HOLD_SET : AA_COMPLIANCE_LEGAL_HOLD_RELEASED);
}

/* entity and ids[] of a compliance body, or a 400 reply. */
static bool batch_or_reply(struct req *r, const struct field_spec *spec, struct id_batch *b)
{
	struct opsd_uuid *ids;

	if (!req_validate_or_reply(r, spec) || !target_or_reply(r, &b->e, &ids, &b->n))
		return false;
	b->r = r;
	b->ids = ids;
	return true;
}

void api_compliance_hold(struct req *r)
{
	struct id_batch b = {0};

	if (batch_or_reply(r, entity_spec(hold_spec), &b) && id_batch_run(&b, hold_ids))
		id_batch_reply(&b, NULL);
}

/* ---- strip PII --------------------------------------------------------- */

static struct field_spec strip_spec[] = {
    ENTITY_FIELD,
    {"ids", FT_STRING_ARRAY, FIELD_REQUIRED, 1, MAX_IDS, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Redacts one record's PII columns as the entity table says. */
static int strip_one(struct db *d, struct id_batch *b, const struct opsd_uuid *id)
{
	const struct entity *e = b->e;
	char sql[512], vals[8][80];
	struct db_param p[10];
	size_t n, np = 0;

	n = (size_t)snprintf(sql, sizeof(sql),
	    "UPDATE %s SET pii_stripped_at = NOW(3), pii_stripped_reason = ?", e->table);
	p[np++] = DBP_STR(json_get_str(b->r->json, "reason", ""));
	for (size_t i = 0; i < e->ncols && i < 8; i++) {
		const struct entity_column *c = &e->cols[i];

		if (c->redact == RED_KEEP)
			continue;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", %s = ?", c->column);
		p[np++] = DBP_STR(entity_redacted_value(c, id->b, vals[i], sizeof(vals[i])));
	}
	snprintf(sql + n, sizeof(sql) - n, " WHERE id = ?");
	p[np++] = DBP_BLOB(id->b, 16);
	if (db_exec(d, sql, p, np, NULL) != 0 || changed(b, id) != 0)
		return -1;
	/* A stripped user cannot sign in again. */
	return strcmp(e->name, "users") == 0 ? user_lock_out(d, id->b) : 0;
}

static int strip_ids(struct db *d, struct db *control, struct id_batch *b)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT pii_stripped_at IS NOT NULL FROM %s WHERE id = ?",
	    b->e->table);
	for (size_t k = 0; k < b->nidx; k++) {
		const struct opsd_uuid *id = &b->ids[b->idx[k]];
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(id->b, 16)};
		const char *what;
		bool held;
		int rc = legal_hold_guard(d, control, b->r->arena, b->e, id->b, &held);

		if (rc < 0 || db_query(d, b->r->arena, sql, p, 1, &rows) != 0)
			return -1;
		if (rc > 0)
			what = "not_found";
		else if (held)
			what = "legal_hold";
		else if (rows.nrows == 1 && strcmp(rows.val[0][0], "1") == 0)
			what = "already_stripped";
		else if (strip_one(d, b, id) != 0)
			return -1;
		else
			what = "stripped";
		b->what[b->idx[k]] = what;
	}
	return audit_batch(control, b, AA_COMPLIANCE_PII_STRIPPED);
}

void api_compliance_strip(struct req *r)
{
	struct id_batch b = {0};

	if (batch_or_reply(r, entity_spec(strip_spec), &b) && id_batch_run(&b, strip_ids))
		id_batch_reply(&b, NULL);
}

/* ---- records ----------------------------------------------------------- */

void api_compliance_record(struct req *r)
{
	const struct entity *e = entity_find(req_param(r, "entity"));
	struct opsd_uuid id;
	char sql[512];
	struct db_rows rows;
	struct db_param p[1];
	struct json_object *o;
	struct db *d;

	if (!e) {
		reply_choice_error(r, "entity", entity_choices(false));
		return;
	}
	if (!uuid_param_or_reply(r, "id", &id) || !(d = record_db_or_reply(r, e, &id)))
		return;
	snprintf(sql, sizeof(sql),
	    "SELECT %s, pii_stripped_at, pii_stripped_reason, legal_hold, legal_hold_at,"
	    " legal_hold_reason, legal_hold_case_ref, archived_at, archived_reason FROM %s WHERE id = ?",
	    e->org_column, e->table);
	p[0] = DBP_BLOB(id.b, 16);
	if (db_query(d, r->arena, sql, p, 1, &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "entity", json_object_new_string(e->name));
	json_object_object_add(o, "id", json_object_new_string(req_param(r, "id")));
	json_object_object_add(o, "orgId", dbv_json_uuid(&rows, 0, 0));
	json_object_object_add(o, "piiStripped", json_object_new_boolean(rows.val[0][1] != NULL));
	json_object_object_add(o, "piiStrippedAt", dbv_json_time(&rows, 0, 1));
	json_object_object_add(o, "piiStrippedReason", dbv_json_str(&rows, 0, 2));
	json_object_object_add(o, "legalHold", dbv_json_bool(&rows, 0, 3));
	json_object_object_add(o, "legalHoldAt", dbv_json_time(&rows, 0, 4));
	json_object_object_add(o, "legalHoldReason", dbv_json_str(&rows, 0, 5));
	json_object_object_add(o, "legalHoldCaseRef", dbv_json_str(&rows, 0, 6));
	json_object_object_add(o, "archived", json_object_new_boolean(rows.val[0][7] != NULL));
	json_object_object_add(o, "archivedAt", dbv_json_time(&rows, 0, 7));
	json_object_object_add(o, "archivedReason", dbv_json_str(&rows, 0, 8));
	reply_json(r, 200, o);
}
