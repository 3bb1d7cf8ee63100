/* opsctl compliance search: a data subject's records by email, name or
 * phone (README "Runbook 2", step 1), through the same search and audit
 * event as POST /compliance/subjects/search. A term given as "-" is read
 * from a line of stdin, so that it is not visible in the process list. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/subjects.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/util.h"

/* The value of --<term>: the argument, or a line of stdin for "-". */
static const char *term_value(struct opsctl *o, const char *name, char *line, size_t len)
{
	char opt[16];
	const char *v;

	snprintf(opt, sizeof(opt), "--%s", name);
	if (!(v = opt_value(o, opt)) || strcmp(v, "-") != 0)
		return v;
	if (!fgets(line, (int)len, stdin))
		return "";
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

/* One line per record: entity, id, org, where, what matched, flags. */
static void print_item(struct json_object *it)
{
	static const char *const flags[] = {"legalHold", "orgLegalHold", "piiStripped", "archived"};
	struct json_object *matched = json_object_object_get(it, "matched");
	const char *org = doc_str(it, "orgId"), *ded = doc_str(it, "dedicatedDb");

	printf("%-9s %s  org %s  %s%s%s  matched", doc_str(it, "entity"), doc_str(it, "id"),
	    org ? org : "-", doc_str(it, "database"), ded ? " " : "", ded ? ded : "");
	for (size_t i = 0; i < json_object_array_length(matched); i++) {
		struct json_object *m = json_object_array_get_idx(matched, i);

		printf("%s%s:%s", i ? "," : " ", doc_str(m, "term"), doc_str(m, "field"));
	}
	for (size_t i = 0; i < countof(flags); i++)
		if (json_object_get_boolean(json_object_object_get(it, flags[i])))
			printf("  %s", flags[i]);
	printf("\n");
}

static void print_page(struct json_object *doc)
{
	struct json_object *items = json_object_object_get(doc, "items");
	struct json_object *skipped = json_object_object_get(doc, "unsearched");
	const char *next = doc_str(doc, "nextCursor");
	size_t n = json_object_array_length(items);

	for (size_t i = 0; i < n; i++)
		print_item(json_object_array_get_idx(items, i));
	printf("%zu record%s%s%s\n", n, n == 1 ? "" : "s", next ? "; next page: --cursor " : "",
	    next ? next : "");
	for (size_t i = 0; i < json_object_array_length(skipped); i++) {
		struct json_object *u = json_object_array_get_idx(skipped, i);

		fprintf(stderr, "opsctl: not searched: the dedicated database %s of org %s\n",
		    doc_str(u, "dedicatedDb"), doc_str(u, "orgId"));
	}
}

int cmd_compliance_search(struct opsctl *o)
{
	char lines[SUBJECT__MAX][1024];
	const char *values[SUBJECT__MAX] = {0}, *field, *why, *limit_s = opt_value(o, "--limit");
	long long limit = 0;
	struct subject_query q;
	struct subject_page page;
	struct json_object *doc;
	struct arena *a;
	int rc = EXIT_OK;

	for (int t = SUBJECT_NONE + 1; t < SUBJECT__MAX; t++)
		values[t] = term_value(o, subject_term_names[t], lines[t], sizeof(lines[t]));
	if (limit_s && !parse_ll_range(limit_s, 1, SUBJECT_LIMIT_MAX, &limit)) {
		fprintf(stderr, "opsctl: --limit: must be an integer between 1 and 100\n");
		return EXIT_USAGE;
	}
	if ((why = subject_query_init(&q, values, limit, opt_value(o, "--cursor"), &field))) {
		fprintf(stderr, "opsctl: %s%s: %s\n", field ? "--" : "",
		    field ? field : "--email, --name or --phone", why);
		return EXIT_USAGE;
	}
	if (!(a = arena_new(64 * 1024)))
		return EXIT_FAILED;
	if (subject_search_audited(o->db, &o->cfg, a, &o->actor, &q, &page) != 0) {
		fprintf(stderr, "opsctl: search failed: %s\n", db_error(o->db));
		arena_free(a);
		return EXIT_FAILED;
	}
	doc = subject_page_json(&page);
	if (opt_flag(o, "--json"))
		print_json(doc);
	else
		print_page(doc);
	/* An answer that could not ask every database is not the whole truth. */
	if (page.nunsearched)
		rc = EXIT_FAILED;
	json_object_put(doc);
	arena_free(a);
	return rc;
}
