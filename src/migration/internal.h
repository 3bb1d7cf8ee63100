/* Shared by the files of the migration engine (see migration.h), as
 * audit_internal.h is by the audit files: the migration row as the engine
 * reads it, the vocabularies of its status, phase and step results, the
 * transition that records a step, and the helpers more than one file
 * calls. Each part names the file that defines it:
 *
 *   state.c    status and phase names, the row, the lease holder, transitions
 *   conn.c     connections to both ends, tenant tables and column lists
 *   control.c  start, finalize, abort (what the API and opsctl call)
 *   status.c   the status and history documents
 *   copy.c     prepare, the copy (each chunk verified as it lands), catch-up
 *   verify.c   comparison of both sides: changed rows, counts, every chunk
 *   cleanup.c  abort and the dry run's end; deleting an org's rows
 *   cutover.c  freeze, final catch-up and verification, the switch
 *   rehearsal.c  the cut-over rehearsed: catch-up and verification
 *              without the freeze, the report, nothing switched
 *   target.c   a dedicated org's target replaced (rotated credentials)
 *   engine.c   mig_job: leases and the step of each status */
#ifndef OPSD_MIGRATION_INTERNAL_H
#define OPSD_MIGRATION_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/audit.h"
#include "lib/uuid.h"
#include "migration/migration.h"

struct arena;
struct db;
struct db_rows;
struct json_object;
struct opsd_config;

/* ---- the row and its vocabularies (state.c) ---------------------------- */

#define MIG_COLUMNS                                                                                \
	"id, org_id, direction, status, phase, dry_run, chunk_size, target_sealed,"                \
	" target_redacted, db_name, target_db_created, override_legal_hold, reason,"               \
	" abort_reason, snapshot_changelog_id, applied_changelog_id, verify_round,"                \
	" verification, report, freeze_ms, throttle_reason, error, progress_pct_audited,"          \
	" TIMESTAMPDIFF(SECOND, IFNULL(progress_audited_at, created_at), NOW(3)), lease_holder,"   \
	" TIMESTAMPDIFF(MICROSECOND, copy_started_at, IFNULL(copy_finished_at, NOW(3))),"          \
	" created_at, updated_at, finished_at, created_by, source_sealed"
enum {
	M_ID,
	M_ORG,
	M_DIRECTION,
	M_STATUS,
	M_PHASE,
	M_DRY,
	M_CHUNK,
	M_SEALED,
	M_REDACTED,
	M_DBNAME,
	M_CREATED_DB,
	M_OVERRIDE,
	M_REASON,
	M_ABORT_REASON,
	M_SNAPSHOT,
	M_APPLIED,
	M_ROUND,
	M_VERIFICATION,
	M_REPORT,
	M_FREEZE_MS,
	M_THROTTLE,
	M_ERROR,
	M_PCT_AUDITED,
	M_SINCE_AUDIT,
	M_LEASE,
	M_COPY_US,
	M_CREATED_AT,
	M_UPDATED_AT,
	M_FINISHED_AT,
	M_CREATED_BY,
	M_SOURCE_SEALED,
};

/* The phase column: the step inside a status. A cut-over goes freeze →
 * final_catchup → final_verify → switch → source_cleanup; a dry run that
 * verified stays verifying, in cleanup, while its target is cleaned; a
 * migration at ready_for_cutover is in rehearsal while the engine
 * rehearses its cut-over. */
enum mig_phase {
	PHASE_NONE,
	PHASE_DRY_CLEANUP,
	PHASE_FREEZE,
	PHASE_FINAL_CATCHUP,
	PHASE_FINAL_VERIFY,
	PHASE_SWITCH,
	PHASE_SOURCE_CLEANUP,
	PHASE_REHEARSAL,
	PHASE__MAX,
	PHASE_UNKNOWN = PHASE__MAX, /* a stored phase this table does not name */
	PHASE_KEEP,                 /* a transition's phase when it stays as it is */
};
const char *mig_phase_name(enum mig_phase ph); /* NULL for PHASE_UNKNOWN and PHASE_KEEP */
enum mig_phase mig_phase_from_name(const char *name);

/* One migration row, as the engine and the control plane read it. */
struct mig {
	uint8_t id[16], org[16];
	char id_s[UUID_STR_LEN + 1], org_s[UUID_STR_LEN + 1];
	enum mig_status status;
	enum mig_phase phase;
	bool to_dedicated, dry_run, created_db, override;
	int chunk;
	const char *sealed, *redacted, *db_name, *lease, *source_sealed;
	int64_t snapshot, applied;
	int pct_audited;
	long long since_audit;
};

/* A numeric column; NULL reads as 0. */
static inline long long num(const char *v)
{
	return v ? strtoll(v, NULL, 10) : 0;
}

void mig_from_row(const struct db_rows *rows, size_t r, struct mig *m);
/* The org's latest migration row (active ones first): MIG_OK,
 * MIG_E_NO_MIGRATION (none, or a malformed org id) or MIG_E_DB. */
enum mig_err latest_row(struct db *control, struct arena *a, const char *org_id,
    struct db_rows *rows);

#define MIG_LEASE_S 10
/* Records why the migration's step failed (migrations.error) and logs it. */
int set_error(struct db *control, const struct mig *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The actor of the engine's own events. */
extern const struct audit_actor system_actor;

/* A transition's status when it keeps the one it has (mig_status_name
 * gives NULL for it). */
#define MIG_KEEP MIG__MAX

/* An engine event and its state change in one control transaction. */
struct transition {
	const struct mig *m;
	enum mig_status to;       /* MIG_KEEP: unchanged */
	enum mig_phase phase;     /* PHASE_KEEP: unchanged */
	enum audit_action action; /* AA_NONE: no event */
	struct json_object *payload;
	const char *extra_sql; /* an UPDATE of migrations for the same id, or NULL */
	const char *report;    /* JSON text for migrations.report, or NULL: unchanged */
	bool finished;
	bool lost; /* the status had changed: nothing was applied */
};

/* Applies t only from the status it was read in and while this process
 * holds the lease; a transition overtaken that way is not applied and
 * still answers 0 (the next step reloads). Logs and counts a new status. */
int transition(struct db *control, struct transition *t);

/* ---- a run of the engine (state.c) ------------------------------------- */

/* One migration as a step of the engine works on it: the row as read,
 * and the connections to both ends. */
struct run {
	struct db *control;
	const struct opsd_config *cfg;
	struct arena *a;
	struct mig m;
	struct db *src, *dst;
	bool restart_cutover; /* the switch found the freeze lapsed or changes left */
};

/* Extends this process's lease on x's migration, for steps that run
 * longer than a lease (the final and the rehearsed verification, the
 * rehearsal's catch-up): 0, or -1 when the lease is no longer this
 * process's (another engine took the migration over) or on a database
 * error; the step must then stop writing the migration's rows. */
int lease_renew(struct run *x);

/* What one step of the engine did. mig_job steps a migration again at
 * once only after STEP_MORE, while its time budget lasts. */
enum step_result {
	STEP_ERROR = -1, /* not done: logged, and tried again on a later call */
	STEP_IDLE = 0,   /* nothing more to do now (throttled, waiting, or settled) */
	STEP_MORE = 1,   /* progress made, and more to do now */
};

/* A step that ends in a transition: STEP_MORE once it is written (or found
 * overtaken by an abort or another engine: the next step reloads). */
enum step_result step_transition(struct run *x, struct transition *t);
/* Capture off and writes unfrozen: every way out of a migration before
 * the switch (abort, failure, dry-run end) passes here. */
int release_org(struct run *x);
/* The migration ends failed with why as its error: STEP_IDLE, or
 * STEP_ERROR when that could not be written. */
enum step_result fail_migration(struct run *x, const char *why);

/* ---- both ends, tables and columns (conn.c) ---------------------------- */

#define MAX_TABLES 8
#define MAX_COLS 40

/* The tenant tables a migration moves: the tenant entities of the one
 * entity table. */
size_t tenant_tables(const char *out[MAX_TABLES]);
bool known_table(const char *name);
/* uri with its database name replaced by db ("" for the server only). The
 * path starts at the first '/' after the last '@' (the password is
 * percent-encoded, so it holds neither '@' nor '/'). */
bool uri_with_db(const char *uri, const char *db, char *out, size_t len);
/* Opens uri (the target with its database, or the server with "") and
 * asks it something. NULL with err set. */
struct db *connect_checked(const char *uri, char *err, size_t len);
/* Whether a database already holds rows of the org in a tenant table.
 * schema may be NULL (the connection's own database). -1 on error. */
int holds_org_rows(struct db *d, struct arena *a, const char *schema, const uint8_t org[16]);
/* Rows of any other org: a database another org lives in is never
 * dropped or taken as a new target. */
int holds_other_rows(struct db *d, struct arena *a, const char *schema, const uint8_t org[16]);

/* Closes the kept connection to the target of the migration in hand. */
void ends_close(void);
/* Source and target of the migration: the control (shared) database on
 * one side, the dedicated one on the other. 0, or -1 with the error
 * recorded on the migration. */
int connect_ends(struct run *x);
/* The target's server without a database (DDL, existence checks). NULL
 * with the error recorded on the migration. */
struct db *target_server(struct run *x, const char *what);
/* 1 when the migration's database exists on server, 0 when not, -1. */
int target_db_exists(struct run *x, struct db *server);

/* A table's columns from information_schema (the tenant schema files made
 * both sides), as the pieces of the copy, upsert and checksum statements.
 * Generated columns (the subject-search keys) are left out: each side
 * computes them from the columns copied, and MariaDB refuses a value for
 * them. */
struct cols {
	size_t n;
	bool binary[MAX_COLS];
	char list[1024];     /* `a`, `b`, … */
	char update[2048];   /* `a` = VALUES(`a`), … */
	char checksum[3072]; /* COUNT(*), BIT_XOR of CRC32 over the row */
	char listsum[4200];  /* list, then the row's CRC32 as the last column */
};
int table_cols(struct db *d, struct arena *a, const char *table, struct cols *c);
/* The suffix of every tenant table's (org_id, id) index (sql/tenant):
 * ranges of an org's ids name it (FORCE INDEX), or the optimizer may take
 * org_id alone from statistics that lag behind a table the copy fills, and
 * read every row of the org for each chunk. */
#define ORG_INDEX "_org"
/* Upserts rows [from, to) of a SELECT <c->list> result into dst. */
int upsert(struct db *dst, struct arena *a, const char *table, const struct cols *c,
    const struct db_rows *rows, size_t from, size_t to);
/* SELECT <list> FROM table WHERE org_id = ? AND id > lo [AND id <= hi]
 * ORDER BY id [LIMIT limit]. */
int select_range(struct db *d, struct arena *a, const char *table, const struct cols *c,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, long long limit,
    struct db_rows *rows);
/* The same with another select list (listsum: the rows with their CRC32). */
int select_range_as(struct db *d, struct arena *a, const char *table, const char *list,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, long long limit,
    struct db_rows *rows);
/* A second connection to the target for the copy's second writer (the
 * target's server again, or the control database's for
 * dedicated_to_shared), kept with the target's; NULL when none can be
 * made (the copy then writes on one). */
struct db *second_target(struct run *x);
/* The lowest bound of a range: before every id. */
extern const uint8_t id_zero[16];

/* ---- status documents (status.c) --------------------------------------- */

/* A JSON text column as JSON (a string when it does not parse); NULL for
 * NULL. */
struct json_object *json_text(const char *v);
/* The status document (migration.h mig_status_json) of row r of a SELECT
 * MIG_COLUMNS, without I/O: tables are its migration_tables rows (NULL when
 * they could not be read), pending_changes the changes not replayed yet
 * (NULL: unknown, the JSON null). */
struct json_object *mig_status_render(const struct db_rows *rows, size_t r,
    const struct db_rows *tables, const long long *pending_changes);

/* ---- prepare, copy, catch-up (copy.c) ---------------------------------- */

/* The overlap: the side of a migration that is not the control database
 * works on a second thread while the control side works on this one (two
 * connections, two arenas, never shared between the threads). */
struct bg {
	pthread_t t;
	int (*fn)(void *arg);
	void *arg;
	int rc;
	bool started;
};
/* Starts fn on a thread, or runs it here when no thread can be made. */
void bg_start(struct bg *b, int (*fn)(void *), void *arg);
/* Waits for it: fn's result. */
int bg_join(struct bg *b);

#define CATCHUP_BATCH 1000
/* One batch of the changelog after applied: each changed row is read from
 * the source as it is now and written to the target (or deleted there).
 * *n gets the number of entries applied. 0 or -1. */
int catch_up(struct run *x, long long *n);

enum step_result step_prepare(struct run *x);
enum step_result step_copy(struct run *x);
enum step_result step_catching_up(struct run *x);
enum step_result step_ready(struct run *x);

/* ---- verification (verify.c) ------------------------------------------- */

/* A piece's row count and checksum on one side. */
struct sums {
	long long rows;
	uint64_t checksum;
};
/* The sums of the org's rows in (lo, hi] (hi NULL: to the end). */
int range_sum(struct db *d, struct arena *a, const char *table, const struct cols *c,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, struct sums *out);
/* The same by the primary key alone, for a database that holds no other
 * org's rows (a dedicated target): the rows in id order, no second
 * lookup. */
int range_sum_own(struct db *d, struct arena *a, const char *table, const struct cols *c,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, struct sums *out);

/* Resets every table's verification counters (parameter: the migration id). */
extern const char *const reset_verify_sql;
/* Only the position of the verifying step: the sums of the chunks the copy
 * compared as they landed stay (parameter: the migration id). */
extern const char *const resume_verify_sql;

/* How verify_some compares (verify.c says what each does with a chunk
 * that differs). */
enum verify_mode {
	VERIFY_STEP,      /* verifying: a batch of changed rows, or a table's counts */
	VERIFY_FINAL,     /* under the freeze: every chunk; the first difference stops */
	VERIFY_REHEARSAL, /* every chunk, no freeze; caught up, then reported */
};

/* What verify_some found. */
enum verify_result {
	VERIFY_ERROR = -1,
	VERIFY_DONE = 0,     /* every chunk compared; the verification is stored */
	VERIFY_MORE = 1,     /* VERIFY_STEP only: chunks left */
	VERIFY_MISMATCH = 2, /* not VERIFY_STEP: a chunk, or the stored verification, differs */
};
/* One piece of one table (VERIFY_STEP: the chunks were compared as they
 * landed; a batch of the rows changed since, or the table's row counts),
 * or every chunk of every table; the verification is stored once every
 * table was compared. */
enum verify_result verify_some(struct run *x, enum verify_mode mode);
enum step_result step_verifying(struct run *x);

/* ---- abort and dry-run cleanup (cleanup.c) ----------------------------- */

/* Deletes the org's rows from d's tenant tables (and its changelog rows)
 * a chunk at a time: STEP_MORE while rows remain, STEP_IDLE when none do. */
enum step_result delete_org_rows(struct run *x, struct db *d, bool changelog);
enum step_result step_aborting(struct run *x);
enum step_result step_dry_cleanup(struct run *x);

/* ---- the cut-over (cutover.c) ------------------------------------------ */

enum step_result step_cutting_over(struct run *x);

/* ---- the rehearsal of the cut-over (rehearsal.c) ----------------------- */

enum step_result step_rehearsal(struct run *x);

#endif
