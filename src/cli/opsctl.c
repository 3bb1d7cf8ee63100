/* opsctl: the operator's command line over the core library. This file
 * holds main, the table of commands (the one list of their names, options
 * and help) and the option plumbing they share; each group of commands has
 * its own file, declared in cli.h. Human text on stdout, one clear line per
 * error on stderr. Exit codes: 0 ok, 1 the operation failed or the state is
 * not what was asked, 2 usage or config. */
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "infra/config.h"
#include "infra/db.h"
#include "lib/util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

struct command {
	const char *name;
	const char *sub;
	int (*fn)(struct opsctl *o);
	const char *usage;
	bool needs_db;
	/* the options it takes, space-separated; "--name=" takes a value */
	const char *opts;
};

const char *opt_value(const struct opsctl *o, const char *name)
{
	for (int i = 0; i + 1 < o->argc; i++)
		if (strcmp(o->argv[i], name) == 0)
			return o->argv[i + 1];
	return NULL;
}

bool opt_flag(const struct opsctl *o, const char *name)
{
	for (int i = 0; i < o->argc; i++)
		if (strcmp(o->argv[i], name) == 0)
			return true;
	return false;
}

/* Every argument is one of the command's options, and each option that
 * takes a value has one: a typo such as --dryrun must not run the real
 * thing. */
static bool options_valid(const struct command *cmd, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);
		const char *hit = NULL;

		for (const char *p = cmd->opts; n > 2 && (p = strstr(p, argv[i])) != NULL; p += n)
			if ((p == cmd->opts || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '=' || p[n] == '\0')) {
				hit = p;
				break;
			}
		if (!hit || strncmp(argv[i], "--", 2) != 0) {
			fprintf(stderr, "opsctl: unexpected argument \"%s\" (%s %s: %s)\n", argv[i],
			    cmd->name, cmd->sub, cmd->usage);
			return false;
		}
		if (hit[n] == '=') {
			if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
				fprintf(stderr, "opsctl: %s needs a value\n", argv[i]);
				return false;
			}
			i++;
		}
	}
	return true;
}

int need_opt(const char *name)
{
	fprintf(stderr, "opsctl: %s is required\n", name);
	return EXIT_USAGE;
}

static const struct command commands[] = {
    {"db", "migrate", cmd_db_migrate, "apply pending schema files (control, then tenant)", true,
        ""},
    {"db", "status", cmd_db_status, "list schema files: applied, pending, MODIFIED, missing", true,
        ""},
    {"user", "create", cmd_user_create,
        "--email E --role R[,R] [--org ID] [--name N] [--service] [--password-stdin]", true,
        "--email= --role= --org= --name= --service --password-stdin"},
    {"user", "set-password", cmd_user_set_password, "--email E (password on stdin)", true,
        "--email="},
    {"user", "ensure-admin", cmd_user_ensure_admin,
        "--email E (password on stdin): create the superadmin if absent", true, "--email="},
    {"sessions", "flush", cmd_sessions_flush, "--all | --user ID | --org ID", true,
        "--all --user= --org="},
    {"legal", "publish", cmd_legal_publish,
        "--type T --version V --file PATH [--effective-at RFC3339] [--notify]", true,
        "--type= --version= --file= --effective-at= --notify"},
    {"email", "test", cmd_email_test, "--to ADDR: send one message now and say which step failed",
        true, "--to="},
    {"audit", "verify", cmd_audit_verify, "replay the audit hash chain (exit 1 if broken)", true,
        ""},
    {"audit", "purge", cmd_audit_purge,
        "[--dry-run] [--days N]  delete expired audit events (held subjects kept)", true,
        "--dry-run --days="},
    {"migration", "start", cmd_migration_start,
        "--org ID --direction D --reason R [--chunk-size N] [--target-uri-env VAR] "
        "[--db-name N] [--dry-run] [--override-legal-hold]",
        true,
        "--org= --direction= --reason= --chunk-size= --target-uri-env= --db-name= --dry-run "
        "--override-legal-hold"},
    {"migration", "status", cmd_migration_status, "--org ID [--json]", true, "--org= --json"},
    {"migration", "watch", cmd_migration_watch,
        "--org ID [--interval-ms N]: a progress bar until ready, completed, aborted or failed",
        true, "--org= --interval-ms="},
    {"migration", "finalize", cmd_migration_finalize, "--org ID: cut over (ready_for_cutover)",
        true, "--org="},
    {"migration", "abort", cmd_migration_abort, "--org ID --reason R [--id MIGRATION]", true,
        "--org= --reason= --id="},
    {"migration", "history", cmd_migration_history, "--org ID: every migration, as JSON", true,
        "--org="},
    {"blocklist", "add", cmd_blocklist_add,
        "--cidr C --reason R [--expires-at RFC3339] [--force]: block an address or range", true,
        "--cidr= --reason= --expires-at= --force"},
    {"blocklist", "remove", cmd_blocklist_remove, "--id ID", true, "--id="},
    {"blocklist", "list", cmd_blocklist_list, "[--json]: the active entries", true, "--json"},
    {"blocklist", "sync-nginx", cmd_blocklist_sync_nginx,
        "write $OPSD_VAR/nginx/opsd-blocklist.conf, nginx -t, reload nginx", true, ""},
    {"routes", "", cmd_routes, "print the route table as JSON", false, ""},
    {"roles", "", cmd_roles, "print the role → permission table as JSON", false, ""},
    {"openapi", "", cmd_openapi, "print the API document (OpenAPI 3.1) as JSON", false, ""},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: opsctl <command> [<subcommand>]\n\ncommands:\n");
	for (size_t i = 0; i < countof(commands); i++) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "%s %s", commands[i].name, commands[i].sub);
		fprintf(f, "  %-22s %s\n", cmd, commands[i].usage);
	}
	fprintf(f, "  %-22s %s\n  %-22s %s\n\n", "help", "show this help", "--version",
	    "print the version");
	fprintf(f, "Configuration comes from the environment and OPSD_ENV_FILE (see opsctl(8)).\n"
	           "Exit status: 0 ok, 1 failed or not current, 2 usage or configuration error.\n");
}

/* Warnings are about running opsd (test mode, a missing session secret);
 * opsctl reports only what stops it. */
static void report_config(bool is_error, const char *line, void *ctx)
{
	(void)ctx;
	if (is_error)
		fprintf(stderr, "opsctl: %s\n", line);
}

/* Matches "<name> <sub> [options]" (or "<name> [options]" when sub is "");
 * *first gets the index of the first option. */
static const struct command *find_command(int argc, char **argv, int *first)
{
	for (size_t i = 0; i < countof(commands); i++) {
		const struct command *c = &commands[i];

		if (argc < 2 || strcmp(argv[1], c->name) != 0)
			continue;
		if (!c->sub[0]) {
			*first = 2;
			return c;
		}
		if (argc >= 3 && strcmp(argv[2], c->sub) == 0) {
			*first = 3;
			return c;
		}
	}
	return NULL;
}

static void set_actor(struct opsctl *o)
{
	struct passwd *pw = getpwuid(geteuid());

	snprintf(o->label, sizeof(o->label), "cli:%s", pw ? pw->pw_name : "unknown");
	o->actor.label = o->label;
}

int main(int argc, char **argv)
{
	struct opsctl o = {0};
	const struct command *cmd;
	int first = 0;
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
	if (!(cmd = find_command(argc, argv, &first))) {
		if (argc > 1)
			fprintf(stderr, "opsctl: unknown command \"%s%s%s\"\n", argv[1],
			    argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
		usage(stderr);
		return EXIT_USAGE;
	}

	o.argc = argc - first;
	o.argv = argv + first;
	if (!options_valid(cmd, o.argc, o.argv))
		return EXIT_USAGE;
	set_actor(&o);
	if (!cmd->needs_db)
		return cmd->fn(&o);
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
