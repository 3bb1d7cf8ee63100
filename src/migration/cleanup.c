/* Ways out that switch nothing: an abort (aborting → aborted) and a dry
 * run's end remove what the migration made on the target; the source is
 * never touched. Also deletes an org's rows in chunks, which the cut-over
 * uses for the source once the org has moved. */
#include <stdio.h>

#include <json-c/json.h>

#include "infra/db.h"
#include "migration/internal.h"
#include "migration/migration.h"

#define CLEANUP_CHUNK 5000

enum step_result delete_org_rows(struct run *x, struct db *d, bool changelog)
{
	const char *t[MAX_TABLES + 1];
	size_t n = tenant_tables(t);
	struct db_param p[] = {DBP_BLOB(x->m.org, 16), DBP_I64(CLEANUP_CHUNK)};

	if (changelog)
		t[n++] = "tenant_changelog";
	for (size_t i = 0; i < n; i++) {
		char sql[160];
		unsigned long long gone = 0;

		snprintf(sql, sizeof(sql), "DELETE FROM `%s` WHERE org_id = ? ORDER BY id LIMIT ?",
		    t[i]);
		if (db_exec(d, sql, p, 2, &gone) != 0)
			return STEP_ERROR;
		if (gone)
			return STEP_MORE;
	}
	return STEP_IDLE;
}

/* Removes what the migration made on the target: the database when it
 * created it (recorded before creating), else the rows it copied. The
 * source is never touched. STEP_MORE while rows remain, STEP_IDLE when
 * done. */
static enum step_result clean_target(struct run *x)
{
	if (x->m.to_dedicated && x->m.created_db) {
		char ddl[160];
		struct db *server;
		int rc;

		ends_close();
		if (!(server = target_server(x, "target server (cleanup)")))
			return STEP_ERROR;
		/* created by this migration, but dropped only while no other org
		 * has rows in it; else only this org's rows go */
		if ((rc = holds_other_rows(server, x->a, x->m.db_name, x->m.org)) != 0) {
			db_close(server);
			if (rc < 0)
				return STEP_ERROR;
			x->m.created_db = false;
			return clean_target(x);
		}
		snprintf(ddl, sizeof(ddl), "DROP DATABASE IF EXISTS `%s`", x->m.db_name);
		rc = db_exec_script(server, ddl);
		if (rc != 0)
			set_error(x->control, &x->m, "DROP DATABASE: %s", db_error(server));
		db_close(server);
		return rc == 0 ? STEP_IDLE : STEP_ERROR;
	}
	if (x->m.to_dedicated) {
		/* a database this migration did not create: only its rows go, and
		 * one that does not exist (never reached) has nothing to clean */
		struct db *server = target_server(x, "target server (cleanup)");
		int rc;

		if (!server)
			return STEP_ERROR;
		rc = target_db_exists(x, server);
		db_close(server);
		if (rc <= 0)
			return rc == 0 ? STEP_IDLE : STEP_ERROR;
		if (connect_ends(x) != 0)
			return STEP_ERROR;
		return delete_org_rows(x, x->dst, true);
	}
	return delete_org_rows(x, x->control, false);
}

/* An abort whose target stays unreachable this long ends anyway, saying
 * what it could not drop (an operator removes it by hand). */
#define ABORT_GIVE_UP_S 900

/* aborting: capture off and writes unfrozen, the target cleaned a chunk at
 * a time, then aborted (also when the target stays unreachable too long). */
enum step_result step_aborting(struct run *x)
{
	enum step_result rc;
	bool cleaned = true;

	if (release_org(x) != 0)
		return STEP_ERROR;
	if ((rc = clean_target(x)) != STEP_IDLE) {
		struct db_rows rows;
		struct db_param q[] = {DBP_BLOB(x->m.id, 16)};

		if (rc == STEP_MORE ||
		    db_query(x->control, x->a,
		        "SELECT TIMESTAMPDIFF(SECOND, abort_requested_at, NOW(3)) FROM migrations"
		        " WHERE id = ?",
		        q, 1, &rows) != 0 ||
		    rows.nrows != 1 || num(rows.val[0][0]) < ABORT_GIVE_UP_S)
			return rc;
		cleaned = false;
	}
	{
		struct json_object *p = json_object_new_object();
		struct db_rows rows;
		struct db_param q[] = {DBP_BLOB(x->m.id, 16)};
		struct transition tr = {.m = &x->m,
		    .to = MIG_ABORTED,
		    .phase = PHASE_NONE,
		    .action = AA_MIGRATION_ABORTED,
		    .payload = p,
		    .finished = true};

		if (db_query(x->control, x->a, "SELECT abort_reason FROM migrations WHERE id = ?",
		        q, 1, &rows) == 0 &&
		    rows.nrows == 1 && rows.val[0][0])
			json_object_object_add(p, "reason", json_object_new_string(rows.val[0][0]));
		json_object_object_add(p, "targetDropped",
		    json_object_new_boolean(cleaned && x->m.created_db));
		json_object_object_add(p, "targetCleaned", json_object_new_boolean(cleaned));
		if (!cleaned) {
			char msg[300];
			struct db_param e[] = {DBP_STR(msg), DBP_BLOB(x->m.id, 16)};

			snprintf(msg, sizeof(msg),
			    "aborted without cleaning the target (unreachable for %d s): remove %s%s by hand",
			    ABORT_GIVE_UP_S,
			    x->m.created_db ? "database " : "this org's rows from ",
			    x->m.db_name ? x->m.db_name : "the target");
			if (transition(x->control, &tr) != 0)
				return STEP_ERROR;
			return db_exec(x->control, "UPDATE migrations SET error = ? WHERE id = ?",
			           e, 2, NULL) == 0
			           ? STEP_MORE
			           : STEP_ERROR;
		}
		return step_transition(x, &tr);
	}
}

/* A dry run after verifying: the target goes, the report stays. Both
 * ends are connected first, as for every verifying step (an unreachable
 * end is recorded and retried). */
enum step_result step_dry_cleanup(struct run *x)
{
	enum step_result cleaned;
	int rc;
	struct json_object *report, *v;
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};

	if (connect_ends(x) != 0 || release_org(x) != 0)
		return STEP_ERROR;
	if ((cleaned = clean_target(x)) != STEP_IDLE)
		return cleaned;
	if (db_query(x->control, x->a,
	        "SELECT verification, TIMESTAMPDIFF(MICROSECOND, created_at, NOW(3)),"
	        " TIMESTAMPDIFF(MICROSECOND, copy_started_at, copy_finished_at),"
	        " (SELECT SUM(rows_copied) FROM migration_tables WHERE migration_id = m.id)"
	        " FROM migrations m WHERE id = ?",
	        p, 1, &rows) != 0 ||
	    rows.nrows != 1)
		return STEP_ERROR;
	report = json_object_new_object();
	v = json_text(rows.val[0][0]);
	json_object_object_add(report, "dryRun", json_object_new_boolean(1));
	json_object_object_add(report, "tables",
	    json_object_get(json_object_object_get(v, "tables")));
	json_object_object_add(report, "durationMs",
	    json_object_new_int64(num(rows.val[0][1]) / 1000));
	json_object_object_add(report, "copyMs", json_object_new_int64(num(rows.val[0][2]) / 1000));
	json_object_object_add(report, "rowsCopied", json_object_new_int64(num(rows.val[0][3])));
	json_object_object_add(report, "rowsPerSecond",
	    json_object_new_int64(
	        num(rows.val[0][2]) > 0
	            ? (int64_t)((double)num(rows.val[0][3]) * 1e6 / (double)num(rows.val[0][2]))
	            : 0));
	json_object_object_add(report, "targetCleaned", json_object_new_boolean(1));
	json_object_put(v);
	{
		const char *text = json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN);
		struct db_param q[] = {DBP_STR(text), DBP_BLOB(x->m.id, 16)};

		rc = db_exec(x->control, "UPDATE migrations SET report = ? WHERE id = ?", q, 2,
		    NULL);
	}
	if (rc == 0) {
		struct transition tr = {.m = &x->m,
		    .to = MIG_COMPLETED,
		    .phase = PHASE_NONE,
		    .action = AA_MIGRATION_DRY_RUN_COMPLETED,
		    .payload = json_object_get(report),
		    .finished = true};

		rc = transition(x->control, &tr);
	}
	json_object_put(report);
	return rc == 0 ? STEP_MORE : STEP_ERROR;
}
