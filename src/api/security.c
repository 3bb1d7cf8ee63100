/* Containment (runbook 4 step 3) and rotation (runbook 7): flushing the
 * MariaDB session store, which every worker on every host sees at once. */
#include <string.h>

#include <json-c/json.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "db.h"
#include "json.h"

static const char *const flush_scopes[] = {"all", "user", "org", NULL};

static const struct field_spec flush_spec[] = {
	{"scope", FT_ENUM, FIELD_REQUIRED, 0, 0, flush_scopes},
	{"id", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

void api_sessions_flush(struct req *r)
{
	const char *scope_name, *id;
	enum flush_scope scope = FLUSH_ALL;
	struct audit_actor a;
	unsigned long long n = 0;
	struct json_object *o;

	if (!req_validate_or_reply(r, flush_spec))
		return;
	scope_name = json_get_str(r->json, "scope", "all");
	id = json_get_str(r->json, "id", NULL);
	for (enum flush_scope s = FLUSH_ALL; s <= FLUSH_ORG; s++)
		if (strcmp(scope_name, flush_scope_name(s)) == 0)
			scope = s;
	if (scope != FLUSH_ALL && !id) {
		reply_field_error(r, "id", "required for scope user or org");
		return;
	}
	req_actor(r, &a);
	if (sessions_flush_audited(r->db, &a, scope, id, &n) != 0) {
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "scope", json_object_new_string(scope_name));
	json_object_object_add(o, "flushed", json_object_new_int64((int64_t)n));
	reply_json(r, 200, o);
}
