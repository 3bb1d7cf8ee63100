/* opsctl routes, opsctl roles and opsctl openapi: the route table, the role
 * → permission table and the API document as JSON, without a database. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/openapi.h"
#include "api/routes.h"
#include "cli/cli.h"
#include "core/authz.h"

/* The route table as JSON: the authorization test is generated from it.
 * The routes of test stacks only (OPSD_ENV=test, not in the API document)
 * with --all. */
int cmd_routes(struct opsctl *o)
{
	struct json_object *a = json_object_new_array();
	bool all = opt_flag(o, "--all");

	for (size_t i = 0; i < nroutes; i++) {
		struct json_object *r;

		if ((routes[i].flags & RF_TEST_ONLY) && !all)
			continue;
		r = json_object_new_object();
		json_object_object_add(r, "method", json_object_new_string(routes[i].method));
		json_object_object_add(r, "pattern", json_object_new_string(routes[i].pattern));
		json_object_object_add(r, "permission",
		    routes[i].perm != P_NONE ? json_object_new_string(perm_name(routes[i].perm))
		                             : NULL);
		json_object_object_add(r, "public",
		    json_object_new_boolean(!!(routes[i].flags & RF_PUBLIC)));
		json_object_object_add(r, "testOnly",
		    json_object_new_boolean(!!(routes[i].flags & RF_TEST_ONLY)));
		json_object_object_add(r, "loopback",
		    json_object_new_boolean(!!(routes[i].flags & RF_LOOPBACK)));
		json_object_object_add(r, "legalExempt",
		    json_object_new_boolean(!!(routes[i].flags & RF_LEGAL_EXEMPT)));
		json_object_object_add(r, "legalContainment",
		    json_object_new_boolean(!!(routes[i].flags & RF_LEGAL_CONTAIN)));
		json_object_object_add(r, "csrf",
		    json_object_new_boolean(
		        !(routes[i].flags & RF_PUBLIC) && strcmp(routes[i].method, "GET") != 0));
		json_object_array_add(a, r);
	}
	print_json(a);
	json_object_put(a);
	return EXIT_OK;
}

int cmd_roles(struct opsctl *o)
{
	struct json_object *m = json_object_new_object();

	(void)o;
	for (int r = 0; r < ROLE__MAX; r++) {
		struct json_object *a = json_object_new_array();
		permset p = role_perms(1u << r);

		for (int i = 0; i < PERM__MAX; i++)
			if (perms_have(p, (enum perm)i))
				json_object_array_add(a,
				    json_object_new_string(perm_name((enum perm)i)));
		json_object_object_add(m, role_name((enum role)r), a);
	}
	printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY));
	json_object_put(m);
	return EXIT_OK;
}

static void print_problem(const char *problem, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsctl: openapi: %s\n", problem);
}

/* The document GET /openapi.json serves; the build installs its output.
 * Exit 1 when the route table names something the document cannot say. */
int cmd_openapi(struct opsctl *o)
{
	struct openapi_problems p = {print_problem, NULL, 0};
	struct json_object *doc = openapi_document(&p);

	(void)o;
	printf("%s\n",
	    json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	                                            JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return p.n ? EXIT_FAILED : EXIT_OK;
}
