/* Runbook 2 (README): legal holds, PII stripping and archiving of any
 * entity of the entity table, and the compliance state of a record. The
 * operations are core/compliance.c; these handlers validate and answer. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/compliance.h"
#include "core/entity.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"

#define MAX_IDS 1000

/* The ids[] of a compliance body as a batch of the request's actor on its
 * databases. Replies 400 (or 500) itself. */
static bool batch_or_reply(struct req *r, struct id_batch *b, struct audit_actor *a)
{
	struct json_object *arr = json_object_object_get(r->json, "ids");
	size_t n = json_object_array_length(arr);
	struct opsd_uuid *ids = arena_calloc(r->arena, n ? n : 1, sizeof(*ids));

	if (!ids) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (!uuid_parse(json_object_get_string(json_object_array_get_idx(arr, i)),
		        &ids[i])) {
			reply_field_error(r, "ids", "every id must be a UUID");
			return false;
		}
	req_actor(r, a);
	*b = (struct id_batch){.control = r->db,
	    .cfg = r->cfg,
	    .arena = r->arena,
	    .actor = a,
	    .e = entity_find(json_get_str(r->json, "entity", "")),
	    .ids = ids,
	    .n = n};
	return true;
}

/* 200 {"results": [{id, result}], "counts": {result: n}} added to o (may be
 * NULL; a "counts" object already in o is the base the counts add to), or
 * the batch's error. */
static void reply_batch(struct req *r, enum batch_rc rc, const struct id_batch *b,
    struct json_object *o)
{
	if (rc != BATCH_OK) {
		json_object_put(o);
		reply_err(r, &batch_errors[rc], NULL);
		return;
	}
	reply_json(r, 200, id_batch_results_json(b, o));
}

/* ---- legal hold, strip PII --------------------------------------------- */

struct field_spec compliance_hold_spec[] = {
    ENTITY_FIELD,
    {"ids", FT_STRING_ARRAY, FIELD_REQUIRED, 1, MAX_IDS, NULL},
    {"hold", FT_BOOL, FIELD_REQUIRED, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"caseRef", FT_STRING, FIELD_NULLABLE, 1, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_compliance_hold(struct req *r)
{
	struct id_batch b;
	struct audit_actor a;

	if (!req_validate_or_reply(r, entity_spec(compliance_hold_spec)) ||
	    !batch_or_reply(r, &b, &a))
		return;
	reply_batch(r,
	    compliance_hold(&b, json_get_bool(r->json, "hold", false),
	        json_get_str(r->json, "reason", ""), json_get_str(r->json, "caseRef", NULL)),
	    &b, NULL);
}

struct field_spec compliance_strip_spec[] = {
    ENTITY_FIELD,
    {"ids", FT_STRING_ARRAY, FIELD_REQUIRED, 1, MAX_IDS, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_compliance_strip(struct req *r)
{
	struct id_batch b;
	struct audit_actor a;

	if (!req_validate_or_reply(r, entity_spec(compliance_strip_spec)) ||
	    !batch_or_reply(r, &b, &a))
		return;
	reply_batch(r, compliance_strip(&b, json_get_str(r->json, "reason", "")), &b, NULL);
}

/* ---- batch archive ----------------------------------------------------- */

struct field_spec compliance_archive_spec[] = {
    ENTITY_FIELD,
    {"ids", FT_STRING_ARRAY, 0, 1, MAX_IDS, NULL},
    {"olderThan", FT_TIME, 0, 0, 0, NULL},
    {"orgId", FT_UUID, 0, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"dryRun", FT_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_compliance_archive(struct req *r)
{
	const struct entity *e;
	struct json_object *o;
	const char *older, *org, *reason;
	long long counts[ARCHIVE__MAX] = {0};
	bool ids, dry;
	struct audit_actor a;

	if (!req_validate_or_reply(r, entity_spec(compliance_archive_spec)))
		return;
	e = entity_find(json_get_str(r->json, "entity", ""));
	dry = json_get_bool(r->json, "dryRun", false);
	reason = json_get_str(r->json, "reason", "");
	ids = json_object_object_get(r->json, "ids") != NULL;
	older = json_get_str(r->json, "olderThan", NULL);
	org = json_get_str(r->json, "orgId", NULL);
	if (!ids == !older) {
		reply_field_error(r, ids ? "olderThan" : "ids",
		    "give exactly one of ids and olderThan");
		return;
	}
	if (org && (ids || strcmp(e->org_column, "org_id") != 0)) {
		reply_field_error(r, "orgId",
		    "only with olderThan, for records that belong to an org");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "dryRun", json_object_new_boolean(dry));
	if (ids) {
		struct id_batch b;

		if (!batch_or_reply(r, &b, &a)) {
			json_object_put(o);
			return;
		}
		json_object_object_add(o, "counts", archive_counts_json(counts));
		reply_batch(r, compliance_archive_ids(&b, reason, dry), &b, o);
		return;
	}
	{
		struct archive_query q = {r->db, r->cfg, r->arena, &a, e, reason, dry, 0, org};

		parse_rfc3339(older, &q.before_ms);
		req_actor(r, &a);
		if (compliance_archive_older(&q, counts) != 0) {
			json_object_put(o);
			reply_db_error(r);
			return;
		}
	}
	json_object_object_add(o, "counts", archive_counts_json(counts));
	reply_json(r, 200, o);
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
		reply_choice_error(r, "entity", entity_choices(ENTITIES_ALL));
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
