/* opsctl data-key rotate (README "Runbook 7"): everything sealed under a
 * previous data key is sealed again under OPSD_DATA_KEY, every retention
 * anchor and verification checkpoint signed under a previous key is signed
 * again under it, so that
 * OPSD_DATA_KEY_PREVIOUS can then be emptied. */
#ifndef OPSD_REKEY_H
#define OPSD_REKEY_H

#include <stddef.h>
#include <stdint.h>

#include "infra/data_key.h"

struct audit_actor;
struct db;
struct opsd_config;

struct rekey_result {
	uint64_t org_targets;          /* dedicated targets (orgs) sealed again */
	uint64_t migration_targets;    /* migrations' targets and sources sealed again */
	uint64_t anchors;              /* retention anchors signed again */
	uint64_t checkpoints;          /* verification checkpoints signed again */
	uint64_t current;              /* already under the current key */
	uint64_t unopenable;           /* sealed under no key of the ring: left as they are */
	uint64_t unverifiable;         /* anchors and checkpoints no key of the ring verifies:
	                                * left for verify */
	char key[DATA_KEY_FP_LEN + 1]; /* the current key's fingerprint */
	char previous[DATA_KEYS_PREVIOUS_MAX][DATA_KEY_FP_LEN + 1];
	size_t nprevious;
};

enum rekey_rc { REKEY_OK, REKEY_NO_KEY, REKEY_DB_ERROR };

/* Batches of one transaction each (rows locked, so a concurrent change of
 * a target or a retention pass waits), then security.data_key_rotated
 * with the counts and the keys' fingerprints (never a key). Idempotent: a
 * second run, or one after an interruption, finds what is left. A
 * foreign sealed value or anchor is counted and left alone (never
 * re-signed: a forged anchor must stay visible to verify). */
enum rekey_rc data_key_rotate(struct db *d, const struct opsd_config *cfg,
    const struct audit_actor *actor, struct rekey_result *res);

#endif
