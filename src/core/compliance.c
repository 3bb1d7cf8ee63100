/* Legal hold, PII stripping and archiving (see compliance.h). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/compliance.h"
#include "core/entity.h"
#include "core/id_set.h"
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

/* ---- judging a set of records ------------------------------------------ */

/* What a strip or an archive does to each record, in the order of
 * archive_results. */
enum judged_result { J_CHANGED, J_ALREADY, J_HELD, J_NOT_FOUND };

/* A group of ids judged by the set guard: which to change (found, not held,
 * not done yet, first occurrence) and what happens to each. */
struct judged {
	struct hold_state *st; /* per position of the group */
	size_t *first;         /* the first position of the same id */
	uint8_t (*todo)[16];   /* the ids to change */
	size_t ntodo;
};

static int judge(struct db *d, struct db *control, struct arena *a, const struct entity *e,
    const char *state_column, const uint8_t (*ids)[16], size_t n, struct judged *j)
{
	struct id_pos *scratch = arena_calloc(a, n ? n : 1, sizeof(*scratch));

	*j = (struct judged){0};
	j->st = arena_calloc(a, n ? n : 1, sizeof(*j->st));
	j->first = arena_calloc(a, n ? n : 1, sizeof(*j->first));
	j->todo = arena_calloc(a, n ? n : 1, 16);
	if (!scratch || !j->st || !j->first || !j->todo ||
	    legal_hold_guard_set(d, control, a, e, state_column, ids, n, j->st) != 0)
		return -1;
	id_set_firsts(ids, n, scratch, j->first);
	for (size_t k = 0; k < n; k++)
		if (j->first[k] == k && j->st[k].found && !j->st[k].held && !j->st[k].done)
			memcpy(j->todo[j->ntodo++], ids[k], 16);
	return 0;
}

/* What happened to ids[k]. A repeated id is judged as if after its first
 * occurrence: already done once that one was changed (not in a dry run). */
static enum judged_result judged_result(const struct judged *j, size_t k, bool dry)
{
	const struct hold_state *s = &j->st[j->first[k]];
	enum judged_result r = !s->found ? J_NOT_FOUND
	                       : s->held ? J_HELD
	                       : s->done ? J_ALREADY
	                                 : J_CHANGED;

	return r == J_CHANGED && j->first[k] != k && !dry ? J_ALREADY : r;
}

/* "head (?, ...)" over ids in statements of at most ID_SET_MAX ids, lead
 * (at most 2) binding head's own placeholders. */
static int update_set(struct db *d, const char *head, const struct db_param *lead, size_t nlead,
    const uint8_t (*ids)[16], size_t n)
{
	char sql[ID_SET_SQL_LEN(1024)];
	struct db_param p[2 + ID_SET_MAX];

	if (nlead > 2)
		return -1;
	memcpy(p, lead, nlead * sizeof(*p));
	for (size_t off = 0; off < n; off += ID_SET_MAX) {
		size_t k = n - off < ID_SET_MAX ? n - off : ID_SET_MAX, slots = id_set_slots(k);

		if (!id_set_sql(sql, sizeof(sql), head, slots, ""))
			return -1;
		for (size_t i = 0; i < slots; i++)
			p[nlead + i] = DBP_BLOB(ids[off + (i < k ? i : k - 1)], 16);
		if (db_exec(d, sql, p, nlead + slots, NULL) != 0)
			return -1;
	}
	return 0;
}

/* After the UPDATE of j's records: a migration's change capture, and a
 * stripped or archived account is over (disabled, every session and token
 * revoked, as when it is deleted). */
static int after_update(struct db *d, struct tenant_tx *tx, const struct entity *e,
    const struct judged *j)
{
	for (size_t i = 0; i < j->ntodo; i++)
		if (changed(tx, e, j->todo[i]) != 0 ||
		    (e == &entities[ENTITY_USERS] && user_lock_out(d, j->todo[i]) != 0))
			return -1;
	return 0;
}

/* The group in hand of b as one array of ids. */
static const uint8_t (*group_ids(struct id_batch *b))[16]
{
	uint8_t(*ids)[16] = arena_calloc(b->arena, b->nidx ? b->nidx : 1, 16);

	for (size_t k = 0; ids && k < b->nidx; k++)
		memcpy(ids[k], b->ids[b->idx[k]].b, 16);
	return (const uint8_t(*)[16])ids;
}

/* ---- strip PII --------------------------------------------------------- */

static const char *const strip_results[] = {
    [J_CHANGED] = "stripped",
    [J_ALREADY] = "already_stripped",
    [J_HELD] = "legal_hold",
    [J_NOT_FOUND] = "not_found",
};

struct strip {
	const char *reason;
};

/* Redacts every PII column of j's records to do, as the entity table says,
 * in one UPDATE per ID_SET_MAX records. */
static int strip_set(struct db *d, struct id_batch *b, const struct judged *j)
{
	char head[1024], set[768];
	struct db_param lead[] = {DBP_STR(((const struct strip *)b->ctx)->reason)};

	if (!entity_strip_set_sql(b->e, set, sizeof(set)))
		return -1;
	snprintf(head, sizeof(head),
	    "UPDATE %s SET pii_stripped_at = NOW(3), pii_stripped_reason = ?, %s WHERE id IN ",
	    b->e->table, set);
	if (update_set(d, head, lead, countof(lead), (const uint8_t(*)[16])j->todo, j->ntodo) != 0)
		return -1;
	return after_update(d, b->tx, b->e, j);
}

static int strip_ids(struct db *d, struct db *control, struct id_batch *b)
{
	const uint8_t(*ids)[16] = group_ids(b);
	struct judged j;

	if (!ids || judge(d, control, b->arena, b->e, "pii_stripped_at", ids, b->nidx, &j) != 0 ||
	    (j.ntodo && strip_set(d, b, &j) != 0))
		return -1;
	for (size_t k = 0; k < b->nidx; k++)
		b->what[b->idx[k]] = strip_results[judged_result(&j, k, false)];
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
_Static_assert((int)ARCHIVE_ARCHIVED == J_CHANGED && (int)ARCHIVE_ALREADY == J_ALREADY &&
                   (int)ARCHIVE_HELD == J_HELD && (int)ARCHIVE_NOT_FOUND == J_NOT_FOUND,
    "a judged result is its archive result");

struct archive {
	struct arena *a; /* per-chunk scratch */
	const struct entity *e;
	const struct audit_actor *actor;
	bool dry;
	const char *reason;
	struct tenant_tx *tx; /* the tenant write in hand (tenant entities), else NULL */
	/* by age */
	char before[DB_TIME_LEN + 1];
	bool by_org, have_after, more;
	struct opsd_uuid org, after;
	long long counts[ARCHIVE__MAX];
	long long events; /* chunk events written */
};

/* Archives the group ids[0..n) through the set guard: counts[] and, when
 * what is not NULL, each id's result. d is where the rows live, control
 * where their orgs are. */
static int archive_set(struct db *d, struct db *control, struct archive *x, struct arena *a,
    const uint8_t (*ids)[16], size_t n, long long counts[ARCHIVE__MAX], const char **what)
{
	struct judged j;
	char head[256];
	struct db_param lead[] = {DBP_STR(x->reason)};

	if (judge(d, control, a, x->e, "archived_at", ids, n, &j) != 0)
		return -1;
	if (!x->dry && j.ntodo) {
		snprintf(head, sizeof(head),
		    "UPDATE %s SET archived_at = NOW(3), archived_reason = ? WHERE id IN ",
		    x->e->table);
		if (update_set(d, head, lead, countof(lead), (const uint8_t(*)[16])j.todo,
		        j.ntodo) != 0 ||
		    after_update(d, x->tx, x->e, &j) != 0)
			return -1;
	}
	for (size_t k = 0; k < n; k++) {
		enum judged_result r = judged_result(&j, k, x->dry);

		counts[r]++;
		if (what)
			what[k] = archive_results[r];
	}
	return 0;
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
 * values. */
static struct json_object *archive_payload(const struct archive *x, const long long *counts,
    struct json_object *ids)
{
	struct json_object *payload = json_object_new_object();

	json_object_object_add(payload, "entity", json_object_new_string(x->e->name));
	if (ids)
		json_object_object_add(payload, "ids", ids);
	json_object_object_add(payload, "counts", archive_counts_json(counts));
	json_object_object_add(payload, "dryRun", json_object_new_boolean(x->dry));
	return payload;
}

/* ---- by ids: one group per org (id_batch) ------------------------------- */

static int archive_ids(struct db *d, struct db *control, struct id_batch *b)
{
	struct archive *x = b->ctx;
	long long counts[ARCHIVE__MAX] = {0};
	const uint8_t(*ids)[16] = group_ids(b);
	const char **what = arena_calloc(b->arena, b->nidx ? b->nidx : 1, sizeof(*what));

	x->tx = b->tx;
	if (!ids || !what || archive_set(d, control, x, b->arena, ids, b->nidx, counts, what) != 0)
		return -1;
	for (size_t k = 0; k < b->nidx; k++)
		b->what[b->idx[k]] = what[k];
	return audit_append(control, b->actor, AA_COMPLIANCE_ARCHIVED, b->org, x->e->name, NULL,
	    archive_payload(x, counts, id_batch_group_ids(b)));
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

/* The ids of a chunk's rows, for its audit event. */
static struct json_object *rows_ids_json(const struct db_rows *rows)
{
	struct json_object *ids = json_object_new_array();

	for (size_t i = 0; i < rows->nrows; i++) {
		struct opsd_uuid u;
		char s[UUID_STR_LEN + 1];

		memcpy(u.b, rows->val[i][0], 16);
		uuid_format(&u, s);
		json_object_array_add(ids, json_object_new_string(s));
	}
	return ids;
}

/* One chunk of the olderThan selection (rows of x->org when by_org): its
 * rows through the set guard, archived with one UPDATE, and (not in a dry
 * run) its compliance.archived event with the chunk's ids and counts, all
 * in the chunk's transaction. */
static int archive_chunk(struct db *d, struct db *control, struct archive *x)
{
	long long counts[ARCHIVE__MAX] = {0};
	char sql[320];
	struct db_rows rows;
	struct db_param p[] = {DBP_STR(x->before), DBP_I64(x->by_org),
	    x->by_org ? DBP_BLOB(x->org.b, 16) : DBP_NULL, DBP_I64(x->have_after),
	    x->have_after ? DBP_BLOB(x->after.b, 16) : DBP_NULL, DBP_I64(ARCHIVE_CHUNK)};
	uint8_t(*ids)[16];

	snprintf(sql, sizeof(sql),
	    "SELECT id FROM %s WHERE created_at < ? AND archived_at IS NULL"
	    " AND (? = 0 OR %s = ?) AND (? = 0 OR id > ?) ORDER BY id LIMIT ?",
	    x->e->table, x->e->org_column);
	arena_reset(x->a);
	if (db_query(d, x->a, sql, p, countof(p), &rows) != 0)
		return -1;
	if (!(ids = arena_calloc(x->a, rows.nrows ? rows.nrows : 1, 16)))
		return -1;
	for (size_t i = 0; i < rows.nrows; i++)
		memcpy(ids[i], rows.val[i][0], 16);
	if (archive_set(d, control, x, x->a, (const uint8_t(*)[16])ids, rows.nrows, counts, NULL) !=
	    0)
		return -1;
	if (!x->dry && rows.nrows) {
		char org_s[UUID_STR_LEN + 1];

		if (x->by_org)
			uuid_format(&x->org, org_s);
		if (audit_append(control, x->actor, AA_COMPLIANCE_ARCHIVED,
		        x->by_org ? org_s : NULL, x->e->name, NULL,
		        archive_payload(x, counts, rows_ids_json(&rows))) != 0)
			return -1;
		x->events++;
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
	struct archive x = {.e = q->e,
	    .actor = q->actor,
	    .dry = q->dry_run,
	    .reason = q->reason,
	    .more = true};
	int rc = -1;

	if (!(x.a = arena_new(64 * 1024)))
		return -1;
	db_time_from_ms(q->before_ms, x.before);
	x.by_org = q->org && uuid_parse(q->org, &x.org);
	/* Chunked transactions (README, runbook 2): each commits what it
	 * archived together with its own audit event, so a failure leaves the
	 * earlier chunks done and audited and nothing of the failed one, but
	 * for a dedicated database whose change committed before the control
	 * commit failed (tenant_audit_lost: archived, no event). */
	if (archive_by_age(q, &x) != 0)
		goto out;
	/* A dry run, or a run that found nothing to judge: one event with the
	 * counts, so that every call is audited. */
	if ((x.dry || x.events == 0) &&
	    audit_append_tx(q->control, q->actor, AA_COMPLIANCE_ARCHIVED, q->org, x.e->name, NULL,
	        archive_payload(&x, x.counts, NULL)) != 0)
		goto out;
	rc = 0;
out:
	memcpy(counts, x.counts, sizeof(x.counts));
	arena_free(x.a);
	return rc;
}
