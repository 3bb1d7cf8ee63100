/* Runbook 1: publish legal documents, serve them, record and report
 * acceptance. The public read is served from the per-worker cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/legal.h"
#include "core/legal_files.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/diff.h"
#include "lib/json.h"
#include "lib/util.h"

/* Clock skew allowed for an effectiveAt "now" sent by a client. */
#define PAST_SKEW_MS 60000

const struct field_spec legal_publish_spec[] = {
    {"type", FT_STRING, FIELD_REQUIRED, 1, LEGAL_TYPE_MAX, NULL},
    {"version", FT_STRING, FIELD_REQUIRED, 1, LEGAL_VERSION_MAX, NULL},
    {"content", FT_STRING, FIELD_REQUIRED, 1, LEGAL_CONTENT_MAX, NULL},
    {"effectiveAt", FT_TIME, FIELD_NULLABLE, 0, 0, NULL},
    {"notify", FT_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The cache, or a 503/500 reply. */
static bool current_or_reply(struct req *r, const struct legal_doc **docs, size_t *n)
{
	if (legal_current(r->db, docs, n) == 0)
		return true;
	reply_db_error(r);
	return false;
}

void api_legal_publish(struct req *r)
{
	const char *type, *version, *when;
	int64_t ms = 0;
	char id[UUID_STR_LEN + 1], t[32];
	struct audit_actor a;
	struct json_object *o;
	enum legal_err e;
	bool notify;

	if (!req_validate_or_reply(r, legal_publish_spec))
		return;
	type = json_get_str(r->json, "type", "");
	version = json_get_str(r->json, "version", "");
	when = json_get_str(r->json, "effectiveAt", NULL);
	notify = json_get_bool(r->json, "notify", false);
	if (!legal_type_valid(type)) {
		reply_field_error(r, "type", "lower-case letter, then up to 31 of a-z 0-9 _ -");
		return;
	}
	if (!legal_version_valid(version)) {
		reply_field_error(r, "version",
		    "letters, digits and . _ - (1 to 64), not starting with . _ -");
		return;
	}
	if (when && (!parse_rfc3339(when, &ms) || ms < now_ms() - PAST_SKEW_MS)) {
		reply_field_error(r, "effectiveAt",
		    "must be an RFC 3339 time, now or in the future");
		return;
	}
	/* One clock reading: the stored time and the answer must agree. */
	if (ms == 0 || ms < now_ms())
		ms = now_ms();
	req_actor(r, &a);
	e = legal_publish(r->db, &a, type, version, json_get_str(r->json, "content", ""), ms,
	    notify, id);
	if (e != LEGAL_OK) {
		reply_err(r, &legal_errors[e], NULL);
		return;
	}
	/* This host's nginx serves the new version before the answer leaves. */
	legal_files_after_publish(r->db, r->cfg);
	format_rfc3339(ms, t);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "version", json_object_new_string(version));
	json_object_object_add(o, "effectiveAt", json_object_new_string(t));
	{
		char sha[65];
		const char *content = json_get_str(r->json, "content", "");

		sha256_hex(content, strlen(content), sha);
		json_object_object_add(o, "contentSha256", json_object_new_string(sha));
	}
	format_rfc3339(now_ms(), t);
	json_object_object_add(o, "publishedAt", json_object_new_string(t));
	json_object_object_add(o, "current", json_object_new_boolean(ms <= now_ms()));
	json_object_object_add(o, "notify", json_object_new_boolean(notify));
	reply_json(r, 201, o);
}

void api_legal_get(struct req *r)
{
	const struct legal_doc *docs, *doc;
	size_t n;

	if (!current_or_reply(r, &docs, &n))
		return;
	doc = legal_current_of(docs, n, req_param(r, "type"));
	if (!doc) {
		reply_error(r, E_NOT_FOUND, "no current document of this type", NULL);
		return;
	}
	reply_header(r, "ETag", doc->etag);
	/* Public and cacheable, but always revalidated: a publish is immediate. */
	reply_header(r, "Cache-Control", "no-cache");
	if (req_etag_matches(r, doc->etag)) {
		reply_empty(r, 304);
		return;
	}
	reply_raw(r, 200, "application/json", doc->json, doc->json_len);
}

#define DOC_COLUMNS "id, type, version, content, content_sha256, effective_at, created_at"

static struct json_object *doc_row_json(const struct db_rows *rows, size_t i, bool content)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "type", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "version", dbv_json_str(rows, i, 2));
	if (content)
		json_object_object_add(o, "content", dbv_json_str(rows, i, 3));
	json_object_object_add(o, "effectiveAt", dbv_json_time(rows, i, 5));
	json_object_object_add(o, "contentSha256", dbv_json_str(rows, i, 4));
	json_object_object_add(o, "publishedAt", dbv_json_time(rows, i, 6));
	return o;
}

/* GET /legal: every document type with its current version (null while
 * its first version is still scheduled) and its scheduled ones, soonest
 * first. One statement, so "now" is one instant for every type. */
void api_legal_list(struct req *r)
{
	struct db_rows rows;
	struct json_object *items = json_object_new_array(), *type = NULL, *o;

	if (db_query(r->db, r->arena,
	        "SELECT id, type, version, '' AS content, content_sha256, effective_at, created_at,"
	        " scheduled FROM (SELECT l.*, effective_at > NOW(3) AS scheduled, ROW_NUMBER() OVER"
	        " (PARTITION BY type, effective_at > NOW(3) ORDER BY effective_at DESC, id DESC) AS rn"
	        " FROM legal_documents l) t WHERE scheduled = 1 OR rn = 1"
	        " ORDER BY type, scheduled, effective_at, id LIMIT 1000",
	        NULL, 0, &rows) != 0) {
		json_object_put(items);
		reply_db_error(r);
		return;
	}
	for (size_t i = 0; i < rows.nrows; i++) {
		bool scheduled = strcmp(rows.val[i][7], "1") == 0;

		if (i == 0 || strcmp(rows.val[i][1], rows.val[i - 1][1]) != 0) {
			type = json_object_new_object();
			json_object_object_add(type, "type", dbv_json_str(&rows, i, 1));
			json_object_object_add(type, "current",
			    scheduled ? NULL : doc_row_json(&rows, i, false));
			json_object_object_add(type, "scheduled", json_object_new_array());
			json_object_array_add(items, type);
			if (!scheduled)
				continue;
		}
		json_object_array_add(json_object_object_get(type, "scheduled"),
		    doc_row_json(&rows, i, false));
	}
	o = json_object_new_object();
	json_object_object_add(o, "items", items);
	json_object_object_add(o, "nextCursor", NULL);
	reply_json(r, 200, o);
}

/* A page of GET /legal/:type/versions ends at a version: its cursor is
 * "<effectiveAt>|<id>" (RFC 3339, uuid), the next page starts after it in
 * the list's order (effective time, then id, both descending). */
static bool versions_after(struct req *r, struct page *pg, char *when, struct opsd_uuid *id)
{
	char *bar = strchr(pg->after, '|');
	int64_t ms;

	if (bar)
		*bar = '\0';
	if (!bar || !parse_rfc3339(pg->after, &ms) || !uuid_parse(bar + 1, id)) {
		reply_field_error(r, "cursor", "not a cursor of this list");
		return false;
	}
	db_time_from_ms(ms, when);
	return true;
}

/* true when some version of the type exists; else (or on a database
 * error) the reply is sent. */
static bool type_exists_or_reply(struct req *r, const char *type)
{
	struct db_param p[] = {DBP_STR(type)};
	struct db_rows rows;

	if (db_query(r->db, r->arena, "SELECT 1 FROM legal_documents WHERE type = ? LIMIT 1", p,
	        countof(p), &rows) != 0) {
		reply_db_error(r);
		return false;
	}
	if (rows.nrows == 0) {
		reply_error(r, E_NOT_FOUND, "no document of this type", NULL);
		return false;
	}
	return true;
}

void api_legal_versions(struct req *r)
{
	const struct legal_doc *docs, *cur;
	struct db_rows rows;
	struct page pg;
	struct opsd_uuid after = {{0}};
	char when[DB_TIME_LEN + 1] = "", last[96] = "";
	struct json_object *items;
	size_t n;

	if (!page_or_reply(r, "legal_versions", &pg) ||
	    (pg.has_after && !versions_after(r, &pg, when, &after)) ||
	    !current_or_reply(r, &docs, &n))
		return;
	cur = legal_current_of(docs, n, req_param(r, "type"));
	{
		struct db_param p[] = {DBP_STR(req_param(r, "type")), DBP_I64(pg.has_after),
		    DBP_STR(when), DBP_STR(when), DBP_BLOB(after.b, 16), DBP_I64(pg.limit + 1)};

		if (db_query(r->db, r->arena,
		        "SELECT id, type, version, '' AS content, content_sha256, effective_at,"
		        " created_at FROM legal_documents WHERE type = ? AND (? = 0 OR"
		        " effective_at < ? OR (effective_at = ? AND id < ?))"
		        " ORDER BY effective_at DESC, id DESC LIMIT ?",
		        p, countof(p), &rows) != 0) {
			reply_db_error(r);
			return;
		}
	}
	/* an empty page past a cursor is still a page of a type that exists */
	if (rows.nrows == 0 && !type_exists_or_reply(r, req_param(r, "type")))
		return;
	n = rows.nrows > (size_t)pg.limit ? (size_t)pg.limit : rows.nrows;
	items = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = doc_row_json(&rows, i, false);

		json_object_object_add(d, "current",
		    json_object_new_boolean(
		        cur && rows.len[i][0] == 16 && memcmp(rows.val[i][0], cur->id, 16) == 0));
		json_object_array_add(items, d);
		if (i == n - 1) {
			char id[UUID_STR_LEN + 1];

			dbv_uuid(rows.val[i][0], rows.len[i][0], id);
			snprintf(last, sizeof(last), "%s|%s",
			    json_object_get_string(json_object_object_get(d, "effectiveAt")), id);
		}
	}
	reply_page(r, items, rows.nrows > n, "legal_versions", last);
}

/* One version of a type, or a 404 reply. */
static bool version_or_reply(struct req *r, const char *type, const char *version,
    struct db_rows *rows)
{
	struct db_param p[] = {DBP_STR(type), DBP_STR(version)};

	if (!version || !legal_version_valid(version)) {
		reply_error(r, E_NOT_FOUND, "no such version", NULL);
		return false;
	}
	if (db_query(r->db, r->arena,
	        "SELECT " DOC_COLUMNS " FROM legal_documents WHERE type = ? AND version = ?", p, 2,
	        rows) != 0) {
		reply_db_error(r);
		return false;
	}
	if (rows->nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such version", NULL);
		return false;
	}
	return true;
}

void api_legal_version(struct req *r)
{
	struct db_rows rows;

	if (!version_or_reply(r, req_param(r, "type"), req_param(r, "version"), &rows))
		return;
	reply_json(r, 200, doc_row_json(&rows, 0, true));
}

const struct field_spec legal_diff_query[] = {
    {"from", FT_STRING, FIELD_REQUIRED, 1, LEGAL_VERSION_MAX, NULL},
    {"to", FT_STRING, FIELD_REQUIRED, 1, LEGAL_VERSION_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_legal_diff(struct req *r)
{
	const char *from = req_query(r, "from"), *to = req_query(r, "to");
	struct db_rows a, b;
	struct diff_line *lines;
	struct json_object *o, *arr;
	struct buf unified;
	long n;

	if (!from || !to) {
		reply_field_error(r, from ? "to" : "from", "required");
		return;
	}
	if (!version_or_reply(r, req_param(r, "type"), from, &a) ||
	    !version_or_reply(r, req_param(r, "type"), to, &b))
		return;
	n = diff_lines(r->arena, a.val[0][3], b.val[0][3], &lines);
	if (n < 0) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return;
	}
	arr = json_object_new_array();
	buf_init(&unified);
	buf_printf(&unified, "--- %s\n+++ %s\n@@ -1 +1 @@\n", from, to);
	for (long i = 0; i < n; i++) {
		struct json_object *l = json_object_new_object();
		char op[2] = {lines[i].op, '\0'};

		json_object_object_add(l, "op", json_object_new_string(op));
		json_object_object_add(l, "line",
		    json_object_new_string_len(lines[i].s, (int)lines[i].len));
		json_object_array_add(arr, l);
		buf_putc(&unified, lines[i].op == '=' ? ' ' : lines[i].op);
		buf_append(&unified, lines[i].s, lines[i].len);
		buf_putc(&unified, '\n');
	}
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string(req_param(r, "type")));
	json_object_object_add(o, "from", json_object_new_string(from));
	json_object_object_add(o, "to", json_object_new_string(to));
	json_object_object_add(o, "diff", arr);
	json_object_object_add(o, "unified",
	    json_object_new_string_len(unified.data ? unified.data : "", (int)unified.len));
	buf_free(&unified);
	reply_json(r, 200, o);
}

/* ---- acceptance -------------------------------------------------------- */

void api_legal_status(struct req *r)
{
	const struct legal_doc *docs;
	size_t n;
	bool pending[64];
	char accepted_at[64][32];
	struct json_object *o, *pend, *acc;

	if (!current_or_reply(r, &docs, &n))
		return;
	if (n > 64 ||
	    legal_pending(r->db, r->arena, r->who->user_id, docs, n, pending, accepted_at) != 0) {
		reply_db_error(r);
		return;
	}
	pend = json_object_new_array();
	acc = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "type", json_object_new_string(docs[i].type));
		json_object_object_add(d, "version", json_object_new_string(docs[i].version));
		if (pending[i] && !r->who->service) {
			json_object_object_add(d, "effectiveAt",
			    json_object_new_string(docs[i].effective_at));
			json_object_array_add(pend, d);
		} else if (!pending[i]) {
			json_object_object_add(d, "acceptedAt",
			    json_object_new_string(accepted_at[i]));
			json_object_array_add(acc, d);
		} else {
			json_object_put(d);
		}
	}
	o = json_object_new_object();
	json_object_object_add(o, "enforced", json_object_new_boolean(r->cfg->legal_enforce));
	json_object_object_add(o, "pending", pend);
	json_object_object_add(o, "accepted", acc);
	reply_json(r, 200, o);
}

const struct field_spec legal_accept_spec[] = {
    {"type", FT_STRING, FIELD_REQUIRED, 1, LEGAL_TYPE_MAX, NULL},
    {"version", FT_STRING, FIELD_REQUIRED, 1, LEGAL_VERSION_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_legal_accept(struct req *r)
{
	const struct legal_doc *docs, *doc;
	struct audit_actor a;
	char accepted_at[32];
	const char *type, *version;
	struct db_rows rows;
	struct json_object *o;
	size_t n;

	if (!req_validate_or_reply(r, legal_accept_spec) || !current_or_reply(r, &docs, &n))
		return;
	type = json_get_str(r->json, "type", "");
	version = json_get_str(r->json, "version", "");
	doc = legal_type_valid(type) ? legal_current_of(docs, n, type) : NULL;
	if (!doc || strcmp(doc->version, version) != 0) {
		/* A version that exists but is not current is a conflict, not a 404. */
		if (legal_type_valid(type) && legal_version_valid(version)) {
			struct db_param p[] = {DBP_STR(type), DBP_STR(version)};

			if (db_query(r->db, r->arena,
			        "SELECT 1 FROM legal_documents"
			        " WHERE type = ? AND version = ?",
			        p, 2, &rows) != 0) {
				reply_db_error(r);
				return;
			}
			if (rows.nrows == 1) {
				reply_error(r, E_CONFLICT,
				    "only the current version can be accepted", NULL);
				return;
			}
		}
		reply_error(r, E_NOT_FOUND, "no such document version", NULL);
		return;
	}
	req_actor(r, &a);
	if (legal_accept(r->db, r->arena, &a, r->user_agent, r->who->org_id, doc, accepted_at) !=
	    0) {
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string(doc->type));
	json_object_object_add(o, "version", json_object_new_string(doc->version));
	json_object_object_add(o, "acceptedAt", json_object_new_string(accepted_at));
	reply_json(r, 200, o);
}

const struct field_spec legal_report_query[] = {
    {"type", FT_STRING, FIELD_REQUIRED, 1, LEGAL_TYPE_MAX, NULL},
    {"version", FT_STRING, 0, 1, LEGAL_VERSION_MAX, NULL},
    PAGE_QUERY,
    {NULL, 0, 0, 0, 0, NULL},
};

void api_legal_report(struct req *r)
{
	const char *type = req_query(r, "type");
	struct page pg;
	struct opsd_uuid after;
	struct json_object *o;
	enum legal_report_rc rc;

	if (!type || !legal_type_valid(type)) {
		reply_field_error(r, "type", "required: a document type");
		return;
	}
	if (!page_or_reply(r, "legal_report", &pg))
		return;
	if (pg.has_after && !uuid_parse(pg.after, &after)) {
		reply_field_error(r, "cursor", "not a cursor of this list");
		return;
	}
	rc = legal_report(r->db, r->arena, type, req_query(r, "version"), pg.limit,
	    pg.has_after ? &after : NULL, &o);
	if (rc != LEGAL_REPORT_OK) {
		reply_err(r, &legal_report_errors[rc], NULL);
		return;
	}
	reply_json(r, 200, o);
}
