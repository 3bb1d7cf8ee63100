/* An API token's lifetime (token_expiry): none asked gets the maximum, an
 * asked time must lie after now and within OPSD_TOKEN_MAX_DAYS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/login.h"

#define NOW INT64_C(1796000000000) /* 2026-11-28, in ms */
#define DAY_MS INT64_C(86400000)

static void test_default_is_the_maximum(void **state)
{
	int64_t at = 0;

	(void)state;
	assert_int_equal(token_expiry(NULL, NOW, 90, &at), TOKEN_EXPIRY_OK);
	assert_true(at == NOW + 90 * DAY_MS);
	assert_int_equal(token_expiry(NULL, NOW, 1, &at), TOKEN_EXPIRY_OK);
	assert_true(at == NOW + DAY_MS);
}

static void test_within(void **state)
{
	int64_t at = 0, asked = NOW + 1;

	(void)state;
	assert_int_equal(token_expiry(&asked, NOW, 90, &at), TOKEN_EXPIRY_OK);
	assert_true(at == asked);
	asked = NOW + 90 * DAY_MS; /* exactly the maximum */
	assert_int_equal(token_expiry(&asked, NOW, 90, &at), TOKEN_EXPIRY_OK);
	assert_true(at == asked);
}

static void test_refused(void **state)
{
	int64_t at = 0, asked = NOW + 90 * DAY_MS + 1;

	(void)state;
	assert_int_equal(token_expiry(&asked, NOW, 90, &at), TOKEN_EXPIRY_TOO_LATE);
	asked = NOW + 3650 * DAY_MS;
	assert_int_equal(token_expiry(&asked, NOW, 3650, &at), TOKEN_EXPIRY_OK);
	asked = NOW;
	assert_int_equal(token_expiry(&asked, NOW, 90, &at), TOKEN_EXPIRY_PAST);
	asked = 0;
	assert_int_equal(token_expiry(&asked, NOW, 90, &at), TOKEN_EXPIRY_PAST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_is_the_maximum),
	    cmocka_unit_test(test_within),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
