/* opsctl: the operator's command line over the core library. Human text on
 * stdout, one clear line per error on stderr. Exit codes: 0 ok, 1 the
 * operation failed or the state is not what was asked, 2 usage or config. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "api/routes.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/authz.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/db.h"
#include "core/json.h"
#include "core/legal.h"
#include "core/mail.h"
#include "core/schema.h"
#include "core/smtp.h"
#include "core/users.h"
#include "core/util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

struct opsctl {
	struct opsd_config cfg;
	struct db *db;
	int argc; /* options after "<command> <subcommand>" */
	char **argv;
	struct audit_actor actor; /* "cli:<user>" in audit events */
	char label[80];
};

struct command {
	const char *name;
	const char *sub;
	int (*fn)(struct opsctl *o);
	const char *usage;
	bool needs_db;
	/* the options it takes, space-separated; "--name=" takes a value */
	const char *opts;
};

/* --name value and --flag options; NULL / false when absent. */
static const char *opt_value(const struct opsctl *o, const char *name)
{
	for (int i = 0; i + 1 < o->argc; i++)
		if (strcmp(o->argv[i], name) == 0)
			return o->argv[i + 1];
	return NULL;
}

static bool opt_flag(const struct opsctl *o, const char *name)
{
	for (int i = 0; i < o->argc; i++)
		if (strcmp(o->argv[i], name) == 0)
			return true;
	return false;
}

/* A password from standard input (one line), never from the command line
 * where ps would show it. */
static bool read_password(char *out, size_t out_len)
{
	size_t n;

	if (!fgets(out, (int)out_len, stdin))
		return false;
	n = strcspn(out, "\r\n");
	if (out[n] == '\0' && n == out_len - 1)
		return false; /* longer than the buffer */
	out[n] = '\0';
	return true;
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

static int need_opt(const char *name)
{
	fprintf(stderr, "opsctl: %s is required\n", name);
	return EXIT_USAGE;
}

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

static int user_create_with(struct opsctl *o, const char *email, const char *roles_csv,
    const char *password)
{
	struct user_input in = {0};
	const char *bad;
	char id[UUID_STR_LEN + 1];
	enum user_err e;

	if (!roles_parse_csv(roles_csv, &in.roles, &bad)) {
		fprintf(stderr, "opsctl: unknown role \"%s\"\n", bad);
		return EXIT_USAGE;
	}
	in.email = email;
	in.name = opt_value(o, "--name");
	in.org_id = opt_value(o, "--org");
	in.service = opt_flag(o, "--service");
	in.password = password;
	e = user_create(o->db, &o->cfg, &in, &o->actor, id);
	if (e != USER_OK) {
		fprintf(stderr, "opsctl: %s\n", user_err_message(e));
		return e == USER_DB_ERROR ? EXIT_FAILED : EXIT_USAGE;
	}
	printf("%s\n", id);
	return EXIT_OK;
}

static int cmd_user_create(struct opsctl *o)
{
	const char *email = opt_value(o, "--email"), *roles = opt_value(o, "--role");
	char pw[PASSWORD_MAX_LEN + 2];

	if (!email)
		return need_opt("--email");
	if (!roles)
		return need_opt("--role");
	if (opt_flag(o, "--password-stdin") && !read_password(pw, sizeof(pw))) {
		fprintf(stderr, "opsctl: no password on standard input\n");
		return EXIT_USAGE;
	}
	return user_create_with(o, email, roles, opt_flag(o, "--password-stdin") ? pw : NULL);
}

static int cmd_user_set_password(struct opsctl *o)
{
	const char *email = opt_value(o, "--email");
	char pw[PASSWORD_MAX_LEN + 2], id[UUID_STR_LEN + 1];
	enum user_err e;

	if (!email)
		return need_opt("--email");
	if (!read_password(pw, sizeof(pw))) {
		fprintf(stderr, "opsctl: no password on standard input\n");
		return EXIT_USAGE;
	}
	e = user_find_by_email(o->db, email, id);
	if (e == USER_OK)
		e = user_set_password(o->db, &o->cfg, id, pw, &o->actor);
	if (e != USER_OK) {
		fprintf(stderr, "opsctl: %s\n", user_err_message(e));
		return EXIT_FAILED;
	}
	printf("password set for %s\n", id);
	return EXIT_OK;
}

/* script/server's first superadmin: created once, left alone afterwards. */
static int cmd_user_ensure_admin(struct opsctl *o)
{
	const char *email = opt_value(o, "--email");
	char pw[PASSWORD_MAX_LEN + 2], id[UUID_STR_LEN + 1];
	enum user_err e;

	if (!email)
		return need_opt("--email");
	e = user_find_by_email(o->db, email, id);
	if (e == USER_OK) {
		printf("exists %s\n", id);
		return EXIT_OK;
	}
	if (e != USER_NOT_FOUND) {
		fprintf(stderr, "opsctl: %s\n", user_err_message(e));
		return EXIT_FAILED;
	}
	if (!read_password(pw, sizeof(pw))) {
		fprintf(stderr, "opsctl: no password on standard input\n");
		return EXIT_USAGE;
	}
	printf("created ");
	return user_create_with(o, email, "superadmin", pw);
}

static int cmd_sessions_flush(struct opsctl *o)
{
	const char *user = opt_value(o, "--user"), *org = opt_value(o, "--org");
	enum flush_scope scope = user ? FLUSH_USER : org ? FLUSH_ORG : FLUSH_ALL;
	unsigned long long n = 0;

	if (!opt_flag(o, "--all") && !user && !org) {
		fprintf(stderr, "opsctl: say what to flush: --all, --user ID or --org ID\n");
		return EXIT_USAGE;
	}
	if (sessions_flush_audited(o->db, &o->actor, scope, user ? user : org, &n) != 0) {
		fprintf(stderr, "opsctl: flush failed: %s\n",
		    scope != FLUSH_ALL ? "malformed id or database error" : db_error(o->db));
		return EXIT_FAILED;
	}
	printf("flushed %llu sessions (%s)\n", n, flush_scope_name(scope));
	return EXIT_OK;
}

static int cmd_audit_verify(struct opsctl *o)
{
	struct audit_verify_result res;
	uint8_t key[32];
	char key_id[AUDIT_KEY_ID_LEN + 1];
	bool have_key = audit_anchor_key(&o->cfg, key, key_id);
	int rc = audit_verify(o->db, have_key ? key : NULL, &res);

	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0) {
		fprintf(stderr, "opsctl: verify failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	if (!res.ok && !res.first_broken_id[0]) {
		printf("broken: %s (from seq %lld)\n", res.reason, (long long)res.first_broken_seq);
		printf("%llu events before it verified\n", (unsigned long long)res.checked);
		return EXIT_FAILED;
	}
	if (!res.ok) {
		printf("broken: first bad event %s (seq %lld)\n", res.first_broken_id,
		    (long long)res.first_broken_seq);
		printf("reason: %s\n", res.reason);
		printf("%llu events before it verified\n", (unsigned long long)res.checked);
		return EXIT_FAILED;
	}
	printf("ok: %llu events checked\n", (unsigned long long)res.checked);
	return EXIT_OK;
}

/* Retention by hand: what the job does, to the end of the backlog, or
 * only a report with --dry-run. --days overrides OPSD_AUDIT_RETENTION_DAYS
 * for this run (0: everything before now), e.g. after a shorter retention
 * was agreed; held subjects are kept whatever it says. */
static int cmd_audit_purge(struct opsctl *o)
{
	struct audit_purge_result res;
	const char *days_s = opt_value(o, "--days");
	bool dry = opt_flag(o, "--dry-run");
	long long days = o->cfg.audit_retention_days;
	uint8_t key[32];
	char key_id[AUDIT_KEY_ID_LEN + 1];
	bool have_key = audit_anchor_key(&o->cfg, key, key_id);
	int rc;

	if (days_s && !parse_ll_range(days_s, 0, 36500, &days)) {
		fprintf(stderr, "opsctl: --days must be a whole number of days (0..36500)\n");
		return EXIT_USAGE;
	}
	if (!dry && !have_key) {
		fprintf(stderr, "opsctl: OPSD_DATA_KEY is unset: anchors cannot be signed, nothing "
				"deleted\n");
		return EXIT_FAILED;
	}
	rc = audit_purge(o->db, &o->actor, have_key ? key : NULL, now_ms() - days * 86400000LL, dry,
	    0, &res);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0) {
		fprintf(stderr, "opsctl: purge failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	printf("%s %llu events older than %s (%lld days); %llu kept under legal hold; %llu anchors"
	       "%s\n",
	    dry ? "would delete" : "deleted", (unsigned long long)res.deleted, res.cutoff, days,
	    (unsigned long long)res.kept_held, (unsigned long long)res.anchors,
	    dry ? " (dry run: nothing changed)" : "");
	if (res.refused_at) {
		printf("stopped: audit event seq %lld does not verify; retention never deletes it "
		       "(see opsctl audit verify)\n",
		    (long long)res.refused_at);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* Runbook 5 step 1: the whole path now (connect, STARTTLS, AUTH, send),
 * with the step that failed, outside the outbox. */
static int cmd_email_test(struct opsctl *o)
{
	const char *to = opt_value(o, "--to");
	struct smtp_settings s;
	struct smtp_message m;
	struct smtp_result res;
	char addr[256], msgid[128], body[256];
	struct opsd_uuid id;

	if (!to)
		return need_opt("--to");
	if (!email_normalize(to, addr, sizeof(addr))) {
		fprintf(stderr, "opsctl: \"%s\" is not an email address\n", to);
		return EXIT_USAGE;
	}
	if (!mail_may_send_to(&o->cfg, addr)) {
		printf("suppressed: %s is not in TEST_EMAIL_ALLOWLIST (test mode)\n", addr);
		return EXIT_FAILED;
	}
	mail_smtp_settings(&o->cfg, &s);
	if (!s.server) {
		printf("failed at config: SMTP_SERVER is not set\n");
		return EXIT_FAILED;
	}
	uuid7_new(&id);
	uuid_format(&id, msgid);
	snprintf(msgid + UUID_STR_LEN, sizeof(msgid) - UUID_STR_LEN, "%s",
	    s.from && strrchr(s.from, '@') ? strrchr(s.from, '@') : "@opsd.invalid");
	snprintf(body, sizeof(body), "This is a test message sent by %s with opsctl email test.\n",
	    o->label);
	m = (struct smtp_message){msgid, addr, "opsd test message (opsctl)", body, now_ms()};
	smtp_send(&s, &m, &res);
	if (res.outcome != SMTP_SENT) {
		printf("failed at %s: %s\n", res.step, res.error);
		return EXIT_FAILED;
	}
	printf("sent: %s via %s:%d (%s, %s)\n", addr, s.server, s.port,
	    s.starttls ? "starttls" : "no tls", s.user ? "auth" : "no auth");
	return EXIT_OK;
}

/* Runbook 1 step 1 from the command line, through legal_publish. */
static int cmd_legal_publish(struct opsctl *o)
{
	const char *type = opt_value(o, "--type"), *version = opt_value(o, "--version");
	const char *file = opt_value(o, "--file"), *at = opt_value(o, "--effective-at");
	char id[UUID_STR_LEN + 1], when[32];
	int64_t ms = 0;
	enum legal_err e;
	char *content = NULL;
	size_t len = 0;
	FILE *f;
	int rc = EXIT_USAGE;

	if (!type || !version || !file)
		return need_opt(!type ? "--type" : !version ? "--version" : "--file");
	if (!legal_type_valid(type) || !legal_version_valid(version)) {
		fprintf(stderr, "opsctl: malformed %s\n", legal_type_valid(type) ? "--version" : "--type");
		return EXIT_USAGE;
	}
	if (at && (!parse_rfc3339(at, &ms) || ms < now_ms() - 60000)) {
		fprintf(stderr, "opsctl: --effective-at must be an RFC 3339 time, now or later\n");
		return EXIT_USAGE;
	}
	if (!(f = fopen(file, "rb"))) {
		fprintf(stderr, "opsctl: %s: cannot read\n", file);
		return EXIT_USAGE;
	}
	content = malloc(LEGAL_CONTENT_MAX + 2);
	if (content)
		len = fread(content, 1, LEGAL_CONTENT_MAX + 1, f);
	fclose(f);
	if (!content || len == 0 || len > LEGAL_CONTENT_MAX || memchr(content, '\0', len)) {
		fprintf(stderr, "opsctl: %s: must hold 1 byte to 1 MiB of text\n", file);
		goto out;
	}
	content[len] = '\0';
	if (!utf8_valid(content, len)) {
		fprintf(stderr, "opsctl: %s: not UTF-8\n", file);
		goto out;
	}
	e = legal_publish(o->db, &o->actor, type, version, content, ms, opt_flag(o, "--notify"), id);
	if (e == LEGAL_DUPLICATE) {
		fprintf(stderr, "opsctl: duplicate version: %s %s already exists\n", type, version);
		rc = EXIT_FAILED;
		goto out;
	}
	if (e != LEGAL_OK) {
		fprintf(stderr, "opsctl: publish failed: %s\n", db_error(o->db));
		rc = EXIT_FAILED;
		goto out;
	}
	format_rfc3339(ms ? ms : now_ms(), when);
	if (ms > now_ms())
		printf("published %s %s (scheduled for %s)\n", type, version, when);
	else
		printf("published %s %s (current)\n", type, version);
	rc = EXIT_OK;
out:
	free(content);
	return rc;
}

/* The route table as JSON: the authorization test is generated from it. */
static int cmd_routes(struct opsctl *o)
{
	struct json_object *a = json_object_new_array();

	(void)o;
	for (size_t i = 0; i < nroutes; i++) {
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "method", json_object_new_string(routes[i].method));
		json_object_object_add(r, "pattern", json_object_new_string(routes[i].pattern));
		json_object_object_add(r, "permission",
		    routes[i].perm ? json_object_new_string(routes[i].perm) : NULL);
		json_object_object_add(r, "public",
		    json_object_new_boolean(!!(routes[i].flags & RF_PUBLIC)));
		json_object_object_add(r, "testOnly",
		    json_object_new_boolean(!!(routes[i].flags & RF_TEST_ONLY)));
		json_object_object_add(r, "loopback",
		    json_object_new_boolean(!!(routes[i].flags & RF_LOOPBACK)));
		json_object_object_add(r, "legalExempt",
		    json_object_new_boolean(!!(routes[i].flags & RF_LEGAL_EXEMPT)));
		json_object_object_add(r, "csrf", json_object_new_boolean(
		    !(routes[i].flags & RF_PUBLIC) && strcmp(routes[i].method, "GET") != 0));
		json_object_array_add(a, r);
	}
	printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
	return EXIT_OK;
}

static int cmd_roles(struct opsctl *o)
{
	struct json_object *m = json_object_new_object();

	(void)o;
	for (int r = 0; r < ROLE__MAX; r++) {
		struct json_object *a = json_object_new_array();
		permset p = role_perms(1u << r);

		for (int i = 0; i < PERM__MAX; i++)
			if (perms_have(p, (enum perm)i))
				json_object_array_add(a, json_object_new_string(perm_name((enum perm)i)));
		json_object_object_add(m, role_name((enum role)r), a);
	}
	printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY));
	json_object_put(m);
	return EXIT_OK;
}

static const struct command commands[] = {
	{"db", "migrate", cmd_db_migrate, "apply pending schema files (control, then tenant)", true,
	    ""},
	{"db", "status", cmd_db_status, "list schema files: applied, pending, MODIFIED, missing",
	    true, ""},
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
	{"routes", "", cmd_routes, "print the route table as JSON", false, ""},
	{"roles", "", cmd_roles, "print the role → permission table as JSON", false, ""},
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
