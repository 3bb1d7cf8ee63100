/* Reading and verifying the audit log (doc/architecture.md "The audit log"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/audit_query.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/buf.h"
#include "lib/csv.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

/* The parameters GET /audit takes besides the filters of core/audit_query.h. */
static const char *const paging_params[] = {"limit", "cursor", "format"};

static bool known_param(const char *name)
{
	for (size_t i = 0; i < countof(paging_params); i++)
		if (strcmp(name, paging_params[i]) == 0)
			return true;
	return audit_filter_find(name) != AF__MAX;
}

/* A name that can be echoed in an error as it is. */
static bool plain_name(const char *s)
{
	return *s &&
	       s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")] ==
	           '\0';
}

/* A misspelt filter (actorid=, ip_range=) must not widen an investigator's
 * search to everything silently: every parameter is one the route takes
 * (known), given once. */
static bool params_known_or_reply(struct req *r, bool (*known)(const char *name), const char *why)
{
	char seen[countof(paging_params) + AF__MAX][16];
	size_t nseen = 0;

	for (const char *p = r->query ? r->query : ""; *p;) {
		size_t len = strcspn(p, "&"), klen = strcspn(p, "=&");
		char key[64];

		if (len > 0) {
			bool decoded = pct_decode(p, klen, true, key, sizeof(key));

			if (!decoded || !known(key)) {
				reply_field_error(r, decoded && plain_name(key) ? key : "query",
				    why);
				return false;
			}
			for (size_t i = 0; i < nseen; i++)
				if (strcmp(seen[i], key) == 0) {
					reply_field_error(r, key, "given twice");
					return false;
				}
			if (nseen < countof(seen))
				str_copy(seen[nseen++], key, sizeof(seen[0]));
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return true;
}

static bool filters_or_reply(struct req *r, struct audit_query *q)
{
	enum audit_filter bad;
	const char *reason;
	char why[200];

	for (int f = 0; f < AF__MAX; f++) {
		const char *name = audit_filter_names[f];
		const char *v = req_query(r, name);

		if (!v && req_query_has(r, name)) {
			reply_field_error(r, name, "malformed percent-encoding");
			return false;
		}
		if (v && !audit_query_set(q, (enum audit_filter)f, v, why, sizeof(why))) {
			reply_field_error(r, name, why);
			return false;
		}
	}
	if (!audit_query_check(q, &bad, &reason)) {
		reply_field_error(r, audit_filter_names[bad], reason);
		return false;
	}
	return true;
}

struct csv_out {
	struct req *r;
	struct buf b;
	bool begun;
};

static void csv_begin(struct csv_out *c)
{
	char disp[80], now[32];

	format_rfc3339(now_ms(), now);
	now[19] = '\0'; /* to the second */
	for (char *p = now; *p; p++)
		if (*p == ':')
			*p = '-';
	snprintf(disp, sizeof(disp), "attachment; filename=\"audit-%sZ.csv\"", now);
	reply_header(c->r, "Content-Disposition", disp);
	reply_stream_begin(c->r, 200, "text/csv; charset=utf-8; header=present");
	buf_reset(&c->b);
	csv_names(&c->b, audit_event_fields, AUDIT_EVENT_FIELDS);
	reply_stream_write(c->r, c->b.data, c->b.len);
	c->begun = true;
}

static bool csv_event(const struct db_rows *rows, size_t i, void *ctx)
{
	struct csv_out *c = ctx;
	struct json_object *e = audit_event_json(rows, i);

	if (!c->begun)
		csv_begin(c);
	buf_reset(&c->b);
	csv_row(&c->b, e);
	json_object_put(e);
	reply_stream_write(c->r, c->b.data, c->b.len);
	return true;
}

/* The matching events as RFC 4180 CSV for an incident report, streamed in
 * chunks in constant memory; the status is sent with the first row, so a
 * database error before it is still a 503/500 envelope. */
static void audit_csv(struct req *r, const struct audit_query *q)
{
	struct csv_out c = {.r = r};
	long long n;

	buf_init(&c.b);
	n = audit_query_each(r->db, q, q->limit, csv_event, &c);
	if (n < 0 && !c.begun)
		reply_db_error(r);
	else if (n < 0) /* the status is gone: end the body unfinished, log why */
		log_msg(LL_ERROR, "audit_csv_failed", "%s", db_error(r->db));
	else if (!c.begun)
		csv_begin(&c);
	buf_free(&c.b);
}

static const char *const audit_formats[] = {"json", "csv", NULL};

/* What GET /audit reads, for the API document: the filters of
 * core/audit_query.h (audit_query_set checks their values), then paging
 * (with format=csv, limit caps the rows) and the format. */
const struct field_spec audit_list_query[] = {
    {"action", FT_STRING, 0, 1, AUDIT_ACTION_MAX, NULL},
    {"actor", FT_STRING, 0, 1, AUDIT_TEXT_MAX, NULL},
    {"actorId", FT_UUID, 0, 0, 0, NULL},
    {"orgId", FT_UUID, 0, 0, 0, NULL},
    {"targetType", FT_STRING, 0, 1, AUDIT_TARGET_TYPE_MAX, NULL},
    {"targetId", FT_STRING, 0, 1, AUDIT_TEXT_MAX, NULL},
    {"about", FT_UUID, 0, 0, 0, NULL},
    {"ip", FT_STRING, 0, 1, 64, NULL},
    {"requestId", FT_STRING, 0, 1, AUDIT_TEXT_MAX, NULL},
    {"since", FT_TIME, 0, 0, 0, NULL},
    {"until", FT_TIME, 0, 0, 0, NULL},
    {"limit", FT_INT, 0, 1, AUDIT_CSV_MAX, NULL},
    {"cursor", FT_STRING, 0, 0, 0, NULL},
    {"format", FT_ENUM, 0, 0, 0, audit_formats},
    {NULL, 0, 0, 0, 0, NULL},
};

/* GET /audit: the filters of core/audit_query.h (all must hold), newest
 * first, keyset pages; format=csv for an incident report. Reading the log
 * is not itself audited. */
void api_audit_list(struct req *r)
{
	const char *format = req_query(r, "format");
	bool csv = format && strcmp(format, "csv") == 0;
	struct audit_query q;
	struct db_rows rows;
	struct json_object *items;
	const char *bad, *why;
	size_t n;

	audit_query_init(&q);
	if (!params_known_or_reply(r, known_param, "not a parameter of GET /audit") ||
	    !filters_or_reply(r, &q))
		return;
	if (format && !csv && strcmp(format, "json") != 0) {
		reply_field_error(r, "format", "must be json or csv");
		return;
	}
	if (!audit_query_paging(&q, csv, req_query(r, "limit"), req_query(r, "cursor"), &bad,
	        &why)) {
		reply_field_error(r, bad, why);
		return;
	}
	if (csv) {
		audit_csv(r, &q);
		return;
	}
	q.limit++;
	if (audit_query_run(r->db, r->arena, &q, &rows) != 0) {
		reply_db_error(r);
		return;
	}
	items = json_object_new_array();
	n = rows.nrows >= (size_t)q.limit ? (size_t)q.limit - 1 : rows.nrows;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(items, audit_event_json(&rows, i));
	reply_page(r, items, rows.nrows > n, AUDIT_CURSOR_KIND, n > 0 ? rows.val[n - 1][0] : NULL);
}

/* ---- GET /audit/verify ---------------------------------------------------- */

#define VERIFY_LIMIT_DEFAULT 100000
#define VERIFY_LIMIT_MAX 1000000
/* A call stops after this share of OPSD_REQUEST_TIMEOUT, and never later
 * than VERIFY_CALL_MAX_MS: the worker is free again well before nginx or a
 * client gives up, and the cursor continues the run. */
#define VERIFY_CALL_MAX_MS 10000

static const char *const verify_from[] = {"start", "checkpoint", NULL};

const struct field_spec audit_verify_query[] = {
    {"from", FT_ENUM, 0, 0, 0, verify_from},
    {"cursor", FT_STRING, 0, 0, 0, NULL},
    {"limit", FT_INT, 0, 1, VERIFY_LIMIT_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static bool verify_param(const char *name)
{
	for (const struct field_spec *f = audit_verify_query; f->name; f++)
		if (strcmp(name, f->name) == 0)
			return true;
	return false;
}

/* The options of one call from its query, or false with the 400 sent. */
static bool verify_opts_or_reply(struct req *r, struct audit_verify_opts *o,
    const struct audit_keys *cursor_keys, struct audit_verify_pos *resume)
{
	const char *from = req_query(r, "from"), *cursor = req_query(r, "cursor");
	const char *limit = req_query(r, "limit"), *bad;
	long long n = VERIFY_LIMIT_DEFAULT;
	int64_t budget =
	    r->cfg->request_timeout > 0 ? r->cfg->request_timeout * 1000LL / 3 : VERIFY_CALL_MAX_MS;

	if (!params_known_or_reply(r, verify_param, "not a parameter of GET /audit/verify"))
		return false;
	for (const struct field_spec *f = audit_verify_query; f->name; f++)
		if (!req_query(r, f->name) && req_query_has(r, f->name)) {
			reply_field_error(r, f->name, "malformed percent-encoding");
			return false;
		}
	if (from && strcmp(from, "start") != 0 && strcmp(from, "checkpoint") != 0) {
		reply_field_error(r, "from", "must be start or checkpoint");
		return false;
	}
	if (from && cursor) {
		reply_field_error(r, "from", "not with cursor: the cursor continues its run");
		return false;
	}
	if (limit && !parse_ll_range(limit, 1, VERIFY_LIMIT_MAX, &n)) {
		reply_field_error(r, "limit", "must be a whole number from 1 to 1000000");
		return false;
	}
	if (cursor && (bad = audit_verify_cursor_parse(cursor_keys, now_ms() / 1000, cursor,
	                   resume)) != NULL) {
		reply_field_error(r, "cursor", bad);
		return false;
	}
	o->from_checkpoint = from && strcmp(from, "checkpoint") == 0;
	o->resume = cursor ? resume : NULL;
	o->max_events = (uint64_t)n;
	o->deadline_ms = now_ms() + (budget < VERIFY_CALL_MAX_MS ? budget : VERIFY_CALL_MAX_MS);
	return true;
}

static struct json_object *checkpoint_json(const struct audit_checkpoint *cp)
{
	struct json_object *o = json_object_new_object();
	char at[DBV_RFC3339_LEN + 1];

	json_object_object_add(o, "seq", json_object_new_int64(cp->seq));
	json_object_object_add(o, "verifiedAt",
	    dbv_rfc3339(cp->verified_at, at) ? json_object_new_string(at) : NULL);
	json_object_object_add(o, "verifiedBy", json_object_new_string(cp->verified_by));
	return o;
}

static struct json_object *verify_json(const struct audit_verify_result *res,
    const struct audit_keys *cursor_keys)
{
	struct json_object *o = json_object_new_object();
	char cursor[AUDIT_VERIFY_CURSOR_MAX];

	json_object_object_add(o, "ok", json_object_new_boolean(res->ok));
	json_object_object_add(o, "checked", json_object_new_int64((int64_t)res->checked));
	json_object_object_add(o, "fromSeq", json_object_new_int64(res->from_seq));
	json_object_object_add(o, "toSeq", json_object_new_int64(res->to_seq));
	json_object_object_add(o, "more", json_object_new_boolean(res->ok && res->more));
	if (res->ok && res->more)
		audit_verify_cursor(cursor_keys, now_ms() / 1000, &res->pos, cursor);
	json_object_object_add(o, "cursor",
	    res->ok && res->more ? json_object_new_string(cursor) : NULL);
	json_object_object_add(o, "checkpoint",
	    res->from_checkpoint ? checkpoint_json(&res->checkpoint) : NULL);
	if (!res->ok) {
		json_object_object_add(o, "firstBrokenId",
		    res->first_broken_id[0] ? json_object_new_string(res->first_broken_id) : NULL);
		json_object_object_add(o, "firstBrokenSeq",
		    json_object_new_int64(res->first_broken_seq));
		json_object_object_add(o, "reason", json_object_new_string(res->reason));
	}
	return o;
}

/* GET /audit/verify: the whole chain (from=start, the default) or what was
 * appended since the newest checkpoint (from=checkpoint), at most `limit`
 * events and a few seconds per call; `more` and `cursor` continue the run
 * (checked counts the whole run). A read: it records no checkpoint (opsctl
 * audit verify does). */
void api_audit_verify(struct req *r)
{
	struct audit_verify_result res;
	struct audit_verify_pos resume;
	struct audit_keys keys, cursor_keys;
	struct audit_verify_opts o = {.keys = &keys};

	audit_anchor_keys(r->cfg, &keys);
	audit_verify_cursor_keys(r->cfg, &cursor_keys);
	if (!verify_opts_or_reply(r, &o, &cursor_keys, &resume))
		goto out;
	if (audit_verify_run(r->db, &o, &res) != 0) {
		reply_db_error(r);
		goto out;
	}
	reply_json(r, 200, verify_json(&res, &cursor_keys));
out:
	audit_keys_wipe(&cursor_keys);
	audit_keys_wipe(&keys);
}
