/* pending → copying → catching_up: the target is prepared, the rows are
 * copied in chunks (reading and writing overlap on two threads), then the
 * changes captured meanwhile are replayed. ready_for_cutover keeps
 * catching up until the operator finalizes. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "infra/config.h"
#include "infra/db.h"
#include "infra/metrics.h"
#include "infra/schema.h"
#include "lib/arena.h"
#include "lib/encoding.h"
#include "lib/util.h"
#include "migration/internal.h"
#include "migration/migration.h"

/* migration.progress with the share of rows copied, at most every 10 %
 * or 30 s. 0 or -1. */
static int progress_audit(struct run *x)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	long long copied, total;
	int pct;

	if (db_query(x->control, x->a,
	        "SELECT IFNULL(SUM(rows_copied), 0), IFNULL(SUM(rows_total), 0) FROM migration_tables"
	        " WHERE migration_id = ?",
	        p, 1, &rows) != 0)
		return -1;
	copied = num(rows.val[0][0]);
	total = num(rows.val[0][1]);
	pct = total > 0 ? (int)(copied * 100 / total) : 100;
	if (pct > 100)
		pct = 100;
	/* bounded: every 10 % or 30 s */
	if (pct < x->m.pct_audited + 10 && x->m.since_audit < 30)
		return 0;
	{
		struct json_object *o = json_object_new_object();
		char sql[160];
		struct transition t = {.m = &x->m,
		    .to = MIG_KEEP,
		    .phase = PHASE_KEEP,
		    .action = AA_MIGRATION_PROGRESS,
		    .payload = o,
		    .extra_sql = sql};

		json_object_object_add(o, "status",
		    json_object_new_string(mig_status_name(x->m.status)));
		json_object_object_add(o, "percent", json_object_new_int(pct));
		json_object_object_add(o, "rowsCopied", json_object_new_int64(copied));
		json_object_object_add(o, "rowsTotal", json_object_new_int64(total));
		snprintf(sql, sizeof(sql),
		    "UPDATE migrations SET progress_pct_audited = %d - %d %% 10,"
		    " progress_audited_at = NOW(3) WHERE id = ?",
		    pct, pct);
		return transition(x->control, &t);
	}
}

/* Threads_running on the source above the limit: the copy waits. */
static bool throttled(struct run *x)
{
	struct db_rows rows;
	char why[200] = "";
	long long running;

	if (db_query(x->src, x->a, "SHOW GLOBAL STATUS LIKE 'Threads_running'", NULL, 0, &rows) ==
	        0 &&
	    rows.nrows == 1 && rows.ncols == 2) {
		running = num(rows.val[0][1]);
		if (running > x->cfg->migration_max_threads_running)
			snprintf(why, sizeof(why), "source busy: Threads_running %lld > %d",
			    running, x->cfg->migration_max_threads_running);
	}
	{
		struct db_param p[] = {DBP_STR(why[0] ? why : NULL), DBP_BLOB(x->m.id, 16)};

		db_exec(x->control, "UPDATE migrations SET throttle_reason = ? WHERE id = ?", p, 2,
		    NULL);
	}
	return why[0] != '\0';
}

/* pending: the target database and its tenant schema, each table's total,
 * then change capture on and copying. */
enum step_result step_prepare(struct run *x)
{
	char err[512];
	struct db *server = NULL;
	struct db_param id[] = {DBP_BLOB(x->m.id, 16)};
	const char *t[MAX_TABLES];
	size_t n = tenant_tables(t);
	int64_t snapshot;
	enum step_result rc = STEP_ERROR;

	if (x->m.to_dedicated) {
		/* The database: recorded before it is created, so an abort after a
		 * crash still drops it; an existing one is never dropped. */
		int exists;

		if (!(server = target_server(x, "target server")))
			return STEP_ERROR;
		if ((exists = target_db_exists(x, server)) < 0)
			goto out;
		if (!exists && !x->m.created_db) {
			if (db_exec(x->control,
			        "UPDATE migrations SET target_db_created = 1 WHERE id = ?", id, 1,
			        NULL) != 0)
				goto out;
			x->m.created_db = true;
		}
		{
			char ddl[200];

			snprintf(ddl, sizeof(ddl),
			    "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
			    x->m.db_name);
			if (db_exec_script(server, ddl) != 0) {
				set_error(x->control, &x->m, "CREATE DATABASE: %s",
				    db_error(server));
				goto out;
			}
		}
		if (connect_ends(x) != 0)
			goto out;
		if (schema_migrate(x->dst, x->cfg->sql_dir, "tenant", NULL, NULL, err,
		        sizeof(err)) < 0) {
			set_error(x->control, &x->m, "tenant schema on the target: %s", err);
			goto out;
		}
	} else if (connect_ends(x) != 0) {
		goto out;
	}
	/* Totals, then the capture switch: the UPDATE of the org row waits for
	 * the writes in flight; every later write logs its change. The
	 * snapshot is the changelog position before the switch. */
	for (size_t i = 0; i < n; i++) {
		char sql[200];
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(x->m.org, 16)};

		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM `%s` WHERE org_id = ?", t[i]);
		if (db_query(x->src, x->a, sql, p, 1, &rows) != 0)
			goto out;
		{
			struct db_param q[] = {DBP_BLOB(x->m.id, 16), DBP_STR(t[i]),
			    DBP_I64(num(rows.val[0][0]))};

			if (db_exec(x->control,
			        "INSERT INTO migration_tables (migration_id, table_name, rows_total)"
			        " VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE rows_total = VALUES(rows_total)",
			        q, 3, NULL) != 0)
				goto out;
		}
	}
	{
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(x->m.org, 16)};

		if (db_query(x->src, x->a, "SELECT IFNULL(MAX(id), 0) FROM tenant_changelog", NULL,
		        0, &rows) != 0)
			goto out;
		snapshot = num(rows.val[0][0]);
		if (db_exec(x->control, "UPDATE orgs SET capture_changes = 1 WHERE id = ?", p, 1,
		        NULL) != 0)
			goto out;
	}
	{
		char sql[200];
		struct transition tr = {.m = &x->m,
		    .to = MIG_COPYING,
		    .phase = PHASE_NONE,
		    .action = AA_NONE,
		    .extra_sql = sql};

		snprintf(sql, sizeof(sql),
		    "UPDATE migrations SET snapshot_changelog_id = %" PRId64
		    ", applied_changelog_id = %" PRId64 ", copy_started_at = NOW(3) WHERE id = ?",
		    snapshot, snapshot);
		rc = step_transition(x, &tr);
	}
out:
	db_close(server);
	return rc;
}

static void *bg_main(void *p)
{
	struct bg *b = p;

	b->rc = b->fn(b->arg);
	return NULL;
}

void bg_start(struct bg *b, int (*fn)(void *), void *arg)
{
	b->fn = fn;
	b->arg = arg;
	b->rc = -1;
	b->started = pthread_create(&b->t, NULL, bg_main, b) == 0;
	if (!b->started)
		b->rc = fn(arg);
}

int bg_join(struct bg *b)
{
	if (b->started)
		pthread_join(b->t, NULL);
	b->started = false;
	return b->rc;
}

/* One chunk of one table: read from the source with each row's CRC32,
 * then written to the target and compared there before it commits. */
struct chunk {
	struct arena *a;  /* the rows (read) */
	struct arena *wa; /* the write's statements */
	struct db *src, *dst;
	const char *table;
	const struct cols *c;
	const uint8_t *org;
	uint8_t lo[16];
	long long limit;
	struct db_rows rows;
	bool last;        /* fewer rows than a chunk: the range runs to the end */
	struct sums s, t; /* source (as read) and target (as written) */
	bool repaired;    /* matched only once written again over a cleared range */
	bool mismatch;    /* still different after that */
	bool own_db;      /* the target holds no other org's rows (a dedicated one) */
	char err[300];    /* why the write failed (the rollback clears the connection's) */
};

static int read_chunk(struct chunk *ch)
{
	arena_reset(ch->a);
	if (select_range_as(ch->src, ch->a, ch->table, ch->c->listsum, ch->org, ch->lo, NULL,
	        ch->limit, &ch->rows) != 0)
		return -1;
	ch->last = ch->rows.nrows < (size_t)ch->limit;
	ch->s = (struct sums){(long long)ch->rows.nrows, 0};
	for (size_t r = 0; r < ch->rows.nrows; r++)
		ch->s.checksum ^= strtoull(ch->rows.val[r][ch->c->n], NULL, 10);
	return 0;
}

/* The chunk's range: (lo, its last id], or (lo, end) for the last chunk. */
static const uint8_t *chunk_end(const struct chunk *ch)
{
	return ch->last ? NULL : (const uint8_t *)ch->rows.val[ch->rows.nrows - 1][0];
}

/* Writes the chunk in one target transaction and compares the target's
 * range with what was read before committing: the copy verifies each
 * chunk as it lands. A range that differs (rows left there by a copy that
 * died before its checkpoint, since deleted in the source) is cleared and
 * written once more; still different, nothing commits and mismatch is
 * set. 0, or -1 on a database error (err says why). */
static int write_chunk(void *p)
{
	struct chunk *ch = p;
	const uint8_t *hi = chunk_end(ch);

	ch->mismatch = ch->repaired = false;
	for (int attempt = 0; attempt < 2; attempt++) {
		char sql[200];
		struct db_param q[3] = {DBP_BLOB(ch->org, 16), DBP_BLOB(ch->lo, 16)};

		arena_reset(ch->wa);
		if (hi)
			q[2] = DBP_BLOB(hi, 16);
		snprintf(sql, sizeof(sql), "DELETE FROM `%s` WHERE org_id = ? AND id > ?%s",
		    ch->table, hi ? " AND id <= ?" : "");
		if (db_begin(ch->dst) != 0 ||
		    (attempt && db_exec(ch->dst, sql, q, hi ? 3 : 2, NULL) != 0) ||
		    upsert(ch->dst, ch->wa, ch->table, ch->c, &ch->rows, 0, ch->rows.nrows) != 0 ||
		    (ch->own_db ? range_sum_own : range_sum)(ch->dst, ch->wa, ch->table, ch->c,
		        ch->org, ch->lo, hi, &ch->t) != 0)
			goto fail;
		if (ch->t.rows == ch->s.rows && ch->t.checksum == ch->s.checksum) {
			if (db_commit(ch->dst) != 0)
				goto fail;
			ch->repaired = attempt > 0;
			return 0;
		}
		db_rollback(ch->dst);
	}
	ch->mismatch = true;
	return 0;
fail:
	snprintf(ch->err, sizeof(ch->err), "%s", db_error(ch->dst));
	db_rollback(ch->dst);
	return -1;
}

#define COPY_BUDGET_MS 1000
/* Chunks written at once, each on its own target connection. */
#define COPY_WRITERS 2

/* Reads up to COPY_WRITERS chunks after lo, one after the other, stopping
 * at the table's last: how many were read, or -1. */
static int read_round(struct chunk *ch, const uint8_t lo[16])
{
	int k = 0;

	memcpy(ch[0].lo, lo, 16);
	for (; k < COPY_WRITERS; k++) {
		if (k)
			memcpy(ch[k].lo, ch[k - 1].rows.val[ch[k - 1].rows.nrows - 1][0], 16);
		if (read_chunk(&ch[k]) != 0)
			return -1;
		if (ch[k].last)
			return k + 1;
	}
	return k;
}

/* The round's chunks are written (and verified) and its reads done: one
 * checkpoint for all of them, with the sums the verification reports. */
static int checkpoint(struct run *x, const char *table, const struct chunk *ch, int k,
    const char *prev_last, unsigned long prev_len)
{
	const struct chunk *end = &ch[k - 1];
	long long rows = 0, src_rows = 0, dst_rows = 0, repaired = 0;
	uint64_t src_sum = 0, dst_sum = 0;
	struct db_param q[11];

	for (int i = 0; i < k; i++) {
		rows += (long long)ch[i].rows.nrows;
		src_rows += ch[i].s.rows;
		dst_rows += ch[i].t.rows;
		src_sum ^= ch[i].s.checksum;
		dst_sum ^= ch[i].t.checksum;
		repaired += ch[i].repaired;
	}
	/* id is the first column of every tenant table */
	q[0] = end->rows.nrows               ? DBP_BLOB(end->rows.val[end->rows.nrows - 1][0], 16)
	       : k > 1                       ? DBP_BLOB(end->lo, 16)
	       : prev_last && prev_len == 16 ? DBP_BLOB(prev_last, 16)
	                                     : DBP_NULL;
	q[1] = DBP_I64(rows);
	q[2] = DBP_I64(end->last);
	q[3] = DBP_I64(src_rows);
	q[4] = DBP_I64(dst_rows);
	q[5] = DBP_I64((long long)src_sum);
	q[6] = DBP_I64((long long)dst_sum);
	q[7] = DBP_I64(k);
	q[8] = DBP_I64(repaired);
	q[9] = DBP_BLOB(x->m.id, 16);
	q[10] = DBP_STR(table);
	return db_exec(x->control,
	    "UPDATE migration_tables SET last_id = ?, rows_copied = rows_copied + ?, copy_done = ?,"
	    " source_rows = source_rows + ?, target_rows = target_rows + ?,"
	    " source_checksum = source_checksum ^ CAST(? AS UNSIGNED),"
	    " target_checksum = target_checksum ^ CAST(? AS UNSIGNED),"
	    " chunks_verified = chunks_verified + ?, chunks_repaired = chunks_repaired + ?"
	    " WHERE migration_id = ? AND table_name = ?",
	    q, countof(q), NULL);
}

/* Copies chunks of one table until it is done or the step's time is up
 * (the smallest tables first: they are done, and show it, at once),
 * a round at a time: the round's chunks are written and verified on
 * COPY_WRITERS target connections at once while the next round is read
 * from the source on this thread; once every chunk of the round has
 * committed, its position is checkpointed. A chunk that still differs on
 * the target after it was written again ends the migration failed. */
enum step_result step_copy(struct run *x)
{
	struct db_rows t;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	struct cols c;
	struct chunk ch[2][COPY_WRITERS];
	struct db *dst[COPY_WRITERS] = {NULL};
	int64_t start = mono_ms();
	int cur = 0, k, writers = 1;
	enum step_result rc = STEP_ERROR;
	const char *table;

	memset(ch, 0, sizeof(ch));
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < COPY_WRITERS; i++)
			if (!(ch[r][i].a = arena_new(1 << 20)) ||
			    (r == 0 && !(ch[r][i].wa = arena_new(1 << 20))))
				goto out;
	if (connect_ends(x) != 0)
		goto out;
	if (throttled(x)) {
		rc = STEP_IDLE;
		goto out;
	}
	if (db_query(x->control, x->a,
	        "SELECT table_name, last_id FROM migration_tables WHERE migration_id = ? AND copy_done = 0"
	        " ORDER BY rows_total, table_name LIMIT 1",
	        p, 1, &t) != 0)
		goto out;
	if (t.nrows == 0) {
		struct transition tr = {.m = &x->m,
		    .to = MIG_CATCHING_UP,
		    .phase = PHASE_NONE,
		    .action = AA_NONE,
		    .extra_sql = "UPDATE migrations SET copy_finished_at = NOW(3) WHERE id = ?"};

		rc = step_transition(x, &tr);
		goto out;
	}
	table = t.val[0][0];
	if (!known_table(table)) {
		rc = fail_migration(x, "unknown table in migration_tables");
		goto out;
	}
	if (table_cols(x->src, x->a, table, &c) != 0)
		goto out;
	dst[0] = x->dst;
	for (; writers < COPY_WRITERS && (dst[writers] = second_target(x)); writers++)
		;
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < COPY_WRITERS; i++) {
			struct chunk *h = &ch[r][i];

			h->src = x->src;
			h->dst = dst[i % writers];
			h->wa = ch[0][i].wa;
			h->table = table;
			h->c = &c;
			h->org = x->m.org;
			h->limit = x->m.chunk;
			/* a dedicated target is never one another org lives in */
			h->own_db = x->m.to_dedicated;
		}
	if ((k = read_round(ch[cur],
	         t.val[0][1] && t.len[0][1] == 16 ? (const uint8_t *)t.val[0][1] : id_zero)) < 0)
		goto out;
	for (;;) {
		struct chunk *now = ch[cur], *next = ch[!cur];
		bool more = !now[k - 1].last && mono_ms() - start < COPY_BUDGET_MS;
		struct bg th[COPY_WRITERS];
		int nk = 0, failed = -1;

		/* with one connection the round's chunks are written one by one */
		for (int i = 0; i < k; i++) {
			if (writers > 1 || i == 0)
				bg_start(&th[i], write_chunk, &now[i]);
			else
				th[i] = (struct bg){.rc = 0};
		}
		if (more &&
		    (nk = read_round(next,
		         (const uint8_t *)now[k - 1].rows.val[now[k - 1].rows.nrows - 1][0])) < 0)
			nk = -1;
		for (int i = 0; i < k; i++) {
			int wrc = writers > 1 || i == 0 ? bg_join(&th[i]) : write_chunk(&now[i]);

			if ((wrc != 0 || now[i].mismatch) && failed < 0)
				failed = i;
		}
		if (failed >= 0 && !now[failed].mismatch) {
			set_error(x->control, &x->m, "copy into the target: %s", now[failed].err);
			goto out;
		}
		if (failed >= 0) {
			char why[400], id[40];
			const struct chunk *f = &now[failed];

			hex_encode(f->lo, 16, id);
			snprintf(why, sizeof(why),
			    "verification of %s: the chunk after id %s differs on the target after it"
			    " was written (source %lld rows, checksum %016llx; target %lld rows,"
			    " checksum %016llx), also when written again",
			    table, id, f->s.rows, (unsigned long long)f->s.checksum, f->t.rows,
			    (unsigned long long)f->t.checksum);
			rc = fail_migration(x, why);
			goto out;
		}
		if (checkpoint(x, table, now, k, t.val[0][1], t.len[0][1]) != 0)
			goto out;
		for (int i = 0; i < k; i++)
			metrics_migration_rows(now[i].rows.nrows);
		if (nk < 0)
			goto out;
		if (!more)
			break;
		cur = !cur;
		k = nk;
	}
	rc = progress_audit(x) == 0 ? STEP_MORE : STEP_ERROR;
out:
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < COPY_WRITERS; i++) {
			arena_free(ch[r][i].a);
			if (r == 0)
				arena_free(ch[r][i].wa);
		}
	return rc;
}

/* The column lists of the tables a catch-up batch touches, each read once. */
struct cols_cache {
	size_t n;
	const char *table[MAX_TABLES];
	struct cols *c[MAX_TABLES];
};

static const struct cols *cols_of(struct run *x, struct cols_cache *k, const char *table)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->table[i], table) == 0)
			return k->c[i];
	if (k->n == MAX_TABLES || !(k->c[k->n] = arena_alloc(x->a, sizeof(struct cols))) ||
	    table_cols(x->src, x->a, table, k->c[k->n]) != 0)
		return NULL;
	k->table[k->n] = table;
	return k->c[k->n++];
}

/* Whether the row of log entry i changes again later in the batch: the
 * row is read as it is now, so only its last entry needs replaying. */
static bool changed_again(const struct db_rows *log, size_t i)
{
	for (size_t j = i + 1; j < log->nrows; j++)
		if (log->len[j][2] == 16 && memcmp(log->val[j][2], log->val[i][2], 16) == 0 &&
		    strcmp(log->val[j][1], log->val[i][1]) == 0)
			return true;
	return false;
}

int catch_up(struct run *x, long long *n)
{
	struct cols_cache cache = {0};
	struct db_rows log;
	struct db_param p[] = {DBP_BLOB(x->m.org, 16), DBP_I64(x->m.applied),
	    DBP_I64(CATCHUP_BATCH)};
	int64_t last = x->m.applied;

	*n = 0;
	if (db_query(x->src, x->a,
	        "SELECT id, table_name, row_id FROM tenant_changelog WHERE org_id = ? AND id > ?"
	        " ORDER BY id LIMIT ?",
	        p, countof(p), &log) != 0)
		return -1;
	if (log.nrows == 0)
		return 0;
	if (db_begin(x->dst) != 0)
		return -1;
	for (size_t i = 0; i < log.nrows; i++) {
		const char *table = log.val[i][1];
		const struct cols *c;
		struct db_rows row;
		char sql[1400];
		struct db_param q[] = {DBP_BLOB(log.val[i][2], 16), DBP_BLOB(x->m.org, 16)};

		last = num(log.val[i][0]);
		if (!known_table(table) || log.len[i][2] != 16 || changed_again(&log, i))
			continue;
		if (!(c = cols_of(x, &cache, table)))
			goto fail;
		snprintf(sql, sizeof(sql), "SELECT %s FROM `%s` WHERE id = ? AND org_id = ?",
		    c->list, table);
		if (db_query(x->src, x->a, sql, q, 2, &row) != 0)
			goto fail;
		if (row.nrows == 1) {
			if (upsert(x->dst, x->a, table, c, &row, 0, 1) != 0)
				goto fail;
		} else {
			snprintf(sql, sizeof(sql), "DELETE FROM `%s` WHERE id = ? AND org_id = ?",
			    table);
			if (db_exec(x->dst, sql, q, 2, NULL) != 0)
				goto fail;
		}
	}
	if (db_commit(x->dst) != 0)
		goto fail;
	{
		struct db_param u[] = {DBP_I64(last), DBP_BLOB(x->m.id, 16)};

		if (db_exec(x->control,
		        "UPDATE migrations SET applied_changelog_id = ? WHERE id = ?", u, 2,
		        NULL) != 0)
			return -1;
	}
	x->m.applied = last;
	metrics_migration_rows(log.nrows);
	*n = (long long)log.nrows;
	return 0;
fail : {
	char why[300];

	/* the rollback first: for dedicated_to_shared the target is the
	 * control database, and the error must not go down with it */
	snprintf(why, sizeof(why), "%s", db_error(x->dst));
	db_rollback(x->dst);
	set_error(x->control, &x->m, "catch-up: %s", why);
}
	return -1;
}

/* catching_up: a batch of the changelog, verifying once it is drained. */
enum step_result step_catching_up(struct run *x)
{
	long long n;

	if (connect_ends(x) != 0 || catch_up(x, &n) != 0)
		return STEP_ERROR;
	if (n == CATCHUP_BATCH)
		return STEP_MORE;
	{
		struct transition tr = {.m = &x->m,
		    .to = MIG_VERIFYING,
		    .phase = PHASE_NONE,
		    .action = AA_NONE,
		    .extra_sql = resume_verify_sql};

		return step_transition(x, &tr);
	}
}

/* ready_for_cutover: catch up, to keep the lag short until the cut-over. */
enum step_result step_ready(struct run *x)
{
	long long n;

	if (connect_ends(x) != 0 || catch_up(x, &n) != 0)
		return STEP_ERROR;
	return STEP_IDLE;
}
