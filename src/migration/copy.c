/* pending → copying → catching_up: the target is prepared, the rows are
 * copied in chunks (reading and writing overlap on two threads), then the
 * changes captured meanwhile are replayed. ready_for_cutover keeps
 * catching up until the operator finalizes. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "infra/config.h"
#include "infra/db.h"
#include "infra/metrics.h"
#include "infra/schema.h"
#include "lib/arena.h"
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

/* One chunk of one table, read from the source or written to the target. */
struct chunk_io {
	struct db *d;
	struct arena *a;
	const char *table;
	const struct cols *c;
	const uint8_t *org;
	uint8_t lo[16];
	long long limit;
	struct db_rows *rows;
	char err[300]; /* write_chunk: why it failed (the rollback clears the connection's) */
};

static int read_chunk(void *p)
{
	struct chunk_io *io = p;

	arena_reset(io->a);
	return select_range(io->d, io->a, io->table, io->c, io->org, io->lo, NULL, io->limit,
	    io->rows);
}

static int write_chunk(void *p)
{
	struct chunk_io *io = p;

	if (!io->rows->nrows)
		return 0;
	arena_reset(io->a);
	if (db_begin(io->d) != 0 ||
	    upsert(io->d, io->a, io->table, io->c, io->rows, 0, io->rows->nrows) != 0 ||
	    db_commit(io->d) != 0) {
		snprintf(io->err, sizeof(io->err), "%s", db_error(io->d));
		db_rollback(io->d);
		return -1;
	}
	return 0;
}

#define COPY_BUDGET_MS 1000

/* Copies chunks of one table until it is done or the step's time is up:
 * chunk n is written to the target while chunk n + 1 is read from the
 * source (the non-control side on a second thread), and each chunk's
 * position is checkpointed once the target has committed it. */
enum step_result step_copy(struct run *x)
{
	struct db_rows t, bufs[2];
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	struct cols c;
	struct arena *ra[2] = {arena_new(1 << 20), arena_new(1 << 20)}, *wa = arena_new(1 << 20);
	struct chunk_io rd, wr;
	int64_t start = mono_ms();
	bool read_on_thread = x->src != x->control;
	int cur = 0;
	enum step_result rc = STEP_ERROR;
	const char *table;

	if (!ra[0] || !ra[1] || !wa)
		goto out;
	if (connect_ends(x) != 0)
		goto out;
	if (throttled(x)) {
		rc = STEP_IDLE;
		goto out;
	}
	if (db_query(x->control, x->a,
	        "SELECT table_name, last_id FROM migration_tables WHERE migration_id = ? AND copy_done = 0"
	        " ORDER BY table_name LIMIT 1",
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
	rd = (struct chunk_io){x->src, ra[0], table, &c, x->m.org, {0}, x->m.chunk, &bufs[0], ""};
	memcpy(rd.lo, t.val[0][1] && t.len[0][1] == 16 ? (const uint8_t *)t.val[0][1] : id_zero,
	    16);
	if (read_chunk(&rd) != 0)
		goto out;
	for (;;) {
		struct db_rows *rows = &bufs[cur];
		bool done = rows->nrows < (size_t)x->m.chunk;
		bool more = !done && mono_ms() - start < COPY_BUDGET_MS;
		struct bg th;
		int wrc, rrc = 0;

		wr = (struct chunk_io){x->dst, wa, table, &c, x->m.org, {0}, 0, rows, ""};
		if (more) {
			rd = (struct chunk_io){x->src, ra[!cur], table, &c, x->m.org, {0},
			    x->m.chunk, &bufs[!cur], ""};
			memcpy(rd.lo, rows->val[rows->nrows - 1][0], 16);
		}
		if (read_on_thread) {
			if (more)
				bg_start(&th, read_chunk, &rd);
			wrc = write_chunk(&wr);
			if (more)
				rrc = bg_join(&th);
		} else {
			bg_start(&th, write_chunk, &wr);
			if (more)
				rrc = read_chunk(&rd);
			wrc = bg_join(&th);
		}
		if (wrc != 0) {
			set_error(x->control, &x->m, "copy into the target: %s", wr.err);
			goto out;
		}
		{
			/* id is the first column of every tenant table */
			const char *last =
			    rows->nrows ? rows->val[rows->nrows - 1][0] : (const char *)rd.lo;
			struct db_param q[] = {DBP_BLOB(last, 16), DBP_I64((long long)rows->nrows),
			    DBP_I64(done), DBP_BLOB(x->m.id, 16), DBP_STR(table)};

			if (!rows->nrows)
				q[0] = t.val[0][1] && t.len[0][1] == 16 ? DBP_BLOB(t.val[0][1], 16)
				                                        : DBP_NULL;
			if (db_exec(x->control,
			        "UPDATE migration_tables SET last_id = ?, rows_copied = rows_copied + ?,"
			        " copy_done = ? WHERE migration_id = ? AND table_name = ?",
			        q, countof(q), NULL) != 0)
				goto out;
		}
		metrics_migration_rows(rows->nrows);
		if (rrc != 0)
			goto out;
		if (!more)
			break;
		cur = !cur;
	}
	rc = progress_audit(x) == 0 ? STEP_MORE : STEP_ERROR;
out:
	arena_free(ra[0]);
	arena_free(ra[1]);
	arena_free(wa);
	return rc;
}

int catch_up(struct run *x, long long *n)
{
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
		struct cols c;
		struct db_rows row;
		char sql[1400];
		struct db_param q[] = {DBP_BLOB(log.val[i][2], 16), DBP_BLOB(x->m.org, 16)};

		last = num(log.val[i][0]);
		if (!known_table(table) || log.len[i][2] != 16)
			continue;
		if (table_cols(x->src, x->a, table, &c) != 0)
			goto fail;
		snprintf(sql, sizeof(sql), "SELECT %s FROM `%s` WHERE id = ? AND org_id = ?",
		    c.list, table);
		if (db_query(x->src, x->a, sql, q, 2, &row) != 0)
			goto fail;
		if (row.nrows == 1) {
			if (upsert(x->dst, x->a, table, &c, &row, 0, 1) != 0)
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
		    .extra_sql = reset_verify_sql};

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
