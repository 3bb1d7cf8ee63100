/* verifying: both sides compared chunk by chunk, each chunk's row count
 * and checksum; a chunk that differs is caught up and compared again, then
 * copied again from the source. Under the cut-over's freeze (final)
 * nothing is repaired: a difference refuses the cut-over. A rehearsal of
 * the cut-over compares every chunk as the final verification does, but
 * without the freeze: a difference is caught up and compared again, then
 * reported, never repaired. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/util.h"
#include "migration/internal.h"
#include "migration/migration.h"

const char *const reset_verify_sql =
    "UPDATE migration_tables SET verify_done = 0, verify_last_id = NULL, source_rows = 0,"
    " target_rows = 0, source_checksum = 0, target_checksum = 0, chunks_verified = 0,"
    " chunks_mismatched = 0, chunks_repaired = 0 WHERE migration_id = ?";

const char *const resume_verify_sql =
    "UPDATE migration_tables SET verify_done = 0, verify_last_id = NULL WHERE migration_id = ?";

#define FINAL_VERIFY_CHUNK 10000
/* Changed rows compared at once in the verifying step. */
#define CHANGED_BATCH 1000

/* What one comparison covers: the org's rows in (lo, hi] (hi NULL: to the
 * end of the table), or, with ids, the rows of those ids (column 0). */
struct piece {
	const uint8_t *lo, *hi;
	const struct db_rows *ids;
	bool by_pk; /* a range in a database of this org alone: the primary key's */
};

/* "<head> FROM `table` WHERE org_id = ? AND <the piece>", its parameters
 * in p (the org first). NULL when out of memory. */
static const char *piece_sql(struct arena *a, const char *head, const char *table,
    const uint8_t org[16], const struct piece *pc, struct db_param **p, size_t *np)
{
	size_t n = pc->ids ? pc->ids->nrows : 0, cap = strlen(head) + 200 + n * 3, k;
	char *sql = arena_alloc(a, cap);

	*p = arena_alloc(a, (n + 3) * sizeof(**p));
	if (!sql || !*p)
		return NULL;
	(*p)[0] = DBP_BLOB(org, 16);
	*np = 1;
	if (!pc->ids) {
		/* a single-table DELETE takes no index hint before MariaDB 11.8 */
		bool hint = strcmp(head, "DELETE") != 0;

		snprintf(sql, cap, "%s FROM `%s`%s%s%s%s WHERE org_id = ? AND id > ?%s", head,
		    table, hint ? " FORCE INDEX (`" : "",
		    hint ? (pc->by_pk ? "PRIMARY" : table) : "",
		    hint && !pc->by_pk ? ORG_INDEX : "", hint ? "`)" : "",
		    pc->hi ? " AND id <= ?" : "");
		(*p)[(*np)++] = DBP_BLOB(pc->lo, 16);
		if (pc->hi)
			(*p)[(*np)++] = DBP_BLOB(pc->hi, 16);
		return sql;
	}
	k = (size_t)snprintf(sql, cap, "%s FROM `%s` WHERE org_id = ? AND id IN (", head, table);
	for (size_t i = 0; i < n; i++) {
		sql[k++] = i ? ',' : '?';
		if (i)
			sql[k++] = '?';
		(*p)[(*np)++] = DBP_BLOB(pc->ids->val[i][0], pc->ids->len[i][0]);
	}
	snprintf(sql + k, cap - k, ")");
	return sql;
}

/* head is the checksum of c, or "COUNT(*), 0" for the count alone. */
static int piece_sum(struct db *d, struct arena *a, const char *head, const char *table,
    const uint8_t org[16], const struct piece *pc, struct sums *out)
{
	struct db_rows rows;
	struct db_param *p;
	size_t np;
	char sel[3200];
	const char *sql;

	snprintf(sel, sizeof(sel), "SELECT %s", head);
	sql = piece_sql(a, sel, table, org, pc, &p, &np);
	if (!sql || db_query(d, a, sql, p, np, &rows) != 0 || rows.nrows != 1)
		return -1;
	out->rows = num(rows.val[0][0]);
	out->checksum = strtoull(rows.val[0][1] ? rows.val[0][1] : "0", NULL, 10);
	return 0;
}

int range_sum(struct db *d, struct arena *a, const char *table, const struct cols *c,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, struct sums *out)
{
	struct piece pc = {lo, hi, NULL, false};

	return piece_sum(d, a, c->checksum, table, org, &pc, out);
}

int range_sum_own(struct db *d, struct arena *a, const char *table, const struct cols *c,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, struct sums *out)
{
	struct piece pc = {lo, hi, NULL, true};

	return piece_sum(d, a, c->checksum, table, org, &pc, out);
}

struct sum_io {
	struct db *d;
	struct arena *a;
	const char *head, *table;
	const uint8_t *org;
	const struct piece *pc;
	struct sums *out;
};

static int sum_io_run(void *p)
{
	struct sum_io *io = p;

	arena_reset(io->a);
	return piece_sum(io->d, io->a, io->head, io->table, io->org, io->pc, io->out);
}

/* Both sides' sums of one piece at once: the non-control side on a
 * second thread with its own arena. */
static int sum_both(struct run *x, const char *head, const char *table, const struct piece *pc,
    struct sums *s, struct sums *t)
{
	struct arena *a2 = arena_new(16 * 1024);
	bool src_on_thread = x->src != x->control;
	struct sum_io mine = {src_on_thread ? x->dst : x->src, x->a, head, table, x->m.org, pc,
	    src_on_thread ? t : s};
	struct sum_io other = {src_on_thread ? x->src : x->dst, a2, head, table, x->m.org, pc,
	    src_on_thread ? s : t};
	struct bg th;
	int r1, r2;

	if (!a2)
		return -1;
	bg_start(&th, sum_io_run, &other);
	r1 = piece_sum(mine.d, mine.a, head, table, x->m.org, pc, mine.out);
	r2 = bg_join(&th);
	arena_free(a2);
	return r1 == 0 && r2 == 0 ? 0 : -1;
}

/* The upper bound of the chunk after lo on the source: the id `size` rows
 * on, or NULL (the chunk runs to the end). */
static int chunk_hi(struct run *x, const char *table, const uint8_t lo[16], long long size,
    uint8_t hi[16], bool *open)
{
	char sql[200];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->m.org, 16), DBP_BLOB(lo, 16), DBP_I64(size - 1)};

	snprintf(sql, sizeof(sql),
	    "SELECT id FROM `%s` FORCE INDEX (`%s" ORG_INDEX "`) WHERE org_id = ? AND id > ?"
	    " ORDER BY id LIMIT 1 OFFSET ?",
	    table, table);
	if (db_query(x->src, x->a, sql, p, 3, &rows) != 0)
		return -1;
	*open = rows.nrows == 0;
	if (!*open)
		memcpy(hi, rows.val[0][0], 16);
	return 0;
}

/* The piece again from the source: delete the target's rows of it, then
 * copy the source's, in one transaction on the target. */
static int repair(struct run *x, const char *table, const struct cols *c, const struct piece *pc)
{
	char head[1200];
	struct db_rows rows;
	struct db_param *p, *q;
	size_t np, nq;
	const char *sel, *del;

	snprintf(head, sizeof(head), "SELECT %s", c->list);
	if (!(sel = piece_sql(x->a, head, table, x->m.org, pc, &p, &np)) ||
	    !(del = piece_sql(x->a, "DELETE", table, x->m.org, pc, &q, &nq)) ||
	    db_query(x->src, x->a, sel, p, np, &rows) != 0)
		return -1;
	if (db_begin(x->dst) != 0)
		return -1;
	if (db_exec(x->dst, del, q, nq, NULL) != 0 ||
	    upsert(x->dst, x->a, table, c, &rows, 0, rows.nrows) != 0 || db_commit(x->dst) != 0) {
		db_rollback(x->dst);
		return -1;
	}
	return 0;
}

/* How one chunk compared. */
enum chunk_state {
	CHUNK_MATCHED,    /* at the first comparison */
	CHUNK_REPAIRED,   /* after a catch-up or a repair */
	CHUNK_MISMATCHED, /* still different (under the freeze: at once) */
};

/* How many comparisons a chunk gets in each mode: a step's catch-up and
 * repair, a rehearsal's catch-up only, the freeze's none. */
static const int attempts[] = {
    [VERIFY_STEP] = 3,
    [VERIFY_FINAL] = 1,
    [VERIFY_REHEARSAL] = 2,
};

/* Compares one piece (head: what is summed). Outside the freeze a
 * mismatch may be a write still in the changelog: catch up, compare again,
 * then (when repairable) write the piece again from the source (capture
 * stays on, so later writes still reach the target). Under the freeze
 * (final) nothing is repaired: a mismatch is the answer. */
static int verify_piece(struct run *x, const char *head, const char *table, const struct cols *c,
    const struct piece *pc, enum verify_mode mode, bool repairable, struct sums *s, struct sums *t,
    enum chunk_state *state)
{
	*state = CHUNK_MATCHED;
	for (int attempt = 0;; attempt++) {
		long long n = 0;

		if (sum_both(x, head, table, pc, s, t) != 0)
			return -1;
		if (s->rows == t->rows && s->checksum == t->checksum)
			return 0;
		if (attempt + 1 >= attempts[mode]) {
			*state = CHUNK_MISMATCHED;
			return 0;
		}
		*state = CHUNK_REPAIRED;
		if (attempt == 0 || !repairable) {
			if (catch_up(x, &n) != 0)
				return -1;
		} else if (repair(x, table, c, pc) != 0) {
			return -1;
		}
	}
}

static struct json_object *verification_json(struct run *x, enum verify_mode mode)
{
	struct db_rows t;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	struct json_object *o = json_object_new_object(), *tables = json_object_new_array();
	bool ok = true;

	if (db_query(x->control, x->a,
	        "SELECT table_name, source_rows, target_rows, source_checksum, target_checksum,"
	        " chunks_verified, chunks_mismatched, chunks_repaired FROM migration_tables"
	        " WHERE migration_id = ? ORDER BY table_name",
	        p, 1, &t) == 0)
		for (size_t i = 0; i < t.nrows; i++) {
			struct json_object *e = json_object_new_object();
			bool same = strcmp(t.val[i][1], t.val[i][2]) == 0 &&
			            strcmp(t.val[i][3], t.val[i][4]) == 0;
			char hex[20];

			ok = ok && same;
			json_object_object_add(e, "table", dbv_json_str(&t, i, 0));
			json_object_object_add(e, "sourceRows",
			    json_object_new_int64(num(t.val[i][1])));
			json_object_object_add(e, "targetRows",
			    json_object_new_int64(num(t.val[i][2])));
			snprintf(hex, sizeof(hex), "%016llx", strtoull(t.val[i][3], NULL, 10));
			json_object_object_add(e, "sourceChecksum", json_object_new_string(hex));
			snprintf(hex, sizeof(hex), "%016llx", strtoull(t.val[i][4], NULL, 10));
			json_object_object_add(e, "targetChecksum", json_object_new_string(hex));
			json_object_object_add(e, "chunks",
			    json_object_new_int64(num(t.val[i][5])));
			json_object_object_add(e, "chunksMismatched",
			    json_object_new_int64(num(t.val[i][6])));
			json_object_object_add(e, "chunksRepaired",
			    json_object_new_int64(num(t.val[i][7])));
			json_object_object_add(e, "match", json_object_new_boolean(same));
			json_object_array_add(tables, e);
		}
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "final", json_object_new_boolean(mode == VERIFY_FINAL));
	if (mode == VERIFY_REHEARSAL)
		json_object_object_add(o, "rehearsal", json_object_new_boolean(1));
	json_object_object_add(o, "tables", tables);
	return o;
}

/* Why comparing a table failed, for the status: the end that answered
 * with an error (the target's first). */
static void verify_error(struct run *x, const char *table)
{
	const char *dst = db_error(x->dst), *src = db_error(x->src);

	set_error(x->control, &x->m, "verification of %s: %s", table,
	    dst[0]   ? dst
	    : src[0] ? src
	             : "failed");
}

/* The verifying step, one table at a time. Every chunk was compared as
 * it landed (copy.c); what can differ since are the rows written after
 * their chunk was read, which the changelog names: a batch of them per
 * step, by id, compared, caught up and repaired as a chunk is. Then both
 * sides' row counts (caught up when they differ), the table's last check:
 * a row the changelog does not know of, on either side, shows there. */
static enum verify_result verify_changes(struct run *x, const char *table, const struct cols *c,
    const uint8_t after[16])
{
	struct db_rows ids;
	struct db_param p[] = {DBP_BLOB(x->m.org, 16), DBP_STR(table), DBP_I64(x->m.snapshot),
	    DBP_BLOB(after, 16), DBP_I64(CHANGED_BATCH)};
	struct sums s, d;
	enum chunk_state state;

	if (db_query(x->src, x->a,
	        "SELECT DISTINCT row_id FROM tenant_changelog WHERE org_id = ? AND table_name = ?"
	        " AND id > ? AND row_id > ? ORDER BY row_id LIMIT ?",
	        p, countof(p), &ids) != 0)
		return VERIFY_ERROR;
	if (ids.nrows) {
		struct piece pc = {NULL, NULL, &ids, false};
		const char *last = ids.val[ids.nrows - 1][0];

		if (ids.len[ids.nrows - 1][0] != 16 || verify_piece(x, c->checksum, table, c, &pc,
		                                           VERIFY_STEP, true, &s, &d, &state) != 0)
			return VERIFY_ERROR;
		{
			struct db_param q[] = {DBP_BLOB(last, 16), DBP_I64((long long)s.checksum),
			    DBP_I64((long long)d.checksum), DBP_I64(state == CHUNK_MISMATCHED),
			    DBP_I64(state == CHUNK_REPAIRED), DBP_BLOB(x->m.id, 16),
			    DBP_STR(table)};

			return db_exec(x->control,
			           "UPDATE migration_tables SET verify_last_id = ?,"
			           " source_checksum = source_checksum ^ CAST(? AS UNSIGNED),"
			           " target_checksum = target_checksum ^ CAST(? AS UNSIGNED),"
			           " chunks_verified = chunks_verified + 1,"
			           " chunks_mismatched = chunks_mismatched + ?,"
			           " chunks_repaired = chunks_repaired + ?"
			           " WHERE migration_id = ? AND table_name = ?",
			           q, countof(q), NULL) == 0
			           ? VERIFY_MORE
			           : VERIFY_ERROR;
		}
	}
	{
		struct piece all = {id_zero, NULL, NULL, false};

		if (verify_piece(x, "COUNT(*), 0", table, c, &all, VERIFY_STEP, false, &s, &d,
		        &state) != 0)
			return VERIFY_ERROR;
	}
	{
		struct db_param q[] = {DBP_I64(s.rows), DBP_I64(d.rows),
		    DBP_I64(state == CHUNK_MISMATCHED), DBP_BLOB(x->m.id, 16), DBP_STR(table)};

		return db_exec(x->control,
		           "UPDATE migration_tables SET verify_done = 1, source_rows = ?, target_rows = ?,"
		           " chunks_mismatched = chunks_mismatched + ?"
		           " WHERE migration_id = ? AND table_name = ?",
		           q, countof(q), NULL) == 0
		           ? VERIFY_MORE
		           : VERIFY_ERROR;
	}
}

enum verify_result verify_some(struct run *x, enum verify_mode mode)
{
	struct db_rows t;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	struct cols c;
	uint8_t lo[16], hi[16];
	bool open;
	struct sums s, d;
	enum chunk_state state;
	const char *table;

	for (;;) {
		/* the final and the rehearsed verification run chunk after chunk
		 * in one step: each chunk keeps the lease, or stops there */
		if (mode != VERIFY_STEP && lease_renew(x) != 0)
			return VERIFY_ERROR;
		if (db_query(x->control, x->a,
		        "SELECT table_name, verify_last_id FROM migration_tables WHERE migration_id = ?"
		        " AND verify_done = 0 ORDER BY table_name LIMIT 1",
		        p, 1, &t) != 0)
			return VERIFY_ERROR;
		if (t.nrows == 0)
			break;
		table = t.val[0][0];
		if (!known_table(table))
			return VERIFY_ERROR;
		memcpy(lo,
		    t.val[0][1] && t.len[0][1] == 16 ? (const uint8_t *)t.val[0][1] : id_zero, 16);
		if (table_cols(x->src, x->a, table, &c) != 0) {
			verify_error(x, table);
			return VERIFY_ERROR;
		}
		if (mode == VERIFY_STEP) {
			enum verify_result rc = verify_changes(x, table, &c, lo);

			if (rc == VERIFY_ERROR)
				verify_error(x, table);
			return rc;
		}
		{
			struct piece pc = {lo, NULL, NULL, false};

			if (chunk_hi(x, table, lo, FINAL_VERIFY_CHUNK, hi, &open) != 0)
				goto failed;
			pc.hi = open ? NULL : hi;
			if (verify_piece(x, c.checksum, table, &c, &pc, mode, true, &s, &d,
			        &state) != 0)
				goto failed;
		}
		{
			struct db_param q[] = {DBP_BLOB(open ? lo : hi, 16), DBP_I64(open),
			    DBP_I64(s.rows), DBP_I64(d.rows), DBP_I64((long long)s.checksum),
			    DBP_I64((long long)d.checksum), DBP_I64(state != CHUNK_MATCHED),
			    DBP_I64(state == CHUNK_REPAIRED), DBP_BLOB(x->m.id, 16),
			    DBP_STR(table)};

			if (db_exec(x->control,
			        "UPDATE migration_tables SET verify_last_id = ?, verify_done = ?,"
			        " source_rows = source_rows + ?, target_rows = target_rows + ?,"
			        " source_checksum = source_checksum ^ CAST(? AS UNSIGNED),"
			        " target_checksum = target_checksum ^ CAST(? AS UNSIGNED),"
			        " chunks_verified = chunks_verified + 1,"
			        " chunks_mismatched = chunks_mismatched + ?, chunks_repaired = chunks_repaired + ?"
			        " WHERE migration_id = ? AND table_name = ?",
			        q, countof(q), NULL) != 0)
				return VERIFY_ERROR;
		}
		if (state == CHUNK_MISMATCHED && mode == VERIFY_FINAL)
			return VERIFY_MISMATCH;
		continue;
	failed:
		verify_error(x, table);
		return VERIFY_ERROR;
	}
	{
		struct json_object *v = verification_json(x, mode);
		const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		struct db_param q[] = {DBP_STR(text), DBP_BLOB(x->m.id, 16)};
		enum verify_result rc =
		    db_exec(x->control, "UPDATE migrations SET verification = ? WHERE id = ?", q, 2,
		        NULL) == 0
		        ? VERIFY_DONE
		        : VERIFY_ERROR;

		if (rc == VERIFY_DONE && mode != VERIFY_STEP &&
		    !json_object_get_boolean(json_object_object_get(v, "ok")))
			rc = VERIFY_MISMATCH;
		json_object_put(v);
		return rc;
	}
}

/* verifying: one chunk, then ready_for_cutover (a dry run: its cleanup). */
enum step_result step_verifying(struct run *x)
{
	if (connect_ends(x) != 0)
		return STEP_ERROR;
	/* Outside the freeze a chunk may still differ after catch-up and
	 * repair while writes keep landing in it: that is reported
	 * (chunksMismatched, "ok": false) but does not end the migration — the
	 * final verification under the freeze decides the cut-over. */
	switch (verify_some(x, VERIFY_STEP)) {
	case VERIFY_MORE:
		return STEP_MORE;
	case VERIFY_ERROR:
		return STEP_ERROR;
	default:
		break;
	}
	if (x->m.dry_run) {
		struct transition tr = {.m = &x->m,
		    .to = MIG_KEEP,
		    .phase = PHASE_DRY_CLEANUP,
		    .action = AA_NONE};

		return step_transition(x, &tr);
	}
	{
		struct transition tr = {.m = &x->m,
		    .to = MIG_READY,
		    .phase = PHASE_NONE,
		    .action = AA_MIGRATION_READY_FOR_CUTOVER};

		return step_transition(x, &tr);
	}
}
