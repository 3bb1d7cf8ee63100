/* Runbook 2: exports (a subject's record; an org's records streamed as JSON
 * or CSV in constant memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/entity.h"
#include "core/records.h"
#include "core/tenant_db.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/csv.h"
#include "lib/log.h"
#include "lib/util.h"

#define EXPORT_CHUNK 1000

static void audit_export(struct req *r, const struct entity *e, const char *org, const char *id,
    long long n, const char *format)
{
	struct audit_actor a;

	req_actor(r, &a);
	(void)record_audit_export(r->db, &a, e, org, id, n, format); /* logged when it fails */
}

/* ---- a subject's record (DSR access) ----------------------------------- */

const struct field_spec export_subject_query[] = {
    ENTITY_FIELD,
    {"id", FT_UUID, FIELD_REQUIRED, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Any entity of the entity table: its declared columns (stripped ones as
 * stored, i.e. redacted) and its state; never a column the table does not
 * declare, such as a user's password hash. */
void api_compliance_export(struct req *r)
{
	const struct entity *e = entity_find(req_query(r, "entity"));
	const char *id = req_query(r, "id");
	struct opsd_uuid u;
	struct audit_actor a;
	struct json_object *o;
	enum tenant_rc rc;

	if (!e) {
		reply_choice_error(r, "entity", entity_choices(ENTITIES_TENANT_FIRST));
		return;
	}
	if (!id || !uuid_parse(id, &u)) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	req_actor(r, &a);
	rc = record_export_subject(r->db, r->cfg, r->arena, &a, e, &u, &o);
	if (rc == TENANT_NO_ORG)
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
	else if (rc != TENANT_OK)
		reply_err(r, &tenant_errors[rc], NULL);
	else
		reply_json(r, 200, o);
}

/* ---- an org's records, streamed ---------------------------------------- */

static const char *const export_formats[] = {"json", "csv", NULL};

const struct field_spec export_org_query[] = {
    {"orgId", FT_UUID, FIELD_REQUIRED, 0, 0, NULL},
    {"format", FT_ENUM, 0, 0, 0, export_formats},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_export(struct req *r)
{
	const struct entity *e = entity_find(req_param(r, "entity"));
	const char *format = req_query(r, "format");
	struct opsd_uuid org, after = {{0}}; /* the first page starts after the zero id */
	struct tenant_org t;
	struct arena *chunk;
	struct buf out;
	char sql[512], disp[160];
	bool csv, more = true, header = false;
	long long n = 0;

	if (!e || !e->crud) {
		reply_choice_error(r, "entity", entity_choices(ENTITIES_CRUD));
		return;
	}
	if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
		reply_field_error(r, "format", "must be json or csv");
		return;
	}
	csv = format && strcmp(format, "csv") == 0;
	if (!req_query(r, "orgId")) {
		reply_field_error(r, "orgId", "required");
		return;
	}
	if (!tenant_org_or_reply(r, req_query(r, "orgId"), &org, &t))
		return;
	if (!(chunk = arena_new(256 * 1024))) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return;
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s-%s.%s\"", e->name,
	    req_query(r, "orgId"), csv ? "csv" : "json");
	reply_header(r, "Content-Disposition", disp);
	reply_stream_begin(r, 200, csv ? "text/csv; charset=utf-8" : "application/json");
	buf_init(&out);
	if (!csv)
		reply_stream_write(r, "{\"items\":[", 10);
	/* A plain "id > ?" even on the first page: "(? = 0 OR id > ?)" made
	 * MariaDB read each page's index range from the org's first row, so an
	 * export's time grew with the square of the org's size (bench/scale). */
	record_select_sql(e, "WHERE org_id = ? AND id > ? ORDER BY id LIMIT ?", sql, sizeof(sql));
	/* Keyset pages of EXPORT_CHUNK rows, each in a fresh arena: memory does
	 * not grow with the size of the org. */
	while (more) {
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(org.b, 16), DBP_BLOB(after.b, 16),
		    DBP_I64(EXPORT_CHUNK)};

		arena_reset(chunk);
		if (db_query(t.db, chunk, sql, p, countof(p), &rows) != 0) {
			/* The status is gone already: end the body unfinished so the
			 * client sees a broken document, and log why. */
			log_msg(LL_ERROR, "export_failed", "%s", db_error(t.db));
			break;
		}
		for (size_t i = 0; i < rows.nrows; i++) {
			struct json_object *rec = record_json(e, &rows, i);

			buf_reset(&out);
			if (csv) {
				if (!header)
					csv_header(&out, rec);
				header = true;
				csv_row(&out, rec);
			} else {
				if (n > 0)
					buf_putc(&out, ',');
				buf_puts(&out,
				    json_object_to_json_string_ext(rec,
				        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			}
			json_object_put(rec);
			reply_stream_write(r, out.data, out.len);
			n++;
		}
		more = rows.nrows == EXPORT_CHUNK;
		if (rows.nrows > 0)
			memcpy(after.b, rows.val[rows.nrows - 1][0], 16);
	}
	if (!csv && !more)
		reply_stream_write(r, "]}\n", 3);
	buf_free(&out);
	arena_free(chunk);
	{
		char org_s[UUID_STR_LEN + 1];

		uuid_format(&org, org_s);
		audit_export(r, e, org_s, NULL, n, csv ? "csv" : "json");
	}
}
