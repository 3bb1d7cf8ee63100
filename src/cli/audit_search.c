/* opsctl audit search: GET /audit's filters on the host (README "Runbook
 * 4"), through the same query builder (core/audit_query.h). JSON prints one
 * page and its nextCursor, as the API answers; CSV streams every matching
 * event, or --limit of them. Like GET /audit, a search writes no audit
 * event. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/audit_query.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/csv.h"
#include "lib/util.h"

/* Each option and the filter it sets. */
static const struct {
	const char *opt;
	enum audit_filter f;
} search_opts[] = {
    {"--action", AF_ACTION},
    {"--actor", AF_ACTOR},
    {"--org", AF_ORG_ID},
    {"--target-type", AF_TARGET_TYPE},
    {"--target-id", AF_TARGET_ID},
    {"--about", AF_ABOUT},
    {"--ip", AF_IP},
    {"--request-id", AF_REQUEST_ID},
    {"--since", AF_SINCE},
    {"--until", AF_UNTIL},
};

static int opt_count(const struct opsctl *o, const char *name)
{
	int n = 0;

	for (int i = 0; i < o->argc; i++)
		n += strcmp(o->argv[i], name) == 0;
	return n;
}

static int usage_error(const char *opt, const char *why)
{
	fprintf(stderr, "opsctl: %s: %s\n", opt, why);
	return EXIT_USAGE;
}

static bool csv_event(const struct db_rows *rows, size_t i, void *ctx)
{
	struct buf *b = ctx;
	struct json_object *e = audit_event_json(rows, i);

	buf_reset(b);
	csv_row(b, e);
	json_object_put(e);
	return fwrite(b->data, 1, b->len, stdout) == b->len;
}

static int search_csv(struct opsctl *o, const struct audit_query *q)
{
	struct buf b;
	long long n;

	buf_init(&b);
	csv_names(&b, audit_event_fields, AUDIT_EVENT_FIELDS);
	fwrite(b.data, 1, b.len, stdout);
	n = audit_query_each(o->db, q, q->limit, csv_event, &b);
	buf_free(&b);
	if (n < 0) {
		fprintf(stderr, "opsctl: search failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_FAILED;
}

static int search_page(struct opsctl *o, struct audit_query *q)
{
	struct arena *a = arena_new(256 * 1024);
	struct db_rows rows;
	struct json_object *items;
	size_t n;
	char cur[128];

	if (!a)
		return EXIT_FAILED;
	q->limit++;
	if (audit_query_run(o->db, a, q, &rows) != 0) {
		fprintf(stderr, "opsctl: search failed: %s\n", db_error(o->db));
		arena_free(a);
		return EXIT_FAILED;
	}
	n = rows.nrows >= (size_t)q->limit ? (size_t)q->limit - 1 : rows.nrows;
	items = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(items, audit_event_json(&rows, i));
	if (rows.nrows > n && n > 0)
		audit_cursor_make(rows.val[n - 1][0], cur, sizeof(cur));
	print_list_page(items, rows.nrows > n && n > 0 ? cur : NULL);
	arena_free(a);
	return EXIT_OK;
}

int cmd_audit_search(struct opsctl *o)
{
	const char *format = opt_value(o, "--format");
	const char *limit = opt_value(o, "--limit");
	const char *cursor = opt_value(o, "--cursor");
	bool csv = format && strcmp(format, "csv") == 0;
	struct audit_query q;
	enum audit_filter bad;
	const char *reason, *bad_opt;
	char why[200];

	audit_query_init(&q);
	for (size_t i = 0; i < countof(search_opts); i++) {
		const char *v = opt_value(o, search_opts[i].opt);

		if (opt_count(o, search_opts[i].opt) > 1)
			return usage_error(search_opts[i].opt, "given twice");
		if (v && !audit_query_set(&q, search_opts[i].f, v, why, sizeof(why)))
			return usage_error(search_opts[i].opt, why);
	}
	if (!audit_query_check(&q, &bad, &reason)) {
		for (size_t i = 0; i < countof(search_opts); i++)
			if (search_opts[i].f == bad)
				return usage_error(search_opts[i].opt, reason);
	}
	if (format && !csv && strcmp(format, "json") != 0)
		return usage_error("--format", "must be json or csv");
	if (!audit_query_paging(&q, csv, limit, cursor, &bad_opt, &reason))
		return usage_error(strcmp(bad_opt, "limit") == 0 ? "--limit" : "--cursor", reason);
	return csv ? search_csv(o, &q) : search_page(o, &q);
}
