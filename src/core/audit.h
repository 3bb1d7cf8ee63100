/* The append-only, hash-chained audit log (SPEC §9). Each event stores
 * sha256 of its canonical form, which includes the previous event's hash;
 * verification replays the chain and names the first event that breaks it. */
#ifndef OPSD_AUDIT_H
#define OPSD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct json_object;

/* ---- pure part (audit_hash.c) ------------------------------------------ */

/* One row as it is hashed. NULL fields are distinct from "". */
struct audit_record {
	int64_t seq;
	const char *id;          /* UUIDv7 string */
	const char *occurred_at; /* "2026-11-24 10:27:55.123" as stored (UTC) */
	const char *actor_id;
	const char *actor_label; /* role, "cli:<user>", "system" or "anonymous" */
	const char *org_id;
	const char *action;
	const char *target_type;
	const char *target_id;
	const char *ip;
	const char *request_id;
	const char *payload;     /* the stored JSON text */
	uint8_t prev_hash[32];   /* zeros for the first event */
};

/* sha256 over a length-prefixed encoding of every field in order, so no
 * two different records share a canonical form. */
void audit_record_hash(const struct audit_record *rec, uint8_t out[32]);
/* Redacts a payload in place before it is stored: every string value under a
 * sensitive key (redact_key_is_sensitive) becomes "[redacted]", and e-mail
 * addresses or bearer tokens inside other strings are masked, at any depth. */
void audit_redact_payload(struct json_object *payload);

/* ---- database part (audit.c) ------------------------------------------- */

struct audit_actor {
	const char *user_id;    /* NULL for the CLI, the system or anonymous */
	const char *label;
	const char *ip;
	const char *request_id;
};

/* Appends one event. Must run inside a transaction (db_tx): it locks the
 * chain head, so events of one transaction commit with the change they
 * describe, and the chain stays linear across workers and hosts. payload
 * is redacted and released. 0 or -1. */
int audit_append(struct db *d, const struct audit_actor *actor, const char *action,
    const char *org_id, const char *target_type, const char *target_id,
    struct json_object *payload);
/* The same in its own transaction (for events with no other change, such
 * as a failed login). payload is released here too. */
int audit_append_tx(struct db *d, const struct audit_actor *actor, const char *action,
    const char *org_id, const char *target_type, const char *target_id,
    struct json_object *payload);

struct audit_verify_result {
	bool ok;
	uint64_t checked;
	char first_broken_id[40]; /* when !ok; "" when the chain was cut at its end */
	int64_t first_broken_seq;
	const char *reason;       /* when !ok: "hash mismatch" or "events missing at the end" */
};
/* Replays the whole chain in batches. 0 (result filled) or -1 (db error). */
int audit_verify(struct db *d, struct audit_verify_result *res);

#endif
