/* The engine the jobs process runs (mig_job): each active migration's
 * lease, then its steps while the call's time budget lasts. Every step is
 * written to the migrations / migration_tables rows before or with its
 * effect, so the engine can be killed anywhere and resumes from the rows. */
#include <string.h>

#include "infra/db.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migration/internal.h"
#include "migration/migration.h"

#define STEP_BUDGET_MS 1500
#define LEASE_S 10

/* One step of the migration, by its status (and, verifying, its phase). */
static enum step_result step(struct run *x)
{
	switch (x->m.status) {
	case MIG_PENDING:
		return step_prepare(x);
	case MIG_COPYING:
		return step_copy(x);
	case MIG_CATCHING_UP:
		return step_catching_up(x);
	case MIG_VERIFYING:
		return x->m.phase == PHASE_DRY_CLEANUP ? step_dry_cleanup(x) : step_verifying(x);
	case MIG_READY:
		return step_ready(x);
	case MIG_CUTTING_OVER:
		return step_cutting_over(x);
	case MIG_ABORTING:
		return step_aborting(x);
	default:
		return STEP_IDLE;
	}
}

/* Takes (or keeps) the migration's lease: false when it is someone
 * else's (or on a database error). A cut-over this process did not start
 * begins again from the freeze: a freeze that lapsed while nobody held the
 * lease may have let writes in. */
static bool claim(struct db *control, struct mig *m)
{
	const char *me = holder_name();
	struct db_param p[] = {DBP_STR(me), DBP_I64(LEASE_S), DBP_BLOB(m->id, 16), DBP_STR(me)};
	unsigned long long got = 0;
	bool takeover = !m->lease || strcmp(m->lease, me) != 0;

	if (db_exec(control,
	        "UPDATE migrations SET lease_holder = ?, lease_until = NOW(3) + INTERVAL ? SECOND"
	        " WHERE id = ? AND (lease_holder IS NULL OR lease_holder = ? OR lease_until < NOW(3))",
	        p, countof(p), &got) != 0)
		return false;
	if (!got)
		return false;
	if (takeover && m->status == MIG_CUTTING_OVER &&
	    (m->phase == PHASE_FINAL_CATCHUP || m->phase == PHASE_FINAL_VERIFY ||
	        m->phase == PHASE_SWITCH)) {
		struct db_param q[] = {DBP_STR(mig_phase_name(PHASE_FREEZE)), DBP_BLOB(m->id, 16)};

		if (db_exec(control, "UPDATE migrations SET phase = ? WHERE id = ?", q, 2, NULL) !=
		    0)
			return false;
	}
	return true;
}

int mig_job(struct db *control, const struct opsd_config *cfg)
{
	struct arena *list = arena_new(16 * 1024), *a = arena_new(256 * 1024);
	struct db_rows rows;
	int64_t start = mono_ms();
	int busy = 0;

	if (!list || !a)
		goto out;
	if (db_query(control, list,
	        "SELECT id FROM migrations WHERE status IN ('pending', 'copying', 'catching_up',"
	        " 'verifying', 'ready_for_cutover', 'cutting_over', 'aborting') ORDER BY created_at LIMIT 16",
	        NULL, 0, &rows) != 0) {
		busy = -1;
		goto out;
	}
	if (rows.nrows == 0)
		ends_close(); /* nothing to migrate: no connection kept to a target */
	for (size_t i = 0; i < rows.nrows; i++) {
		struct run x = {.control = control, .cfg = cfg, .a = a};
		struct db_param p[] = {DBP_BLOB(rows.val[i][0], 16)};
		enum step_result rc = STEP_MORE;

		for (bool first = true; rc == STEP_MORE && mono_ms() - start < STEP_BUDGET_MS;
		     first = false) {
			struct db_rows one;

			arena_reset(a);
			if (db_query(control, a,
			        "SELECT " MIG_COLUMNS " FROM migrations WHERE id = ?", p, 1,
			        &one) != 0 ||
			    one.nrows != 1)
				break;
			mig_from_row(&one, 0, &x.m);
			if (first && !claim(control, &x.m))
				break;
			if (first && (db_query(control, a,
			                  "SELECT " MIG_COLUMNS " FROM migrations WHERE id = ?", p,
			                  1, &one) != 0 ||
			                 one.nrows != 1))
				break;
			mig_from_row(&one, 0, &x.m);
			rc = step(&x);
			if (rc == STEP_ERROR)
				log_msg(LL_WARN, "migration_step_failed", "%s (%s): will retry",
				    x.m.id_s, mig_status_name(x.m.status));
		}
		if (rc == STEP_MORE)
			busy = 1;
	}
out:
	arena_free(list);
	arena_free(a);
	return busy;
}
