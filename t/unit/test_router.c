#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/router.h"
#include "lib/arena.h"
#include "lib/util.h"

/* The routes below leave the fields the API document reads (body, status…)
 * out: matching never reads them. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static void h_a(struct req *r)
{
	(void)r;
}

static const struct route table[] = {
    {"GET", "/", h_a, P_NONE, RF_PUBLIC, "root", NULL},
    {"GET", "/healthz", h_a, P_NONE, RF_PUBLIC, "healthz", NULL},
    {"GET", "/users/:id", h_a, P_NONE, 0, "user_get", NULL},
    {"GET", "/users/me", h_a, P_NONE, 0, "user_me", NULL},
    {"DELETE", "/users/:id", h_a, P_NONE, 0, "user_delete", NULL},
    {"PATCH", "/users/:id", h_a, P_NONE, 0, "user_patch", NULL},
    {"POST", "/users", h_a, P_NONE, 0, "user_create", NULL},
    {"GET", "/legal/:type/versions/:version", h_a, P_NONE, 0, "legal_version", NULL},
    {"GET", "/legal/:type/versions/latest", h_a, P_NONE, 0, "legal_latest", NULL},
    {"GET", "/a/:x/c", h_a, P_NONE, 0, "a_x_c", NULL},
    {"GET", "/:y/b/c", h_a, P_NONE, 0, "y_b_c", NULL},
    {"POST", "/__test/echo", h_a, P_NONE, RF_TEST_ONLY, "test_echo", NULL},
    {"GET", "/__test/echo", h_a, P_NONE, 0, "echo_get", NULL},
};

static struct arena *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(4096);
	return A == NULL;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

struct result {
	enum route_result rc;
	const struct route *r;
	struct route_params p;
	char allow[64];
};

static struct result match(const char *method, const char *path, bool test_routes)
{
	struct result res;
	memset(&res, 0x5A, sizeof(res));
	res.rc = router_match(table, countof(table), method, path, test_routes, A, &res.r, &res.p,
	    res.allow, sizeof(res.allow));
	if (res.rc != ROUTE_FOUND)
		assert_null(res.r);
	return res;
}

static void expect_route(const char *method, const char *path, const char *name)
{
	struct result res = match(method, path, false);
	if (res.rc != ROUTE_FOUND || strcmp(res.r->name, name) != 0)
		fail_msg("%s %s: rc %d, route %s, want %s", method, path, res.rc,
		    res.r ? res.r->name : "-", name);
}

static void test_literal_routes(void **state)
{
	(void)state;
	expect_route("GET", "/", "root");
	expect_route("GET", "/healthz", "healthz");
	expect_route("HEAD", "/healthz", "healthz");
	expect_route("POST", "/users", "user_create");
	struct result res = match("GET", "/healthz", false);
	assert_int_equal(res.p.n, 0);
}

static void test_not_found(void **state)
{
	(void)state;
	static const char *const paths[] = {
	    "/healthz/",
	    "/healthzz",
	    "/health",
	    "//healthz",
	    "/users//x",
	    "/users/x/",
	    "/nope",
	    "",
	    "healthz",
	    "/users/1/2",
	    "/legal/tos/versions",
	    "/a/b/c/d",
	};
	for (size_t i = 0; i < countof(paths); i++) {
		struct result res = match("GET", paths[i], false);
		if (res.rc != ROUTE_NOT_FOUND)
			fail_msg("%s: rc %d", paths[i], res.rc);
	}
	assert_int_equal(match("GET", NULL, false).rc, ROUTE_NOT_FOUND);
	char deep[200] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "/x");
	assert_int_equal(match("GET", deep, false).rc, ROUTE_NOT_FOUND);
}

static void test_params(void **state)
{
	(void)state;
	struct result res = match("GET", "/legal/terms%20of%20use/versions/3", false);
	assert_int_equal(res.rc, ROUTE_FOUND);
	assert_string_equal(res.r->name, "legal_version");
	assert_int_equal(res.p.n, 2);
	assert_string_equal(res.p.name[0], "type");
	assert_string_equal(res.p.value[0], "terms of use");
	assert_string_equal(res.p.name[1], "version");
	assert_string_equal(res.p.value[1], "3");
	res = match("DELETE", "/users/caf%C3%A9+x", false);
	assert_int_equal(res.rc, ROUTE_FOUND);
	assert_string_equal(res.p.value[0], "caf\xC3\xA9+x"); /* '+' is literal in a path */
}

static void test_literal_beats_param(void **state)
{
	(void)state;
	expect_route("GET", "/users/me", "user_me");
	expect_route("GET", "/users/mee", "user_get");
	expect_route("GET", "/legal/tos/versions/latest", "legal_latest");
	expect_route("GET", "/legal/tos/versions/2", "legal_version");
	/* leftmost literal wins when both have as many literals */
	expect_route("GET", "/a/b/c", "a_x_c");
	expect_route("GET", "/z/b/c", "y_b_c");
	/* a literal GET route does not hide the parameter route's other methods */
	expect_route("DELETE", "/users/me", "user_delete");
}

static void test_bad_path(void **state)
{
	(void)state;
	static const char *const paths[] = {
	    "/users/a%2Fb",
	    "/users/a%2fb",
	    "/users/%00",
	    "/users/%",
	    "/users/%zz",
	    "/users/%4",
	};
	for (size_t i = 0; i < countof(paths); i++) {
		struct result res = match("GET", paths[i], false);
		if (res.rc != ROUTE_BAD_PATH)
			fail_msg("%s: rc %d", paths[i], res.rc);
	}
	/* a literal route never decodes, so a bad escape there is just not found */
	assert_int_equal(match("GET", "/healthz%", false).rc, ROUTE_NOT_FOUND);
}

static void test_method_not_allowed(void **state)
{
	(void)state;
	struct result res = match("PUT", "/users/42", false);
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	assert_string_equal(res.allow, "GET, HEAD, DELETE, PATCH");
	res = match("POST", "/users/me", false);
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	assert_string_equal(res.allow, "GET, HEAD, DELETE, PATCH");
	res = match("GET", "/users", false);
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	assert_string_equal(res.allow, "POST");
	res = match("HEAD", "/users", false);
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	res = match("BREW", "/healthz", false);
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	assert_string_equal(res.allow, "GET, HEAD");
	res = match("get", "/healthz", false); /* methods are case-sensitive (RFC 9110 §9.1) */
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	/* a short Allow buffer is truncated, not overrun */
	char allow[8];
	const struct route *r;
	struct route_params p;
	assert_int_equal(router_match(table, countof(table), "PUT", "/users/1", false, A, &r, &p,
	                     allow, sizeof(allow)),
	    ROUTE_BAD_METHOD);
	assert_true(strlen(allow) < sizeof(allow));
}

static void test_test_only(void **state)
{
	(void)state;
	struct result res = match("POST", "/__test/echo", false);
	assert_int_equal(res.rc, ROUTE_BAD_METHOD);
	assert_string_equal(res.allow, "GET, HEAD"); /* the hidden POST is not advertised */
	res = match("POST", "/__test/echo", true);
	assert_int_equal(res.rc, ROUTE_FOUND);
	assert_string_equal(res.r->name, "test_echo");
	res = match("PUT", "/__test/echo", true);
	assert_string_equal(res.allow, "POST, GET, HEAD");
}

static char problems[2048];

static void collect(const char *problem, void *ctx)
{
	int *n = ctx;
	(*n)++;
	size_t used = strlen(problems);
	snprintf(problems + used, sizeof(problems) - used, "%s\n", problem);
}

static int check(const struct route *t, size_t n)
{
	int calls = 0;
	problems[0] = '\0';
	int rc = router_check_table(t, n, collect, &calls);
	assert_int_equal(rc, calls);
	return rc;
}

static void test_check_table(void **state)
{
	(void)state;
	assert_int_equal(check(table, countof(table)), 0);
	static const struct {
		struct route r;
		const char *why;
	} bad[] = {
	    {{"GET", "users", h_a, P_NONE, 0, "x", NULL}, "must start with '/'"},
	    {{"GET", "/users/", h_a, P_NONE, 0, "x", NULL}, "empty segment"},
	    {{"GET", "/a//b", h_a, P_NONE, 0, "x", NULL}, "empty segment"},
	    {{"GET", "/a/:", h_a, P_NONE, 0, "x", NULL}, "empty parameter name"},
	    {{"GET", "/a/:x/:x", h_a, P_NONE, 0, "x", NULL}, "duplicate parameter name"},
	    {{"GET", "/a/b:c", h_a, P_NONE, 0, "x", NULL}, "':' may only start a segment"},
	    {{"GET", "/a/:x-y", h_a, P_NONE, 0, "x", NULL}, "parameter names"},
	    {{"GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i", h_a, P_NONE, 0, "x", NULL},
	        "too many parameters"},
	    {{"get", "/x", h_a, P_NONE, 0, "x", NULL}, "method must be"},
	    {{NULL, "/x", h_a, P_NONE, 0, "x", NULL}, "method must be"},
	    {{"GET", "/x", NULL, P_NONE, 0, "x", NULL}, "no handler"},
	    {{"GET", NULL, h_a, P_NONE, 0, "x", NULL}, "must start with '/'"},
	    /* past the legal gate only for those who hold the route's permission */
	    {{"POST", "/x", h_a, P_NONE, RF_LEGAL_CONTAIN, "x", NULL},
	        "a containment route must name a permission"},
	};
	for (size_t i = 0; i < countof(bad); i++) {
		if (check(&bad[i].r, 1) != 1 || strstr(problems, bad[i].why) == NULL)
			fail_msg("pattern #%zu: %s", i, problems);
	}
	const struct route eight[] = {
	    {"GET", "/:a/:b/:c/:d/:e/:f/:g/:h", h_a, P_NONE, 0, "x", NULL},
	};
	assert_int_equal(check(eight, 1), 0);
	const struct route contain[] = {
	    {"POST", "/x", h_a, P_SECURITY_BLOCKLIST, RF_LEGAL_CONTAIN, "x", NULL},
	};
	assert_int_equal(check(contain, 1), 0);
	const struct route dups[] = {
	    {"GET", "/users/:id", h_a, P_NONE, 0, "a", NULL},
	    {"POST", "/users/:id", h_a, P_NONE, 0, "b", NULL},
	    {"GET", "/users/:uid", h_a, P_NONE, 0, "c", NULL},
	    {"GET", "/users/:id", h_a, P_NONE, 0, "d", NULL},
	    {"GET", "/users/me", h_a, P_NONE, 0, "e", NULL},
	};
	assert_int_equal(check(dups, countof(dups)), 2);
	assert_non_null(strstr(problems, "route 2 (GET /users/:uid): duplicate"));
	assert_non_null(strstr(problems, "route 3 (GET /users/:id): duplicate"));
	assert_int_equal(router_check_table(dups, countof(dups), NULL, NULL), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literal_routes),
	    cmocka_unit_test(test_not_found),
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_literal_beats_param),
	    cmocka_unit_test(test_bad_path),
	    cmocka_unit_test(test_method_not_allowed),
	    cmocka_unit_test(test_test_only),
	    cmocka_unit_test(test_check_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
