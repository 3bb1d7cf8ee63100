/* Runbook 2's destructive operations, every one through the legal-hold
 * guard and audited with ids and counts, never values: legal hold and its
 * release, PII stripping and archiving, by ids (a batch, batch.h) or, for
 * archiving, by age in chunked transactions. */
#ifndef OPSD_COMPLIANCE_H
#define OPSD_COMPLIANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/batch.h"

struct arena;
struct audit_actor;
struct db;
struct entity;
struct json_object;
struct opsd_config;

/* Holds (hold) or releases b's ids: each "held", "released", "already" or
 * "not_found"; one compliance.legal_hold_set or _released event per group
 * (entity, ids, counts, reason). case_ref may be NULL. */
enum batch_rc compliance_hold(struct id_batch *b, bool hold, const char *reason,
    const char *case_ref);

/* Redacts every PII column of b's ids as the entity table says: each
 * "stripped", "already_stripped", "legal_hold" or "not_found" (a repeated id
 * is already_stripped after its first occurrence); a stripped user is
 * locked out. Set statements of at most ID_SET_MAX ids (core/id_set.h); one
 * compliance.pii_stripped event per group. */
enum batch_rc compliance_strip(struct id_batch *b, const char *reason);

/* Archiving: what happened to each record. org_migrating counts the orgs
 * whose writes were frozen (their rows untouched). */
enum archive_result {
	ARCHIVE_ARCHIVED,
	ARCHIVE_ALREADY,
	ARCHIVE_HELD,
	ARCHIVE_NOT_FOUND,
	ARCHIVE_MIGRATING,
	ARCHIVE__MAX
};
extern const char *const archive_results[ARCHIVE__MAX];
/* {"archived": n, "already_archived": n, "legal_hold": n, "not_found": n
 * [, "org_migrating": n when not 0]}. */
struct json_object *archive_counts_json(const long long counts[ARCHIVE__MAX]);

/* Archives b's ids (each one of archive_results); one compliance.archived
 * event per group. A dry run changes nothing but says what would happen. */
enum batch_rc compliance_archive_ids(struct id_batch *b, const char *reason, bool dry_run);

/* Archives the records of e created before before_ms (of org only, when
 * not NULL; else org by org), in chunks of one transaction each. Each chunk
 * that judged rows writes its compliance.archived event (its ids and
 * counts) in its own transaction; a dry run, or a run that judged no row,
 * writes one event with the counts. On -1 the chunks before the failed one
 * stay committed and audited. 0 or -1. */
struct archive_query {
	struct db *control;
	const struct opsd_config *cfg;
	struct arena *arena;
	const struct audit_actor *actor;
	const struct entity *e;
	const char *reason;
	bool dry_run;
	int64_t before_ms;
	const char *org; /* UUID text, or NULL */
};
int compliance_archive_older(const struct archive_query *q, long long counts[ARCHIVE__MAX]);

#endif
