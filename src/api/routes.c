#include "api.h"
#include "routes.h"
#include "util.h"

#define SYS (RF_PUBLIC | RF_LEGAL_EXEMPT)

/* method, pattern, handler, permission, flags, metric name */
const struct route routes[] = {
	{"GET", "/healthz", api_healthz, NULL, SYS | RF_NO_DB, "healthz"},
	{"GET", "/readyz", api_readyz, NULL, SYS, "readyz"},
	{"GET", "/status", api_status, NULL, SYS | RF_LOOPBACK | RF_NO_DB, "status"},
	{"GET", "/metrics", api_metrics, NULL, SYS | RF_LOOPBACK | RF_NO_DB, "metrics"},

	/* Test-only routes (OPSD_ENV=test): a stuck request for the master's
	 * timeout, a validated echo for the body pipeline, a DB round trip. */
	{"GET", "/__test/sleep", api_test_sleep, NULL, SYS | RF_TEST_ONLY | RF_NO_DB, "test_sleep"},
	{"POST", "/__test/echo", api_test_echo, NULL, SYS | RF_TEST_ONLY | RF_NO_DB | RF_JSON_BODY,
	    "test_echo"},
	{"GET", "/__test/db", api_test_db, NULL, SYS | RF_TEST_ONLY, "test_db"},
};

const size_t nroutes = countof(routes);

const char *const *routes_names(void)
{
	static const char *names[countof(routes)];

	if (!names[0])
		for (size_t i = 0; i < countof(routes); i++)
			names[i] = routes[i].name;
	return names;
}
