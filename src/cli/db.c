/* opsctl db migrate and db status: the schema files of OPSD_SQL_DIR. */
#include <stdio.h>

#include "cli/cli.h"
#include "infra/schema.h"
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
