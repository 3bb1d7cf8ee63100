/* The cut-over rehearsed (finalize with dryRun, README "Runbook 3"): at
 * ready_for_cutover, phase rehearsal, the engine takes the steps the
 * cut-over takes under its freeze — both ends connected, every change
 * since the snapshot replayed, every chunk compared — and times them,
 * without the freeze and without the switch: the org keeps its routing and
 * its writes, the migration stays ready_for_cutover, and a real finalize
 * works afterwards as before. The sum of the timed steps is the freeze the
 * cut-over can expect. The report goes to migrations.report with the
 * migration.finalize_rehearsed event; mig_rehearsal_wait lets the API and
 * opsctl wait for it. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "migration/internal.h"
#include "migration/migration.h"

/* What the rehearsal found, step by step. */
struct rehearsal {
	struct json_object *steps;
	int64_t catch_up_ms, verify_ms;
	long long replayed, chunks, mismatched;
	bool done; /* every step ran */
	bool ok;   /* and the verification matched */
	struct json_object *verification;
	char error[700];
};

/* One step of the report: its name, whether it went through, its time. */
static struct json_object *add_step(struct rehearsal *h, const char *name, bool ok, int64_t ms)
{
	struct json_object *s = json_object_new_object();

	json_object_object_add(s, "step", json_object_new_string(name));
	json_object_object_add(s, "ok", json_object_new_boolean(ok));
	json_object_object_add(s, "ms", json_object_new_int64(ms));
	json_object_array_add(h->steps, s);
	return s;
}

/* Why a step failed: what it was doing, and the error the engine recorded
 * on the migration (set_error), which the rehearsal's end clears. */
static void step_failed(struct run *x, struct rehearsal *h, const char *what)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->m.id, 16)};
	const char *e = NULL;

	if (db_query(x->control, x->a, "SELECT error FROM migrations WHERE id = ?", p, 1, &rows) ==
	        0 &&
	    rows.nrows == 1)
		e = rows.val[0][0];
	snprintf(h->error, sizeof(h->error), "%s%s%s", what, e ? ": " : "", e ? e : "");
}

/* Both ends answer: the cut-over's first check. */
static bool rehearse_connect(struct run *x, struct rehearsal *h)
{
	int64_t t0 = mono_ms();
	bool ok = connect_ends(x) == 0;

	add_step(h, "connect", ok, mono_ms() - t0);
	if (!ok)
		step_failed(x, h, "an end of the migration cannot be reached");
	return ok;
}

/* As the cut-over's final catch-up: every change since the snapshot, not
 * only those since the last catch-up, so that its time is the freeze's. */
static bool rehearse_catch_up(struct run *x, struct rehearsal *h)
{
	int64_t t0 = mono_ms();
	long long n = 0;
	bool ok = true;

	x->m.applied = x->m.snapshot;
	do {
		if (lease_renew(x) != 0 || catch_up(x, &n) != 0) {
			ok = false;
			break;
		}
		h->replayed += n;
	} while (n == CATCHUP_BATCH);
	h->catch_up_ms = mono_ms() - t0;
	json_object_object_add(add_step(h, "catch_up", ok, h->catch_up_ms), "changesReplayed",
	    json_object_new_int64(h->replayed));
	if (!ok)
		step_failed(x, h, "the catch-up failed");
	return ok;
}

/* Every chunk compared, in the cut-over's chunk size; the verification is
 * stored as the migration's latest one. */
static bool rehearse_verify(struct run *x, struct rehearsal *h)
{
	struct db_param id[] = {DBP_BLOB(x->m.id, 16)};
	int64_t t0 = mono_ms();
	enum verify_result rc = VERIFY_ERROR;
	struct json_object *tables, *s;
	struct db_rows rows;

	if (db_exec(x->control, reset_verify_sql, id, 1, NULL) == 0)
		rc = verify_some(x, VERIFY_REHEARSAL);
	h->verify_ms = mono_ms() - t0;
	if (rc != VERIFY_ERROR &&
	    db_query(x->control, x->a, "SELECT verification FROM migrations WHERE id = ?", id, 1,
	        &rows) == 0 &&
	    rows.nrows == 1)
		h->verification = json_text(rows.val[0][0]);
	tables = json_object_object_get(h->verification, "tables");
	for (size_t i = 0;
	     json_object_is_type(tables, json_type_array) && i < json_object_array_length(tables);
	     i++) {
		struct json_object *t = json_object_array_get_idx(tables, i);

		h->chunks += json_object_get_int64(json_object_object_get(t, "chunks"));
		h->mismatched +=
		    json_object_get_int64(json_object_object_get(t, "chunksMismatched"));
	}
	s = add_step(h, "verify", rc == VERIFY_DONE, h->verify_ms);
	json_object_object_add(s, "chunks", json_object_new_int64(h->chunks));
	json_object_object_add(s, "chunksMismatched", json_object_new_int64(h->mismatched));
	if (rc == VERIFY_ERROR) {
		step_failed(x, h, "the verification could not compare both sides");
		return false;
	}
	h->ok = rc == VERIFY_DONE;
	if (!h->ok)
		snprintf(h->error, sizeof(h->error),
		    "a chunk still differs after a catch-up; under the freeze the cut-over would"
		    " refuse it, unless the difference was a write in flight");
	return true;
}

/* The report, as migrations.report keeps it and the API answers it. */
static struct json_object *report_json(struct run *x, struct rehearsal *h, int64_t begun)
{
	struct json_object *o = json_object_new_object();
	char t[32];

	json_object_object_add(o, "migrationId", json_object_new_string(x->m.id_s));
	json_object_object_add(o, "orgId", json_object_new_string(x->m.org_s));
	json_object_object_add(o, "direction",
	    json_object_new_string(
	        mig_directions[x->m.to_dedicated ? MIG_TO_DEDICATED : MIG_TO_SHARED]));
	json_object_object_add(o, "dryRun", json_object_new_boolean(1));
	json_object_object_add(o, "rehearsal", json_object_new_boolean(1));
	json_object_object_add(o, "switched", json_object_new_boolean(0));
	json_object_object_add(o, "ok", json_object_new_boolean(h->ok));
	format_rfc3339(begun, t);
	json_object_object_add(o, "startedAt", json_object_new_string(t));
	format_rfc3339(now_ms(), t);
	json_object_object_add(o, "finishedAt", json_object_new_string(t));
	json_object_object_add(o, "durationMs", json_object_new_int64(now_ms() - begun));
	json_object_object_add(o, "steps", h->steps);
	json_object_object_add(o, "changesReplayed", json_object_new_int64(h->replayed));
	json_object_object_add(o, "verification", h->verification);
	/* what the freeze covers: the final catch-up and verification (the
	 * switch itself is one short transaction) */
	json_object_object_add(o, "expectedFreezeMs",
	    h->done ? json_object_new_int64(h->catch_up_ms + h->verify_ms) : NULL);
	json_object_object_add(o, "error", h->error[0] ? json_object_new_string(h->error) : NULL);
	return o;
}

/* The event's payload: the outcome without the per-table detail. */
static struct json_object *event_json(struct json_object *report)
{
	static const char *const keys[] = {"direction", "ok", "durationMs", "changesReplayed",
	    "expectedFreezeMs", "error"};
	struct json_object *p = json_object_new_object();

	for (size_t i = 0; i < countof(keys); i++)
		json_object_object_add(p, keys[i],
		    json_object_get(json_object_object_get(report, keys[i])));
	return p;
}

enum step_result step_rehearsal(struct run *x)
{
	struct rehearsal h = {.steps = json_object_new_array()};
	int64_t begun = now_ms();
	struct json_object *report;
	struct transition tr;
	enum step_result rc;

	h.done = rehearse_connect(x, &h) && rehearse_catch_up(x, &h) && rehearse_verify(x, &h);
	report = report_json(x, &h, begun);
	tr = (struct transition){.m = &x->m,
	    .to = MIG_KEEP,
	    .phase = PHASE_NONE,
	    .action = AA_MIGRATION_FINALIZE_REHEARSED,
	    .payload = event_json(report),
	    .report = json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN)};
	/* an abort or a real finalize that came in meanwhile wins: the
	 * transition is then not applied, and there is no report */
	rc = step_transition(x, &tr);
	if (rc == STEP_MORE && !tr.lost)
		log_msg(LL_INFO, "migration_rehearsed", "%s: %s, expected freeze %lld ms",
		    x->m.id_s, h.ok ? "ok" : h.error, (long long)(h.catch_up_ms + h.verify_ms));
	json_object_put(report);
	return rc;
}

#define WAIT_POLL_MS 100

struct json_object *mig_rehearsal_wait(struct db *control, struct arena *a,
    const char *migration_id, int wait_ms, enum mig_err *err, char *detail, size_t detail_len)
{
	struct opsd_uuid id;
	struct db_param p[1];
	int64_t until = mono_ms() + wait_ms;

	*err = MIG_E_NO_MIGRATION;
	if (!migration_id || !uuid_parse(migration_id, &id))
		return NULL;
	p[0] = DBP_BLOB(id.b, 16);
	for (;;) {
		struct db_rows rows;
		struct json_object *report;
		struct timespec ts = {0, WAIT_POLL_MS * 1000000L};

		*err = MIG_E_DB;
		if (db_query(control, a,
		        "SELECT status, phase, report FROM migrations WHERE id = ?", p, 1,
		        &rows) != 0 ||
		    rows.nrows != 1)
			return NULL;
		if (strcmp(rows.val[0][0], mig_status_name(MIG_READY)) != 0) {
			/* an abort or a real finalize came first: no report */
			*err = MIG_E_NOT_READY;
			if (detail)
				snprintf(detail, detail_len,
				    "the migration left ready_for_cutover during the rehearsal: it is %s now",
				    rows.val[0][0]);
			return NULL;
		}
		if (mig_phase_from_name(rows.val[0][1] ? rows.val[0][1] : "") != PHASE_REHEARSAL) {
			if (!(report = json_text(rows.val[0][2]))) {
				*err = MIG_E_NOT_READY;
				if (detail)
					snprintf(detail, detail_len,
					    "the rehearsal ended without a report");
				return NULL;
			}
			json_object_object_add(report, "status",
			    json_object_new_string(mig_status_name(MIG_READY)));
			*err = MIG_OK;
			return report;
		}
		*err = MIG_OK;
		if (mono_ms() >= until)
			return NULL; /* still running: its report comes later */
		nanosleep(&ts, NULL);
	}
}
