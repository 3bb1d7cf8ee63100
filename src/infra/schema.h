/* Schema migrations (doc/architecture.md "Data"): sql/control/ and sql/tenant/ files applied in
 * name order and recorded with their SHA-256 in schema_migrations. An edited,
 * already-applied file is an error. */
#ifndef OPSD_SCHEMA_H
#define OPSD_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

struct db;

enum schema_state { SCHEMA_APPLIED, SCHEMA_PENDING, SCHEMA_MODIFIED, SCHEMA_MISSING };

struct schema_entry {
	char set[16];   /* "control" or "tenant" */
	char name[128]; /* file name, e.g. "0001_init.sql" */
	char sha256[65];
	enum schema_state state;
};

typedef void (*schema_report_fn)(const struct schema_entry *e, void *ctx);

/* Compares the files of one set in sql_dir/<set>/ with schema_migrations.
 * Calls fn for each file (and each applied row whose file is gone:
 * SCHEMA_MISSING). Returns the number of files not in SCHEMA_APPLIED state,
 * or -1 on error (err set). */
int schema_status(struct db *d, const char *sql_dir, const char *set, schema_report_fn fn,
    void *ctx, char *err, size_t err_len);
/* Applies the pending files of a set in order. Refuses to run at all if any
 * applied file was modified. Returns the number applied, or -1 (err set). */
int schema_migrate(struct db *d, const char *sql_dir, const char *set, schema_report_fn fn,
    void *ctx, char *err, size_t err_len);
/* For /readyz: 0 when the database answers a read of schema_migrations (or
 * that it has no such table: nothing is migrated yet), -1 when it cannot be
 * asked. A table is read, as a Galera node out of the primary component still
 * answers a statement that reads none. */
int schema_probe(struct db *d);
/* For /readyz: 1 when both sets are fully applied to d, 0 when behind or
 * modified, -1 when the database cannot be asked. */
int schema_is_current(struct db *d, const char *sql_dir);

#endif
