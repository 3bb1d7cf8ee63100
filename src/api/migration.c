/* Runbook 3 (README): moving one org's tenant rows between the shared
 * database and a dedicated one. The engine is src/migration/; these
 * handlers validate, call it and answer with its status document (a
 * rehearsal of the cut-over: with its report). Only superadmin holds
 * migration.run (the route table says so). */
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "infra/config.h"
#include "infra/db.h"
#include "lib/json.h"
#include "lib/util.h"
#include "migration/migration.h"

const struct field_spec migration_start_spec[] = {
    {"orgId", FT_UUID, FIELD_REQUIRED, 0, 0, NULL},
    {"direction", FT_ENUM, FIELD_REQUIRED, 0, 0, mig_directions},
    {"chunkSize", FT_INT, 0, 1, MIG_CHUNK_MAX, NULL},
    {"targetUri", FT_STRING, 0, 1, 1000, NULL},
    {"dbName", FT_STRING, 0, 1, 64, NULL},
    {"dryRun", FT_BOOL, 0, 0, 0, NULL},
    {"overrideLegalHold", FT_BOOL, 0, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

const struct field_spec migration_finalize_spec[] = {
    {"orgId", FT_UUID, FIELD_REQUIRED, 0, 0, NULL},
    {"dryRun", FT_BOOL, 0, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* How long a rehearsal's request waits for the engine's report: at most
 * 20 s, and half of OPSD_REQUEST_TIMEOUT, which would kill the worker. */
#define REHEARSAL_WAIT_MS 20000

const struct field_spec migration_abort_spec[] = {
    {"orgId", FT_UUID, FIELD_REQUIRED, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {"migrationId", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* PUT /orgs/:id/dedicated-target: the URI (or OPSD_DEDICATED_DB_URI) and
 * database as a migration's start takes them. */
const struct field_spec dedicated_target_spec[] = {
    {"targetUri", FT_STRING, 0, 1, 1000, NULL},
    {"dbName", FT_STRING, 0, 1, 64, NULL},
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* A short password matches too much text to be worth withholding for. */
#define PASS_MIN_CHECKED 4

/* true when text holds the URI or its (decoded) password. */
static bool holds_credentials(const char *text, const char *uri)
{
	struct db_uri u;
	char err[256];
	bool hit;

	if (!uri || !*uri)
		return false;
	hit = strstr(text, uri) != NULL;
	if (!hit && db_uri_parse(uri, &u, err, sizeof(err)) && strlen(u.pass) >= PASS_MIN_CHECKED)
		hit = strstr(text, u.pass) != NULL;
	explicit_bzero(&u, sizeof(u));
	return hit;
}

/* The core promises a reason without the password; should one slip
 * through anyway, the client never sees it. */
static const char *detail_safe(const struct req *r, const char *detail, const char *target_uri)
{
	if (!detail || !*detail)
		return NULL;
	if (holds_credentials(detail, target_uri) ||
	    holds_credentials(detail, r->cfg->dedicated_db_uri))
		return "(withheld: it named the target's credentials)";
	return detail;
}

/* The org's status document, or the refusal. */
static void reply_status_doc(struct req *r, int status, const char *org)
{
	enum mig_err e = MIG_E_DB;
	struct json_object *doc = mig_status_json(r->db, r->arena, org, &e);

	if (!doc) {
		reply_err(r, &mig_errors[e], NULL);
		return;
	}
	reply_json(r, status, doc);
}

/* The lower-case form of an orgId the field table already checked. */
static void org_canonical(const char *in, char out[UUID_STR_LEN + 1])
{
	struct opsd_uuid u;

	if (uuid_parse(in, &u))
		uuid_format(&u, out);
	else
		out[0] = '\0';
}

void api_migration_start(struct req *r)
{
	struct audit_actor a;
	struct mig_request m;
	char org[UUID_STR_LEN + 1], id[UUID_STR_LEN + 1] = "", detail[512] = "";
	const char *reason;
	enum mig_err e;

	if (!req_validate_or_reply(r, migration_start_spec) || !reason_or_reply(r, &reason))
		return;
	org_canonical(json_get_str(r->json, "orgId", ""), org);
	m = (struct mig_request){
	    .org_id = org,
	    .direction = json_get_str(r->json, "direction", NULL),
	    .chunk_size = json_get_int(r->json, "chunkSize", 0),
	    .target_uri = json_get_str(r->json, "targetUri", NULL),
	    .db_name = json_get_str(r->json, "dbName", NULL),
	    .dry_run = json_get_bool(r->json, "dryRun", false),
	    .override_legal_hold = json_get_bool(r->json, "overrideLegalHold", false),
	    .reason = reason,
	};
	req_actor(r, &a);
	e = mig_start(r->db, r->cfg, &a, &m, id, detail, sizeof(detail));
	if (e != MIG_OK) {
		reply_err(r, &mig_errors[e], detail_safe(r, detail, m.target_uri));
		return;
	}
	reply_status_doc(r, 202, org);
}

void api_migration_status(struct req *r)
{
	struct opsd_uuid u;
	char org[UUID_STR_LEN + 1];

	if (!uuid_param_or_reply(r, "orgId", &u))
		return;
	uuid_format(&u, org);
	reply_status_doc(r, 200, org);
}

/* finalize with dryRun: the engine rehearses the cut-over while the
 * request waits for its report (200); a rehearsal still running when the
 * wait ends answers 202 with the status document, whose report appears
 * once it is done. */
static void rehearse_reply(struct req *r, const struct audit_actor *a, const char *org,
    const char *reason)
{
	char id[UUID_STR_LEN + 1] = "", detail[512] = "";
	int wait = REHEARSAL_WAIT_MS;
	struct json_object *report;
	enum mig_err e = mig_rehearse(r->db, r->cfg, a, org, reason, id, detail, sizeof(detail));

	if (e == MIG_OK) {
		if (r->cfg->request_timeout > 0 && r->cfg->request_timeout * 500 < wait)
			wait = r->cfg->request_timeout * 500;
		if ((report = mig_rehearsal_wait(r->db, r->arena, id, wait, &e, detail,
		         sizeof(detail))) != NULL) {
			reply_json(r, 200, report);
			return;
		}
	}
	if (e != MIG_OK) {
		reply_err(r, &mig_errors[e], detail_safe(r, detail, NULL));
		return;
	}
	reply_status_doc(r, 202, org);
}

void api_migration_finalize(struct req *r)
{
	struct audit_actor a;
	char org[UUID_STR_LEN + 1], detail[512] = "";
	const char *reason;
	enum mig_err e;

	if (!req_validate_or_reply(r, migration_finalize_spec) || !reason_or_reply(r, &reason))
		return;
	org_canonical(json_get_str(r->json, "orgId", ""), org);
	req_actor(r, &a);
	if (json_get_bool(r->json, "dryRun", false)) {
		rehearse_reply(r, &a, org, reason);
		return;
	}
	e = mig_finalize(r->db, r->cfg, &a, org, reason, detail, sizeof(detail));
	if (e != MIG_OK) {
		reply_err(r, &mig_errors[e], detail_safe(r, detail, NULL));
		return;
	}
	reply_status_doc(r, 202, org);
}

void api_migration_abort(struct req *r)
{
	struct audit_actor a;
	char org[UUID_STR_LEN + 1];
	const char *reason;
	enum mig_err e;

	if (!req_validate_or_reply(r, migration_abort_spec) || !reason_or_reply(r, &reason))
		return;
	org_canonical(json_get_str(r->json, "orgId", ""), org);
	req_actor(r, &a);
	e = mig_abort(r->db, r->cfg, &a, org, json_get_str(r->json, "migrationId", NULL), reason);
	if (e != MIG_OK) {
		reply_err(r, &mig_errors[e], NULL);
		return;
	}
	reply_status_doc(r, 202, org);
}

/* The id of a page's last status document (NULL for an empty page): the
 * next page's cursor. */
static const char *last_id(struct json_object *items)
{
	size_t n = json_object_array_length(items);

	return n ? json_object_get_string(
	               json_object_object_get(json_object_array_get_idx(items, n - 1), "id"))
	         : NULL;
}

const struct field_spec migration_history_query[] = {
    {"orgId", FT_UUID, FIELD_REQUIRED, 0, 0, NULL},
    PAGE_QUERY,
    {NULL, 0, 0, 0, 0, NULL},
};

/* GET /migration/history?orgId=&cursor=&limit=: the org's migrations,
 * newest first, a page at a time. */
void api_migration_history(struct req *r)
{
	const char *q = req_query(r, "orgId");
	struct opsd_uuid u, before;
	char org[UUID_STR_LEN + 1];
	enum mig_err e = MIG_E_DB;
	struct page pg;
	struct json_object *items;
	bool more = false;

	if (!q || !*q) {
		reply_field_error(r, "orgId", "required");
		return;
	}
	if (!uuid_parse(q, &u)) {
		reply_field_error(r, "orgId", "must be a UUID");
		return;
	}
	uuid_format(&u, org);
	if (!page_or_reply(r, "migration_history", &pg))
		return;
	if (pg.has_after && !uuid_parse(pg.after, &before)) {
		reply_field_error(r, "cursor", "not a cursor of this list");
		return;
	}
	items = mig_history_json(r->db, r->arena, org, pg.has_after ? before.b : NULL, pg.limit,
	    &more, &e);
	if (!items) {
		reply_err(r, &mig_errors[e], NULL);
		return;
	}
	reply_page(r, items, more, "migration_history", last_id(items));
}

const struct field_spec migration_list_query[] = {
    {"status", FT_ENUM, 0, 0, 0, mig_statuses},
    PAGE_QUERY,
    {NULL, 0, 0, 0, 0, NULL},
};

/* GET /migration?status=&cursor=&limit=: the migrations of every org,
 * newest first, a page at a time. */
void api_migration_list(struct req *r)
{
	const char *st = req_query(r, "status");
	int status = -1;
	struct page pg;
	struct opsd_uuid before;
	struct json_object *items;
	enum mig_err e = MIG_E_DB;
	bool more = false;

	if (st && *st && (status = mig_status_from_name(st)) < 0) {
		reply_choice_error(r, "status", mig_statuses);
		return;
	}
	if (!page_or_reply(r, "migrations", &pg))
		return;
	if (pg.has_after && !uuid_parse(pg.after, &before)) {
		reply_field_error(r, "cursor", "not a cursor of this list");
		return;
	}
	items = mig_list_json(r->db, r->arena, status, pg.has_after ? before.b : NULL, pg.limit,
	    &more, &e);
	if (!items) {
		reply_err(r, &mig_errors[e], NULL);
		return;
	}
	reply_page(r, items, more, "migrations", last_id(items));
}

void api_org_dedicated_target(struct req *r)
{
	struct audit_actor a;
	struct mig_target_request t;
	struct opsd_uuid u;
	struct json_object *o;
	char org[UUID_STR_LEN + 1], redacted[1100] = "", detail[512] = "";
	const char *reason;
	enum mig_err e;

	if (!uuid_param_or_reply(r, "id", &u) || !req_validate_or_reply(r, dedicated_target_spec) ||
	    !reason_or_reply(r, &reason))
		return;
	uuid_format(&u, org);
	t = (struct mig_target_request){
	    .org_id = org,
	    .target_uri = json_get_str(r->json, "targetUri", NULL),
	    .db_name = json_get_str(r->json, "dbName", NULL),
	    .reason = reason,
	};
	req_actor(r, &a);
	e = mig_set_target(r->db, r->cfg, &a, &t, redacted, sizeof(redacted), detail,
	    sizeof(detail));
	if (e != MIG_OK) {
		reply_err(r, &mig_errors[e], detail_safe(r, detail, t.target_uri));
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "orgId", json_object_new_string(org));
	json_object_object_add(o, "dbMode", json_object_new_string("dedicated"));
	json_object_object_add(o, "target", json_object_new_string(redacted));
	reply_json(r, 200, o);
}
