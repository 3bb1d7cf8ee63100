/* Shared between audit.c (verify) and audit_purge.c (retention): the
 * columns of one stored event in the order audit_row_hash_ok reads them. */
#ifndef OPSD_AUDIT_INTERNAL_H
#define OPSD_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infra/db.h"

#define AUDIT_ROW_COLUMNS                                                                          \
	"seq, id, occurred_at, actor_id, actor_label, org_id, action, target_type,"                \
	" target_id, ip, request_id, payload, prev_hash, hash"
enum {
	AR_SEQ,
	AR_ID,
	AR_OCCURRED_AT,
	AR_ACTOR_ID,
	AR_ACTOR_LABEL,
	AR_ORG_ID,
	AR_ACTION,
	AR_TARGET_TYPE,
	AR_TARGET_ID,
	AR_IP,
	AR_REQUEST_ID,
	AR_PAYLOAD,
	AR_PREV_HASH,
	AR_HASH,
};

/* Row r of an AUDIT_ROW_COLUMNS result links to prev and hashes to its
 * stored hash. id_out[37] receives its id. */
bool audit_row_hash_ok(const struct db_rows *rows, size_t r, const uint8_t prev[32], char *id_out);

#endif
