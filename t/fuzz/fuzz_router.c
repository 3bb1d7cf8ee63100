/* The router on the real route table: any method and path (as nginx passes
 * it, not decoded) gets a verdict; a route found fits the method, has one
 * decoded value per ":param" of its pattern, none holding a '/'; a path
 * known under other methods lists them in Allow. Byte 0 picks the method,
 * byte 1 whether the test-only routes exist, the rest is the path. */
#include "fuzz.h"

#include "api/routes.h"
#include "http/router.h"
#include "lib/arena.h"

static struct arena *arena;

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
    "get", "", "TRACE"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	arena = arena_new(4096);
	if (!arena || router_check_table(routes, nroutes, NULL, NULL) != 0)
		abort();
	return 0;
}

static int count_params(const char *pattern)
{
	int n = 0;

	for (const char *p = pattern; (p = strstr(p, "/:")) != NULL; p += 2)
		n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct route *found = NULL;
	struct route_params params;
	char allow[128];
	const char *method;
	bool test_routes;
	enum route_result rr;
	char *path;

	if (size < 2)
		return 0;
	method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	test_routes = data[1] & 1;
	path = fuzz_cstr(data + 2, size - 2);
	rr = router_match(routes, nroutes, method, path, test_routes, arena, &found, &params, allow,
	    sizeof(allow));
	switch (rr) {
	case ROUTE_FOUND:
		if (!found || (!test_routes && (found->flags & RF_TEST_ONLY)))
			abort();
		if (strcmp(found->method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 && strcmp(found->method, "GET") == 0))
			abort();
		if (params.n != count_params(found->pattern))
			abort();
		for (int i = 0; i < params.n; i++)
			if (!params.name[i] || !params.value[i] || strchr(params.value[i], '/'))
				abort();
		break;
	case ROUTE_BAD_METHOD:
		if (found || allow[0] == '\0')
			abort();
		break;
	case ROUTE_NOT_FOUND:
	case ROUTE_BAD_PATH:
		if (found)
			abort();
		break;
	default:
		abort();
	}
	arena_reset(arena);
	free(path);
	return 0;
}
