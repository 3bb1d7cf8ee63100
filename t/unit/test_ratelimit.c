#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "infra/ratelimit.h"

static const struct rl_limit per_sec = {60, 5}; /* one a second, burst 5 */

/* A new bucket starts full: the burst passes, the next is refused. */
static void test_burst_then_refused(void **state)
{
	(void)state;
	struct rl_bucket b = {0};
	struct rl_verdict v;
	int64_t t = 1000000;

	for (int i = 0; i < 5; i++) {
		rl_take(&b, &per_sec, t, &v);
		assert_true(v.allowed);
		assert_int_equal(v.limit, 5);
		assert_int_equal(v.remaining, 4 - i);
	}
	rl_take(&b, &per_sec, t, &v);
	assert_false(v.allowed);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(v.retry_after, 1);
	assert_int_equal(v.reset_s, 5);
}

/* Refill at the rate, never above the burst. */
static void test_refill(void **state)
{
	(void)state;
	struct rl_bucket b = {0};
	struct rl_verdict v;
	int64_t t = 5000;

	for (int i = 0; i < 6; i++)
		rl_take(&b, &per_sec, t, &v);
	assert_false(v.allowed);
	rl_take(&b, &per_sec, t + 999, &v);
	assert_false(v.allowed);
	rl_take(&b, &per_sec, t + 2000, &v); /* two tokens back since t, one taken */
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 1);
	rl_take(&b, &per_sec, t + 3600 * 1000, &v); /* an hour: full, not 3,600 */
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 4);
}

/* A burst lowered at run time applies at once, in the same millisecond too. */
static void test_burst_lowered(void **state)
{
	(void)state;
	struct rl_bucket b = {0};
	struct rl_verdict v;
	const struct rl_limit wide = {6000, 100}, narrow = {60, 1};
	int64_t t = 10000;

	rl_take(&b, &wide, t, &v);
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 99);
	rl_take(&b, &narrow, t, &v); /* 99 tokens held, 1 allowed: takes it */
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 0);
	rl_take(&b, &narrow, t, &v);
	assert_false(v.allowed);
	rl_take(&b, &narrow, t + 1000, &v);
	assert_true(v.allowed);
}

/* A clock going backwards adds nothing. */
static void test_clock_backwards(void **state)
{
	(void)state;
	struct rl_bucket b = {0};
	struct rl_verdict v;

	for (int i = 0; i < 5; i++)
		rl_take(&b, &per_sec, 10000, &v);
	rl_take(&b, &per_sec, 9000, &v);
	assert_false(v.allowed);
}

static void test_unlimited(void **state)
{
	(void)state;
	struct rl_bucket b = {0};
	struct rl_verdict v;
	struct rl_limit off = {0, 5};

	for (int i = 0; i < 1000; i++) {
		rl_take(&b, &off, 1, &v);
		assert_true(v.allowed);
	}
}

/* Slow rates give whole-second Retry-After values of at least one. */
static void test_retry_after_slow_rate(void **state)
{
	(void)state;
	struct rl_bucket b = {0};
	struct rl_verdict v;
	struct rl_limit slow = {2, 1}; /* one per 30 s */

	rl_take(&b, &slow, 1000, &v);
	assert_true(v.allowed);
	rl_take(&b, &slow, 1000, &v);
	assert_false(v.allowed);
	assert_int_equal(v.retry_after, 30);
	rl_take(&b, &slow, 1000 + 29 * 1000, &v);
	assert_false(v.allowed);
	assert_int_equal(v.retry_after, 1);
}

/* The shared table: one key's bucket, another key's bucket apart. */
static void test_table_keys(void **state)
{
	(void)state;
	struct rl_verdict v;
	bool audit;
	uint64_t since;
	int audits = 0;

	assert_int_equal(ratelimit_init(), 0);
	for (int i = 0; i < 8; i++) {
		ratelimit_check("user:a", &per_sec, &v, &audit, &since);
		audits += audit;
	}
	assert_false(v.allowed);
	assert_int_equal(audits, 1); /* at most one audit a minute per source */
	ratelimit_check("user:b", &per_sec, &v, &audit, &since);
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_refused),
	    cmocka_unit_test(test_refill),
	    cmocka_unit_test(test_burst_lowered),
	    cmocka_unit_test(test_clock_backwards),
	    cmocka_unit_test(test_unlimited),
	    cmocka_unit_test(test_retry_after_slow_rate),
	    cmocka_unit_test(test_table_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
