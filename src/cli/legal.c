/* opsctl legal publish and legal report (README, runbook 1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/errors.h"
#include "cli/cli.h"
#include "core/legal.h"
#include "core/legal_files.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/utf8.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* Runbook 1 step 1 from the command line, through legal_publish. */
int cmd_legal_publish(struct opsctl *o)
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
		fprintf(stderr, "opsctl: malformed %s\n",
		    legal_type_valid(type) ? "--version" : "--type");
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
	e = legal_publish(o->db, &o->actor, type, version, content, ms, opt_flag(o, "--notify"),
	    id);
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
	legal_files_after_publish(o->db, &o->cfg);
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

/* Runbook 1 step 3: GET /legal/acceptance/report from the host, the same
 * JSON. --limit and --cursor page through the pending users. */
int cmd_legal_report(struct opsctl *o)
{
	const char *type = opt_value(o, "--type"), *version = opt_value(o, "--version");
	const char *limit_s = opt_value(o, "--limit"), *cursor = opt_value(o, "--cursor");
	long long limit = 50;
	char after_s[64];
	struct opsd_uuid after;
	struct json_object *doc;
	struct arena *a;
	enum legal_report_rc rc;

	if (!type)
		return need_opt("--type");
	if (!legal_type_valid(type)) {
		fprintf(stderr, "opsctl: malformed --type\n");
		return EXIT_USAGE;
	}
	if (limit_s && !parse_ll_range(limit_s, 1, 500, &limit)) {
		fprintf(stderr, "opsctl: --limit must be an integer between 1 and 500\n");
		return EXIT_USAGE;
	}
	if (cursor && (!cursor_decode("legal_report", cursor, after_s, sizeof(after_s)) ||
	                  !uuid_parse(after_s, &after))) {
		fprintf(stderr, "opsctl: --cursor is not a cursor of this report\n");
		return EXIT_USAGE;
	}
	if (!(a = arena_new(64 * 1024)))
		return EXIT_FAILED;
	rc = legal_report(o->db, a, type, version, limit, cursor ? &after : NULL, &doc);
	arena_free(a);
	if (rc != LEGAL_REPORT_OK) {
		fprintf(stderr, "opsctl: %s %s%s: %s\n", type, version ? version : "",
		    version ? "" : "(current)",
		    rc == LEGAL_REPORT_DB_ERROR ? db_error(o->db)
		                                : legal_report_errors[rc].message);
		return EXIT_FAILED;
	}
	print_json(doc);
	json_object_put(doc);
	return EXIT_OK;
}
