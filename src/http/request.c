/* The request as handlers read it: path and query parameters, FastCGI
 * params, the validated body. */
#include <string.h>

#include "http/http.h"
#include "http/router.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

const char *req_param(const struct req *r, const char *name)
{
	if (!r->params)
		return NULL;
	for (int i = 0; i < r->params->n; i++)
		if (strcmp(r->params->name[i], name) == 0)
			return r->params->value[i];
	return NULL;
}

const char *req_query(struct req *r, const char *name)
{
	return query_get(r->arena, r->query, name);
}

bool req_query_has(const struct req *r, const char *name)
{
	return query_has(r->query, name);
}

bool req_etag_matches(const struct req *r, const char *etag)
{
	size_t n = strlen(etag);

	for (const char *p = r->if_none_match; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p == '*' ||
		    (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

const char *req_env(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (strcmp(r->param_name[i], name) == 0)
			return r->param_value[i];
	return NULL;
}

bool req_validate_or_reply(struct req *r, const struct field_spec *spec)
{
	struct json_object *details = NULL;

	/* The API document describes a body with the field table its route line
	 * names (BODY in api/routes.c): a handler validating with another would
	 * make the document lie, so it is a bug, answered as one (and every
	 * test of the route fails). Tenant record routes name none: theirs come
	 * from the entity table. */
	if (r->route && r->route->body && spec != r->route->body) {
		log_msg(LL_ERROR, "body_spec_mismatch",
		    "route %s validates its body with a field table its route line does not name",
		    r->route->name);
		reply_error(r, E_INTERNAL, NULL, NULL);
		return false;
	}
	if (json_validate(r->json, spec, &details) == 0)
		return true;
	reply_invalid(r, details);
	return false;
}
