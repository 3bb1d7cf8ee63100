/* GET and PUT /security/rate-limits (README "Runbook 4" step 2): the limits of both
 * layers in force with their source, and changing them at run time. */
#include <json-c/json.h>

#include "api/api.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/rate_limits.h"
#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"

/* The limits by their name in core/rate_limits.c's table; null clears one (back to
 * its configuration variable). The ranges are the configuration's
 * (infra/config.c; t/unit/test_rate_limits.c checks they agree). */
const struct field_spec rate_limits_put_spec[] = {
    {"userPerMin", FT_INT, FIELD_NULLABLE, 0, 10000000, NULL},
    {"tokenPerMin", FT_INT, FIELD_NULLABLE, 0, 10000000, NULL},
    {"ipPerMin", FT_INT, FIELD_NULLABLE, 0, 10000000, NULL},
    {"burst", FT_INT, FIELD_NULLABLE, 1, 1000000, NULL},
    {"nginxApiRate", FT_STRING, FIELD_NULLABLE, 1, 32, NULL},
    {"nginxApiBurst", FT_INT, FIELD_NULLABLE, 1, 1000000, NULL},
    {"nginxLoginRate", FT_STRING, FIELD_NULLABLE, 1, 32, NULL},
    {"nginxLoginBurst", FT_INT, FIELD_NULLABLE, 1, 1000000, NULL},
    {"nginxConnLimit", FT_INT, FIELD_NULLABLE, 1, 65535, NULL},
    /* why, for the audit event and the GET that shows the value */
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The limits in force, as GET answers them; NULL after replying. extra (may be
 * NULL) is added to the answer. */
static struct json_object *limits_or_reply(struct req *r)
{
	struct rate_limits rl;

	if (rate_limits_load(r->db, r->cfg, r->arena, &rl) != 0) {
		reply_db_error(r);
		return NULL;
	}
	return rate_limits_json(&rl);
}

void api_rate_limits_get(struct req *r)
{
	struct json_object *o = limits_or_reply(r);

	if (o)
		reply_json(r, 200, o);
}

/* The body's changes, each value checked as its limit takes it, with what
 * json_validate found (details, released here): a 400 naming every field at
 * fault at once, or naming none when the body changes no limit. */
static bool changes_or_reply(struct req *r, struct json_object *details, struct limit_change *ch,
    size_t *n)
{
	struct json_object *fields, *v;
	char why[160];

	if (!details) {
		details = json_object_new_object();
		json_object_object_add(details, "fields", json_object_new_object());
	}
	fields = json_object_object_get(details, "fields");
	*n = 0;
	for (int i = 0; i < LIM__MAX; i++) {
		if (!json_object_object_get_ex(r->json, limit_defs[i].name, &v))
			continue;
		ch[*n] = (struct limit_change){.id = (enum limit_id)i, .clear = v == NULL};
		if (v && !json_object_object_get_ex(fields, limit_defs[i].name, NULL) &&
		    !limit_from_json((enum limit_id)i, v, &ch[*n].value, why, sizeof(why)))
			json_object_object_add(fields, limit_defs[i].name,
			    json_object_new_string(why));
		(*n)++;
	}
	if (json_object_object_length(fields) > 0) {
		reply_invalid(r, details);
		return false;
	}
	json_object_put(details);
	if (*n == 0) {
		reply_error(r, E_VALIDATION_FAILED,
		    "name at least one limit to change (GET /security/rate-limits lists them)",
		    NULL);
		return false;
	}
	return true;
}

void api_rate_limits_put(struct req *r)
{
	struct limit_change ch[LIM__MAX];
	struct json_object *details = NULL;
	size_t n;
	const char *reason;
	struct audit_actor a;
	unsigned changed;
	struct json_object *o;

	(void)json_validate(r->json, rate_limits_put_spec, &details);
	if (!changes_or_reply(r, details, ch, &n) || !reason_or_reply(r, &reason))
		return;
	req_actor(r, &a);
	if (rate_limits_set(r->db, r->cfg, &a, ch, n, reason, &changed) != 0) {
		reply_db_error(r);
		return;
	}
	if (!(o = limits_or_reply(r)))
		return;
	json_object_object_add(o, "changed", json_object_new_int((int)changed));
	reply_json(r, 200, o);
}
