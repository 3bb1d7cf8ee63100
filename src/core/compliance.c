/* Legal hold, PII stripping and archiving (see compliance.h). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/compliance.h"
#include "core/entity.h"
#include "core/legal_hold.h"
#include "core/tenant_db.h"
#include "core/users.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"

#define ARCHIVE_CHUNK 500

/* The group's compliance.* event: entity, ids, outcome counts and reason,
 * never a value of the records. */
static int audit_group(struct db *control, struct id_batch *b, enum audit_action action,
    const char *reason)
{
	struct json_object *payload = json_object_new_object();

	json_object_object_add(payload, "entity", json_object_new_string(b->e->name));
	json_object_object_add(payload, "ids", id_batch_group_ids(b));
	json_object_object_add(payload, "counts", id_batch_group_counts(b));
	json_object_object_add(payload, "reason", json_object_new_string(reason));
	return audit_append(control, b->actor, action, b->org, b->e->name, NULL, payload);
}

/* Records a changed tenant row for a migration's catch-up. */
static int changed(struct tenant_tx *tx, const struct entity *e, const uint8_t id[16])
{
	return tx ? tenant_changelog_add(tx, e, id, "update") : 0;
}

/* ---- legal hold -------------------------------------------------------- */

struct hold {
	bool hold;
	const char *reason, *case_ref;
};

static int hold_ids(struct db *d, struct db *control, struct id_batch *b)
{
	const struct hold *h = b->ctx;
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
		    DBP_I64(h->hold),
		    DBP_STR(h->hold ? h->reason : NULL),
		    DBP_STR(h->hold ? h->case_ref : NULL),
		    DBP_I64(h->hold),
		    DBP_BLOB(id->b, 16),
		    DBP_I64(h->hold),
		};

		if (db_query(d, b->arena, check, q, 1, &rows) != 0)
			return -1;
		if (rows.nrows != 1) {
			b->what[b->idx[k]] = "not_found";
			continue;
		}
		if (db_exec(d, sql, p, countof(p), &n) != 0 ||
		    (n && changed(b->tx, b->e, id->b) != 0))
			return -1;
		b->what[b->idx[k]] = n ? (h->hold ? "held" : "released") : "already";
	}
	return audit_group(control, b,
	    h->hold ? AA_COMPLIANCE_LEGAL_HOLD_SET : AA_COMPLIANCE_LEGAL_HOLD_RELEASED, h->reason);
}

enum batch_rc compliance_hold(struct id_batch *b, bool hold, const char *reason,
    const char *case_ref)
{
	struct hold h = {hold, reason, case_ref};

	b->ctx = &h;
	return id_batch_run(b, hold_ids);
}

/* ---- strip PII --------------------------------------------------------- */

struct strip {
	const char *reason;
};

/* Redacts one record's PII columns as the entity table says. */
static int strip_one(struct db *d, struct id_batch *b, const struct opsd_uuid *id)
{
	const struct entity *e = b->e;
	char sql[512], vals[ENTITY_MAX_COLS][80];
	struct db_param p[ENTITY_MAX_COLS + 2];
	size_t n, np = 0;

	n = (size_t)snprintf(sql, sizeof(sql),
	    "UPDATE %s SET pii_stripped_at = NOW(3), pii_stripped_reason = ?", e->table);
	p[np++] = DBP_STR(((const struct strip *)b->ctx)->reason);
	for (size_t i = 0; i < e->ncols && i < ENTITY_MAX_COLS; i++) {
		const struct entity_column *c = &e->cols[i];

		if (c->redact == RED_KEEP)
			continue;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", %s = ?", c->column);
		p[np++] = DBP_STR(entity_redacted_value(c, id->b, vals[i], sizeof(vals[i])));
	}
	snprintf(sql + n, sizeof(sql) - n, " WHERE id = ?");
	p[np++] = DBP_BLOB(id->b, 16);
	if (db_exec(d, sql, p, np, NULL) != 0 || changed(b->tx, e, id->b) != 0)
		return -1;
	/* A stripped user cannot sign in again. */
	return e == &entities[ENTITY_USERS] ? user_lock_out(d, id->b) : 0;
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
		int rc = legal_hold_guard(d, control, b->arena, b->e, id->b, &held);

		if (rc < 0 || db_query(d, b->arena, sql, p, 1, &rows) != 0)
			return -1;
		if (rc > 0)
			what = "not_found";
		else if (held)
			what = "legal_hold";
		else if (rows.nrows == 1 && dbv_true(rows.val[0][0]))
			what = "already_stripped";
		else if (strip_one(d, b, id) != 0)
			return -1;
		else
			what = "stripped";
		b->what[b->idx[k]] = what;
	}
	return audit_group(control, b, AA_COMPLIANCE_PII_STRIPPED,
	    ((const struct strip *)b->ctx)->reason);
}

enum batch_rc compliance_strip(struct id_batch *b, const char *reason)
{
	struct strip s = {reason};

	b->ctx = &s;
	return id_batch_run(b, strip_ids);
}

/* ---- archive ----------------------------------------------------------- */

const char *const archive_results[ARCHIVE__MAX] = {
    [ARCHIVE_ARCHIVED] = "archived",
    [ARCHIVE_ALREADY] = "already_archived",
    [ARCHIVE_HELD] = "legal_hold",
    [ARCHIVE_NOT_FOUND] = "not_found",
    [ARCHIVE_MIGRATING] = "org_migrating",
};

struct archive {
	struct arena *a; /* per-chunk scratch */
	const struct entity *e;
	bool dry;
	const char *reason;
	struct tenant_tx *tx; /* the tenant write in hand (tenant entities), else NULL */
	/* by age */
	char before[DB_TIME_LEN + 1];
	bool by_org, have_after, more;
	struct opsd_uuid org, after;
	long long counts[ARCHIVE__MAX];
};

/* Archives one row through the legal-hold guard; its outcome, or -1. d is
 * where the row lives, control where its org is. */
static int archive_one(struct db *d, struct db *control, struct archive *x, const uint8_t id[16])
{
	char sql[200];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id, 16)};
	bool held;
	int rc = legal_hold_guard(d, control, x->a, x->e, id, &held);

	if (rc < 0)
		return -1;
	if (rc > 0)
		return ARCHIVE_NOT_FOUND;
	if (held)
		return ARCHIVE_HELD;
	snprintf(sql, sizeof(sql), "SELECT archived_at IS NOT NULL FROM %s WHERE id = ?",
	    x->e->table);
	if (db_query(d, x->a, sql, p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && dbv_true(rows.val[0][0]))
		return ARCHIVE_ALREADY;
	if (!x->dry) {
		struct db_param u[] = {DBP_STR(x->reason), DBP_BLOB(id, 16)};

		snprintf(sql, sizeof(sql),
		    "UPDATE %s SET archived_at = NOW(3), archived_reason = ? WHERE id = ?",
		    x->e->table);
		if (db_exec(d, sql, u, 2, NULL) != 0 || changed(x->tx, x->e, id) != 0)
			return -1;
		/* An archived account is over: disabled, every session and token
		 * revoked, as when it is stripped or deleted. */
		if (x->e == &entities[ENTITY_USERS] && user_lock_out(d, id) != 0)
			return -1;
	}
	return ARCHIVE_ARCHIVED;
}

struct json_object *archive_counts_json(const long long counts[ARCHIVE__MAX])
{
	struct json_object *c = json_object_new_object();

	for (int i = 0; i < ARCHIVE__MAX; i++)
		if (i != ARCHIVE_MIGRATING || counts[i])
			json_object_object_add(c, archive_results[i],
			    json_object_new_int64(counts[i]));
	return c;
}

/* compliance.archived: entity, counts, dry run (ids when given), never
 * values. complete is false when a later chunk failed after earlier ones
 * had committed. */
static struct json_object *archive_payload(const struct archive *x, const long long *counts,
    struct json_object *ids, bool complete)
{
	struct json_object *payload = json_object_new_object();

	json_object_object_add(payload, "entity", json_object_new_string(x->e->name));
	if (ids)
		json_object_object_add(payload, "ids", ids);
	json_object_object_add(payload, "counts", archive_counts_json(counts));
	json_object_object_add(payload, "dryRun", json_object_new_boolean(x->dry));
	if (!complete)
		json_object_object_add(payload, "complete", json_object_new_boolean(0));
	return payload;
}

/* ---- by ids: one group per org (id_batch) ------------------------------- */

static int archive_ids(struct db *d, struct db *control, struct id_batch *b)
{
	struct archive *x = b->ctx;
	long long counts[ARCHIVE__MAX] = {0};

	x->tx = b->tx;
	for (size_t k = 0; k < b->nidx; k++) {
		int what = archive_one(d, control, x, b->ids[b->idx[k]].b);

		if (what < 0)
			return -1;
		counts[what]++;
		b->what[b->idx[k]] = archive_results[what];
	}
	return audit_append(control, b->actor, AA_COMPLIANCE_ARCHIVED, b->org, x->e->name, NULL,
	    archive_payload(x, counts, id_batch_group_ids(b), true));
}

enum batch_rc compliance_archive_ids(struct id_batch *b, const char *reason, bool dry_run)
{
	struct archive x = {.e = b->e, .dry = dry_run, .reason = reason};
	enum batch_rc rc;

	if (!(x.a = arena_new(64 * 1024)))
		return BATCH_NO_MEMORY;
	b->ctx = &x;
	rc = id_batch_run(b, archive_ids);
	arena_free(x.a);
	return rc;
}

/* ---- by age: chunked transactions --------------------------------------- */

/* One chunk of the olderThan selection: rows of x->org when by_org. */
static int archive_chunk(struct db *d, struct db *control, struct archive *x)
{
	long long counts[ARCHIVE__MAX] = {0};
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
	for (int i = 0; i < ARCHIVE__MAX; i++)
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
	struct archive *x;
	struct archive saved;
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
static int archive_all_chunks(const struct archive_query *q, struct archive *x)
{
	x->more = true;
	x->have_after = false;
	while (x->more) {
		struct chunk_try t = {x, *x};
		enum tenant_rc rc;

		if (!x->e->tenant) {
			if (db_tx(q->control, control_chunk_fn, &t) != 0)
				return -1;
			continue;
		}
		rc = tenant_write(q->control, q->cfg, q->arena, x->org.b, tenant_chunk_fn, &t);
		if (rc == TENANT_FROZEN)
			return 1;
		if (rc == TENANT_NO_ORG)
			return 0; /* the org went away meanwhile */
		if (rc != TENANT_OK)
			return -1;
	}
	return 0;
}

/* Tenant entities by age: org by org (only q->org when given), each in its
 * own database. A frozen org's rows are counted org_migrating, untouched. */
static int archive_by_age(const struct archive_query *q, struct archive *x)
{
	struct db_rows orgs;
	struct opsd_uuid after = {0};

	if (!x->e->tenant || x->by_org) {
		int rc = archive_all_chunks(q, x);

		if (rc == 1)
			x->counts[ARCHIVE_MIGRATING]++;
		return rc < 0 ? -1 : 0;
	}
	x->by_org = true;
	do {
		struct db_param p[] = {DBP_BLOB(after.b, 16)};

		arena_reset(x->a);
		if (db_query(q->control, q->arena,
		        "SELECT id FROM orgs WHERE id > ? ORDER BY id LIMIT 500", p, 1, &orgs) != 0)
			return -1;
		for (size_t i = 0; i < orgs.nrows; i++) {
			int rc;

			memcpy(x->org.b, orgs.val[i][0], 16);
			if ((rc = archive_all_chunks(q, x)) < 0)
				return -1;
			if (rc == 1)
				x->counts[ARCHIVE_MIGRATING]++;
		}
		if (orgs.nrows)
			memcpy(after.b, orgs.val[orgs.nrows - 1][0], 16);
	} while (orgs.nrows == 500);
	return 0;
}

int compliance_archive_older(const struct archive_query *q, long long counts[ARCHIVE__MAX])
{
	struct archive x = {.e = q->e, .dry = q->dry_run, .reason = q->reason, .more = true};
	int rc = -1;

	if (!(x.a = arena_new(64 * 1024)))
		return -1;
	db_time_from_ms(q->before_ms, x.before);
	x.by_org = q->org && uuid_parse(q->org, &x.org);
	/* Chunked transactions (README, runbook 2): each commits what it
	 * archived. */
	if (archive_by_age(q, &x) != 0) {
		/* Earlier chunks are committed: they must not go unaudited. */
		if (x.counts[ARCHIVE_ARCHIVED] > 0 && !x.dry &&
		    audit_append_tx(q->control, q->actor, AA_COMPLIANCE_ARCHIVED, q->org, x.e->name,
		        NULL, archive_payload(&x, x.counts, NULL, false)) != 0)
			log_msg(LL_ERROR, "audit_failed", "compliance.archived (partial)");
		goto out;
	}
	if (audit_append_tx(q->control, q->actor, AA_COMPLIANCE_ARCHIVED, q->org, x.e->name, NULL,
	        archive_payload(&x, x.counts, NULL, true)) != 0)
		goto out;
	rc = 0;
out:
	memcpy(counts, x.counts, sizeof(x.counts));
	arena_free(x.a);
	return rc;
}
