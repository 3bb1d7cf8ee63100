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

/* ---- migration (runbook 3) ------------------------------------------- */

/* The option of each body field the core may name in a refusal. */
static const struct {
	const char *field;
	const char *option;
} mig_options[] = {
    {"direction", "--direction"},
    {"chunkSize", "--chunk-size"},
    {"targetUri", "--target-uri-env"},
    {"dbName", "--db-name"},
    {"reason", "--reason"},
};

static const char *const mig_directions[] = {"shared_to_dedicated", "dedicated_to_shared"};

/* The core's refusal on one line. A refusal the API answers with a 4xx
 * (bad input, a conflict, nothing to act on) exits 2 like a usage error;
 * database trouble exits 1. */
static int mig_fail(struct opsctl *o, enum mig_err e, const char *detail)
{
	const struct err_info *info = &mig_errors[e];
	const char *what = api_errors[info->error].code;
	bool has_detail = detail && *detail;

	if (info->field && info->error == E_VALIDATION_FAILED)
		for (size_t i = 0; i < countof(mig_options); i++)
			if (strcmp(info->field, mig_options[i].field) == 0)
				what = mig_options[i].option;
	fprintf(stderr, "opsctl: %s: %s%s%s%s\n", what, info->message, has_detail ? " (" : "",
	    has_detail ? detail : "", has_detail ? ")" : "");
	if (e == MIG_E_DB)
		fprintf(stderr, "opsctl: %s\n", db_error(o->db));
	return api_errors[info->error].status >= 500 ? EXIT_FAILED : EXIT_USAGE;
}

/* --org as a lower-case UUID, or a usage error. */
static bool mig_org(const struct opsctl *o, char out[UUID_STR_LEN + 1])
{
	const char *s = opt_value(o, "--org");
	struct opsd_uuid u;

	if (!s) {
		need_opt("--org");
		return false;
	}
	if (!uuid_parse(s, &u)) {
		fprintf(stderr, "opsctl: --org must be a UUID\n");
		return false;
	}
	uuid_format(&u, out);
	return true;
}

/* Getters of the status document that tolerate absent or null members
 * (doc_str is in util.c). */
static double doc_num(struct json_object *o, const char *k, double dflt)
{
	struct json_object *v = json_object_object_get(o, k);

	if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
		return json_object_get_double(v);
	return dflt;
}

static bool doc_bool(struct json_object *o, const char *k)
{
	return json_object_get_boolean(json_object_object_get(o, k));
}

/* The org's status document into a new arena (both NULL on a refusal). */
static struct json_object *mig_doc(struct opsctl *o, const char *org, struct arena **a,
    enum mig_err *e)
{
	struct json_object *doc;

	*e = MIG_E_DB;
	if (!(*a = arena_new(64 * 1024)))
		return NULL;
	if (!(doc = mig_status_json(o->db, *a, org, e))) {
		arena_free(*a);
		*a = NULL;
	}
	return doc;
}

static void doc_free(struct json_object *doc, struct arena *a)
{
	json_object_put(doc);
	arena_free(a);
}

static void progress_of(struct json_object *doc, struct progress *p)
{
	p->percent = doc_num(doc, "percent", 0);
	p->rows_per_sec = doc_num(doc, "rowsPerSecond", -1);
	p->eta_sec = (long long)doc_num(doc, "etaSeconds", -1);
	p->status = doc_str(doc, "status");
	p->throttled = doc_bool(doc, "throttled");
}

/* "ok", "mismatches in contacts, offices" or "not yet" from the
 * verification report {ok, final, tables: [{table, match}]}. */
static void print_verification(struct json_object *v)
{
	struct json_object *tables = json_object_object_get(v, "tables");
	size_t n =
	    json_object_is_type(tables, json_type_array) ? json_object_array_length(tables) : 0;
	int bad = 0;

	if (!json_object_is_type(v, json_type_object)) {
		printf("verification: not yet\n");
		return;
	}
	if (doc_bool(v, "ok")) {
		printf("verification: ok%s\n", doc_bool(v, "final") ? " (final)" : "");
		return;
	}
	printf("verification: mismatches in");
	for (size_t i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(tables, i);

		if (!doc_bool(t, "match"))
			printf("%s %s", bad++ ? "," : "",
			    doc_str(t, "table") ? doc_str(t, "table") : "?");
	}
	printf("%s\n", bad ? "" : " (none named)");
}

static void print_mig_summary(struct json_object *doc)
{
	struct json_object *tables = json_object_object_get(doc, "tables");
	size_t ntables =
	    json_object_is_type(tables, json_type_array) ? json_object_array_length(tables) : 0;
	struct json_object *v;
	struct progress p;
	char rate[48] = "-", eta[32], copied[48], total[48];

	progress_of(doc, &p);
	if (p.rows_per_sec >= 0 && p.rows_per_sec < 1e15)
		progress_thousands(rate, sizeof(rate), (long long)(p.rows_per_sec + 0.5));
	progress_eta(eta, sizeof(eta), p.eta_sec);
	printf("id: %s\n", doc_str(doc, "id") ? doc_str(doc, "id") : "?");
	printf("status: %s\n", p.status ? p.status : "?");
	printf("direction: %s%s\n", doc_str(doc, "direction") ? doc_str(doc, "direction") : "?",
	    doc_bool(doc, "dryRun") ? " (dry run)" : "");
	if (doc_str(doc, "target"))
		printf("target: %s\n", doc_str(doc, "target"));
	if (doc_str(doc, "dbName"))
		printf("dbName: %s\n", doc_str(doc, "dbName"));
	for (size_t i = 0; i < ntables; i++) {
		struct json_object *t = json_object_array_get_idx(tables, i);

		progress_thousands(copied, sizeof(copied), (long long)doc_num(t, "rowsCopied", 0));
		progress_thousands(total, sizeof(total), (long long)doc_num(t, "rowsTotal", 0));
		printf("table %s: %s / %s rows%s\n",
		    doc_str(t, "table") ? doc_str(t, "table") : "?", copied, total,
		    doc_bool(t, "done") ? " (done)" : "");
	}
	progress_thousands(copied, sizeof(copied), (long long)doc_num(doc, "rowsCopied", 0));
	progress_thousands(total, sizeof(total), (long long)doc_num(doc, "rowsTotal", 0));
	printf("rows: %s / %s\n", copied, total);
	printf("percent: %.1f\n", p.percent);
	printf("rows/s: %s\n", rate);
	printf("eta: %s\n", eta);
	printf("throttled: %s%s%s\n", p.throttled ? "yes" : "no",
	    doc_str(doc, "throttleReason") ? " - " : "",
	    doc_str(doc, "throttleReason") ? doc_str(doc, "throttleReason") : "");
	print_verification(json_object_object_get(doc, "verification"));
	if ((v = json_object_object_get(doc, "freezeMs")) != NULL)
		printf("freezeMs: %lld\n", (long long)json_object_get_int64(v));
	if (doc_str(doc, "error"))
		printf("error: %s\n", doc_str(doc, "error"));
}

/* "status: <status>" of the org's latest migration, after a change. */
static void print_status_line(struct opsctl *o, const char *org)
{
	struct json_object *doc;
	struct arena *a;
	enum mig_err e;

	if ((doc = mig_doc(o, org, &a, &e)) != NULL) {
		printf("status: %s\n", doc_str(doc, "status") ? doc_str(doc, "status") : "?");
		doc_free(doc, a);
	}
}

static int cmd_migration_start(struct opsctl *o)
{
	const char *dir = opt_value(o, "--direction"), *chunk = opt_value(o, "--chunk-size");
	const char *var = opt_value(o, "--target-uri-env");
	struct mig_request m = {0};
	char org[UUID_STR_LEN + 1], id[UUID_STR_LEN + 1] = "", detail[512] = "";
	enum mig_err e;
	bool known = false;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (!dir)
		return need_opt("--direction");
	if (!opt_value(o, "--reason"))
		return need_opt("--reason");
	for (size_t i = 0; i < countof(mig_directions); i++)
		known |= strcmp(dir, mig_directions[i]) == 0;
	if (!known) {
		fprintf(stderr, "opsctl: --direction must be shared_to_dedicated or "
		                "dedicated_to_shared\n");
		return EXIT_USAGE;
	}
	if (chunk && !parse_ll_range(chunk, 1, MIG_CHUNK_MAX, &m.chunk_size)) {
		fprintf(stderr, "opsctl: --chunk-size: %s\n", mig_errors[MIG_E_CHUNK].message);
		return EXIT_USAGE;
	}
	/* The URI holds a password: it comes from the environment, never argv. */
	if (var && !(m.target_uri = getenv(var))) {
		fprintf(stderr, "opsctl: --target-uri-env: %s is not set\n", var);
		return EXIT_USAGE;
	}
	m.org_id = org;
	m.direction = dir;
	m.db_name = opt_value(o, "--db-name");
	m.dry_run = opt_flag(o, "--dry-run");
	m.override_legal_hold = opt_flag(o, "--override-legal-hold");
	m.reason = opt_value(o, "--reason");
	e = mig_start(o->db, &o->cfg, &o->actor, &m, id, detail, sizeof(detail));
	if (e != MIG_OK)
		return mig_fail(o, e, detail);
	printf("id: %s\n", id);
	print_status_line(o, org);
	return EXIT_OK;
}

static int cmd_migration_status(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1];
	struct json_object *doc;
	struct arena *a;
	enum mig_err e;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (!(doc = mig_doc(o, org, &a, &e)))
		return mig_fail(o, e, NULL);
	if (opt_flag(o, "--json"))
		print_json(doc);
	else
		print_mig_summary(doc);
	doc_free(doc, a);
	return EXIT_OK;
}

/* What watch does in each state: go on (-1) or exit with this status. */
static const int watch_exit[MIG__MAX] = {
    [MIG_PENDING] = -1,
    [MIG_COPYING] = -1,
    [MIG_CATCHING_UP] = -1,
    [MIG_VERIFYING] = -1,
    [MIG_READY] = EXIT_OK,
    [MIG_CUTTING_OVER] = -1,
    [MIG_COMPLETED] = EXIT_OK,
    [MIG_ABORTING] = -1,
    [MIG_ABORTED] = EXIT_OK,
    [MIG_FAILED] = EXIT_FAILED,
};

/* How long watch waits for MariaDB to come back before it gives up. */
#define WATCH_DB_GRACE_MS 120000
#define WATCH_BAR_WIDTH 30

static void sleep_ms(long long ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* One progress line: redrawn in place on a terminal, else printed when it
 * changes (logs and pipes get plain lines). */
static void watch_show(bool tty, const char *line, char *last, size_t last_len)
{
	if (tty)
		printf("\r\033[K%s", line);
	else if (strcmp(line, last) != 0)
		printf("%s\n", line);
	fflush(stdout);
	str_copy(last, line, last_len);
}

static int cmd_migration_watch(struct opsctl *o)
{
	const char *iv = opt_value(o, "--interval-ms");
	long long interval = 1000;
	int64_t down_since = 0;
	bool tty = isatty(STDOUT_FILENO);
	char org[UUID_STR_LEN + 1], line[256], last[256] = "";

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (iv && !parse_ll_range(iv, 50, 600000, &interval)) {
		fprintf(stderr,
		    "opsctl: --interval-ms must be a whole number of ms (50..600000)\n");
		return EXIT_USAGE;
	}
	for (;;) {
		struct json_object *doc = NULL;
		struct arena *a = NULL;
		struct progress p;
		enum mig_err e = MIG_E_DB;
		int st, rc;

		if (db_ensure(o->db) == 0)
			doc = mig_doc(o, org, &a, &e);
		if (!doc && e != MIG_E_DB) {
			if (tty && last[0])
				printf("\n");
			return mig_fail(o, e, NULL);
		}
		if (!doc) {
			if (!down_since)
				down_since = mono_ms();
			if (mono_ms() - down_since > WATCH_DB_GRACE_MS) {
				if (tty && last[0])
					printf("\n");
				return mig_fail(o, MIG_E_DB, NULL);
			}
			watch_show(tty, "database unavailable; reconnecting", last, sizeof(last));
			sleep_ms(interval);
			continue;
		}
		down_since = 0;
		progress_of(doc, &p);
		progress_line(line, sizeof(line), &p, WATCH_BAR_WIDTH);
		watch_show(tty, line, last, sizeof(last));
		st = p.status ? mig_status_from_name(p.status) : -1;
		rc = st >= 0 && st < MIG__MAX ? watch_exit[st] : -1;
		if (rc >= 0) {
			if (tty)
				printf("\n");
			if (rc != EXIT_OK && doc_str(doc, "error"))
				printf("error: %s\n", doc_str(doc, "error"));
			doc_free(doc, a);
			return rc;
		}
		doc_free(doc, a);
		sleep_ms(interval);
	}
}

static int cmd_migration_finalize(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1], detail[512] = "";
	enum mig_err e;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	e = mig_finalize(o->db, &o->cfg, &o->actor, org, detail, sizeof(detail));
	if (e != MIG_OK)
		return mig_fail(o, e, detail);
	print_status_line(o, org);
	return EXIT_OK;
}

static int cmd_migration_abort(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1];
	enum mig_err e;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (!opt_value(o, "--reason"))
		return need_opt("--reason");
	e = mig_abort(o->db, &o->cfg, &o->actor, org, opt_value(o, "--id"),
	    opt_value(o, "--reason"));
	if (e != MIG_OK)
		return mig_fail(o, e, NULL);
	print_status_line(o, org);
	return EXIT_OK;
}

static int cmd_migration_history(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1];
	struct json_object *doc;
	struct arena *a;
	enum mig_err e = MIG_E_DB;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (!(a = arena_new(64 * 1024)))
		return mig_fail(o, MIG_E_DB, "out of memory");
	if (!(doc = mig_history_json(o->db, a, org, &e))) {
		arena_free(a);
		return mig_fail(o, e, NULL);
	}
	print_json(doc);
	doc_free(doc, a);
	return EXIT_OK;
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
