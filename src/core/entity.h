/* The one entity table (doc/architecture.md "Data"; README "Runbook 2"): for every entity that can
 * hold personal data, its table, where it lives, its fields and how each PII column is redacted.
 * Tenant CRUD, strip-PII, exports, audit and log redaction all read it. */
#ifndef OPSD_ENTITY_H
#define OPSD_ENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/json.h"
#include "lib/uuid.h"

enum redaction {
	RED_KEEP,      /* not personal data */
	RED_NULL,      /* set to NULL */
	RED_TOMBSTONE, /* "[redacted]" */
	RED_UNIQUE,    /* redacted+<16 hex of sha256(id)>@redacted.invalid (unique columns) */
};

/* Which term of a subject search (core/subjects.h) finds a person by a
 * column: exact email, name prefix or exact phone digits. */
enum subject_term {
	SUBJECT_NONE,
	SUBJECT_EMAIL, /* sha256 of the trimmed, lower-cased address */
	SUBJECT_NAME,  /* whitespace collapsed and trimmed; prefix, case-insensitive */
	SUBJECT_PHONE, /* sha256 of the digits */
	SUBJECT__MAX
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
	/* A subject search finds the record by this column through the indexed
	 * generated column search_column (the *_subject_search.sql schema files), which
	 * follows the column: a stripped value is no longer found. */
	enum subject_term subject;
	const char *search_column;
};

/* The most columns an entity declares (arrays of a record's values). */
#define ENTITY_MAX_COLS 8

struct entity {
	const char *name; /* "contacts": the API and audit name */
	const char *table;
	bool tenant; /* in the org's tenant database (else control) */
	bool crud;   /* served under /orgs/:orgId/<name> */
	const struct entity_column *cols;
	size_t ncols;
	const char *org_column; /* "org_id", or "id" for orgs, NULL for platform users */
};

/* The entities, in the order error messages list them. */
enum entity_kind {
	ENTITY_USERS,
	ENTITY_CONTACTS,
	ENTITY_PROJECTS,
	ENTITY_OFFICES,
	ENTITY_ORGS,
	ENTITY__MAX
};
extern const struct entity entities[ENTITY__MAX];
const struct entity *entity_find(const char *name);
/* The names of the entities, NULL-terminated: the choices of an "entity"
 * field and of the messages that list them. */
enum entity_list {
	ENTITIES_ALL,          /* table order */
	ENTITIES_TENANT_FIRST, /* tenant records first, then users and orgs */
	ENTITIES_CRUD,         /* only those served under /orgs/:orgId/ */
	ENTITIES__MAX
};
const char *const *entity_choices(enum entity_list which);
/* The SQL expression a redacted column is set to, over the row's id
 * column (NULL for RED_KEEP). */
const char *entity_redaction_sql(enum redaction r);
/* "column = expression, ..." for every PII column of e, into buf: what
 * strip-PII sets. Its length, or 0 when it does not fit. */
size_t entity_strip_set_sql(const struct entity *e, char *buf, size_t len);

#endif
