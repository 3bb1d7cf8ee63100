/* Reading and verifying the audit log (doc/architecture.md "The audit log"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "api/api.h"
#include "api/specs.h"
#include "core/audit.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/util.h"

#define AUDIT_COLUMNS                                                                              \
	"seq, id, occurred_at, actor_id, actor_label, org_id, action,"                             \
	" target_type, target_id, ip, request_id, payload"

static struct json_object *event_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 1));
	json_object_object_add(o, "occurredAt", dbv_json_time(rows, i, 2));
	json_object_object_add(o, "actorId", dbv_json_uuid(rows, i, 3));
	json_object_object_add(o, "actorLabel", dbv_json_str(rows, i, 4));
	json_object_object_add(o, "orgId", dbv_json_uuid(rows, i, 5));
	json_object_object_add(o, "action", dbv_json_str(rows, i, 6));
	json_object_object_add(o, "targetType", dbv_json_str(rows, i, 7));
	json_object_object_add(o, "targetId", dbv_json_str(rows, i, 8));
	json_object_object_add(o, "ip", dbv_json_str(rows, i, 9));
	json_object_object_add(o, "requestId", dbv_json_str(rows, i, 10));
	json_object_object_add(o, "payload", dbv_json_parse(rows, i, 11));
	return o;
}

/* A filter is a UUID, a time or a plain value; each one present adds its
 * fixed SQL fragment and one parameter. */
enum filter_kind { F_TEXT, F_UUID, F_TIME };
static const struct audit_filter {
	const char *param;
	enum filter_kind kind;
	const char *sql;
} filters[] = {
    {"action", F_TEXT, " AND action = ?"},
    {"actorId", F_UUID, " AND actor_id = ?"},
    {"orgId", F_UUID, " AND org_id = ?"},
    {"since", F_TIME, " AND occurred_at >= ?"},
    {"until", F_TIME, " AND occurred_at < ?"},
};

const struct field_spec audit_query[] = {
    {"action", FT_STRING, 0, 1, 64, NULL},
    {"actorId", FT_UUID, 0, 0, 0, NULL},
    {"orgId", FT_UUID, 0, 0, 0, NULL},
    {"since", FT_TIME, 0, 0, 0, NULL},
    {"until", FT_TIME, 0, 0, 0, NULL},
    PAGE_QUERY,
    {NULL, 0, 0, 0, 0, NULL},
};

void api_audit_list(struct req *r)
{
	struct db_param p[countof(filters) + 2];
	struct opsd_uuid uuids[countof(filters)];
	char times[countof(filters)][DB_TIME_LEN + 1];
	char sql[1024] = "SELECT " AUDIT_COLUMNS " FROM audit_events WHERE 1 = 1";
	size_t np = 0;
	struct page pg;
	struct db_rows rows;
	struct json_object *items;
	size_t n;

	if (!page_or_reply(r, "audit", &pg))
		return;
	for (size_t i = 0; i < countof(filters); i++) {
		const struct audit_filter *f = &filters[i];
		const char *v = req_query(r, f->param);
		int64_t ms;

		if (!v)
			continue;
		if (f->kind == F_UUID && !uuid_parse(v, &uuids[i])) {
			reply_field_error(r, f->param, "must be a UUID");
			return;
		}
		if (f->kind == F_TIME && !parse_rfc3339(v, &ms)) {
			reply_field_error(r, f->param, "must be an RFC 3339 time");
			return;
		}
		if (f->kind == F_TEXT && (strlen(v) == 0 || strlen(v) > 64)) {
			reply_field_error(r, f->param, "must be 1 to 64 characters");
			return;
		}
		if (f->kind == F_TIME)
			db_time_from_ms(ms, times[i]);
		p[np++] = f->kind == F_UUID   ? DBP_BLOB(uuids[i].b, 16)
		          : f->kind == F_TIME ? DBP_STR(times[i])
		                              : DBP_STR(v);
		strncat(sql, f->sql, sizeof(sql) - strlen(sql) - 1);
	}
	if (pg.has_after) {
		char *end;
		long long seq = strtoll(pg.after, &end, 10);

		if (*end || seq <= 0) {
			reply_field_error(r, "cursor", "not a cursor of this list");
			return;
		}
		p[np++] = DBP_I64(seq);
		strncat(sql, " AND seq < ?", sizeof(sql) - strlen(sql) - 1);
	}
	p[np++] = DBP_I64(pg.limit + 1);
	strncat(sql, " ORDER BY seq DESC LIMIT ?", sizeof(sql) - strlen(sql) - 1);
	if (db_query(r->db, r->arena, sql, p, np, &rows) != 0) {
		reply_db_error(r);
		return;
	}
	items = json_object_new_array();
	n = rows.nrows > (size_t)pg.limit ? (size_t)pg.limit : rows.nrows;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(items, event_json(&rows, i));
	reply_page(r, items, rows.nrows > n, "audit", n > 0 ? rows.val[n - 1][0] : NULL);
}

void api_audit_verify(struct req *r)
{
	struct audit_verify_result res;
	struct json_object *o;
	uint8_t key[32];
	char key_id[AUDIT_KEY_ID_LEN + 1];
	bool have_key = audit_anchor_key(r->cfg, key, key_id);
	int rc = audit_verify(r->db, have_key ? key : NULL, &res);

	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0) {
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(res.ok));
	json_object_object_add(o, "checked", json_object_new_int64((int64_t)res.checked));
	if (!res.ok) {
		json_object_object_add(o, "firstBrokenId",
		    res.first_broken_id[0] ? json_object_new_string(res.first_broken_id) : NULL);
		json_object_object_add(o, "firstBrokenSeq",
		    json_object_new_int64(res.first_broken_seq));
		json_object_object_add(o, "reason", json_object_new_string(res.reason));
	}
	reply_json(r, 200, o);
}
