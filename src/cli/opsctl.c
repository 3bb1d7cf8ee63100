/* opsctl: the operator's command line over the core library. Human text on
 * stdout, one clear line per error on stderr. Exit codes: 0 ok, 1 the
 * operation failed or the state is not what was asked, 2 usage or config. */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/db.h"
#include "core/schema.h"
#include "core/util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

struct opsctl {
	struct opsd_config cfg;
	struct db *db;
};

struct command {
	const char *name;
	const char *sub;
	int (*fn)(struct opsctl *o);
	const char *usage;
};

/* Schema sets in the order they are applied: control first (SPEC §4). */
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

static int cmd_db_migrate(struct opsctl *o)
{
	char err[1024];
	int n = 0;

	for (size_t i = 0; i < countof(schema_sets); i++) {
		if (schema_migrate(o->db, o->cfg.sql_dir, schema_sets[i], print_applied, &n,
		        err, sizeof(err)) < 0) {
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

static int cmd_db_status(struct opsctl *o)
{
	char err[1024];
	int behind = 0;

	for (size_t i = 0; i < countof(schema_sets); i++) {
		int n = schema_status(o->db, o->cfg.sql_dir, schema_sets[i], print_state, NULL,
		    err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "opsctl: status failed: %s\n", err);
			return EXIT_FAILED;
		}
		behind += n;
	}
	return behind ? EXIT_FAILED : EXIT_OK;
}

static const struct command commands[] = {
	{"db", "migrate", cmd_db_migrate, "apply pending schema files (control, then tenant)"},
	{"db", "status", cmd_db_status, "list schema files: applied, pending, MODIFIED, missing"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: opsctl <command> [<subcommand>]\n\ncommands:\n");
	for (size_t i = 0; i < countof(commands); i++) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "%s %s", commands[i].name, commands[i].sub);
		fprintf(f, "  %-16s %s\n", cmd, commands[i].usage);
	}
	fprintf(f, "  %-16s %s\n  %-16s %s\n\n", "help", "show this help", "--version",
	    "print the version");
	fprintf(f, "Configuration comes from the environment and OPSD_ENV_FILE (see opsctl(8)).\n"
	           "Exit status: 0 ok, 1 failed or not current, 2 usage or configuration error.\n");
}

static void report_config(bool is_error, const char *line, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsctl: %s%s\n", is_error ? "" : "warning: ", line);
}

static const struct command *find_command(int argc, char **argv)
{
	for (size_t i = 0; i < countof(commands); i++)
		if (argc == 3 && strcmp(argv[1], commands[i].name) == 0 &&
		    strcmp(argv[2], commands[i].sub) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct opsctl o = {0};
	const struct command *cmd;
	struct db_uri uri;
	char err[1024];
	int rc = EXIT_USAGE;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("opsctl %s\n", PACKAGE_VERSION);
		return EXIT_OK;
	}
	if (argc == 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	        strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!(cmd = find_command(argc, argv))) {
		if (argc > 1)
			fprintf(stderr, "opsctl: unknown command \"%s%s%s\"\n", argv[1],
			    argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
		usage(stderr);
		return EXIT_USAGE;
	}

	if (config_load(&o.cfg, report_config, NULL) > 0)
		goto out;
	if (!o.cfg.db_uri || !o.cfg.db_uri[0]) {
		fprintf(stderr, "opsctl: OPSD_DB_URI is not set\n");
		goto out;
	}
	if (!db_uri_parse(o.cfg.db_uri, &uri, err, sizeof(err))) {
		fprintf(stderr, "opsctl: OPSD_DB_URI: %s\n", err);
		goto out;
	}
	explicit_bzero(uri.pass, sizeof(uri.pass));
	if (!(o.db = db_open(o.cfg.db_uri, err, sizeof(err)))) {
		fprintf(stderr, "opsctl: %s\n", err);
		rc = EXIT_FAILED;
		goto out;
	}
	rc = cmd->fn(&o);
out:
	db_close(o.db);
	config_free(&o.cfg);
	return rc;
}
