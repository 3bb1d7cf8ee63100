/* opsctl compliance hold, strip, archive and export: runbook 2 from the
 * host, through the core functions the /compliance routes call, with the
 * same limits, the same audit events (actor cli:<user>) and the same JSON
 * answer on stdout. A call that ran exits 0 whatever each id's result (the
 * results say it, as the API's 200 does); 1 when nothing could be applied. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/errors.h"
#include "cli/cli.h"
#include "core/compliance.h"
#include "core/entity.h"
#include "core/records.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/utf8.h"
#include "lib/util.h"
#include "lib/uuid.h"

#define MAX_IDS 1000 /* ids per call, as the API takes them */

/* --entity as an entity of the entity table, or NULL after a message. */
static const struct entity *entity_opt(const struct opsctl *o, enum entity_list list)
{
	const char *name = opt_value(o, "--entity");
	const struct entity *e = entity_find(name);
	const char *const *choices = entity_choices(list);

	if (e)
		return e;
	if (!name)
		need_opt("--entity");
	else
		fprintf(stderr, "opsctl: --entity \"%s\" is not an entity\n", name);
	fprintf(stderr, "opsctl: entities:");
	for (size_t i = 0; choices[i]; i++)
		fprintf(stderr, " %s", choices[i]);
	fprintf(stderr, "\n");
	return NULL;
}

/* A text option of min..max characters (1..max when required), or false
 * after a message; *out stays NULL when it is absent and optional. */
static bool text_opt(const struct opsctl *o, const char *name, bool required, size_t max,
    const char **out)
{
	const char *v = opt_value(o, name);
	size_t n = v ? strlen(v) : 0;

	*out = v;
	if (!v && !required)
		return true;
	if (!v) {
		need_opt(name);
		return false;
	}
	if (!utf8_valid(v, n) || utf8_chars(v, n) < 1 || utf8_chars(v, n) > max ||
	    v[strspn(v, " \t")] == '\0') {
		fprintf(stderr, "opsctl: %s must be 1 to %zu characters of UTF-8, not blank\n",
		    name, max);
		return false;
	}
	return true;
}

/* --ids "ID,ID,...": 1 to MAX_IDS UUIDs, into b's ids. */
static bool ids_opt(const struct opsctl *o, struct arena *a, struct id_batch *b)
{
	const char *s = opt_value(o, "--ids");
	struct opsd_uuid *ids;
	size_t n = 1;
	char one[64];

	if (!s) {
		need_opt("--ids");
		return false;
	}
	for (const char *p = s; *p; p++)
		n += *p == ',';
	if (n > MAX_IDS) {
		fprintf(stderr, "opsctl: --ids takes at most %d ids a call\n", MAX_IDS);
		return false;
	}
	if (!(ids = arena_calloc(a, n, sizeof(*ids))))
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(s, ",");

		snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) ? len : sizeof(one) - 1),
		    s);
		if (len >= sizeof(one) || !uuid_parse(one, &ids[i])) {
			fprintf(stderr, "opsctl: --ids: \"%.*s\" is not an id (UUID)\n",
			    (int)(len > 64 ? 64 : len), s);
			return false;
		}
		s += len + (s[len] == ',');
	}
	b->ids = ids;
	b->n = n;
	return true;
}

/* The batch of --entity and --ids, acting as o's principal. */
static bool batch_opts(struct opsctl *o, struct arena *a, struct id_batch *b)
{
	*b = (struct id_batch){.control = o->db, .cfg = &o->cfg, .arena = a, .actor = &o->actor};
	return (b->e = entity_opt(o, ENTITIES_ALL)) != NULL && ids_opt(o, a, b);
}

/* The batch's answer as the API gives it, or its error. o: what goes with
 * it (may be NULL; released on error). */
static int print_batch(struct opsctl *o, enum batch_rc rc, const struct id_batch *b,
    struct json_object *doc)
{
	if (rc != BATCH_OK) {
		json_object_put(doc);
		fprintf(stderr, "opsctl: %s; nothing applied%s%s\n", batch_errors[rc].message,
		    rc == BATCH_DB_ERROR ? ": " : "", rc == BATCH_DB_ERROR ? db_error(o->db) : "");
		return EXIT_FAILED;
	}
	doc = id_batch_results_json(b, doc);
	print_json(doc);
	json_object_put(doc);
	return EXIT_OK;
}

int cmd_compliance_hold(struct opsctl *o)
{
	struct arena *a = arena_new(64 * 1024);
	struct id_batch b;
	const char *reason, *case_ref;
	int rc = EXIT_USAGE;

	if (!a)
		return EXIT_FAILED;
	if (batch_opts(o, a, &b) && text_opt(o, "--reason", true, 500, &reason) &&
	    text_opt(o, "--case-ref", false, 100, &case_ref))
		rc = print_batch(o,
		    compliance_hold(&b, !opt_flag(o, "--release"), reason, case_ref), &b, NULL);
	arena_free(a);
	return rc;
}

int cmd_compliance_strip(struct opsctl *o)
{
	struct arena *a = arena_new(64 * 1024);
	struct id_batch b;
	const char *reason;
	int rc = EXIT_USAGE;

	if (!a)
		return EXIT_FAILED;
	if (batch_opts(o, a, &b) && text_opt(o, "--reason", true, 500, &reason))
		rc = print_batch(o, compliance_strip(&b, reason), &b, NULL);
	arena_free(a);
	return rc;
}

/* By ids (a batch), or everything of the entity created before
 * --older-than, of one org (--org) or of all, in chunked transactions. */
static int archive(struct opsctl *o, struct arena *a, const struct entity *e, const char *reason)
{
	const char *older = opt_value(o, "--older-than"), *org = opt_value(o, "--org");
	bool dry = opt_flag(o, "--dry-run");
	long long counts[ARCHIVE__MAX] = {0};
	struct json_object *doc = json_object_new_object();
	struct opsd_uuid org_u;
	char org_s[UUID_STR_LEN + 1];

	json_object_object_add(doc, "dryRun", json_object_new_boolean(dry));
	if (opt_value(o, "--ids")) {
		struct id_batch b;

		if (!batch_opts(o, a, &b)) {
			json_object_put(doc);
			return EXIT_USAGE;
		}
		json_object_object_add(doc, "counts", archive_counts_json(counts));
		return print_batch(o, compliance_archive_ids(&b, reason, dry), &b, doc);
	}
	{
		struct archive_query q = {o->db, &o->cfg, a, &o->actor, e, reason, dry, 0, NULL};

		const char *bad = !parse_rfc3339(older, &q.before_ms)
		                      ? "--older-than must be an RFC 3339 time"
		                  : org && !uuid_parse(org, &org_u) ? "--org must be an id (UUID)"
		                                                    : NULL;

		if (bad) {
			fprintf(stderr, "opsctl: %s\n", bad);
			json_object_put(doc);
			return EXIT_USAGE;
		}
		if (org) {
			uuid_format(&org_u, org_s);
			q.org = org_s;
		}
		if (compliance_archive_older(&q, counts) != 0) {
			fprintf(stderr, "opsctl: archive failed: %s\n", db_error(o->db));
			json_object_put(doc);
			return EXIT_FAILED;
		}
	}
	json_object_object_add(doc, "counts", archive_counts_json(counts));
	print_json(doc);
	json_object_put(doc);
	return EXIT_OK;
}

int cmd_compliance_archive(struct opsctl *o)
{
	struct arena *a;
	const struct entity *e;
	const char *reason;
	bool ids = opt_value(o, "--ids") != NULL, older = opt_value(o, "--older-than") != NULL;
	int rc;

	if (!(e = entity_opt(o, ENTITIES_ALL)) || !text_opt(o, "--reason", true, 500, &reason))
		return EXIT_USAGE;
	if (ids == older) {
		fprintf(stderr, "opsctl: give exactly one of --ids and --older-than\n");
		return EXIT_USAGE;
	}
	if (opt_value(o, "--org") && (ids || strcmp(e->org_column, "org_id") != 0)) {
		fprintf(stderr,
		    "opsctl: --org goes only with --older-than, for records that belong "
		    "to an org\n");
		return EXIT_USAGE;
	}
	if (!(a = arena_new(64 * 1024)))
		return EXIT_FAILED;
	rc = archive(o, a, e, reason);
	arena_free(a);
	return rc;
}

/* The subject's record (DSR access), audited compliance.exported. */
int cmd_compliance_export(struct opsctl *o)
{
	const struct entity *e = entity_opt(o, ENTITIES_TENANT_FIRST);
	const char *id_s = opt_value(o, "--id");
	struct opsd_uuid id;
	struct json_object *doc;
	struct arena *a;
	enum tenant_rc rc;

	if (!e)
		return EXIT_USAGE;
	if (!id_s)
		return need_opt("--id");
	if (!uuid_parse(id_s, &id)) {
		fprintf(stderr, "opsctl: --id must be an id (UUID)\n");
		return EXIT_USAGE;
	}
	if (!(a = arena_new(64 * 1024)))
		return EXIT_FAILED;
	rc = record_export_subject(o->db, &o->cfg, a, &o->actor, e, &id, &doc);
	arena_free(a);
	if (rc != TENANT_OK) {
		fprintf(stderr, "opsctl: %s%s%s\n",
		    rc == TENANT_NO_ORG ? "no such record" : tenant_errors[rc].message,
		    rc == TENANT_DB_ERROR ? ": " : "",
		    rc == TENANT_DB_ERROR ? db_error(o->db) : "");
		return EXIT_FAILED;
	}
	print_json(doc);
	json_object_put(doc);
	return EXIT_OK;
}
