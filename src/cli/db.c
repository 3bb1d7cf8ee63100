/* opsctl db migrate and db status: the schema files of OPSD_SQL_DIR, applied
 * to the control database (which holds the shared tenant tables) and, for
 * sql/tenant/, to every dedicated database too. */
#include <stdio.h>

#include "cli/cli.h"
#include "core/tenant_db.h"
#include "infra/db.h"
#include "infra/schema.h"
#include "lib/arena.h"
#include "lib/util.h"

/* Schema sets in the order they are applied: control first, then
 * tenant (opsctl(8), db migrate). */
static const char *const schema_sets[] = {"control", "tenant"};

static const char *const state_names[] = {
    [SCHEMA_APPLIED] = "applied",
    [SCHEMA_PENDING] = "pending",
    [SCHEMA_MODIFIED] = "MODIFIED",
    [SCHEMA_MISSING] = "missing",
};

static void print_applied(const struct schema_entry *e, void *ctx)
{
	int *n = ctx;

	printf("applied %s/%s\n", e->set, e->name);
	fflush(stdout);
	(*n)++;
}

struct dedicated_ctx {
	const char *slug;
	int *n;
};

static void print_applied_dedicated(const struct schema_entry *e, void *ctx)
{
	const struct dedicated_ctx *c = ctx;

	printf("applied %s/%s to the dedicated database of org %s\n", e->set, e->name, c->slug);
	fflush(stdout);
	(*c->n)++;
}

/* The tenant files added since each dedicated database was made (a
 * migration gives a new one the whole set). A database that cannot be
 * brought up to date is reported and skipped, not fatal: opsd starts after
 * this command, and one tenant's database being down must not keep every
 * other tenant out. Running it again once the database is back finishes
 * the job; until then a subject search lists it as not searched. */
static void migrate_dedicated(struct opsctl *o, int *n)
{
	struct arena *a = arena_new(16384);
	struct db_rows rows;
	char err[1024];

	if (!a || db_query(o->db, a,
	              "SELECT slug, JSON_VALUE(dedicated_target, '$.sealed') FROM orgs"
	              " WHERE db_mode = 'dedicated' ORDER BY id",
	              NULL, 0, &rows) != 0) {
		fprintf(stderr, "opsctl: warning: the dedicated databases were not migrated: %s\n",
		    a ? db_error(o->db) : "out of memory");
		arena_free(a);
		return;
	}
	for (size_t i = 0; i < rows.nrows; i++) {
		struct dedicated_ctx c = {rows.val[i][0], n};
		struct db *d = rows.val[i][1]
		                   ? tenant_db_sealed(&o->cfg, rows.val[i][1], err, sizeof(err))
		                   : NULL;

		if (!rows.val[i][1])
			snprintf(err, sizeof(err), "no dedicated target");
		if (!d || schema_migrate(d, o->cfg.sql_dir, "tenant", print_applied_dedicated, &c,
		              err, sizeof(err)) < 0)
			fprintf(stderr,
			    "opsctl: warning: the dedicated database of org %s was not migrated: %s\n",
			    c.slug, err);
	}
	tenant_db_close_all();
	arena_free(a);
}

int cmd_db_migrate(struct opsctl *o)
{
	char err[1024];
	int n = 0;

	for (size_t i = 0; i < countof(schema_sets); i++) {
		if (schema_migrate(o->db, o->cfg.sql_dir, schema_sets[i], print_applied, &n, err,
		        sizeof(err)) < 0) {
			fprintf(stderr, "opsctl: migrate failed: %s\n", err);
			return EXIT_FAILED;
		}
	}
	migrate_dedicated(o, &n);
	if (n == 0)
		printf("schema is current\n");
	return EXIT_OK;
}

static void print_state(const struct schema_entry *e, void *ctx)
{
	char file[160];

	(void)ctx;
	snprintf(file, sizeof(file), "%s/%s", e->set, e->name);
	printf("%-40s  %s\n", file, state_names[e->state]);
}

int cmd_db_status(struct opsctl *o)
{
	char err[1024];
	int behind = 0;

	for (size_t i = 0; i < countof(schema_sets); i++) {
		int n = schema_status(o->db, o->cfg.sql_dir, schema_sets[i], print_state, NULL, err,
		    sizeof(err));
		if (n < 0) {
			fprintf(stderr, "opsctl: status failed: %s\n", err);
			return EXIT_FAILED;
		}
		behind += n;
	}
	return behind ? EXIT_FAILED : EXIT_OK;
}
