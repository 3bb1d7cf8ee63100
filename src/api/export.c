/* Runbook 2: exports (a subject's record; an org's records streamed as JSON
 * or CSV in constant memory) and batch archiving in chunked transactions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "lib/arena.h"
#include "core/audit.h"
#include "core/auth.h"
#include "lib/buf.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "core/entity.h"
#include "core/legal_hold.h"
#include "core/tenant_db.h"
#include "lib/json.h"
#include "lib/log.h"
#include "core/users.h"
#include "lib/util.h"

#define EXPORT_CHUNK 1000
#define ARCHIVE_CHUNK 500
#define MAX_IDS 1000

static void audit_export(struct req *r, const struct entity *e, const char *org, const char *id,
    long long n, const char *format)
{
	struct audit_actor a;
	struct json_object *payload = json_object_new_object();

	req_actor(r, &a);
	json_object_object_add(payload, "entity", json_object_new_string(e->name));
	json_object_object_add(payload, "count", json_object_new_int64(n));
	json_object_object_add(payload, "format", json_object_new_string(format));
	/* audit_append_tx consumes the payload. */
	if (audit_append_tx(r->db, &a, AA_COMPLIANCE_EXPORTED, org, e->name, id, payload) != 0)
		log_msg(LL_ERROR, "audit_failed", "compliance.exported: %s", db_error(r->db));
}

/* ---- a subject's record (DSR access) ----------------------------------- */

/* Any entity of the entity table: its declared columns (stripped ones as
 * stored, i.e. redacted) and its state; never a column the table does not
 * declare, such as a user's password hash. */
void api_compliance_export(struct req *r)
{
	const struct entity *e = entity_find(req_query(r, "entity"));
	const char *id = req_query(r, "id");
	struct opsd_uuid u;
	char sql[512], now[32];
	struct db_rows rows;
	struct db_param p[1];
	struct json_object *o, *rec;
	struct db *d;

	if (!e) {
		reply_choice_error(r, "entity", entity_choices(false));
		return;
	}
	if (!id || !uuid_parse(id, &u)) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	if (!(d = record_db_or_reply(r, e, &u)))
		return;
	p[0] = DBP_BLOB(u.b, 16);
	if (db_query(d, r->arena, tenant_select_sql(e, "WHERE id = ?", sql, sizeof(sql)), p, 1,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (rows.nrows != 1) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return;
	}
	rec = tenant_record_json(e, &rows, 0);
	{
		char org[UUID_STR_LEN + 1], subject[UUID_STR_LEN + 1];

		uuid_format(&u, subject);
		audit_export(r, e, dbv_uuid(rows.val[0][1], rows.len[0][1], org) ? org : NULL,
		    subject, 1, "json");
	}
	format_rfc3339(now_ms(), now);
	o = json_object_new_object();
	json_object_object_add(o, "entity", json_object_new_string(e->name));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "exportedAt", json_object_new_string(now));
	json_object_object_add(o, "record", rec);
	reply_json(r, 200, o);
}

/* ---- an org's records, streamed ---------------------------------------- */

/* RFC 4180: quoted when it holds a comma, a quote, CR or LF; quotes doubled. */
static void csv_field(struct buf *b, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

static void csv_row(struct buf *b, struct json_object *rec)
{
	bool first = true;

	json_object_object_foreach (rec, key, val) {
		(void)key;
		if (!first)
			buf_putc(b, ',');
		first = false;
		if (val)
			csv_field(b, json_object_get_string(val));
	}
	buf_puts(b, "\r\n");
}

static void csv_header(struct buf *b, struct json_object *rec)
{
	bool first = true;

	json_object_object_foreach (rec, key, val) {
		(void)val;
		if (!first)
			buf_putc(b, ',');
		first = false;
		csv_field(b, key);
	}
	buf_puts(b, "\r\n");
}

void api_export(struct req *r)
{
	const struct entity *e = entity_find(req_param(r, "entity"));
	const char *format = req_query(r, "format");
	struct opsd_uuid org, after;
	struct tenant_org t;
	struct arena *chunk;
	struct buf out;
	char sql[512], disp[160];
	bool csv, more = true, have_after = false, header = false;
	long long n = 0;

	if (!e || !e->crud) {
		reply_choice_error(r, "entity", entity_choices(true));
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
	tenant_select_sql(e, "WHERE org_id = ? AND (? = 0 OR id > ?) ORDER BY id LIMIT ?", sql,
	    sizeof(sql));
	/* Keyset pages of EXPORT_CHUNK rows, each in a fresh arena: memory does
	 * not grow with the size of the org. */
	while (more) {
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(org.b, 16), DBP_I64(have_after),
		    have_after ? DBP_BLOB(after.b, 16) : DBP_NULL, DBP_I64(EXPORT_CHUNK)};

		arena_reset(chunk);
		if (db_query(t.db, chunk, sql, p, countof(p), &rows) != 0) {
			/* The status is gone already: end the body unfinished so the
			 * client sees a broken document, and log why. */
			log_msg(LL_ERROR, "export_failed", "%s", db_error(t.db));
			break;
		}
		for (size_t i = 0; i < rows.nrows; i++) {
			struct json_object *rec = tenant_record_json(e, &rows, i);

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
		if (rows.nrows > 0) {
			memcpy(after.b, rows.val[rows.nrows - 1][0], 16);
			have_after = true;
		}
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

/* ---- batch archive ----------------------------------------------------- */

static struct field_spec archive_spec[] = {
    ENTITY_FIELD,
    {"ids", FT_STRING_ARRAY, 0, 1, MAX_IDS, NULL},
    {"olderThan", FT_TIME, 0, 0, 0, NULL},
    {"orgId", FT_UUID, 0, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"dryRun", FT_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

struct archive_tx {
	struct req *r;
	struct arena *a; /* per-chunk scratch: the request's arena holds its params */
	const struct entity *e;
	bool dry;
	const char *reason;
	struct tenant_tx *tx; /* the tenant write in hand (tenant entities), else NULL */
	/* olderThan mode */
	char before[DB_TIME_LEN + 1];
	bool by_org, have_after, more;
	struct opsd_uuid org, after;
	long long counts[5]; /* archived, already_archived, legal_hold, not_found, org_migrating */
};

enum { A_ARCHIVED, A_ALREADY, A_HELD, A_NOT_FOUND, A_MIGRATING };
static const char *const archive_results[] = {"archived", "already_archived", "legal_hold",
    "not_found", "org_migrating"};

/* Archives one row through the legal-hold guard; the outcome index. d is
 * where the row lives, control where its org is. */
static int archive_one(struct db *d, struct db *control, struct archive_tx *x, const uint8_t id[16])
{
	char sql[200];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id, 16)};
	bool held;
	int rc = legal_hold_guard(d, control, x->a, x->e, id, &held);

	if (rc < 0)
		return -1;
	if (rc > 0)
		return A_NOT_FOUND;
	if (held)
		return A_HELD;
	snprintf(sql, sizeof(sql), "SELECT archived_at IS NOT NULL FROM %s WHERE id = ?",
	    x->e->table);
	if (db_query(d, x->a, sql, p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && strcmp(rows.val[0][0], "1") == 0)
		return A_ALREADY;
	if (!x->dry) {
		struct db_param u[] = {DBP_STR(x->reason), DBP_BLOB(id, 16)};

		snprintf(sql, sizeof(sql),
		    "UPDATE %s SET archived_at = NOW(3), archived_reason = ? WHERE id = ?",
		    x->e->table);
		if (db_exec(d, sql, u, 2, NULL) != 0)
			return -1;
		if (x->tx && tenant_changelog_add(x->tx, x->e, id, "update") != 0)
			return -1;
		/* An archived account is over: disabled, every session and token
		 * revoked, as when it is stripped or deleted. */
		if (strcmp(x->e->name, "users") == 0 && user_lock_out(d, id) != 0)
			return -1;
	}
	return A_ARCHIVED;
}

/* compliance.archived: entity, counts, dry run (ids when given), never
 * values. complete is false when a later chunk failed after earlier ones
 * had committed. */
static struct json_object *archive_payload(const struct archive_tx *x, const long long *counts,
    struct json_object *ids, bool complete)
{
	struct json_object *payload = json_object_new_object(), *c = json_object_new_object();

	for (int i = 0; i < 5; i++)
		if (i < 4 || counts[i])
			json_object_object_add(c, archive_results[i],
			    json_object_new_int64(counts[i]));
	json_object_object_add(payload, "entity", json_object_new_string(x->e->name));
	if (ids)
		json_object_object_add(payload, "ids", ids);
	json_object_object_add(payload, "counts", c);
	json_object_object_add(payload, "dryRun", json_object_new_boolean(x->dry));
	if (!complete)
		json_object_object_add(payload, "complete", json_object_new_boolean(0));
	return payload;
}

/* ---- by ids: one group per org (id_batch) ------------------------------- */

static int archive_ids(struct db *d, struct db *control, struct id_batch *b)
{
	struct archive_tx *x = b->ctx;
	long long counts[5] = {0};
	struct audit_actor a;

	x->tx = b->tx;
	for (size_t k = 0; k < b->nidx; k++) {
		int what = archive_one(d, control, x, b->ids[b->idx[k]].b);

		if (what < 0)
			return -1;
		counts[what]++;
		b->what[b->idx[k]] = archive_results[what];
	}
	req_actor(b->r, &a);
	return audit_append(control, &a, AA_COMPLIANCE_ARCHIVED, b->org, x->e->name, NULL,
	    archive_payload(x, counts, id_batch_group_ids(b), true));
}

/* ---- by age: chunked transactions --------------------------------------- */

/* One chunk of the olderThan selection: rows of x->org when by_org. */
static int archive_chunk(struct db *d, struct db *control, struct archive_tx *x)
{
	long long counts[5] = {0};
	char sql[320];
	struct db_rows rows;
	struct db_param p[] = {DBP_STR(x->before), DBP_I64(x->by_org),
	    x->by_org ? DBP_BLOB(x->org.b, 16) : DBP_NULL, DBP_I64(x->have_after),
	    x->have_after ? DBP_BLOB(x->after.b, 16) : DBP_NULL, DBP_I64(ARCHIVE_CHUNK)};

	snprintf(sql, sizeof(sql),
	    "SELECT id FROM %s WHERE created_at < ? AND archived_at IS NULL"
	    " AND (? = 0 OR %s = ?) AND (? = 0 OR id > ?) ORDER BY id LIMIT ?",
	    x->e->table, x->e->org_column);
	arena_reset(x->a);
	if (db_query(d, x->a, sql, p, countof(p), &rows) != 0)
		return -1;
	for (size_t i = 0; i < rows.nrows; i++) {
		int what = archive_one(d, control, x, (const uint8_t *)rows.val[i][0]);

		if (what < 0)
			return -1;
		counts[what]++;
	}
	for (int i = 0; i < 5; i++)
		x->counts[i] += counts[i];
	x->more = rows.nrows == ARCHIVE_CHUNK;
	if (rows.nrows > 0) {
		memcpy(x->after.b, rows.val[rows.nrows - 1][0], 16);
		x->have_after = true;
	}
	return 0;
}

/* db_tx and tenant_write may run a transaction again: the chunk's cursor
 * and counts are taken back first. */
struct chunk_try {
	struct archive_tx *x;
	struct archive_tx saved;
};

static int control_chunk_fn(struct db *d, void *arg)
{
	struct chunk_try *t = arg;

	*t->x = t->saved;
	t->x->tx = NULL;
	return archive_chunk(d, d, t->x);
}

static int tenant_chunk_fn(struct tenant_tx *tx, void *arg)
{
	struct chunk_try *t = arg;

	*t->x = t->saved;
	t->x->tx = tx;
	return archive_chunk(tx->tdb, tx->control, t->x);
}

/* Every chunk of one org (tenant entities, through its tenant writes) or
 * of the control table. 0, 1 when the org's writes are frozen, -1. */
static int archive_all_chunks(struct req *r, struct archive_tx *x)
{
	x->more = true;
	x->have_after = false;
	while (x->more) {
		struct chunk_try t = {x, *x};
		enum tenant_rc rc;

		if (!x->e->tenant) {
			if (db_tx(r->db, control_chunk_fn, &t) != 0)
				return -1;
			continue;
		}
		rc = tenant_write(r->db, r->cfg, r->arena, x->org.b, tenant_chunk_fn, &t);
		if (rc == TENANT_FROZEN)
			return 1;
		if (rc == TENANT_NO_ORG)
			return 0; /* the org went away meanwhile */
		if (rc != TENANT_OK)
			return -1;
	}
	return 0;
}

/* Tenant entities by age: org by org (only orgId when given), each in its
 * own database. A frozen org's rows are counted org_migrating, untouched. */
static int archive_by_age(struct req *r, struct archive_tx *x)
{
	struct db_rows orgs;
	struct opsd_uuid after = {0};

	if (!x->e->tenant || x->by_org) {
		int rc = archive_all_chunks(r, x);

		if (rc == 1)
			x->counts[A_MIGRATING]++;
		return rc < 0 ? -1 : 0;
	}
	x->by_org = true;
	do {
		struct db_param p[] = {DBP_BLOB(after.b, 16)};

		arena_reset(x->a);
		if (db_query(r->db, r->arena,
		        "SELECT id FROM orgs WHERE id > ? ORDER BY id LIMIT 500", p, 1, &orgs) != 0)
			return -1;
		for (size_t i = 0; i < orgs.nrows; i++) {
			int rc;

			memcpy(x->org.b, orgs.val[i][0], 16);
			if ((rc = archive_all_chunks(r, x)) < 0)
				return -1;
			if (rc == 1)
				x->counts[A_MIGRATING]++;
		}
		if (orgs.nrows)
			memcpy(after.b, orgs.val[orgs.nrows - 1][0], 16);
	} while (orgs.nrows == 500);
	return 0;
}

static void archive_run(struct req *r, struct archive_tx *xp);

void api_compliance_archive(struct req *r)
{
	struct archive_tx x = {.r = r, .more = true};

	if (!req_validate_or_reply(r, entity_spec(archive_spec)))
		return;
	if (!(x.a = arena_new(64 * 1024))) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return;
	}
	archive_run(r, &x);
	arena_free(x.a);
}

static struct json_object *counts_json(const long long *counts)
{
	struct json_object *c = json_object_new_object();

	for (int i = 0; i < 5; i++)
		if (i < 4 || counts[i])
			json_object_object_add(c, archive_results[i],
			    json_object_new_int64(counts[i]));
	return c;
}

static void archive_run(struct req *r, struct archive_tx *xp)
{
	struct archive_tx x = *xp;
	struct json_object *ids, *o;
	const char *older, *org;
	struct audit_actor a;
	int64_t ms;

	x.e = entity_find(json_get_str(r->json, "entity", ""));
	x.dry = json_get_bool(r->json, "dryRun", false);
	x.reason = json_get_str(r->json, "reason", "");
	ids = json_object_object_get(r->json, "ids");
	older = json_get_str(r->json, "olderThan", NULL);
	org = json_get_str(r->json, "orgId", NULL);
	if (!ids == !older) {
		reply_field_error(r, ids ? "olderThan" : "ids",
		    "give exactly one of ids and olderThan");
		return;
	}
	if (org && (ids || strcmp(x.e->org_column, "org_id") != 0)) {
		reply_field_error(r, "orgId",
		    "only with olderThan, for records that belong to an org");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "dryRun", json_object_new_boolean(x.dry));
	if (ids) {
		struct id_batch b = {.r = r, .e = x.e, .ctx = &x};
		struct opsd_uuid *u;

		b.n = json_object_array_length(ids);
		u = arena_calloc(r->arena, b.n ? b.n : 1, sizeof(*u));
		for (size_t i = 0; u && i < b.n; i++)
			if (!uuid_parse(json_object_get_string(json_object_array_get_idx(ids, i)),
			        &u[i])) {
				json_object_put(o);
				reply_field_error(r, "ids", "every id must be a UUID");
				return;
			}
		b.ids = u;
		if (!u || !id_batch_run(&b, archive_ids)) {
			json_object_put(o);
			if (!u)
				reply_error(r, E_INTERNAL, "out of memory", NULL);
			return;
		}
		json_object_object_add(o, "counts", counts_json(x.counts));
		id_batch_reply(&b, o);
		return;
	}
	parse_rfc3339(older, &ms);
	db_time_from_ms(ms, x.before);
	x.by_org = org && uuid_parse(org, &x.org);
	req_actor(r, &a);
	/* Chunked transactions (SPEC §8): each commits what it archived. */
	if (archive_by_age(r, &x) != 0) {
		/* Earlier chunks are committed: they must not go unaudited. */
		if (x.counts[A_ARCHIVED] > 0 && !x.dry &&
		    audit_append_tx(r->db, &a, AA_COMPLIANCE_ARCHIVED, org, x.e->name, NULL,
		        archive_payload(&x, x.counts, NULL, false)) != 0)
			log_msg(LL_ERROR, "audit_failed", "compliance.archived (partial)");
		json_object_put(o);
		reply_db_error(r);
		return;
	}
	if (audit_append_tx(r->db, &a, AA_COMPLIANCE_ARCHIVED, org, x.e->name, NULL,
	        archive_payload(&x, x.counts, NULL, true)) != 0) {
		json_object_put(o);
		reply_db_error(r);
		return;
	}
	json_object_object_add(o, "counts", counts_json(x.counts));
	reply_json(r, 200, o);
}
