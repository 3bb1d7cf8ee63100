/* The engine the jobs process runs (mig_job): each active migration's
 * lease, then its steps while the call's time budget lasts. Every step is
 * written to the migrations / migration_tables rows before or with its
 * effect, so the engine can be killed anywhere and resumes from the rows.
 * A failed step is tried again on a later call; one that keeps failing
 * before the switch ends the migration failed (gives_up below). */
#include <stdio.h>
#include <string.h>

#include "infra/config.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/holder.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migration/internal.h"
#include "migration/migration.h"

#define STEP_BUDGET_MS 1500

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
		return x->m.phase == PHASE_REHEARSAL ? step_rehearsal(x) : step_ready(x);
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
	const char *me = holder_self();
	struct db_param p[] = {DBP_STR(me), DBP_I64(MIG_LEASE_S), DBP_BLOB(m->id, 16), DBP_STR(me)};
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

/* The statuses in which steps that keep failing end the migration: those
 * before the switch. A cut-over hands the org back to ready_for_cutover by
 * itself when it cannot finish (and after the switch it must finish); an
 * abort gives up by itself (cleanup.c). */
static const bool may_give_up[MIG__MAX] = {
    [MIG_PENDING] = true,
    [MIG_COPYING] = true,
    [MIG_CATCHING_UP] = true,
    [MIG_VERIFYING] = true,
    [MIG_READY] = true,
};

/* Since when each migration's steps have failed without a step between
 * that did not, as this process saw it (a new jobs process starts counting
 * again). As many as mig_job steps; with every slot taken, a migration is
 * not timed and retries as before. */
static struct {
	bool used;
	uint8_t id[16];
	int64_t since_ms;
} failing[16];

static int failing_slot(const uint8_t id[16])
{
	for (int i = 0; i < (int)countof(failing); i++)
		if (failing[i].used && memcmp(failing[i].id, id, 16) == 0)
			return i;
	return -1;
}

/* Steps that keep failing (the target's tenant tables dropped or altered,
 * its rights revoked, a target gone for good) would otherwise be retried
 * for ever while nothing tells an operator: after
 * OPSD_MIGRATION_FAIL_AFTER_S of failed steps the migration ends failed,
 * with the last error it recorded. The source was never touched and
 * nothing switched; the target keeps what was copied until an abort naming
 * the migration cleans it. */
static enum step_result gives_up(struct run *x, enum step_result rc)
{
	int i = failing_slot(x->m.id);
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	char why[1000];

	if (rc != STEP_ERROR || (unsigned)x->m.status >= MIG__MAX || !may_give_up[x->m.status]) {
		if (i >= 0)
			failing[i].used = false;
		return rc;
	}
	if (i < 0) {
		for (i = 0; i < (int)countof(failing) && failing[i].used; i++)
			;
		if (i < (int)countof(failing)) {
			failing[i].used = true;
			memcpy(failing[i].id, x->m.id, 16);
			failing[i].since_ms = mono_ms();
		}
		return rc;
	}
	if (mono_ms() - failing[i].since_ms < (int64_t)x->cfg->migration_fail_after_s * 1000)
		return rc;
	if (db_query(x->control, x->a, "SELECT error FROM migrations WHERE id = ?", p, 1, &rows) !=
	    0)
		return rc;
	snprintf(why, sizeof(why), "gave up after %d s of failing steps; last error: %s",
	    x->cfg->migration_fail_after_s,
	    rows.nrows == 1 && rows.val[0][0] ? rows.val[0][0] : "no error recorded");
	rc = fail_migration(x, why);
	if (rc != STEP_ERROR)
		failing[i].used = false;
	return rc;
}

/* A migration no longer active (finished, aborted or failed, here or by
 * another host) frees its slot, so the slots never fill with the dead. */
static void forget_inactive(const struct db_rows *active)
{
	for (size_t i = 0; i < countof(failing); i++) {
		bool found = false;

		for (size_t j = 0; failing[i].used && j < active->nrows && !found; j++)
			found = active->len[j][0] == 16 &&
			        memcmp(active->val[j][0], failing[i].id, 16) == 0;
		if (!found)
			failing[i].used = false;
	}
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
	forget_inactive(&rows);
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
			rc = gives_up(&x, step(&x));
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
