/* opsctl: the operator's command line over the core library. This file
 * holds main, the table of commands (the one list of their names, options
 * and help) and the option plumbing they share; each group of commands has
 * its own file, declared in cli.h. Human text on stdout, one clear line per
 * error on stderr. Exit codes: 0 ok, 1 the operation failed or the state is
 * not what was asked, 2 usage or config, 3 the principal lacks the
 * command's permission. */
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/authz.h"
#include "infra/config.h"
#include "infra/db.h"
#include "lib/secret.h"
#include "lib/util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* What a command needs before it runs: nothing (it reads no configuration),
 * the configuration (its principal's roles, settings), or a database
 * connection as well. */
enum needs { NEEDS_NOTHING = 0, NEEDS_DB = 1, NEEDS_CONFIG = 2 };

struct command {
	const char *name;
	const char *sub;
	enum perm perm;
	int (*fn)(struct opsctl *o);
	const char *usage;
	enum needs needs;
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

/* Each command names the permission its API route needs (P_NONE: none;
 * README "opsctl on the host"): the principal cli:<user> must hold it. */
static const struct command commands[] = {
    {"db", "migrate", P_NONE, cmd_db_migrate, "apply pending schema files (control, then tenant)",
        NEEDS_DB, ""},
    {"db", "status", P_NONE, cmd_db_status,
        "list schema files: applied, pending, MODIFIED, missing", NEEDS_DB, ""},
    {"user", "create", P_USERS_MANAGE, cmd_user_create,
        "--email E --role R[,R] [--org ID] [--name N] [--service] [--password-stdin]", NEEDS_DB,
        "--email= --role= --org= --name= --service --password-stdin"},
    {"user", "set-password", P_USERS_MANAGE, cmd_user_set_password, "--email E (password on stdin)",
        NEEDS_DB, "--email="},
    {"user", "ensure-admin", P_USERS_MANAGE, cmd_user_ensure_admin,
        "--email E (password on stdin): create the superadmin if absent", NEEDS_DB, "--email="},
    {"user", "disable", P_SECURITY_USERS_DISABLE, cmd_user_disable,
        "--id ID [--reason R]: disable an account, revoking its sessions and API tokens", NEEDS_DB,
        "--id= --reason="},
    {"user", "enable", P_SECURITY_USERS_DISABLE, cmd_user_enable,
        "--id ID [--reason R]: let a disabled account sign in again", NEEDS_DB, "--id= --reason="},
    {"token", "revoke", P_SECURITY_TOKENS_REVOKE, cmd_token_revoke,
        "--user ID | --all | --id TOKEN_ID | --org ID [--reason R]: as tokens revoke", NEEDS_DB,
        "--user= --org= --all --id= --reason="},
    {"tokens", "revoke", P_SECURITY_TOKENS_REVOKE, cmd_token_revoke,
        "--user ID | --org ID | --all | --id TOKEN_ID [--reason R]: revoke API tokens", NEEDS_DB,
        "--user= --org= --all --id= --reason="},
    {"tokens", "list", P_SECURITY_TOKENS_REVOKE, cmd_tokens_list,
        "[--user ID] [--org ID] [--no-expiry] [--json]: the live API tokens, newest first",
        NEEDS_DB, "--user= --org= --no-expiry --json"},
    {"sessions", "flush", P_SECURITY_SESSIONS_FLUSH, cmd_sessions_flush,
        "--all | --user ID | --org ID [--tokens] [--reason R]", NEEDS_DB,
        "--all --user= --org= --tokens --reason="},
    {"legal", "publish", P_LEGAL_PUBLISH, cmd_legal_publish,
        "--type T --version V --file PATH [--effective-at RFC3339] [--notify]", NEEDS_DB,
        "--type= --version= --file= --effective-at= --notify"},
    {"legal", "report", P_LEGAL_REPORT, cmd_legal_report,
        "--type T [--version V] [--limit N] [--cursor C]: accepted and pending users, as JSON",
        NEEDS_DB, "--type= --version= --limit= --cursor="},
    {"compliance", "hold", P_COMPLIANCE_LEGAL_HOLD, cmd_compliance_hold,
        "--entity E --ids ID[,ID] --reason R [--case-ref C] [--release]", NEEDS_DB,
        "--entity= --ids= --reason= --case-ref= --release"},
    {"compliance", "strip", P_COMPLIANCE_STRIP_PII, cmd_compliance_strip,
        "--entity E --ids ID[,ID] --reason R: redact the records' PII", NEEDS_DB,
        "--entity= --ids= --reason="},
    {"compliance", "archive", P_COMPLIANCE_ARCHIVE, cmd_compliance_archive,
        "--entity E (--ids ID[,ID] | --older-than RFC3339 [--org ID]) --reason R [--dry-run]",
        NEEDS_DB, "--entity= --ids= --older-than= --org= --reason= --dry-run"},
    {"compliance", "export", P_COMPLIANCE_EXPORT, cmd_compliance_export,
        "--entity E --id ID: one subject's record (audited), as JSON", NEEDS_DB, "--entity= --id="},
    {"compliance", "search", P_COMPLIANCE_READ, cmd_compliance_search,
        "--email E | --name N | --phone P [--limit N] [--cursor C] [--json]: a data subject's "
        "records in every database (a term given as - is read from stdin)",
        NEEDS_DB, "--email= --name= --phone= --limit= --cursor= --json"},
    {"email", "test", P_EMAIL_SEND_TEST, cmd_email_test,
        "--to ADDR [--wait [--timeout S]]: queue a test message; --wait for its outcome", NEEDS_DB,
        "--to= --wait --timeout="},
    {"email", "outbox list", P_EMAIL_OUTBOX, cmd_email_outbox_list,
        "[--status S] [--limit N] [--cursor C]: the outbox, newest first, as JSON", NEEDS_DB,
        "--status= --limit= --cursor="},
    {"email", "outbox retry", P_EMAIL_OUTBOX, cmd_email_outbox_retry,
        "--id ID: queue a failed message again", NEEDS_DB, "--id="},
    {"email", "settings", P_EMAIL_OUTBOX, cmd_email_settings,
        "[--json]: the SMTP settings, test mode and allowlist (never the password)", NEEDS_CONFIG,
        "--json"},
    {"audit", "verify", P_AUDIT_VERIFY, cmd_audit_verify,
        "[--full]  replay the audit hash chain since the last checkpoint and record one "
        "(--full: the whole chain, recording nothing); exit 1 if broken",
        NEEDS_DB, "--full"},
    {"audit", "purge", P_AUDIT_VERIFY, cmd_audit_purge,
        "[--dry-run] [--days N]  delete expired audit events (held subjects kept)", NEEDS_DB,
        "--dry-run --days="},
    {"audit", "search", P_AUDIT_READ, cmd_audit_search,
        "[--action A|PREFIX.*] [--actor ID|LABEL] [--org ID] [--target-type T] [--target-id ID] "
        "[--about ID] [--ip ADDR|CIDR] [--request-id R] [--since RFC3339] [--until RFC3339] [--limit N] "
        "[--cursor C] [--format json|csv]: search the audit log",
        NEEDS_DB,
        "--action= --actor= --org= --target-type= --target-id= --about= --ip= --request-id= --since= "
        "--until= --limit= --cursor= --format="},
    {"migration", "start", P_MIGRATION_RUN, cmd_migration_start,
        "--org ID --direction D [--reason R] [--chunk-size N] [--target-uri-env VAR] "
        "[--db-name N] [--dry-run] [--override-legal-hold]",
        NEEDS_DB,
        "--org= --direction= --reason= --chunk-size= --target-uri-env= --db-name= --dry-run "
        "--override-legal-hold"},
    {"migration", "status", P_MIGRATION_RUN, cmd_migration_status, "--org ID [--json]", NEEDS_DB,
        "--org= --json"},
    {"migration", "watch", P_MIGRATION_RUN, cmd_migration_watch,
        "--org ID [--interval-ms N]: a progress bar until ready, completed, aborted or failed",
        NEEDS_DB, "--org= --interval-ms="},
    {"migration", "finalize", P_MIGRATION_RUN, cmd_migration_finalize,
        "--org ID [--reason R] [--dry-run [--json]]: cut over (ready_for_cutover), or rehearse it",
        NEEDS_DB, "--org= --reason= --dry-run --json"},
    {"migration", "abort", P_MIGRATION_RUN, cmd_migration_abort,
        "--org ID [--reason R] [--id MIGRATION]", NEEDS_DB, "--org= --reason= --id="},
    {"migration", "history", P_MIGRATION_RUN, cmd_migration_history,
        "--org ID: every migration, as JSON", NEEDS_DB, "--org="},
    {"migration", "list", P_MIGRATION_RUN, cmd_migration_list,
        "[--status S] [--json]: the migrations of every org, newest first", NEEDS_DB,
        "--status= --json"},
    {"tenant", "set-target", P_MIGRATION_RUN, cmd_tenant_set_target,
        "--org ID [--target-uri-env VAR] [--db-name N] [--reason R]: a dedicated org's new "
        "database target (credentials), checked before it is stored",
        NEEDS_DB, "--org= --target-uri-env= --db-name= --reason="},
    {"data-key", "rotate", P_MIGRATION_RUN, cmd_data_key_rotate,
        "seal every stored target and sign every audit anchor again under OPSD_DATA_KEY "
        "(then OPSD_DATA_KEY_PREVIOUS can go)",
        NEEDS_DB, ""},
    {"blocklist", "add", P_SECURITY_BLOCKLIST, cmd_blocklist_add,
        "--cidr C --reason R [--expires-at RFC3339] [--force]: block an address or range", NEEDS_DB,
        "--cidr= --reason= --expires-at= --force"},
    {"blocklist", "remove", P_SECURITY_BLOCKLIST, cmd_blocklist_remove, "--id ID [--reason R]",
        NEEDS_DB, "--id= --reason="},
    {"blocklist", "list", P_SECURITY_BLOCKLIST, cmd_blocklist_list,
        "[--json | --format plain|nft|iptables|ip6tables]: the active entries", NEEDS_DB,
        "--json --format="},
    {"blocklist", "sync-nginx", P_SECURITY_BLOCKLIST, cmd_blocklist_sync_nginx,
        "write opsd-blocklist.conf beside OPSD_NGINX_CONF, nginx -t, reload nginx", NEEDS_DB, ""},
    {"ratelimit", "show", P_SECURITY_READ, cmd_ratelimit_show,
        "[--json | --nginx-conf]: the rate limits of opsd and nginx in force, with their source "
        "(--nginx-conf: nginx's limits include for them)",
        NEEDS_DB, "--json --nginx-conf"},
    {"ratelimit", "set", P_SECURITY_RATE_LIMITS, cmd_ratelimit_set,
        "[--user-per-min N] [--token-per-min N] [--ip-per-min N] [--burst N] [--nginx-api-rate R] "
        "[--nginx-api-burst N] [--nginx-login-rate R] [--nginx-login-burst N] "
        "[--nginx-conn-limit N] --reason R [--json]: set limits at run time (env: back to the "
        "configuration's)",
        NEEDS_DB,
        "--user-per-min= --token-per-min= --ip-per-min= --burst= --nginx-api-rate= "
        "--nginx-api-burst= --nginx-login-rate= --nginx-login-burst= --nginx-conn-limit= "
        "--reason= --json"},
    {"routes", "", P_NONE, cmd_routes,
        "[--all]: print the route table as JSON (--all: with the test stacks' routes)",
        NEEDS_NOTHING, "--all"},
    {"roles", "", P_NONE, cmd_roles, "print the role → permission table as JSON", NEEDS_NOTHING,
        ""},
    {"openapi", "", P_NONE, cmd_openapi, "print the API document (OpenAPI 3.1) as JSON",
        NEEDS_NOTHING, ""},
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
	           "Each command needs the permission of its API route; the principal is\n"
	           "cli:<user>, with the roles OPSD_CLI_ROLES gives that OS user (unset: root is\n"
	           "superadmin, nobody else has a role).\n"
	           "Exit status: 0 ok, 1 failed or not current, 2 usage or configuration error,\n"
	           "3 permission missing.\n");
}

/* Warnings are about running opsd (test mode, a missing session secret);
 * opsctl reports only what stops it. */
static void report_config(bool is_error, const char *line, void *ctx)
{
	(void)ctx;
	if (is_error)
		fprintf(stderr, "opsctl: %s\n", line);
}

/* The number of words of sub ("outbox list": 2) that argv holds from
 * argv[0] on, or 0 when they differ. */
static int sub_matches(const char *sub, int argc, char **argv)
{
	int words = 0;

	for (const char *p = sub; *p; words++) {
		size_t n = strcspn(p, " ");

		if (words >= argc || strlen(argv[words]) != n || strncmp(argv[words], p, n) != 0)
			return 0;
		p += n + (p[n] == ' ');
	}
	return words;
}

/* Matches "<name> <sub...> [options]" (or "<name> [options]" when sub is
 * ""); *first gets the index of the first option. */
static const struct command *find_command(int argc, char **argv, int *first)
{
	for (size_t i = 0; i < countof(commands); i++) {
		const struct command *c = &commands[i];
		int words;

		if (argc < 2 || strcmp(argv[1], c->name) != 0)
			continue;
		if (!c->sub[0]) {
			*first = 2;
			return c;
		}
		if ((words = sub_matches(c->sub, argc - 2, argv + 2)) > 0) {
			*first = 2 + words;
			return c;
		}
	}
	return NULL;
}

static void set_actor(struct opsctl *o)
{
	struct passwd *pw = getpwuid(geteuid());

	snprintf(o->user, sizeof(o->user), "%s", pw ? pw->pw_name : "");
	snprintf(o->label, sizeof(o->label), "cli:%s", pw ? pw->pw_name : "unknown");
	o->actor.label = o->label;
}

/* The principal cli:<user> gets the roles OPSD_CLI_ROLES gives its OS user
 * and needs the command's permission, as a caller of its API route would.
 * The check runs before the database is opened: a refusal writes nothing. */
static int authorize(struct opsctl *o, const struct command *cmd)
{
	roleset roles;
	const char *bad;

	if (!cli_roles_of(o->cfg.cli_roles, o->user[0] ? o->user : NULL, &roles, &bad)) {
		fprintf(stderr,
		    "opsctl: OPSD_CLI_ROLES: unknown role \"%s\" (opsctl roles lists them)\n", bad);
		return EXIT_USAGE;
	}
	o->roles = roles;
	o->perms = role_perms(roles);
	if (cmd->perm == P_NONE || perms_have(o->perms, cmd->perm))
		return EXIT_OK;
	fprintf(stderr, "opsctl: %s lacks %s\n", o->label, perm_name(cmd->perm));
	return EXIT_DENIED;
}

int main(int argc, char **argv)
{
	struct opsctl o = {0};
	const struct command *cmd;
	int first = 0;
	struct db_uri uri;
	char err[1024];
	int rc = EXIT_USAGE;

	/* It reads the database's password and the data keys: no core file of them
	 * (README "Hardening"). */
	if (!process_forbid_core_dumps())
		fprintf(stderr, "opsctl: warning: cannot turn off core dumps\n");
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
	if (cmd->needs == NEEDS_NOTHING)
		return cmd->fn(&o);
	if (config_load(&o.cfg, report_config, NULL) > 0)
		goto out;
	if ((rc = authorize(&o, cmd)) != EXIT_OK || cmd->needs == NEEDS_CONFIG) {
		rc = rc == EXIT_OK ? cmd->fn(&o) : rc;
		goto out;
	}
	rc = EXIT_USAGE;
	if (!o.cfg.db_uri || !o.cfg.db_uri[0]) {
		fprintf(stderr, "opsctl: OPSD_DB_URI is not set\n");
		goto out;
	}
	if (!db_uri_parse(o.cfg.db_uri, &uri, err, sizeof(err))) {
		fprintf(stderr, "opsctl: OPSD_DB_URI: %s\n", err);
		goto out;
	}
	explicit_bzero(uri.pass, sizeof(uri.pass));
	if (!(o.db = db_open_rotating(o.cfg.db_uri, o.cfg.db_uri_previous, err, sizeof(err)))) {
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
