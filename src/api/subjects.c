/* POST /compliance/subjects/search (README "Runbook 2", step 1): a data
 * subject's records by email, name or phone. The terms are personal data:
 * they come in the body only, never in a URL that nginx logs. The search
 * and its audit event are core/subjects.c. */
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/subjects.h"
#include "lib/json.h"

const struct field_spec compliance_subjects_search_spec[] = {
    {"email", FT_STRING, FIELD_NULLABLE, 1, SUBJECT_EMAIL_MAX, NULL},
    {"name", FT_STRING, FIELD_NULLABLE, 1, SUBJECT_NAME_MAX, NULL},
    {"phone", FT_STRING, FIELD_NULLABLE, 1, SUBJECT_PHONE_MAX, NULL},
    {"limit", FT_INT, FIELD_NULLABLE, 1, SUBJECT_LIMIT_MAX, NULL},
    {"cursor", FT_STRING, FIELD_NULLABLE, 1, SUBJECT_CURSOR_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* A query string is refused whatever it holds: a client that puts terms in
 * the URL learns at once that nginx has logged them. */
static bool no_query_or_reply(struct req *r)
{
	if (!r->query || !*r->query)
		return true;
	reply_error(r, E_BAD_REQUEST,
	    "this route takes no query parameters: search terms go in the JSON body", NULL);
	return false;
}

/* The body as a search. Replies 400 itself, naming the field at fault (all
 * three terms when none was given). */
static bool query_or_reply(struct req *r, struct subject_query *q)
{
	const char *values[SUBJECT__MAX] = {0}, *field, *why;
	struct json_object *details, *fields;

	for (int t = SUBJECT_NONE + 1; t < SUBJECT__MAX; t++)
		values[t] = json_get_str(r->json, subject_term_names[t], NULL);
	why = subject_query_init(q, values, json_get_int(r->json, "limit", 0),
	    json_get_str(r->json, "cursor", NULL), &field);
	if (!why)
		return true;
	if (field) {
		reply_field_error(r, field, why);
		return false;
	}
	details = json_object_new_object();
	fields = json_object_new_object();
	for (int t = SUBJECT_NONE + 1; t < SUBJECT__MAX; t++)
		json_object_object_add(fields, subject_term_names[t], json_object_new_string(why));
	json_object_object_add(details, "fields", fields);
	reply_invalid(r, details);
	return false;
}

void api_subjects_search(struct req *r)
{
	struct subject_query q;
	struct subject_page page;
	struct audit_actor a;

	if (!no_query_or_reply(r) || !req_validate_or_reply(r, compliance_subjects_search_spec) ||
	    !query_or_reply(r, &q))
		return;
	req_actor(r, &a);
	if (subject_search_audited(r->db, r->cfg, r->arena, &a, &q, &page) != 0) {
		reply_db_error(r);
		return;
	}
	reply_json(r, 200, subject_page_json(&page));
}
