/* cutting_over: freeze the org's writes, catch up and verify once more
 * under the freeze, switch the routing, then delete the source's rows.
 * Whatever goes wrong before the switch gives the org its writes back and
 * switches nothing. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "infra/db.h"
#include "lib/holder.h"
#include "lib/util.h"
#include "migration/internal.h"
#include "migration/migration.h"

#define FREEZE_S 30
#define CUTOVER_MAX_S 120 /* longest a cut-over may hold the org's writes */

/* The write freeze, set or extended: the UPDATE waits for writes in
 * flight (they hold the org row in share mode). */
static int freeze(struct run *x)
{
	struct db_param p[] = {DBP_I64(FREEZE_S), DBP_BLOB(x->m.org, 16)};

	return db_exec(x->control,
	    "UPDATE orgs SET write_frozen_until = NOW(3) + INTERVAL ? SECOND WHERE id = ?", p, 2,
	    NULL);
}

/* Back to ready_for_cutover, unfrozen, nothing switched: STEP_IDLE, or
 * STEP_ERROR when that could not be written. */
static enum step_result cutover_refused(struct run *x, const char *why)
{
	struct json_object *p = json_object_new_object();
	struct transition tr = {.m = &x->m,
	    .to = MIG_READY,
	    .phase = PHASE_NONE,
	    .action = AA_MIGRATION_CUTOVER_REFUSED,
	    .payload = p,
	    .extra_sql = "UPDATE migrations SET freeze_started_at = NULL WHERE id = ?"};
	struct db_param e[] = {DBP_STR(why), DBP_BLOB(x->m.id, 16)};
	struct db_param o[] = {DBP_BLOB(x->m.org, 16)};

	json_object_object_add(p, "reason", json_object_new_string(why));
	if (db_exec(x->control, "UPDATE orgs SET write_frozen_until = NULL WHERE id = ?", o, 1,
	        NULL) != 0) {
		json_object_put(p); /* transition() releases it on its own paths */
		return STEP_ERROR;
	}
	if (transition(x->control, &tr) != 0)
		return STEP_ERROR;
	return db_exec(x->control, "UPDATE migrations SET error = ? WHERE id = ?", e, 2, NULL) == 0
	           ? STEP_IDLE
	           : STEP_ERROR;
}

static int switch_fn(struct db *d, void *arg)
{
	struct run *x = arg;
	struct db_rows rows;
	struct db_param id[] = {DBP_BLOB(x->m.id, 16)};
	struct db_param done[] = {DBP_STR(mig_phase_name(PHASE_SOURCE_CLEANUP)),
	    DBP_BLOB(x->m.id, 16), DBP_STR(mig_status_name(MIG_CUTTING_OVER))};
	struct db_param org[] = {DBP_STR(x->m.sealed), DBP_STR(x->m.redacted),
	    DBP_BLOB(x->m.org, 16)};
	struct json_object *p;

	/* The freeze must still hold (the org row locked: no write can start
	 * now) and every captured change must be replayed; otherwise the
	 * cut-over starts again from the freeze and nothing switches. */
	{
		struct db_rows fz, log;
		struct db_param o[] = {DBP_BLOB(x->m.org, 16)};
		struct db_param q[] = {DBP_BLOB(x->m.org, 16), DBP_I64(x->m.applied)};

		if (db_query(d, x->a,
		        "SELECT IFNULL(write_frozen_until > NOW(3), 0) FROM orgs WHERE id = ? FOR UPDATE",
		        o, 1, &fz) != 0 ||
		    db_query(x->src, x->a,
		        "SELECT 1 FROM tenant_changelog WHERE org_id = ? AND id > ? LIMIT 1", q, 2,
		        &log) != 0)
			return -1;
		if (fz.nrows != 1 || strcmp(fz.val[0][0], "1") != 0 || log.nrows) {
			x->restart_cutover = true;
			return 1;
		}
	}
	if (x->m.to_dedicated ? db_exec(d,
	                            "UPDATE orgs SET db_mode = 'dedicated',"
	                            " dedicated_target = JSON_OBJECT('sealed', ?, 'redacted', ?),"
	                            " capture_changes = 0, write_frozen_until = NULL WHERE id = ?",
	                            org, 3, NULL)
	                      : db_exec(d,
	                            "UPDATE orgs SET db_mode = 'shared', dedicated_target = NULL,"
	                            " capture_changes = 0, write_frozen_until = NULL WHERE id = ?",
	                            org + 2, 1, NULL))
		return -1;
	{
		unsigned long long n = 0;

		/* an abort that came in during the freeze wins: nothing switches */
		if (db_exec(d,
		        "UPDATE migrations SET phase = ?,"
		        " freeze_ms = TIMESTAMPDIFF(MICROSECOND, freeze_started_at, NOW(3)) DIV 1000"
		        " WHERE id = ? AND status = ?",
		        done, countof(done), &n) != 0)
			return -1;
		if (n == 0)
			return 1;
	}
	if (db_query(d, x->a, "SELECT freeze_ms FROM migrations WHERE id = ?", id, 1, &rows) != 0)
		return -1;
	p = json_object_new_object();
	json_object_object_add(p, "direction",
	    json_object_new_string(
	        mig_directions[x->m.to_dedicated ? MIG_TO_DEDICATED : MIG_TO_SHARED]));
	json_object_object_add(p, "freezeMs",
	    json_object_new_int64(rows.nrows ? num(rows.val[0][0]) : 0));
	return audit_append(d, &system_actor, AA_MIGRATION_FINALIZED, x->m.org_s, "migration",
	    x->m.id_s, p);
}

/* The cut-over's next phase, only from the phase this step read, while
 * the migration is still cutting over and this process holds its lease. */
static int set_phase(struct run *x, enum mig_phase to, const char *extra_set)
{
	char sql[400];
	struct db_param p[] = {DBP_STR(mig_phase_name(to)), DBP_BLOB(x->m.id, 16),
	    DBP_STR(mig_status_name(MIG_CUTTING_OVER)), DBP_STR(mig_phase_name(x->m.phase)),
	    DBP_STR(holder_self())};

	snprintf(sql, sizeof(sql),
	    "UPDATE migrations SET phase = ?%s%s WHERE id = ? AND status = ? AND phase = ?"
	    " AND lease_holder = ?",
	    extra_set ? ", " : "", extra_set ? extra_set : "");
	return db_exec(x->control, sql, p, countof(p), NULL);
}

/* After the switch: the org lives in the target now; the source copy goes. */
static enum step_result cutover_source_cleanup(struct run *x)
{
	enum step_result rc;

	if (connect_ends(x) != 0)
		return STEP_ERROR;
	if ((rc = delete_org_rows(x, x->src, true)) != STEP_IDLE)
		return rc;
	{
		struct transition tr = {.m = &x->m,
		    .to = MIG_COMPLETED,
		    .phase = PHASE_NONE,
		    .action = AA_NONE,
		    .finished = true};

		return step_transition(x, &tr);
	}
}

/* The org's writes stop; the final catch-up starts again from the
 * snapshot. */
static enum step_result cutover_freeze(struct run *x)
{
	if (freeze(x) != 0 ||
	    set_phase(x, PHASE_FINAL_CATCHUP,
	        "freeze_started_at = NOW(3), applied_changelog_id = snapshot_changelog_id") != 0)
		return STEP_ERROR;
	return STEP_MORE;
}

/* Every change since the snapshot again: exact, as writes are held. */
static enum step_result cutover_final_catchup(struct run *x)
{
	struct db_param id[] = {DBP_BLOB(x->m.id, 16)};
	long long n;

	do {
		if (freeze(x) != 0 || catch_up(x, &n) != 0)
			return STEP_ERROR;
	} while (n == CATCHUP_BATCH);
	if (db_exec(x->control, reset_verify_sql, id, 1, NULL) != 0 ||
	    set_phase(x, PHASE_FINAL_VERIFY, NULL) != 0)
		return STEP_ERROR;
	return STEP_MORE;
}

/* Every chunk of every table compared again under the freeze: any
 * difference refuses the cut-over. */
static enum step_result cutover_final_verify(struct run *x)
{
	enum verify_result rc;

	if (freeze(x) != 0)
		return STEP_ERROR;
	rc = verify_some(x, VERIFY_FINAL);
	if (rc == VERIFY_ERROR)
		return STEP_ERROR;
	if (rc == VERIFY_MISMATCH)
		return cutover_refused(x,
		    "final verification found a difference; the cut-over was aborted and"
		    " nothing was switched");
	if (set_phase(x, PHASE_SWITCH, NULL) != 0)
		return STEP_ERROR;
	return STEP_MORE;
}

/* The routing switch, in one control transaction (switch_fn). */
static enum step_result cutover_switch(struct run *x)
{
	x->restart_cutover = false;
	if (db_tx(x->control, switch_fn, x) < 0)
		return STEP_ERROR;
	if (x->restart_cutover && set_phase(x, PHASE_FREEZE, NULL) != 0)
		return STEP_ERROR;
	return STEP_MORE; /* switched, restarted, or an abort came first: the next step reloads */
}

enum step_result step_cutting_over(struct run *x)
{
	if (x->m.phase == PHASE_SOURCE_CLEANUP)
		return cutover_source_cleanup(x);
	/* Before the switch: the target must answer now, or nothing happens. */
	if (connect_ends(x) != 0)
		return cutover_refused(x, "the target is unreachable; nothing was switched");
	/* A freeze is seconds: a cut-over that cannot finish (a target that
	 * refuses writes, a stuck lock) gives the org its writes back. */
	if (x->m.phase != PHASE_FREEZE) {
		struct db_param id[] = {DBP_BLOB(x->m.id, 16)};
		struct db_rows t;

		if (db_query(x->control, x->a,
		        "SELECT TIMESTAMPDIFF(SECOND, freeze_started_at, NOW(3)) FROM migrations WHERE id = ?",
		        id, 1, &t) != 0)
			return STEP_ERROR;
		if (t.nrows == 1 && num(t.val[0][0]) > CUTOVER_MAX_S)
			return cutover_refused(x,
			    "the cut-over did not finish in time; nothing was switched");
	}
	switch (x->m.phase) {
	case PHASE_FREEZE:
		return cutover_freeze(x);
	case PHASE_FINAL_CATCHUP:
		return cutover_final_catchup(x);
	case PHASE_FINAL_VERIFY:
		return cutover_final_verify(x);
	case PHASE_SWITCH:
		return cutover_switch(x);
	default:
		return fail_migration(x, "unknown cut-over phase");
	}
}
