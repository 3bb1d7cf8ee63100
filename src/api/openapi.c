/* The API document (README "API clients"): one operation per route of the
 * route table, with its body from the handler's field table, its query
 * parameters, its success body from the named schemas and the refusals the
 * pipeline can give it; GET /openapi.json serves it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/openapi.h"
#include "api/routes.h"
#include "api/specs.h"
#include "core/authz.h"
#include "core/entity.h"
#include "core/session.h"
#include "http/router.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The refusals the pipeline (api/pipeline.c) can give a route, by its
 * flags; a route's handler adds its own (ERRORS in api/routes.c) and a
 * path with parameters may name nothing (404). */
static const struct {
	int status;
	unsigned only;  /* only routes with one of these flags (0: every route) */
	unsigned never; /* never routes with one of these flags */
	const char *why;
	const char *nginx_code; /* nginx's own answer (conf/nginx/opsd.conf), not opsd's */
} refusals[] = {
    {400, 0, 0,
        "The request is malformed: its Content-Length, an escape in the path, its body or a "
        "query value (details.fields names each bad field).",
        NULL},
    {401, 0, RF_PUBLIC, "No credentials, or invalid ones.", NULL},
    {403, 0, 0,
        "The caller's address is blocked, the permission is missing (details.permission), the "
        "CSRF token is missing or wrong, or legal documents wait for acceptance "
        "(details.pending).",
        NULL},
    {404, 0, 0, "No such thing.", NULL},
    {409, 0, 0, "The state does not allow it.", NULL},
    {413, 0, 0, "The body is over 1 MiB.", NULL},
    {415, RF_JSON_BODY, 0, "The body is not application/json.", NULL},
    {429, 0, RF_MONITOR, "Too many requests: wait Retry-After seconds (RateLimit-* say more).",
        NULL},
    {500, 0, 0, "An internal error: the log line with the request id says why.", NULL},
    {503, 0, RF_NO_DB,
        "MariaDB or the org's database is unavailable, the host's password checks are all "
        "busy, or the org's writes are frozen for a migration's cut-over (Retry-After).",
        NULL},
    {502, 0, 0,
        "From nginx: the worker answering died in the middle of the request (a crash, a kill "
        "from outside, or the master's kill at OPSD_REQUEST_TIMEOUT), or opsd is not running; "
        "whether a write took effect is unknown, so read before sending it again.",
        "bad_gateway"},
    {504, 0, 0,
        "From nginx: opsd accepted the request but did not answer within OPSD_REQUEST_TIMEOUT "
        "plus 10 s (the whole process stopped answering).",
        "gateway_timeout"},
};

/* The statuses the pipeline gives every route of its kind (404 and 409
 * only when the path has parameters or the route says so). */
static bool pipeline_refuses(const struct route *rt, size_t i)
{
	if (refusals[i].status == 404 || refusals[i].status == 409)
		return refusals[i].status == 404 && strchr(rt->pattern, ':');
	return (!refusals[i].only || (rt->flags & refusals[i].only)) &&
	       !(rt->flags & refusals[i].never);
}

struct doc {
	struct json_object *paths, *schemas, *responses;
	struct openapi_problems *p;
	/* each body's schema once, named after its first route */
	const struct field_spec *body_spec[64];
	const char *body_name[64];
	char names[64][64];
	size_t nbodies;
};

/* "org_users_create" → "OrgUsersCreate" + suffix */
static void camel(const char *snake, const char *suffix, char *out, size_t len)
{
	size_t n = 0;
	bool up = true;

	for (const char *s = snake; *s && n + 1 < len; s++) {
		if (*s == '_') {
			up = true;
			continue;
		}
		out[n++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
		up = false;
	}
	snprintf(out + n, len - n, "%s", suffix);
}

/* ":orgId" → "{orgId}" */
static void templated(const char *pattern, char *out, size_t len)
{
	size_t n = 0;

	for (const char *s = pattern; *s && n + 2 < len;) {
		if (*s == ':') {
			size_t k = strcspn(s + 1, "/");

			n += (size_t)snprintf(out + n, len - n, "{%.*s}", (int)k, s + 1);
			s += k + 1;
		} else {
			out[n++] = *s++;
		}
	}
	out[n < len ? n : len - 1] = '\0';
}

static struct json_object *str(const char *s)
{
	return json_object_new_string(s);
}

static struct json_object *ref_to(const char *where, const char *name)
{
	struct json_object *o = json_object_new_object();
	char ref[160];

	snprintf(ref, sizeof(ref), "#/components/%s/%s", where, name);
	json_object_object_add(o, "$ref", str(ref));
	return o;
}

/* The shared answer for one error status, in components.responses. */
static struct json_object *error_response(struct doc *d, int status)
{
	char name[16], desc[600];
	size_t n = 0;
	const char *why = "";
	int codes = 0;

	snprintf(name, sizeof(name), "Error%d", status);
	if (json_object_object_get_ex(d->responses, name, NULL))
		return ref_to("responses", name);
	const char *nginx_code = NULL;

	for (size_t i = 0; i < countof(refusals); i++)
		if (refusals[i].status == status) {
			why = refusals[i].why;
			nginx_code = refusals[i].nginx_code;
		}
	n = (size_t)snprintf(desc, sizeof(desc), "%s Codes:", why);
	if (nginx_code) {
		snprintf(desc + n, sizeof(desc) - n, " %s", nginx_code);
		codes++;
	}
	for (int e = 0; e < E__MAX && !nginx_code && n < sizeof(desc); e++)
		if (api_errors[e].status == status && e != E_DB_ERROR) {
			n +=
			    (size_t)snprintf(desc + n, sizeof(desc) - n, " %s", api_errors[e].code);
			codes++;
		}
	if (codes == 0)
		openapi_problem(d->p, "status %d has no error code (http/reply.c api_errors)",
		    status);
	{
		struct json_object *r = json_object_new_object(), *c = json_object_new_object();
		struct json_object *m = json_object_new_object();

		json_object_object_add(r, "description", str(desc));
		if (status == 429 || status == 503) {
			struct json_object *h = json_object_new_object(),
			                   *ra = json_object_new_object();
			struct json_object *s = json_object_new_object();

			json_object_object_add(s, "type", str("integer"));
			json_object_object_add(ra, "description", str("seconds to wait"));
			json_object_object_add(ra, "schema", s);
			json_object_object_add(h, "Retry-After", ra);
			json_object_object_add(r, "headers", h);
		}
		openapi_schema_add(d->schemas, "ErrorEnvelope", d->p);
		json_object_object_add(m, "schema", openapi_ref("ErrorEnvelope"));
		json_object_object_add(c, "application/json", m);
		json_object_object_add(r, "content", c);
		json_object_object_add(d->responses, name, r);
	}
	return ref_to("responses", name);
}

/* The schema a route names; "@record" and "@page" are its entity's. */
static const char *schema_name(const struct route *rt, char *buf, size_t len)
{
	if (rt->schema && rt->schema[0] == '@' && rt->entity) {
		openapi_record_name(rt->entity, strcmp(rt->schema, "@page") == 0 ? "Page" : NULL,
		    buf, len);
		return buf;
	}
	return rt->schema;
}

static struct json_object *success_response(struct doc *d, const struct route *rt, int status,
    const char *schema)
{
	struct json_object *r = json_object_new_object(), *content;
	const char *media;

	json_object_object_add(r, "description", str(http_status_text(status)));
	if (!schema)
		return r;
	openapi_schema_add(d->schemas, schema, d->p);
	content = json_object_new_object();
	media = openapi_schema_media(schema);
	for (const char *m = media; *m;) {
		size_t n = strcspn(m, " ");
		char type[64];
		struct json_object *mt = json_object_new_object();

		snprintf(type, sizeof(type), "%.*s", (int)n, m);
		if (strcmp(type, "application/json") == 0 || strcmp(media, type) == 0) {
			json_object_object_add(mt, "schema", openapi_ref(schema));
		} else {
			struct json_object *s = json_object_new_object();

			json_object_object_add(s, "type", str("string"));
			json_object_object_add(mt, "schema", s);
		}
		json_object_object_add(content, type, mt);
		m += n;
		m += strspn(m, " ");
	}
	json_object_object_add(r, "content", content);
	if (rt->etag) {
		struct json_object *h = json_object_new_object(), *e = json_object_new_object();
		struct json_object *s = json_object_new_object();

		json_object_object_add(s, "type", str("string"));
		json_object_object_add(e, "description", str("send it back in If-None-Match"));
		json_object_object_add(e, "schema", s);
		json_object_object_add(h, "ETag", e);
		json_object_object_add(r, "headers", h);
	}
	return r;
}

static void add_status(int *list, size_t *n, int status)
{
	for (size_t i = 0; i < *n; i++)
		if (list[i] == status)
			return;
	list[(*n)++] = status;
}

static int by_value(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static struct json_object *responses(struct doc *d, const struct route *rt)
{
	struct json_object *o = json_object_new_object();
	int err[32];
	size_t n = 0;
	char key[8];

	char buf[96];

	snprintf(key, sizeof(key), "%d", rt->status);
	json_object_object_add(o, key,
	    success_response(d, rt, rt->status, schema_name(rt, buf, sizeof(buf))));
	if (rt->alt_status) {
		snprintf(key, sizeof(key), "%d", rt->alt_status);
		json_object_object_add(o, key,
		    success_response(d, rt, rt->alt_status, rt->alt_schema));
	}
	if (rt->etag) {
		struct json_object *nm = json_object_new_object();

		json_object_object_add(nm, "description",
		    str("Not Modified: If-None-Match names the current ETag."));
		json_object_object_add(o, "304", nm);
	}
	for (size_t i = 0; i < countof(refusals); i++)
		if (pipeline_refuses(rt, i))
			add_status(err, &n, refusals[i].status);
	for (const char *s = rt->errors; s && *s;) {
		char *end;
		long v = strtol(s, &end, 10);

		if (end == s || v < 400 || v > 599) {
			openapi_problem(d->p, "route %s: ERRORS(\"%s\") is not a list of statuses",
			    rt->name, rt->errors);
			break;
		}
		if (n < countof(err))
			add_status(err, &n, (int)v);
		s = end + strspn(end, " ");
	}
	qsort(err, n, sizeof(err[0]), by_value);
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%d", err[i]);
		json_object_object_add(o, key, error_response(d, err[i]));
	}
	return o;
}

static struct json_object *param(const char *name, const char *in, bool required,
    struct json_object *schema, const char *desc)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", str(name));
	json_object_object_add(o, "in", str(in));
	if (desc)
		json_object_object_add(o, "description", str(desc));
	json_object_object_add(o, "required", json_object_new_boolean(required));
	json_object_object_add(o, "schema", schema);
	return o;
}

static struct json_object *parameters(const struct route *rt)
{
	struct json_object *a = json_object_new_array();

	for (const char *s = strchr(rt->pattern, ':'); s; s = strchr(s + 1, ':')) {
		char name[64];
		struct field_spec f = {name, FT_STRING, 0, 0, 0, NULL};

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(s + 1, "/"), s + 1);
		/* ids in paths are UUIDs; anything else is answered 404 */
		if (strcmp(name, "id") == 0 || strcmp(name, "orgId") == 0)
			f.type = FT_UUID;
		json_object_array_add(a, param(name, "path", true, openapi_field_schema(&f), NULL));
	}
	for (const struct field_spec *f = rt->query; f && f->name; f++) {
		struct json_object *p = param(f->name, "query", f->flags & FIELD_REQUIRED,
		    openapi_field_schema(f), f->type == FT_BOOL ? "a flag: present or not" : NULL);

		if (f->type == FT_BOOL)
			json_object_object_add(p, "allowEmptyValue", json_object_new_boolean(1));
		json_object_array_add(a, p);
	}
	if (rt->etag) {
		struct json_object *s = json_object_new_object();

		json_object_object_add(s, "type", str("string"));
		json_object_array_add(a, param("If-None-Match", "header", false, s,
		                             "the ETag of the copy the client holds"));
	}
	return a;
}

/* The request body's schema, named after the first route that takes it. */
static struct json_object *request_body(struct doc *d, const struct route *rt)
{
	const struct field_spec *spec = rt->body;
	const char *name = NULL;
	struct json_object *o, *c, *m;

	if (!spec && rt->entity && (rt->flags & RF_JSON_BODY))
		spec = tenant_spec(rt->entity, strcmp(rt->method, "POST") == 0);
	if (!spec) {
		if (rt->flags & RF_JSON_BODY)
			openapi_problem(d->p, "route %s takes a JSON body but names no BODY(...)",
			    rt->name);
		return NULL;
	}
	if (!(rt->flags & RF_JSON_BODY))
		openapi_problem(d->p, "route %s names a BODY(...) without RF_JSON_BODY", rt->name);
	for (size_t i = 0; i < d->nbodies; i++)
		if (d->body_spec[i] == spec)
			name = d->body_name[i];
	if (!name && d->nbodies < countof(d->body_spec)) {
		size_t i = d->nbodies++;

		camel(rt->name, "Body", d->names[i], sizeof(d->names[i]));
		d->body_spec[i] = spec;
		d->body_name[i] = name = d->names[i];
		json_object_object_add(d->schemas, name, openapi_spec_schema(spec));
	}
	o = json_object_new_object();
	c = json_object_new_object();
	m = json_object_new_object();
	json_object_object_add(o, "required",
	    json_object_new_boolean(!(rt->flags & RF_JSON_OPTIONAL)));
	json_object_object_add(m, "schema", openapi_ref(name ? name : "ErrorEnvelope"));
	json_object_object_add(c, "application/json", m);
	json_object_object_add(o, "content", c);
	return o;
}

/* Who may call: [] for public routes; a token, or a session (with the CSRF
 * header on unsafe methods); {} first when loopback needs nothing. */
static struct json_object *security(const struct route *rt)
{
	struct json_object *a = json_object_new_array(), *bearer, *session;
	bool unsafe = strcmp(rt->method, "GET") != 0;

	if (rt->flags & RF_PUBLIC)
		return a;
	if (rt->flags & RF_LOOPBACK)
		json_object_array_add(a, json_object_new_object());
	bearer = json_object_new_object();
	json_object_object_add(bearer, "bearerToken", json_object_new_array());
	session = json_object_new_object();
	json_object_object_add(session, "sessionCookie", json_object_new_array());
	if (unsafe)
		json_object_object_add(session, "csrfToken", json_object_new_array());
	json_object_array_add(a, bearer);
	json_object_array_add(a, session);
	return a;
}

static const char *tag(const struct route *rt, char *buf, size_t len)
{
	if ((rt->flags & RF_MONITOR) || strcmp(rt->pattern, "/openapi.json") == 0)
		return "system";
	if (rt->entity)
		return "records";
	snprintf(buf, len, "%.*s", (int)strcspn(rt->pattern + 1, "/"), rt->pattern + 1);
	return buf;
}

static const char *who(const struct route *rt, char *buf, size_t len)
{
	const char *perm = perm_name(rt->perm);

	if (rt->flags & RF_PUBLIC)
		snprintf(buf, len, "Anyone.");
	else if (rt->flags & RF_LOOPBACK)
		snprintf(buf, len, "Loopback without credentials, or the permission %s.", perm);
	else if (perm)
		snprintf(buf, len, "Needs the permission %s.", perm);
	else
		snprintf(buf, len, "Any signed-in caller.");
	if ((rt->flags & (RF_LEGAL_EXEMPT | RF_PUBLIC)) == RF_LEGAL_EXEMPT)
		snprintf(buf + strlen(buf), len - strlen(buf),
		    " Reachable while legal documents wait for acceptance.");
	else if (rt->flags & RF_LEGAL_CONTAIN)
		snprintf(buf + strlen(buf), len - strlen(buf),
		    " Reachable while legal documents wait for acceptance (Legal-Pending lists "
		    "them).");
	return buf;
}

static struct json_object *operation(struct doc *d, const struct route *rt)
{
	struct json_object *op = json_object_new_object(), *tags = json_object_new_array(), *body;
	struct json_object *params = parameters(rt);
	char buf[256];

	json_object_array_add(tags, str(tag(rt, buf, sizeof(buf))));
	json_object_object_add(op, "tags", tags);
	json_object_object_add(op, "operationId", str(rt->name));
	json_object_object_add(op, "description", str(who(rt, buf, sizeof(buf))));
	if (rt->perm != P_NONE)
		json_object_object_add(op, "x-opsd-permission", str(perm_name(rt->perm)));
	json_object_object_add(op, "security", security(rt));
	if (json_object_array_length(params) > 0)
		json_object_object_add(op, "parameters", params);
	else
		json_object_put(params);
	if ((body = request_body(d, rt)) != NULL)
		json_object_object_add(op, "requestBody", body);
	if (rt->status < 200 || rt->status > 299)
		openapi_problem(d->p, "route %s names no success status: RESP(status, schema)",
		    rt->name);
	json_object_object_add(op, "responses", responses(d, rt));
	return op;
}

static struct json_object *security_schemes(void)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_object();
	struct json_object *c = json_object_new_object(), *x = json_object_new_object();

	json_object_object_add(b, "type", str("http"));
	json_object_object_add(b, "scheme", str("bearer"));
	json_object_object_add(b, "description",
	    str("An API token from POST /auth/tokens: it holds the scopes it was given."));
	json_object_object_add(c, "type", str("apiKey"));
	json_object_object_add(c, "in", str("cookie"));
	json_object_object_add(c, "name", str(SESSION_COOKIE_NAME));
	json_object_object_add(c, "description",
	    str("The session cookie set by POST /auth/login; unsafe methods also need "
	        "X-CSRF-Token."));
	json_object_object_add(x, "type", str("apiKey"));
	json_object_object_add(x, "in", str("header"));
	json_object_object_add(x, "name", str("X-CSRF-Token"));
	json_object_object_add(x, "description",
	    str("The csrfToken of POST /auth/login or GET /auth/me, with a session cookie on "
	        "POST, PATCH and DELETE."));
	json_object_object_add(o, "bearerToken", b);
	json_object_object_add(o, "sessionCookie", c);
	json_object_object_add(o, "csrfToken", x);
	return o;
}

struct json_object *openapi_document(struct openapi_problems *p)
{
	struct doc d = {.p = p};
	struct json_object *doc = json_object_new_object(), *info = json_object_new_object();
	struct json_object *comp = json_object_new_object();

	d.paths = json_object_new_object();
	d.schemas = json_object_new_object();
	d.responses = json_object_new_object();
	json_object_object_add(info, "title", str("opsd"));
	json_object_object_add(info, "version", str(PACKAGE_VERSION));
	json_object_object_add(info, "description",
	    str("The operations API of opsd. Conventions (bodies, ids, times, paging, the error "
	        "envelope): README \"API\". Generated from opsd's route table."));
	json_object_object_add(doc, "openapi", str("3.1.0"));
	json_object_object_add(doc, "info", info);
	for (size_t i = 0; i < nroutes; i++) {
		const struct route *rt = &routes[i];
		struct json_object *item;
		char path[256], method[8];

		if (rt->flags & RF_TEST_ONLY)
			continue;
		templated(rt->pattern, path, sizeof(path));
		if (!json_object_object_get_ex(d.paths, path, &item)) {
			item = json_object_new_object();
			json_object_object_add(d.paths, path, item);
		}
		snprintf(method, sizeof(method), "%s", rt->method);
		for (char *c = method; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		json_object_object_add(item, method, operation(&d, rt));
	}
	json_object_object_add(doc, "paths", d.paths);
	json_object_object_add(comp, "schemas", d.schemas);
	json_object_object_add(comp, "responses", d.responses);
	json_object_object_add(comp, "securitySchemes", security_schemes());
	json_object_object_add(doc, "components", comp);
	return doc;
}

/* ---- GET /openapi.json --------------------------------------------------- */

static void log_problem(const char *problem, void *ctx)
{
	(void)ctx;
	log_msg(LL_ERROR, "openapi_problem", "%s", problem);
}

/* Built on the first request of each worker: the table does not change
 * while the binary runs. */
static struct {
	char *text;
	size_t len;
	char etag[24];
} served;

static bool served_ready(void)
{
	struct openapi_problems p = {log_problem, NULL, 0};
	struct json_object *doc;
	const char *s;
	size_t n = 0;
	char sha[65];

	if (served.text)
		return true;
	doc = openapi_document(&p);
	s = json_object_to_json_string_length(doc,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	served.text = malloc(n + 1);
	if (served.text) {
		memcpy(served.text, s, n);
		served.text[n] = '\n';
		served.len = n + 1;
		sha256_hex(served.text, served.len, sha);
		snprintf(served.etag, sizeof(served.etag), "\"%.16s\"", sha);
	}
	json_object_put(doc);
	return served.text != NULL;
}

void api_openapi(struct req *r)
{
	if (!served_ready()) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return;
	}
	reply_header(r, "ETag", served.etag);
	/* Cacheable, revalidated: an upgrade changes it. */
	reply_header(r, "Cache-Control", "no-cache");
	if (req_etag_matches(r, served.etag)) {
		reply_empty(r, 304);
		return;
	}
	reply_raw(r, 200, "application/json", served.text, served.len);
}
