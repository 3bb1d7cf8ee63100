/* Where an org's tenant records live and how they are written
 * (doc/architecture.md, "Data" and "The tenant write path"): the one routing function, the
 * per-process connections to dedicated databases, and the write path every tenant change takes,
 * which honours a migration's change capture and write freeze. */
#ifndef OPSD_TENANT_DB_H
#define OPSD_TENANT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct db;
struct entity;
struct opsd_config;

struct tenant_org {
	struct db *db; /* the org's tenant database: the control one when shared */
	bool dedicated;
	bool legal_hold;
	bool frozen; /* a cut-over is in progress: writes answer 503 org_migrating */
};
/* What routing and writes report (api/errors.c: tenant_errors). */
enum tenant_rc {
	TENANT_OK,
	TENANT_NO_ORG,
	TENANT_FROZEN,      /* a cut-over froze the org's writes: 503 org_migrating */
	TENANT_UNREACHABLE, /* the dedicated database or its target cannot be opened: 503 */
	TENANT_REFUSED,     /* the write's fn returned > 0 (its reason is in its context) */
	TENANT_DB_ERROR,
	TENANT__MAX
};
/* The one routing function: TENANT_OK, TENANT_NO_ORG, TENANT_UNREACHABLE or
 * TENANT_DB_ERROR (the control database failed). */
enum tenant_rc tenant_org_db(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const uint8_t org[16], struct tenant_org *out);

/* A dedicated database by its sealed target (orgs.dedicated_target,
 * migrations.target_sealed), connected once per process and kept. NULL with
 * err set (never the password). */
struct db *tenant_db_sealed(const struct opsd_config *cfg, const char *sealed, char *err,
    size_t err_len);
/* Closes every cached connection (a process about to exit, tests). */
void tenant_db_close_all(void);

/* One tenant write: fn runs in a transaction on the org's tenant database,
 * itself inside a transaction on the control database that holds the org
 * row in share mode. A migration's capture switch, freeze and routing
 * switch (UPDATE orgs) therefore wait for writes in flight, and every write
 * after them sees the new state. Audit events go to tx->control. */
struct tenant_tx {
	struct db *control;
	struct db *tdb; /* == control for a shared org */
	struct arena *a;
	uint8_t org[16];
	bool capture; /* a migration is copying: record every change */
	bool org_held;
};
/* Any enum tenant_rc; deadlocks are retried before TENANT_DB_ERROR. */
enum tenant_rc tenant_write(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const uint8_t org[16], int (*fn)(struct tenant_tx *tx, void *ctx), void *ctx);
/* Records a change of one row for the catch-up of a migration (a no-op
 * unless tx->capture). op: "insert", "update" or "delete". 0 or -1. */
int tenant_changelog_add(struct tenant_tx *tx, const struct entity *e, const uint8_t row_id[16],
    const char *op);

/* Which org (and so which database) holds each id of a tenant entity:
 * the shared database first, then every dedicated one. orgs[i] is set and
 * found[i] true for the ids found. 0 or -1 (a database cannot be asked). */
int tenant_locate(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const struct entity *e, const uint8_t (*ids)[16], size_t n, uint8_t (*orgs)[16], bool *found);

#endif
