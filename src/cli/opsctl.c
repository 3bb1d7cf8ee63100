/* opsctl: the operator's command line over the core library. Human text on
 * stdout, one clear line per error on stderr. Exit codes: 0 ok, 1 the
 * operation failed or the state is not what was asked, 2 usage or config. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "api/errors.h"
#include "api/routes.h"
#include "lib/arena.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/authz.h"
#include "core/blocklist.h"
#include "lib/buf.h"
#include "infra/config.h"
#include "lib/crypto.h"
#include "infra/db.h"
#include "lib/json.h"
#include "core/legal.h"
#include "core/mail.h"
#include "migration/migration.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "infra/schema.h"
#include "infra/smtp.h"
#include "core/users.h"
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

/* ---- blocklist (runbook 4 step 2) -------------------------------------- */

/* The operator's own address when logged in over SSH: blocking it would
 * cut the session that is typing (SSH_CONNECTION "client port server port"). */
static bool ssh_client_addr(char *out, size_t out_len)
{
	const char *s = getenv("SSH_CONNECTION");
	size_t n;

	if (!s || !*s)
		s = getenv("SSH_CLIENT");
	if (!s || !*s)
		return false;
	n = strcspn(s, " ");
	if (n == 0 || n >= out_len)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static int cmd_blocklist_add(struct opsctl *o)
{
	const char *cidr_s = opt_value(o, "--cidr"), *reason = opt_value(o, "--reason");
	const char *at = opt_value(o, "--expires-at");
	struct cidr c;
	enum cidr_err e;
	int64_t expires_ms = 0;
	char norm[CIDR_STR_LEN], id[UUID_STR_LEN + 1], self[64];
	uint8_t addr[16];

	if (!cidr_s)
		return need_opt("--cidr");
	if (!reason)
		return need_opt("--reason");
	if ((e = cidr_parse(cidr_s, &c)) != CIDR_OK) {
		cidr_format(&c, norm);
		fprintf(stderr, "opsctl: --cidr \"%s\": %s%s%s\n", cidr_s, cidr_err_text(e),
		    e == CIDR_HOST_BITS ? "; the network is " : "",
		    e == CIDR_HOST_BITS ? norm : "");
		return EXIT_USAGE;
	}
	if (reason[strspn(reason, " \t\r\n")] == '\0' || strlen(reason) > 500) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	if (at && (!parse_rfc3339(at, &expires_ms) || expires_ms <= now_ms())) {
		fprintf(stderr, "opsctl: --expires-at must be an RFC 3339 time in the future\n");
		return EXIT_USAGE;
	}
	if (!opt_flag(o, "--force") && ssh_client_addr(self, sizeof(self)) &&
	    addr_parse16(self, addr) && cidr_contains(&c, addr)) {
		fprintf(stderr,
		    "opsctl: %s contains your own address %s (SSH_CONNECTION); add --force "
		    "to block it anyway\n",
		    cidr_s, self);
		return EXIT_USAGE;
	}
	cidr_format(&c, norm);
	switch (blocklist_add(o->db, &o->actor, &c, reason, expires_ms, id)) {
	case BL_OK:
		break;
	case BL_DUPLICATE:
		fprintf(stderr, "opsctl: %s is already blocked (opsctl blocklist list)\n", norm);
		return EXIT_FAILED;
	default:
		fprintf(stderr, "opsctl: add failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	printf("blocked %s (id %s)%s%s\n", norm, id, at ? " until " : "", at ? at : "");
	printf("opsd enforces it within a second; run `opsctl blocklist sync-nginx` for nginx\n");
	return EXIT_OK;
}

static int cmd_blocklist_remove(struct opsctl *o)
{
	const char *id_s = opt_value(o, "--id");
	struct opsd_uuid id;

	if (!id_s)
		return need_opt("--id");
	if (!uuid_parse(id_s, &id)) {
		fprintf(stderr, "opsctl: --id \"%s\" is not an id (opsctl blocklist list)\n", id_s);
		return EXIT_USAGE;
	}
	switch (blocklist_remove(o->db, &o->actor, &id)) {
	case BL_OK:
		printf("removed %s\n", id_s);
		printf(
		    "opsd stops enforcing it within a second; run `opsctl blocklist sync-nginx` for "
		    "nginx\n");
		return EXIT_OK;
	case BL_NOT_FOUND:
		fprintf(stderr, "opsctl: no blocklist entry %s\n", id_s);
		return EXIT_FAILED;
	default:
		fprintf(stderr, "opsctl: remove failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
}

/* The active entries as rows of BLOCKLIST_COLUMNS; NULL after a message. */
static struct arena *blocklist_rows(struct opsctl *o, struct db_rows *rows)
{
	struct arena *a = arena_new(64 * 1024);

	if (!a || blocklist_list_active(o->db, a, rows) != 0) {
		fprintf(stderr, "opsctl: cannot read the blocklist: %s\n",
		    a ? db_error(o->db) : "out of memory");
		arena_free(a);
		return NULL;
	}
	return a;
}

static int cmd_blocklist_list(struct opsctl *o)
{
	struct db_rows rows;
	struct arena *a = blocklist_rows(o, &rows);

	if (!a)
		return EXIT_FAILED;
	if (opt_flag(o, "--json")) {
		struct json_object *arr = json_object_new_array();

		for (size_t i = 0; i < rows.nrows; i++)
			json_object_array_add(arr, blocklist_row_json(&rows, i));
		print_json(arr);
		json_object_put(arr);
	} else {
		printf("%-36s  %-43s  %-24s  %s\n", "ID", "CIDR", "EXPIRES", "REASON");
		for (size_t i = 0; i < rows.nrows; i++) {
			struct json_object *e = blocklist_row_json(&rows, i);
			const char *exp = doc_str(e, "expiresAt");

			printf("%-36s  %-43s  %-24s  %s\n", doc_str(e, "id"), doc_str(e, "cidr"),
			    exp ? exp : "never", doc_str(e, "reason"));
			json_object_put(e);
		}
		printf("%zu active entr%s\n", rows.nrows, rows.nrows == 1 ? "y" : "ies");
	}
	arena_free(a);
	return EXIT_OK;
}

/* path's contents, or NULL when it does not exist (*missing) or on error. */
static char *slurp(const char *path, size_t *len, bool *missing)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	*missing = !f && errno == ENOENT;
	if (!f)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f) || buf_failed(&b)) {
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	*len = b.len;
	buf_cstr(&b);
	return b.data ? b.data : strdup("");
}

/* Writes path through a temporary file in the same directory and rename(2),
 * so nginx never reads half a file. 0 or -1 (errno set). */
static int write_atomically(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, saved;
	size_t off = 0;

	if (snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
	        slash ? slash + 1 : path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/* Runs nginx with argv (argv[0] "nginx", looked up in PATH, then
 * /usr/sbin); its exit status, or -1 when it could not run. */
static int run_nginx(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp("nginx", argv);
		execv("/usr/sbin/nginx", argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void skipped_entry(const char *id, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsctl: skipped entry %s: not a valid CIDR\n", id);
}

/* Runbook 4: the same list in nginx, so blocked clients stop at the edge.
 * nginx does not know about expiry: an expired entry leaves its file at the
 * next sync (opsd stops enforcing it at once; run this from cron, or after
 * each change). */
static int cmd_blocklist_sync_nginx(struct opsctl *o)
{
	const char *var = o->cfg.var_dir;
	char path[PATH_MAX], conf[PATH_MAX], prefix[PATH_MAX], pidfile[PATH_MAX], now[32];
	struct buf b;
	char *old = NULL, *pid_s;
	size_t old_len = 0, pid_len = 0, lines = 0;
	bool missing = false, pid_missing = false;
	long pid;
	int rc = EXIT_FAILED, t;

	if (!var || !*var) {
		fprintf(stderr, "opsctl: OPSD_VAR is not set\n");
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/nginx/opsd-blocklist.conf", var);
	snprintf(conf, sizeof(conf), "%s/nginx/nginx.conf", var);
	snprintf(prefix, sizeof(prefix), "%s/nginx/", var);
	snprintf(pidfile, sizeof(pidfile), "%s/run/nginx.pid", var);
	if (access(conf, R_OK) != 0) {
		fprintf(stderr,
		    "opsctl: %s: %s (render it with script/render-nginx or script/server)\n", conf,
		    strerror(errno));
		return EXIT_FAILED;
	}
	format_rfc3339(now_ms(), now);
	buf_init(&b);
	if (blocklist_render_nginx(o->db, now, &b, &lines, skipped_entry, NULL) != 0) {
		fprintf(stderr, "opsctl: cannot read the blocklist: %s\n", db_error(o->db));
		goto out;
	}
	if (buf_failed(&b)) {
		fprintf(stderr, "opsctl: out of memory\n");
		goto out;
	}
	old = slurp(path, &old_len, &missing);
	if (!old && !missing) {
		fprintf(stderr, "opsctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (write_atomically(path, b.data, b.len) != 0) {
		fprintf(stderr, "opsctl: cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	t = run_nginx((char *const[]){"nginx", "-t", "-q", "-c", conf, "-p", prefix, NULL});
	if (t != 0) {
		/* Put back what nginx was running with. */
		if (missing ? unlink(path) : write_atomically(path, old, old_len))
			fprintf(stderr, "opsctl: could not restore %s: %s\n", path,
			    strerror(errno));
		fprintf(stderr, "opsctl: nginx -t failed (%s %d); the previous %s is back\n",
		    t < 0 ? "could not run," : "exit", t, path);
		goto out;
	}
	printf("wrote %s: %zu entr%s; nginx -t ok\n", path, lines, lines == 1 ? "y" : "ies");
	pid_s = slurp(pidfile, &pid_len, &pid_missing);
	pid = pid_s ? strtol(pid_s, NULL, 10) : 0;
	free(pid_s);
	if (pid <= 1 || kill((pid_t)pid, 0) != 0) {
		printf("nginx is not running (%s): it reads the file when it starts\n", pidfile);
		rc = EXIT_OK;
		goto out;
	}
	if (kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "opsctl: cannot reload nginx (pid %ld): %s\n", pid,
		    strerror(errno));
		goto out;
	}
	printf("reloaded nginx (SIGHUP to pid %ld)\n", pid);
	rc = EXIT_OK;
out:
	free(old);
	buf_free(&b);
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
		    routes[i].perm != P_NONE ? json_object_new_string(perm_name(routes[i].perm))
		                             : NULL);
		json_object_object_add(r, "public",
		    json_object_new_boolean(!!(routes[i].flags & RF_PUBLIC)));
		json_object_object_add(r, "testOnly",
		    json_object_new_boolean(!!(routes[i].flags & RF_TEST_ONLY)));
		json_object_object_add(r, "loopback",
		    json_object_new_boolean(!!(routes[i].flags & RF_LOOPBACK)));
		json_object_object_add(r, "legalExempt",
		    json_object_new_boolean(!!(routes[i].flags & RF_LEGAL_EXEMPT)));
		json_object_object_add(r, "csrf",
		    json_object_new_boolean(
		        !(routes[i].flags & RF_PUBLIC) && strcmp(routes[i].method, "GET") != 0));
		json_object_array_add(a, r);
	}
	printf("%s\n", json_object_to_json_string_ext(a,
	                   JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
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
				json_object_array_add(a,
				    json_object_new_string(perm_name((enum perm)i)));
		json_object_object_add(m, role_name((enum role)r), a);
	}
	printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY));
	json_object_put(m);
	return EXIT_OK;
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
