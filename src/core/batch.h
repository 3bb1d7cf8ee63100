/* Compliance batches over ids of one entity (README, runbook 2). Control
 * entities (users, orgs) run in one transaction; tenant entities are
 * grouped by the org each id belongs to (tenant_locate) and each group runs
 * in one tenant write on that org's database, so a migration's capture and
 * freeze apply. A batch is atomic per org, not per call: with several
 * databases nothing else is possible without XA.
 * Outcomes the runner sets itself: "not_found" (found nowhere),
 * "org_migrating" (the org's writes are frozen for a cut-over, retry in
 * seconds), "unavailable" (that org's database failed; nothing applied for
 * those ids). */
#ifndef OPSD_BATCH_H
#define OPSD_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/tenant_db.h"
#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct entity;
struct json_object;
struct opsd_config;

struct id_batch {
	/* set by the caller */
	struct db *control;
	const struct opsd_config *cfg;
	struct arena *arena; /* lives as long as the batch (the request's) */
	const struct audit_actor *actor;
	const struct entity *e;
	const struct opsd_uuid *ids;
	size_t n;
	void *ctx; /* the operation's own state */
	/* set by the runner */
	const char **what; /* per id outcome */
	const size_t *idx; /* the group in hand: ids[idx[0..nidx)] */
	size_t nidx;
	const char *org;      /* its org (NULL for control entities) */
	struct tenant_tx *tx; /* NULL for control entities */
};

/* fn handles the group in hand on tdb (where the records live) and control
 * (audit), sets what[] for each id and appends its audit event. 0 or -1. */
typedef int (*id_batch_fn)(struct db *tdb, struct db *control, struct id_batch *b);

enum batch_rc {
	BATCH_OK,
	BATCH_NO_MEMORY,
	BATCH_DB_ERROR,    /* the control database failed: nothing applied */
	BATCH_UNAVAILABLE, /* every org's database failed: nothing applied */
	BATCH__MAX
};
enum batch_rc id_batch_run(struct id_batch *b, id_batch_fn fn);

/* The outcome of ids[i] ("unavailable" when no group reached it), and one
 * more of what in counts ({outcome: n}). */
const char *id_batch_outcome(const struct id_batch *b, size_t i);
void id_batch_count(struct json_object *counts, const char *what);
/* The answer of a batch that ran (what the POST /compliance routes and opsctl
 * compliance print): {"counts": {outcome: n}, "results": [{id, result}]}
 * added to o (NULL: a new object; a "counts" object already in o is the
 * base the counts add to). */
struct json_object *id_batch_results_json(const struct id_batch *b, struct json_object *o);
/* The group's ids and outcome counts, for its audit payload. */
struct json_object *id_batch_group_ids(const struct id_batch *b);
struct json_object *id_batch_group_counts(const struct id_batch *b);

/* The database holding one record of e: the control one for users and
 * orgs, the org's tenant database otherwise. TENANT_NO_ORG when the record
 * is found nowhere. */
enum tenant_rc record_db(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const struct entity *e, const struct opsd_uuid *id, struct db **out);

#endif
