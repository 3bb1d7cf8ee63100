/* Subject search (README "Runbook 2", step 1): the records of a data subject, found by email,
 * name or phone in every entity of the entity table that has such a column, across every org:
 * the control database (users, orgs), the shared tenant tables and every dedicated database.
 * Each match says where the record lives and its compliance flags, never a value. The entity
 * table names the columns (entity_column.subject) and the indexed generated columns that hold
 * their normalised forms, so a stripped value is no longer found. */
#ifndef OPSD_SUBJECTS_H
#define OPSD_SUBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/entity.h"

struct arena;
struct audit_actor;
struct db;
struct json_object;
struct opsd_config;

#define SUBJECT_LIMIT_DEFAULT 50
#define SUBJECT_LIMIT_MAX 100
#define SUBJECT_EMAIL_MAX 254   /* characters */
#define SUBJECT_NAME_MIN 3      /* characters of a normalised name */
#define SUBJECT_NAME_MAX 200    /* as the name columns */
#define SUBJECT_PHONE_MAX 64    /* characters, as the phone columns */
#define SUBJECT_PHONE_MIN 6     /* digits */
#define SUBJECT_PHONE_DIGITS 20 /* at most, E.164 and extensions */
#define SUBJECT_CURSOR_MAX 200

/* "email", "name", "phone": the body fields and opsctl's options (NULL at
 * SUBJECT_NONE). */
extern const char *const subject_term_names[SUBJECT__MAX];

/* ---- pure ---------------------------------------------------------------- */

/* The normalised form of a term, as the generated columns compute it from
 * the stored value: an email trimmed and lower-cased (and shaped like an
 * address), a name with every run of whitespace made one space and trimmed
 * (at least SUBJECT_NAME_MIN characters, no control characters), a phone's
 * digits (the characters allowed besides them: space + - ( ) . /). NULL
 * when it is valid, else why not (a 400's reason on its field). */
const char *subject_normalize(enum subject_term t, const char *in, char *out, size_t len);
/* A LIKE pattern matching the values that start with key: '!' escapes
 * '!', '%' and '_' (the statements say ESCAPE '!'). false when out is too
 * small. */
bool subject_like_prefix(const char *key, char *out, size_t len);

/* Where a page ends: the last record returned, in the order of the search
 * (the control database's entities in table order, then each dedicated
 * org's database by org id, its tenant entities in table order, each by
 * record id). */
struct subject_pos {
	bool set;
	bool dedicated; /* else the control database (shared tenant tables included) */
	uint8_t org[16];
	size_t entity; /* index into entities[] */
	uint8_t id[16];
};
/* As the text inside a cursor: "c.<entity>.<hex id>" or
 * "d.<hex org>.<entity>.<hex id>". */
void subject_pos_format(const struct subject_pos *p, char *out, size_t len);
bool subject_pos_parse(const char *s, struct subject_pos *p);

/* A search: the terms given, in their searchable forms; a record matches
 * when any term matches one of its columns. */
struct subject_query {
	bool has[SUBJECT__MAX];
	uint8_t hash[SUBJECT__MAX][32];                    /* exact terms: sha256 of the key */
	char like[SUBJECT__MAX][SUBJECT_NAME_MAX * 8 + 2]; /* prefix terms */
	long long limit;
	struct subject_pos after;
};
/* Fills q from the terms (values[t], NULL when absent), the limit (0: the
 * default) and an opaque cursor (NULL or ""). NULL when valid; else why
 * not, with *field naming the input at fault ("email", "limit", "cursor",
 * ...), or NULL when no term was given at all. */
const char *subject_query_init(struct subject_query *q, const char *const values[SUBJECT__MAX],
    long long limit, const char *cursor, const char **field);

/* ---- the search ------------------------------------------------------------ */

enum subject_place { SUBJECT_IN_CONTROL, SUBJECT_IN_SHARED, SUBJECT_IN_DEDICATED };

struct subject_match {
	const struct entity *e;
	uint8_t id[16];
	bool has_org;
	uint8_t org[16];
	enum subject_place place;
	const char *dedicated_db; /* "host[:port]/name", no user or password */
	bool stripped, held, org_held, archived;
	unsigned matched; /* bit i: e->cols[i] matched its term */
	struct subject_pos pos;
};
/* A dedicated database the search could not ask (down, or behind on the
 * schema): its records are missing from the answer. */
struct subject_unsearched {
	uint8_t org[16];
	const char *dedicated_db;
};
struct subject_page {
	struct subject_match *items;
	size_t n;
	bool more; /* next continues after items[n - 1], or at resume */
	/* The time budget ran out before a dedicated database (more is true):
	 * the next page starts there. */
	bool cut;
	struct subject_pos resume;
	struct subject_unsearched *unsearched;
	size_t nunsearched;
};

/* One page of the search, then the compliance.subjects_searched event
 * (the terms given, by name, and the count: never a value) in its own
 * transaction. Records are reported where the org's routing reads them: a
 * copy a running migration keeps on its target, or one a finished
 * migration is still removing from its source, is not. 0, or -1 when the
 * control database failed (nothing audited). */
int subject_search_audited(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const struct audit_actor *actor, const struct subject_query *q, struct subject_page *out);
/* {"items":[{entity, id, orgId, database, dedicatedDb?, matched[{term,
 * field}], piiStripped, legalHold, orgLegalHold, archived}], "nextCursor",
 * "unsearched":[{orgId, database, dedicatedDb}]} */
struct json_object *subject_page_json(const struct subject_page *p);

#endif
