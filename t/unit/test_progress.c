#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "cli/progress.h"

static void test_bar(void **state)
{
	char out[64];

	(void)state;
	progress_bar(out, sizeof(out), 0, 10);
	assert_string_equal(out, "[..........]");
	progress_bar(out, sizeof(out), 100, 10);
	assert_string_equal(out, "[##########]");
	progress_bar(out, sizeof(out), 47.3, 18); /* 8.5 cells: rounds up */
	assert_string_equal(out, "[#########.........]");
	progress_bar(out, sizeof(out), 4.9, 10); /* rounds down */
	assert_string_equal(out, "[..........]");
	progress_bar(out, sizeof(out), 5, 10);
	assert_string_equal(out, "[#.........]");
}

static void test_bar_bounds(void **state)
{
	char out[256], small[6];

	(void)state;
	progress_bar(out, sizeof(out), -20, 4);
	assert_string_equal(out, "[....]");
	progress_bar(out, sizeof(out), 250, 4);
	assert_string_equal(out, "[####]");
	progress_bar(out, sizeof(out), NAN, 4); /* NaN counts as nothing done */
	assert_string_equal(out, "[....]");
	progress_bar(out, sizeof(out), 50, 0);
	assert_string_equal(out, "[#]");
	progress_bar(out, sizeof(out), 50, 1000);
	assert_int_equal(strlen(out), 202);
	progress_bar(small, sizeof(small), 100, 10);
	assert_string_equal(small, "[####");
}

static void test_eta(void **state)
{
	char out[32];

	(void)state;
	progress_eta(out, sizeof(out), -1);
	assert_string_equal(out, "--:--");
	progress_eta(out, sizeof(out), 0);
	assert_string_equal(out, "0:00");
	progress_eta(out, sizeof(out), 42);
	assert_string_equal(out, "0:42");
	progress_eta(out, sizeof(out), 725);
	assert_string_equal(out, "12:05");
	progress_eta(out, sizeof(out), 3599);
	assert_string_equal(out, "59:59");
	progress_eta(out, sizeof(out), 3723);
	assert_string_equal(out, "1:02:03");
	progress_eta(out, sizeof(out), 100 * 3600);
	assert_string_equal(out, "100:00:00");
}

static void test_thousands(void **state)
{
	char out[32];

	(void)state;
	progress_thousands(out, sizeof(out), 0);
	assert_string_equal(out, "0");
	progress_thousands(out, sizeof(out), 999);
	assert_string_equal(out, "999");
	progress_thousands(out, sizeof(out), 1000);
	assert_string_equal(out, "1,000");
	progress_thousands(out, sizeof(out), 12345);
	assert_string_equal(out, "12,345");
	progress_thousands(out, sizeof(out), 1234567);
	assert_string_equal(out, "1,234,567");
	progress_thousands(out, sizeof(out), -1234567);
	assert_string_equal(out, "-1,234,567");
	progress_thousands(out, sizeof(out), INT64_MAX);
	assert_string_equal(out, "9,223,372,036,854,775,807");
	progress_thousands(out, sizeof(out), INT64_MIN);
	assert_string_equal(out, "-9,223,372,036,854,775,808");
}

static void test_line(void **state)
{
	char out[128];
	struct progress p = {47.3, 12345.4, 42, "copying", false};

	(void)state;
	progress_line(out, sizeof(out), &p, 18);
	assert_string_equal(out, "[#########.........]  47.3%  12,345 rows/s  ETA 0:42  copying");
	p = (struct progress){100, -1, -1, "ready_for_cutover", false};
	progress_line(out, sizeof(out), &p, 4);
	assert_string_equal(out, "[####] 100.0%  - rows/s  ETA --:--  ready_for_cutover");
	p = (struct progress){3.04, 1e300, 0, NULL, true};
	progress_line(out, sizeof(out), &p, 4);
	assert_string_equal(out, "[....]   3.0%  - rows/s  ETA 0:00 (throttled)");
	p = (struct progress){50, 999.5, 5, "copying", true};
	progress_line(out, 20, &p, 4);
	assert_string_equal(out, "[##..]  50.0%  1,00");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bar),
	    cmocka_unit_test(test_bar_bounds),
	    cmocka_unit_test(test_eta),
	    cmocka_unit_test(test_thousands),
	    cmocka_unit_test(test_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
