/* A migration's state: the status and phase names (the one place they are
 * spelled), a row as struct mig, the lease holder's name, and the
 * transition that records an engine step with its audit event. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "infra/metrics.h"
#include "lib/arena.h"
#include "lib/holder.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "migration/internal.h"
#include "migration/migration.h"

const char *const mig_directions[MIG_DIRECTION__MAX + 1] = {
    [MIG_TO_DEDICATED] = "shared_to_dedicated",
    [MIG_TO_SHARED] = "dedicated_to_shared",
    [MIG_DIRECTION__MAX] = NULL,
};

/* The only place C code spells the statuses (SQL filters list some in
 * their text): migrations.status stores these names, the documents show
 * them, opsd_migrations_total labels by them, GET /migration filters by
 * them. */
const char *const mig_statuses[MIG__MAX + 1] = {
    [MIG_PENDING] = "pending",
    [MIG_COPYING] = "copying",
    [MIG_CATCHING_UP] = "catching_up",
    [MIG_VERIFYING] = "verifying",
    [MIG_READY] = "ready_for_cutover",
    [MIG_CUTTING_OVER] = "cutting_over",
    [MIG_COMPLETED] = "completed",
    [MIG_ABORTING] = "aborting",
    [MIG_ABORTED] = "aborted",
    [MIG_FAILED] = "failed",
    [MIG__MAX] = NULL,
};

const char *mig_status_name(enum mig_status s)
{
	return (unsigned)s < MIG__MAX ? mig_statuses[s] : NULL;
}

int mig_status_from_name(const char *name)
{
	for (int i = 0; name && i < MIG__MAX; i++)
		if (strcmp(mig_statuses[i], name) == 0)
			return i;
	return -1;
}

/* The phase column's values, spelled once. */
static const char *const phase_names[PHASE__MAX] = {
    [PHASE_NONE] = "",
    [PHASE_DRY_CLEANUP] = "cleanup",
    [PHASE_FREEZE] = "freeze",
    [PHASE_FINAL_CATCHUP] = "final_catchup",
    [PHASE_FINAL_VERIFY] = "final_verify",
    [PHASE_SWITCH] = "switch",
    [PHASE_SOURCE_CLEANUP] = "source_cleanup",
    [PHASE_REHEARSAL] = "rehearsal",
};

const char *mig_phase_name(enum mig_phase ph)
{
	return (unsigned)ph < PHASE__MAX ? phase_names[ph] : NULL;
}

enum mig_phase mig_phase_from_name(const char *name)
{
	for (int i = 0; i < PHASE__MAX; i++)
		if (strcmp(phase_names[i], name) == 0)
			return (enum mig_phase)i;
	return PHASE_UNKNOWN;
}

void mig_from_row(const struct db_rows *rows, size_t r, struct mig *m)
{
	char *const *v = rows->val[r];

	memset(m, 0, sizeof(*m));
	memcpy(m->id, v[M_ID], 16);
	memcpy(m->org, v[M_ORG], 16);
	dbv_uuid(v[M_ID], rows->len[r][M_ID], m->id_s);
	dbv_uuid(v[M_ORG], rows->len[r][M_ORG], m->org_s);
	m->to_dedicated = strcmp(v[M_DIRECTION], mig_directions[MIG_TO_DEDICATED]) == 0;
	m->status = (enum mig_status)mig_status_from_name(v[M_STATUS]);
	m->phase = mig_phase_from_name(v[M_PHASE] ? v[M_PHASE] : "");
	m->dry_run = dbv_true(v[M_DRY]);
	m->chunk = (int)num(v[M_CHUNK]);
	m->sealed = v[M_SEALED];
	m->redacted = v[M_REDACTED];
	m->db_name = v[M_DBNAME];
	m->created_db = dbv_true(v[M_CREATED_DB]);
	m->override = dbv_true(v[M_OVERRIDE]);
	m->snapshot = num(v[M_SNAPSHOT]);
	m->applied = num(v[M_APPLIED]);
	m->pct_audited = (int)num(v[M_PCT_AUDITED]);
	m->since_audit = num(v[M_SINCE_AUDIT]);
	m->lease = v[M_LEASE];
	m->source_sealed = v[M_SOURCE_SEALED];
}

/* The latest migration of an org (active ones first). 1 found, 0 none, -1. */
static int mig_latest(struct db *control, struct arena *a, const uint8_t org[16],
    struct db_rows *rows)
{
	struct db_param p[] = {DBP_BLOB(org, 16)};

	if (db_query(control, a,
	        "SELECT " MIG_COLUMNS " FROM migrations WHERE org_id = ?"
	        " ORDER BY active_org IS NULL, created_at DESC, id DESC LIMIT 1",
	        p, 1, rows) != 0)
		return -1;
	return rows->nrows == 1;
}

enum mig_err latest_row(struct db *control, struct arena *a, const char *org_id,
    struct db_rows *rows)
{
	struct opsd_uuid org;
	int rc;

	if (!org_id || !uuid_parse(org_id, &org))
		return MIG_E_NO_MIGRATION;
	if ((rc = mig_latest(control, a, org.b, rows)) < 0)
		return MIG_E_DB;
	return rc == 0 ? MIG_E_NO_MIGRATION : MIG_OK;
}

int lease_renew(struct run *x)
{
	struct db_param p[] = {DBP_I64(MIG_LEASE_S), DBP_BLOB(x->m.id, 16), DBP_STR(holder_self())};
	unsigned long long got = 0;

	if (db_exec(x->control,
	        "UPDATE migrations SET lease_until = NOW(3) + INTERVAL ? SECOND"
	        " WHERE id = ? AND lease_holder = ?",
	        p, countof(p), &got) != 0)
		return -1;
	/* 0 rows changed is also a renewal within the same millisecond as the
	 * last one (MariaDB counts changed rows): ask whose lease it is */
	if (got == 0) {
		struct db_rows rows;

		if (db_query(x->control, x->a,
		        "SELECT lease_holder = ? FROM migrations WHERE id = ?",
		        (struct db_param[]){DBP_STR(holder_self()), DBP_BLOB(x->m.id, 16)}, 2,
		        &rows) != 0)
			return -1;
		got = rows.nrows == 1 && rows.val[0][0] && strcmp(rows.val[0][0], "1") == 0;
	}
	if (got == 0) {
		/* the row is another engine's now: only the log says so */
		log_msg(LL_WARN, "migration_lease_lost",
		    "%s: another engine took the migration over mid-step", x->m.id_s);
		return -1;
	}
	return 0;
}

int set_error(struct db *control, const struct mig *m, const char *fmt, ...)
{
	char msg[1000];
	va_list ap;
	struct db_param p[2];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p[0] = DBP_STR(msg);
	p[1] = DBP_BLOB(m->id, 16);
	log_msg(LL_WARN, "migration_error", "%s: %s", m->id_s, msg);
	return db_exec(control, "UPDATE migrations SET error = ? WHERE id = ?", p, 2, NULL);
}

const struct audit_actor system_actor = {NULL, "system", NULL, NULL};

static int transition_fn(struct db *d, void *arg)
{
	struct transition *t = arg;
	struct db_param p[] = {DBP_STR(mig_status_name(t->to)), DBP_STR(mig_phase_name(t->phase)),
	    DBP_I64(t->finished), DBP_BLOB(t->m->id, 16)};
	struct db_param q[] = {DBP_BLOB(t->m->id, 16)};
	struct db_rows now;
	struct arena *a = arena_new(1024);
	bool same;

	/* Only from the status this step read: an abort (or a finalize) that
	 * came in meanwhile wins, and the step is simply not applied. */
	if (!a ||
	    db_query(d, a, "SELECT status, lease_holder FROM migrations WHERE id = ? FOR UPDATE", q,
	        1, &now) != 0) {
		arena_free(a);
		return -1;
	}
	/* ... and only while this process holds the lease: another engine that
	 * took over meanwhile (a reload, another host) owns the next step. */
	same = now.nrows == 1 && strcmp(now.val[0][0], mig_status_name(t->m->status)) == 0 &&
	       (!now.val[0][1] || strcmp(now.val[0][1], holder_self()) == 0);
	arena_free(a);
	if (!same) {
		t->lost = true;
		return 1;
	}
	if (db_exec(d,
	        "UPDATE migrations SET status = IFNULL(?, status), phase = IFNULL(?, phase),"
	        " finished_at = IF(?, NOW(3), finished_at), error = NULL WHERE id = ?",
	        p, countof(p), NULL) != 0)
		return -1;
	if (t->extra_sql && db_exec(d, t->extra_sql, q, 1, NULL) != 0)
		return -1;
	if (t->report) {
		struct db_param r[] = {DBP_STR(t->report), DBP_BLOB(t->m->id, 16)};

		if (db_exec(d, "UPDATE migrations SET report = ? WHERE id = ?", r, 2, NULL) != 0)
			return -1;
	}
	if (t->action == AA_NONE)
		return 0;
	return audit_append(d, &system_actor, t->action, t->m->org_s, "migration", t->m->id_s,
	    json_object_get(t->payload));
}

int transition(struct db *control, struct transition *t)
{
	int rc;

	if (t->action != AA_NONE && !t->payload)
		t->payload = json_object_new_object();
	rc = db_tx(control, transition_fn, t);
	json_object_put(t->payload);
	if (rc > 0 && t->lost)
		return 0; /* the caller's next step reloads the new status */
	if (rc == 0 && t->to != MIG_KEEP) {
		const char *phase = mig_phase_name(t->phase);

		log_msg(LL_INFO, "migration_state", "%s → %s%s%s", t->m->id_s,
		    mig_status_name(t->to), phase && phase[0] ? " / " : "", phase ? phase : "");
		metrics_migration(t->to);
	}
	return rc;
}

int release_org(struct run *x)
{
	struct db_param p[] = {DBP_BLOB(x->m.org, 16)};

	return db_exec(x->control,
	    "UPDATE orgs SET capture_changes = 0, write_frozen_until = NULL WHERE id = ?", p, 1,
	    NULL);
}

enum step_result fail_migration(struct run *x, const char *why)
{
	struct json_object *p = json_object_new_object();
	struct transition t = {.m = &x->m,
	    .to = MIG_FAILED,
	    .phase = PHASE_NONE,
	    .action = AA_MIGRATION_FAILED,
	    .payload = p,
	    .finished = true};
	struct db_param e[] = {DBP_STR(why), DBP_BLOB(x->m.id, 16)};

	json_object_object_add(p, "error", json_object_new_string(why));
	if (release_org(x) != 0) {
		json_object_put(p); /* transition() releases it on its own paths */
		return STEP_ERROR;
	}
	if (transition(x->control, &t) != 0)
		return STEP_ERROR;
	return db_exec(x->control, "UPDATE migrations SET error = ? WHERE id = ?", e, 2, NULL) == 0
	           ? STEP_IDLE
	           : STEP_ERROR;
}

enum step_result step_transition(struct run *x, struct transition *t)
{
	return transition(x->control, t) == 0 ? STEP_MORE : STEP_ERROR;
}
