/* opsctl migration start, status, watch, finalize, abort, history and
 * list: a tenant's move between the shared and a dedicated database
 * (README, runbook 3), through the same core as the /migration endpoints;
 * and tenant set-target, a dedicated org's new database credentials. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api/errors.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "migration/migration.h"

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

int cmd_migration_start(struct opsctl *o)
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
	for (size_t i = 0; mig_directions[i]; i++)
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

int cmd_migration_status(struct opsctl *o)
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

int cmd_migration_watch(struct opsctl *o)
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

/* How long finalize --dry-run waits for the engine's report. */
#define REHEARSAL_WAIT_MS 120000

/* The rehearsal's report: each step with its time, the verification, the
 * expected freeze; nothing was switched. */
static void print_rehearsal(struct json_object *rep)
{
	struct json_object *steps = json_object_object_get(rep, "steps");
	size_t n =
	    json_object_is_type(steps, json_type_array) ? json_object_array_length(steps) : 0;

	printf("rehearsal: %s\n", doc_bool(rep, "ok") ? "ok" : "not ok");
	printf("status: %s (nothing switched)\n",
	    doc_str(rep, "status") ? doc_str(rep, "status") : "?");
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);

		printf("step %s: %s, %.0f ms", doc_str(s, "step") ? doc_str(s, "step") : "?",
		    doc_bool(s, "ok") ? "ok" : "failed", doc_num(s, "ms", 0));
		if (json_object_object_get(s, "changesReplayed"))
			printf(", %.0f changes replayed", doc_num(s, "changesReplayed", 0));
		if (json_object_object_get(s, "chunks"))
			printf(", %.0f chunks, %.0f mismatched", doc_num(s, "chunks", 0),
			    doc_num(s, "chunksMismatched", 0));
		printf("\n");
	}
	print_verification(json_object_object_get(rep, "verification"));
	if (doc_num(rep, "expectedFreezeMs", -1) >= 0)
		printf("expectedFreezeMs: %.0f\n", doc_num(rep, "expectedFreezeMs", 0));
	if (doc_str(rep, "error"))
		printf("error: %s\n", doc_str(rep, "error"));
}

/* finalize --dry-run: the rehearsal requested, then its report (exit 1
 * when it is not ok). */
static int migration_rehearse(struct opsctl *o, const char *org)
{
	char id[UUID_STR_LEN + 1] = "", detail[512] = "";
	struct arena *a;
	struct json_object *rep;
	enum mig_err e = mig_rehearse(o->db, &o->cfg, &o->actor, org, opt_value(o, "--reason"), id,
	    detail, sizeof(detail));
	int rc;

	if (e != MIG_OK)
		return mig_fail(o, e, detail);
	if (!(a = arena_new(64 * 1024)))
		return mig_fail(o, MIG_E_DB, "out of memory");
	rep = mig_rehearsal_wait(o->db, a, id, REHEARSAL_WAIT_MS, &e, detail, sizeof(detail));
	if (!rep) {
		arena_free(a);
		if (e != MIG_OK)
			return mig_fail(o, e, detail);
		printf(
		    "rehearsal: still running (is opsd's jobs process up?); opsctl migration status"
		    " --org %s shows its report when it ends\n",
		    org);
		return EXIT_FAILED;
	}
	if (opt_flag(o, "--json"))
		print_json(rep);
	else
		print_rehearsal(rep);
	rc = doc_bool(rep, "ok") ? EXIT_OK : EXIT_FAILED;
	doc_free(rep, a);
	return rc;
}

int cmd_migration_finalize(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1], detail[512] = "";
	enum mig_err e;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (opt_flag(o, "--dry-run"))
		return migration_rehearse(o, org);
	e = mig_finalize(o->db, &o->cfg, &o->actor, org, opt_value(o, "--reason"), detail,
	    sizeof(detail));
	if (e != MIG_OK)
		return mig_fail(o, e, detail);
	print_status_line(o, org);
	return EXIT_OK;
}

int cmd_migration_abort(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1];
	enum mig_err e;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	e = mig_abort(o->db, &o->cfg, &o->actor, org, opt_value(o, "--id"),
	    opt_value(o, "--reason"));
	if (e != MIG_OK)
		return mig_fail(o, e, NULL);
	print_status_line(o, org);
	return EXIT_OK;
}

#define LIST_PAGE 100

/* Every migration of the org, newest first, as JSON: {"items": [status
 * documents]} (read a page at a time). */
int cmd_migration_history(struct opsctl *o)
{
	char org[UUID_STR_LEN + 1];
	struct json_object *all, *doc;
	uint8_t before[16];
	bool has_before = false, more = true;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	all = json_object_new_array();
	while (more) {
		struct arena *a = arena_new(256 * 1024);
		enum mig_err e = MIG_E_DB;
		struct json_object *page = a ? mig_history_json(o->db, a, org,
		                                   has_before ? before : NULL, LIST_PAGE, &more, &e)
		                             : NULL;
		size_t n = page ? json_object_array_length(page) : 0;

		if (!page) {
			const char *why = a ? NULL : "out of memory";

			arena_free(a);
			json_object_put(all);
			return mig_fail(o, e, why);
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *d = json_object_array_get_idx(page, i);
			struct opsd_uuid u;

			json_object_array_add(all, json_object_get(d));
			if (i == n - 1 && uuid_parse(doc_str(d, "id"), &u)) {
				memcpy(before, u.b, 16);
				has_before = true;
			}
		}
		more = more && n > 0;
		json_object_put(page);
		arena_free(a);
	}
	doc = json_object_new_object();
	json_object_object_add(doc, "items", all);
	print_json(doc);
	json_object_put(doc);
	return EXIT_OK;
}

/* Every org's migrations, newest first, a page at a time: --json gives
 * {"items": [status documents]}, else one line each. */
int cmd_migration_list(struct opsctl *o)
{
	const char *st = opt_value(o, "--status");
	int status = -1;
	bool json = opt_flag(o, "--json"), more = true;
	struct json_object *all = json_object_new_array();
	uint8_t before[16];
	bool has_before = false;
	size_t total = 0;

	if (st && (status = mig_status_from_name(st)) < 0) {
		fprintf(stderr, "opsctl: --status must be one of:");
		for (size_t i = 0; mig_statuses[i]; i++)
			fprintf(stderr, "%s %s", i ? "," : "", mig_statuses[i]);
		fprintf(stderr, "\n");
		json_object_put(all);
		return EXIT_USAGE;
	}
	if (!json)
		printf("%-36s  %-36s  %-19s  %-17s  %s\n", "ID", "ORG", "DIRECTION", "STATUS",
		    "CREATED");
	while (more) {
		struct arena *a = arena_new(256 * 1024);
		enum mig_err e = MIG_E_DB;
		struct json_object *page = a ? mig_list_json(o->db, a, status,
		                                   has_before ? before : NULL, LIST_PAGE, &more, &e)
		                             : NULL;
		size_t n = page ? json_object_array_length(page) : 0;

		if (!page) {
			arena_free(a);
			json_object_put(all);
			return mig_fail(o, e, NULL);
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *d = json_object_array_get_idx(page, i);
			struct opsd_uuid u;

			if (json)
				json_object_array_add(all, json_object_get(d));
			else
				printf("%-36s  %-36s  %-19s  %-17s  %s%s\n", doc_str(d, "id"),
				    doc_str(d, "orgId"), doc_str(d, "direction"),
				    doc_str(d, "status"),
				    doc_str(d, "createdAt") ? doc_str(d, "createdAt") : "",
				    doc_bool(d, "dryRun") ? "  (dry run)" : "");
			if (i == n - 1 && uuid_parse(doc_str(d, "id"), &u)) {
				memcpy(before, u.b, 16);
				has_before = true;
			}
		}
		total += n;
		more = more && n > 0;
		json_object_put(page);
		arena_free(a);
	}
	if (json) {
		struct json_object *doc = json_object_new_object();

		json_object_object_add(doc, "items", all);
		print_json(doc);
		json_object_put(doc);
	} else {
		printf("%zu migration%s\n", total, total == 1 ? "" : "s");
		json_object_put(all);
	}
	return EXIT_OK;
}

/* opsctl tenant set-target: the API's PUT /orgs/:id/dedicated-target, with
 * the URI read from the environment variable --target-uri-env names. */
int cmd_tenant_set_target(struct opsctl *o)
{
	const char *var = opt_value(o, "--target-uri-env");
	struct mig_target_request t = {0};
	struct json_object *doc;
	char org[UUID_STR_LEN + 1], redacted[1100] = "", detail[512] = "";
	enum mig_err e;

	if (!mig_org(o, org))
		return EXIT_USAGE;
	if (var && !(t.target_uri = getenv(var))) {
		fprintf(stderr, "opsctl: --target-uri-env: %s is not set\n", var);
		return EXIT_USAGE;
	}
	t.org_id = org;
	t.db_name = opt_value(o, "--db-name");
	t.reason = opt_value(o, "--reason");
	e = mig_set_target(o->db, &o->cfg, &o->actor, &t, redacted, sizeof(redacted), detail,
	    sizeof(detail));
	if (e != MIG_OK)
		return mig_fail(o, e, detail);
	doc = json_object_new_object();
	json_object_object_add(doc, "orgId", json_object_new_string(org));
	json_object_object_add(doc, "dbMode", json_object_new_string("dedicated"));
	json_object_object_add(doc, "target", json_object_new_string(redacted));
	print_json(doc);
	json_object_put(doc);
	return EXIT_OK;
}
