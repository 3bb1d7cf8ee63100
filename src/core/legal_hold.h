/* The one legal-hold guard (README, runbook 2): a held record, or any
 * record of a held org, cannot be updated, deleted, stripped, archived,
 * purged by audit retention or moved by a migration without an explicit
 * override. Every destructive path asks here. */
#ifndef OPSD_LEGAL_HOLD_H
#define OPSD_LEGAL_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

struct arena;
struct db;
struct entity;
struct opsd_config;

/* The one legal-hold guard of every destructive path (update, delete,
 * strip, archive, retention purge, migration): true when the record or its
 * org is held. Locks the record (FOR UPDATE) in d, where the entity lives
 * (the org's tenant database for tenant entities), and reads its org's hold
 * from control in share mode, so concurrent writes of one org never wait
 * on each other for it. Both inside the caller's transactions. -1 on a
 * database error, 1 when the record does not exist, 0 otherwise. */
int legal_hold_guard(struct db *d, struct db *control, struct arena *a, const struct entity *e,
    const uint8_t id[16], bool *held);
/* The same guard over a set of records of e (compliance batches): one
 * statement per ID_SET_MAX ids locks them (FOR UPDATE) in d and reads their
 * hold and state, one more reads their orgs' holds from control in share
 * mode. state_column ("pii_stripped_at", "archived_at") says whether the
 * operation was already done. out[k] answers ids[k]. 0 or -1. */
struct hold_state {
	bool found; /* the record exists in d */
	bool held;  /* it or its org is on legal hold */
	bool done;  /* its state_column is set */
};
int legal_hold_guard_set(struct db *d, struct db *control, struct arena *a, const struct entity *e,
    const char *state_column, const uint8_t (*ids)[16], size_t n, struct hold_state *out);
/* The guard's rule over a whole org (migration): the org or any of its
 * tenant records in tdb is held. -1, or 0 with *held set. */
int legal_hold_org_any(struct db *tdb, struct db *control, struct arena *a, const uint8_t org[16],
    bool *held);

/* The same rule as a set, for paths that judge many records at once
 * (audit retention): every held record of every entity, every held org and
 * every record of a held org. Sorted; free with held_set_free. */
struct held_set {
	struct opsd_uuid *ids;
	size_t n, cap;
};
int legal_hold_collect(struct db *control, const struct opsd_config *cfg, struct held_set *out);
bool held_set_has(const struct held_set *s, const uint8_t id[16]);
void held_set_free(struct held_set *s);

#endif
