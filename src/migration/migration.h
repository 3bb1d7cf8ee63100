/* Tenant migration (README, Runbook 3): one org's tenant rows move
 * between the shared database and a dedicated one, in either direction,
 * losing nothing. The API and opsctl call the functions here; the engine
 * (mig_job) runs in the jobs process and advances every active migration
 * one bounded step per call, recording each step in MariaDB before it acts,
 * so a crash or a restart resumes where it stopped.
 *
 * States: pending → copying → catching_up → verifying → ready_for_cutover
 * → (finalize) cutting_over → completed; a dry run ends completed after
 * verifying and cleaning the target; abort from any unfinished state →
 * aborting → aborted; an error the engine cannot retry → failed. A
 * rehearsal of the cut-over (finalize with dryRun) runs at
 * ready_for_cutover, in its phase "rehearsal", and leaves it there. */
#ifndef OPSD_MIGRATION_H
#define OPSD_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct json_object;
struct opsd_config;

enum mig_status {
	MIG_PENDING,
	MIG_COPYING,
	MIG_CATCHING_UP,
	MIG_VERIFYING,
	MIG_READY, /* "ready_for_cutover" */
	MIG_CUTTING_OVER,
	MIG_COMPLETED,
	MIG_ABORTING,
	MIG_ABORTED,
	MIG_FAILED,
	MIG__MAX,
};
const char *mig_status_name(enum mig_status s);
int mig_status_from_name(const char *name); /* -1 when unknown */
/* The status names, NULL-terminated: the choices of a "status" filter. */
extern const char *const mig_statuses[MIG__MAX + 1];

/* The two directions as the API, opsctl, the migrations table and audit
 * payloads spell them; NULL-terminated, so it is also the choices of a
 * "direction" field. */
enum mig_direction { MIG_TO_DEDICATED, MIG_TO_SHARED, MIG_DIRECTION__MAX };
extern const char *const mig_directions[MIG_DIRECTION__MAX + 1];

#define MIG_CHUNK_DEFAULT 1000
#define MIG_CHUNK_MAX 100000

struct mig_request {
	const char *org_id;     /* UUID text */
	const char *direction;  /* a name of mig_directions */
	long long chunk_size;   /* 0: MIG_CHUNK_DEFAULT; else 1..MIG_CHUNK_MAX */
	const char *target_uri; /* shared_to_dedicated: NULL → OPSD_DEDICATED_DB_URI */
	const char *db_name;    /* NULL → org_<slug> ([a-z0-9_], at most 64) */
	bool dry_run;
	bool override_legal_hold;
	const char *reason; /* optional (NULL: none recorded); 1..500 when given */
};

/* Every refusal; api/errors.c says how the API and opsctl answer each. */
enum mig_err {
	MIG_OK,
	MIG_E_DB,           /* 503 unavailable / 500 */
	MIG_E_NO_ORG,       /* 404 not_found */
	MIG_E_NO_MIGRATION, /* 404 not_found: the org has none */
	MIG_E_DIRECTION,    /* 409 conflict: wrong direction for the org's current mode */
	MIG_E_CHUNK,        /* 400 field chunkSize */
	MIG_E_URI,          /* 400 field targetUri: malformed */
	MIG_E_DBNAME,       /* 400 field dbName: not a valid identifier */
	MIG_E_NO_TARGET,    /* 400 field targetUri: none given and OPSD_DEDICATED_DB_URI unset */
	MIG_E_NO_KEY,       /* 409 data_key_required: OPSD_DATA_KEY unset */
	MIG_E_UNREACHABLE,  /* 400 target_unreachable (detail says why, no password) */
	MIG_E_TARGET_NOT_EMPTY, /* 409 conflict: the target already holds rows of this org */
	MIG_E_IN_PROGRESS,      /* 409 migration_in_progress */
	MIG_E_LEGAL_HOLD,       /* 409 legal_hold */
	MIG_E_REASON,           /* 400 field reason: empty or over 500 characters */
	MIG_E_NOT_READY,        /* 409 conflict: finalize outside ready_for_cutover */
	MIG_E_FINISHED,         /* 409 conflict: abort of a finished (or switched) migration */
	MIG_E_REHEARSING,       /* 409 conflict: a rehearsal of the cut-over is running */
	MIG_E_NOT_DEDICATED,    /* 409 conflict: the org has no dedicated database */
	MIG_E_TARGET_INVALID, /* 409 conflict: the target lacks the org's tables, rights or rows */
	MIG_E__MAX,
};

/* A dedicated org's database target replaced (new credentials, or the same
 * database reached another way): PUT /orgs/:id/dedicated-target and
 * opsctl tenant set-target. */
struct mig_target_request {
	const char *org_id;
	const char *target_uri; /* NULL → OPSD_DEDICATED_DB_URI */
	const char *db_name;    /* NULL → the URI's database, else the org's current one */
	const char *reason;     /* optional (NULL); 1..500 when given */
};
/* The org must be dedicated with no migration under way. The new target
 * is connected to (MIG_E_UNREACHABLE with the reason in detail) and must
 * hold the tenant tables with the rights the tenant write path needs, no
 * other org's rows, and the org's rows (none only when its current
 * database, if it answers, has none either): MIG_E_TARGET_INVALID. Then
 * it is sealed under OPSD_DATA_KEY and stored with
 * org.dedicated_target_changed (host, port, database and user of the new
 * and the previous target, never a password) in one transaction.
 * redacted (may be NULL) gets mysql://user:***@host/db. */
enum mig_err mig_set_target(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const struct mig_target_request *req, char *redacted,
    size_t redacted_len, char *detail, size_t detail_len);

/* Validates, checks the legal hold (the one guard's rule, over the org and
 * every record of it), connects to the target (a refused connection is
 * MIG_E_UNREACHABLE with the reason in detail), stores the target
 * encrypted with OPSD_DATA_KEY, records the migration `pending` and audits
 * migration.started (and migration.legal_hold_override). The engine takes
 * it from there. id_out[37]; detail (may be NULL) gets a human reason. */
enum mig_err mig_start(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const struct mig_request *req, char *id_out, char *detail,
    size_t detail_len);
/* ready_for_cutover only: re-validates the target connection now (a lost
 * target is MIG_E_UNREACHABLE and nothing changes), then marks the
 * migration cutting_over for the engine: freeze, final catch-up, final
 * verification, switch, unfreeze, source cleanup. reason (may be NULL:
 * none recorded; else 1 to 500 characters) goes into the
 * migration.finalize_requested event. */
enum mig_err mig_finalize(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *reason, char *detail,
    size_t detail_len);
/* The cut-over rehearsed (finalize with dryRun): the same refusals as
 * mig_finalize, and the target validated the same way; then the engine is
 * asked to rehearse — both ends connected, every change since the snapshot
 * replayed, every chunk verified, each step timed — without freezing or
 * switching anything (MIG_E_REHEARSING while one runs). Audits
 * migration.finalize_requested with dryRun; the engine audits
 * migration.finalize_rehearsed with the outcome. reason as for
 * mig_finalize. id_out[37] gets the migration's id, for
 * mig_rehearsal_wait. */
enum mig_err mig_rehearse(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *reason, char *id_out,
    char *detail, size_t detail_len);
/* Waits up to wait_ms for that rehearsal's report: {migrationId, orgId,
 * direction, dryRun, rehearsal, switched: false, ok, startedAt,
 * finishedAt, durationMs, steps: [{step, ok, ms, …}], changesReplayed,
 * verification, expectedFreezeMs, error, status}. NULL with *err MIG_OK
 * while it still runs (the status document shows the report once it is
 * there), MIG_E_NOT_READY when an abort or a real finalize came first
 * (detail says so), or MIG_E_DB. */
struct json_object *mig_rehearsal_wait(struct db *control, struct arena *a,
    const char *migration_id, int wait_ms, enum mig_err *err, char *detail, size_t detail_len);
/* Any unfinished state (not after the routing switch), or failed (to clean
 * up its target): marks it aborting; the engine stops, drops what it
 * created on the target and ends aborted. The source is never touched.
 * migration_id (may be NULL: the org's latest) names an older one, e.g. a
 * failed migration whose target still holds a copy. reason may be NULL
 * (none recorded). */
enum mig_err mig_abort(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *migration_id,
    const char *reason);

/* The org's latest migration as the status document, its keys in this
 * order: {id, orgId, direction, status, phase, dryRun, chunkSize, target
 * (password redacted), dbName, reason, abortReason, overrideLegalHold,
 * tables: [{table, rowsCopied, rowsTotal, done, verified}], rowsCopied,
 * rowsTotal, percent, rowsPerSecond, etaSeconds, throttled, throttleReason,
 * changelog: {snapshot, applied, pending (null when the source is a
 * dedicated database)}, verification, report (a dry run's, or the last
 * rehearsal of the cut-over), freezeMs, error, createdBy, createdAt,
 * updatedAt, finishedAt}. NULL with *err set. */
struct json_object *mig_status_json(struct db *control, struct arena *a, const char *org_id,
    enum mig_err *err);
/* The org's migrations, newest first (by id), as mig_list_json pages
 * them; NULL with *err MIG_E_NO_ORG when there is no such org. */
struct json_object *mig_history_json(struct db *control, struct arena *a, const char *org_id,
    const uint8_t *before, long long limit, bool *more, enum mig_err *err);
/* The migrations of every org, newest first (by id: ids are UUIDv7), as
 * an array of status documents: of one status (-1: any), below the id
 * before (NULL: from the newest), at most limit; *more says whether more
 * follow. NULL with *err on a database error. */
struct json_object *mig_list_json(struct db *control, struct arena *a, int status,
    const uint8_t *before, long long limit, bool *more, enum mig_err *err);

/* The engine: one bounded step (a chunk, a catch-up batch, a verification
 * chunk, …) of every active migration. 1 while one has more to do at once,
 * 0 when none has, -1 when the migrations could not be listed. */
int mig_job(struct db *control, const struct opsd_config *cfg);

#endif
