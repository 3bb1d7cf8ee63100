/* The one entity table (SPEC §4, §8): for every entity that can hold
 * personal data, its table, where it lives, its fields and how each PII
 * column is redacted. Tenant CRUD, strip-PII, exports, audit and log
 * redaction all read it. */
#ifndef OPSD_ENTITY_H
#define OPSD_ENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/json.h"
#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;

enum redaction {
	RED_KEEP,      /* not personal data */
	RED_NULL,      /* set to NULL */
	RED_TOMBSTONE, /* "[redacted]" */
	RED_UNIQUE,    /* redacted+<16 hex of sha256(id)>@redacted.invalid (unique columns) */
};

struct entity_column {
	const char *column;   /* SQL column */
	const char *field;    /* JSON field (camelCase) */
	enum field_type type; /* FT_STRING, FT_NUMBER or FT_ENUM */
	long long max;        /* length (strings) or value (numbers) */
	bool required;        /* on create */
	bool email;           /* must be an email address */
	enum redaction redact;
	const char *const *choices;
};

struct entity {
	const char *name; /* "contacts": the API and audit name */
	const char *table;
	bool tenant; /* in the org's tenant database (else control) */
	bool crud;   /* served under /orgs/:orgId/<name> */
	const struct entity_column *cols;
	size_t ncols;
	const char *org_column; /* "org_id", or "id" for orgs, NULL for platform users */
};

extern const struct entity entities[];
extern const size_t nentities;
const struct entity *entity_find(const char *name);
/* The redacted value of a column for record id (NULL for RED_NULL). */
const char *entity_redacted_value(const struct entity_column *c, const uint8_t id[16], char *buf,
    size_t len);

/* The one legal-hold guard of every destructive path (update, delete,
 * strip, archive, retention purge, migration): true when the record or its
 * org is held. Locks the record (FOR UPDATE) in d, where the entity lives
 * (the org's tenant database for tenant entities), and reads its org's hold
 * from control in share mode, so concurrent writes of one org never wait
 * on each other for it. Both inside the caller's transactions. -1 on a
 * database error, 1 when the record does not exist, 0 otherwise. */
int legal_hold_guard(struct db *d, struct db *control, struct arena *a, const struct entity *e,
    const uint8_t id[16], bool *held);
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
struct opsd_config;
int legal_hold_collect(struct db *control, const struct opsd_config *cfg, struct held_set *out);
bool held_set_has(const struct held_set *s, const uint8_t id[16]);
void held_set_free(struct held_set *s);

#endif
