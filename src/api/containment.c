/* Containment of accounts (runbook 4 step 3): a security admin disables a
 * compromised account and revokes API tokens, whatever the account's roles
 * and whether or not it is on legal hold (core/containment.c). */
#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/containment.h"
#include "lib/json.h"
#include "lib/util.h"

const struct field_spec security_user_contain_spec[] = {
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The user :id with "changed" (false: it already was in that state). */
static void user_contain_reply(struct req *r, bool disable)
{
	struct user_containment c = {.disable = disable};
	struct opsd_uuid id;
	struct audit_actor a;
	struct json_object *user = NULL;
	enum user_err e;

	if (!uuid_param_or_reply(r, "id", &id) ||
	    !req_validate_or_reply(r, security_user_contain_spec) || !reason_or_reply(r, &c.reason))
		return;
	req_actor(r, &a);
	e = user_contain(r->db, r->arena, req_param(r, "id"), &c, &a);
	if (e == USER_OK)
		user = user_get_json(r->db, r->arena, req_param(r, "id"), &e);
	if (e != USER_OK) {
		reply_err(r, &user_errors[e], NULL);
		return;
	}
	json_object_object_add(user, "changed", json_object_new_boolean(c.changed));
	reply_json(r, 200, user);
}

void api_security_user_disable(struct req *r)
{
	user_contain_reply(r, true);
}

void api_security_user_enable(struct req *r)
{
	user_contain_reply(r, false);
}

/* Exactly one selector: the field that names it, and the answer when the id
 * it names does not exist. */
static const struct {
	const char *field;
	enum token_selector sel;
	const char *not_found;
} selectors[] = {
    {"userId", TOKENS_OF_USER, "no such user"},
    {"all", TOKENS_ALL, NULL},
    {"tokenId", TOKENS_ONE, "no such API token"},
    {"orgId", TOKENS_OF_ORG, "no such org"},
};

const struct field_spec security_tokens_revoke_spec[] = {
    {"userId", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
    {"all", FT_BOOL, FIELD_NULLABLE, 0, 0, NULL},
    {"tokenId", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
    {"orgId", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The one selector of the body, or a 400 naming in details.fields the
 * selectors given (two or more) or all of them (none); "all" must be true. */
static bool selector_or_reply(struct req *r, size_t *which)
{
	struct json_object *fields, *d;
	size_t n = 0;

	for (size_t i = 0; i < countof(selectors); i++) {
		struct json_object *v = json_object_object_get(r->json, selectors[i].field);

		if (!v)
			continue;
		if (selectors[i].sel == TOKENS_ALL && !json_object_get_boolean(v)) {
			reply_field_error(r, "all", "must be true when given");
			return false;
		}
		*which = i;
		n++;
	}
	if (n == 1)
		return true;
	fields = json_object_new_object();
	for (size_t i = 0; i < countof(selectors); i++)
		if (n == 0 || json_object_object_get(r->json, selectors[i].field))
			json_object_object_add(fields, selectors[i].field,
			    json_object_new_string(
			        "give exactly one of userId, orgId, all and tokenId"));
	d = json_object_new_object();
	json_object_object_add(d, "fields", fields);
	reply_invalid(r, d);
	return false;
}

void api_security_tokens_revoke(struct req *r)
{
	struct token_revocation t = {0};
	struct audit_actor a;
	struct json_object *o;
	size_t i = 0;

	if (!req_validate_or_reply(r, security_tokens_revoke_spec) || !selector_or_reply(r, &i) ||
	    !reason_or_reply(r, &t.reason))
		return;
	t.sel = selectors[i].sel;
	t.id = json_get_str(r->json, selectors[i].field, NULL);
	req_actor(r, &a);
	switch (tokens_revoke_audited(r->db, r->arena, &a, &t)) {
	case TOKEN_REVOKED:
		break;
	case TOKEN_NOT_FOUND:
		reply_error(r, E_NOT_FOUND, selectors[i].not_found, NULL);
		return;
	default:
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "scope", json_object_new_string(token_selector_name(t.sel)));
	if (t.sel != TOKENS_ALL)
		json_object_object_add(o, "id", json_object_new_string(t.id));
	json_object_object_add(o, "revoked", json_object_new_int64((int64_t)t.revoked));
	reply_json(r, 200, o);
}
