/* Query strings as nginx passes them: every parameter name the route table
 * declares read with query_get (decoded) and query_has; then what the
 * handlers do with the values: GET /audit's filters, paging and its SQL
 * (every value a bound parameter: one '?' per parameter), the list cursors
 * of every kind (decoded, encoded again, the same value), and the subject
 * search's terms, limit and cursor. The input is the query string. */
#include "fuzz.h"

#include "api/routes.h"
#include "api/specs.h"
#include "core/audit_query.h"
#include "core/subjects.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"

#define NAMES_MAX 96

static struct arena *arena;
static const char *names[NAMES_MAX];
static size_t nnames;

/* The kinds of the API's list cursors (their page_or_reply and reply_id_list
 * callers). */
static const char *const kinds[] = {"users", "orgs", "org_users", "tokens", "blocklist", "outbox",
    "legal_versions", "legal_report", "migration_history", "migrations", "audit", "subjects"};

static void add_name(const char *n)
{
	for (size_t i = 0; i < nnames; i++)
		if (strcmp(names[i], n) == 0)
			return;
	if (nnames < NAMES_MAX)
		names[nnames++] = n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	arena = arena_new(4096);
	if (!arena)
		abort();
	for (size_t i = 0; i < nroutes; i++)
		for (const struct field_spec *f = routes[i].query; f && f->name; f++)
			add_name(f->name);
	for (int f = 0; f < AF__MAX; f++)
		add_name(audit_filter_names[f]);
	add_name("cursor");
	add_name("limit");
	return 0;
}

static size_t count_marks(const char *sql)
{
	size_t n = 0;

	for (; *sql; sql++)
		n += *sql == '?';
	return n;
}

static void audit_search(const char *query)
{
	struct audit_query q;
	struct db_param p[AUDIT_QUERY_MAX_PARAMS];
	char why[200], sql[AUDIT_QUERY_SQL_MAX];
	const char *bad_why, *bad_param, *format = query_get(arena, query, "format");
	enum audit_filter bad;
	size_t np;

	audit_query_init(&q);
	for (int f = 0; f < AF__MAX; f++) {
		const char *v = query_get(arena, query, audit_filter_names[f]);

		if (audit_filter_find(audit_filter_names[f]) != (enum audit_filter)f)
			abort();
		if (v && !audit_query_set(&q, (enum audit_filter)f, v, why, sizeof(why)) && !why[0])
			abort();
	}
	(void)audit_query_check(&q, &bad, &bad_why);
	if (!audit_query_paging(&q, format && strcmp(format, "csv") == 0,
	        query_get(arena, query, "limit"), query_get(arena, query, "cursor"), &bad_param,
	        &bad_why))
		return;
	np = audit_query_sql(&q, sql, sizeof(sql), p);
	if (np == 0 || np > AUDIT_QUERY_MAX_PARAMS || count_marks(sql) != np)
		abort();
}

static void list_cursor(const char *cursor)
{
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char v[64], enc[256], again[64];

		if (!cursor_decode(kinds[k], cursor, v, sizeof(v)))
			continue;
		cursor_encode(kinds[k], v, enc, sizeof(enc));
		if (!cursor_decode(kinds[k], enc, again, sizeof(again)) || strcmp(v, again) != 0)
			abort();
	}
}

static void subject_search(const char *query)
{
	struct subject_query *sq = arena_alloc(arena, sizeof(*sq));
	const char *values[SUBJECT__MAX] = {NULL};
	const char *field = NULL, *limit = query_get(arena, query, "limit");
	long long lim = 0;

	if (!sq)
		abort();
	for (int t = 1; t < SUBJECT__MAX; t++)
		values[t] = query_get(arena, query, subject_term_names[t]);
	if (limit && !parse_ll_range(limit, 1, SUBJECT_LIMIT_MAX, &lim))
		lim = 0;
	(void)subject_query_init(sq, values, lim, query_get(arena, query, "cursor"), &field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *query = fuzz_cstr(data, size);
	const char *cursor;

	for (size_t i = 0; i < nnames; i++) {
		const char *v = query_get(arena, query, names[i]);

		if (v && !query_has(query, names[i]))
			abort();
	}
	audit_search(query);
	cursor = query_get(arena, query, "cursor");
	if (cursor)
		list_cursor(cursor);
	subject_search(query);
	arena_reset(arena);
	free(query);
	return 0;
}
