/* The API document (api/openapi.c) built from the route table: no problem
 * reported, one operation per route but the test-only ones, every $ref
 * resolves, bodies follow their field tables, and the refusals follow the
 * pipeline's policy. A route added without RESP or BODY fails here (and
 * the build, which writes openapi.json with opsctl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/openapi.h"
#include "api/routes.h"
#include "api/specs.h"
#include "core/audit_query.h"
#include "http/router.h"

static void print_problem(const char *problem, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "problem: %s\n", problem);
}

static struct json_object *doc;

static int setup(void **state)
{
	struct openapi_problems p = {print_problem, NULL, 0};

	(void)state;
	doc = openapi_document(&p);
	return p.n != 0;
}

static int teardown(void **state)
{
	(void)state;
	json_object_put(doc);
	return 0;
}

static struct json_object *at(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v))
		fail_msg("no \"%s\" in %s", k, json_object_to_json_string(o));
	return v;
}

static struct json_object *op(const char *path, const char *method)
{
	return at(at(at(doc, "paths"), path), method);
}

static void test_every_route(void **state)
{
	size_t n = 0, ops = 0;

	(void)state;
	assert_string_equal(json_object_get_string(at(doc, "openapi")), "3.1.0");
	for (size_t i = 0; i < nroutes; i++) {
		char path[256], method[8];
		size_t k = 0;

		if (routes[i].flags & RF_TEST_ONLY)
			continue;
		n++;
		for (const char *s = routes[i].pattern; *s && k + 2 < sizeof(path);) {
			if (*s == ':') {
				size_t len = strcspn(s + 1, "/");

				k += (size_t)snprintf(path + k, sizeof(path) - k, "{%.*s}",
				    (int)len, s + 1);
				s += len + 1;
			} else {
				path[k++] = *s++;
			}
		}
		path[k] = '\0';
		for (k = 0; routes[i].method[k] && k + 1 < sizeof(method); k++)
			method[k] = (char)(routes[i].method[k] - 'A' + 'a');
		method[k] = '\0';
		assert_string_equal(json_object_get_string(at(op(path, method), "operationId")),
		    routes[i].name);
	}
	json_object_object_foreach (at(doc, "paths"), p, item) {
		assert_null(strstr(p, "__test"));
		ops += (size_t)json_object_object_length(item);
	}
	assert_int_equal(ops, n);
}

/* Every "$ref" names something the document holds. */
static void refs_resolve(struct json_object *o)
{
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			refs_resolve(json_object_array_get_idx(o, i));
		return;
	}
	if (!json_object_is_type(o, json_type_object))
		return;
	json_object_object_foreach (o, k, v) {
		if (strcmp(k, "$ref") == 0) {
			char ref[160], *part, *save = NULL;
			struct json_object *cur = doc;

			snprintf(ref, sizeof(ref), "%s", json_object_get_string(v));
			assert_true(strncmp(ref, "#/", 2) == 0);
			for (part = strtok_r(ref + 2, "/", &save); part;
			     part = strtok_r(NULL, "/", &save))
				cur = at(cur, part);
			assert_non_null(cur);
		} else {
			refs_resolve(v);
		}
	}
}

static void test_refs_resolve(void **state)
{
	(void)state;
	refs_resolve(doc);
}

static void test_body_from_field_table(void **state)
{
	struct json_object *body, *schema, *props, *req;

	(void)state;
	body = at(at(at(op("/auth/login", "post"), "requestBody"), "content"), "application/json");
	assert_string_equal(json_object_get_string(at(at(body, "schema"), "$ref")),
	    "#/components/schemas/AuthLoginBody");
	schema = at(at(at(doc, "components"), "schemas"), "AuthLoginBody");
	props = at(schema, "properties");
	req = at(schema, "required");
	assert_int_equal(json_object_object_length(props), 2);
	assert_int_equal(json_object_array_length(req), 2);
	assert_int_equal(json_object_get_int(at(at(props, "email"), "maxLength")),
	    auth_login_spec[0].max);
	assert_false(json_object_get_boolean(at(schema, "additionalProperties")));
	/* nullable: ["string", "null"] */
	schema = at(at(at(doc, "components"), "schemas"), "TokensCreateBody");
	assert_string_equal(
	    json_object_to_json_string(at(at(at(schema, "properties"), "expiresAt"), "type")),
	    "[ \"string\", \"null\" ]");
	/* tenant bodies come from the entity table */
	body = at(at(at(op("/orgs/{orgId}/projects", "post"), "requestBody"), "content"),
	    "application/json");
	schema = at(at(at(doc, "components"), "schemas"), "ProjectsCreateBody");
	assert_non_null(at(at(schema, "properties"), "budget"));
	(void)body;
}

static void test_refusals(void **state)
{
	struct json_object *r;

	(void)state;
	/* public, no database, no body: no 401, 404, 415 or 503 */
	r = at(op("/healthz", "get"), "responses");
	assert_false(json_object_object_get_ex(r, "401", NULL));
	assert_false(json_object_object_get_ex(r, "503", NULL));
	assert_false(json_object_object_get_ex(r, "415", NULL));
	assert_false(json_object_object_get_ex(r, "429", NULL)); /* monitoring */
	assert_true(json_object_object_get_ex(r, "200", NULL));
	/* a JSON write under a path parameter, with a handler conflict */
	r = at(op("/orgs/{orgId}/users/{id}", "patch"), "responses");
	for (const char *const *s = (const char *const[]){"200", "400", "401", "403", "404", "409",
	         "413", "415", "429", "500", "503", NULL};
	     *s; s++)
		assert_true(json_object_object_get_ex(r, *s, NULL));
	assert_string_equal(json_object_get_string(at(at(r, "404"), "$ref")),
	    "#/components/responses/Error404");
	/* the ETag routes answer 304 */
	assert_true(
	    json_object_object_get_ex(at(op("/openapi.json", "get"), "responses"), "304", NULL));
	/* 204 has no content */
	assert_false(json_object_object_get_ex(
	    at(at(op("/orgs/{orgId}/users/{id}", "delete"), "responses"), "204"), "content", NULL));
}

/* GET /audit documents every filter core/audit_query.h takes. */
static void test_audit_filters(void **state)
{
	(void)state;
	for (int f = 0; f < AF__MAX; f++) {
		const struct field_spec *q = audit_list_query;

		while (q->name && strcmp(q->name, audit_filter_names[f]) != 0)
			q++;
		if (!q->name)
			fail_msg("GET /audit's query table lacks the filter %s",
			    audit_filter_names[f]);
	}
}

static void test_unknown_schema_is_a_problem(void **state)
{
	struct openapi_problems p = {NULL, NULL, 0};
	struct json_object *schemas = json_object_new_object();

	(void)state;
	openapi_schema_add(schemas, "NoSuchThing", &p);
	assert_int_equal(p.n, 1);
	assert_false(json_object_object_get_ex(schemas, "NoSuchThing", NULL));
	openapi_schema_add(schemas, "UserPage", &p);
	assert_int_equal(p.n, 1);
	assert_true(json_object_object_get_ex(schemas, "User", NULL));
	json_object_put(schemas);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_route),
	    cmocka_unit_test(test_refs_resolve),
	    cmocka_unit_test(test_body_from_field_table),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_audit_filters),
	    cmocka_unit_test(test_unknown_schema_is_a_problem),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
