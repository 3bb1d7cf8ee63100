#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/arena.h"

static void test_alignment_and_used(void **state)
{
	(void)state;
	struct arena *a = arena_new(1024);
	assert_non_null(a);
	assert_int_equal(arena_used(a), 0);
	for (size_t n = 1; n < 40; n++) {
		void *p = arena_alloc(a, n);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 8, 0);
		memset(p, 0xAB, n);
	}
	assert_true(arena_used(a) >= 39 * 40 / 2);
	arena_free(a);
}

static void test_distinct_memory(void **state)
{
	(void)state;
	struct arena *a = arena_new(256);
	char *p[200];
	for (int i = 0; i < 200; i++) {
		p[i] = arena_alloc(a, 24);
		assert_non_null(p[i]);
		memset(p[i], i, 24);
	}
	for (int i = 0; i < 200; i++)
		for (int k = 0; k < 24; k++)
			assert_int_equal((unsigned char)p[i][k], i);
	arena_free(a);
}

static void test_many_large_and_reset(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	for (int round = 0; round < 3; round++) {
		unsigned char *big[64];
		for (int i = 0; i < 64; i++) {
			big[i] = arena_alloc(a, 100000 + (size_t)i);
			assert_non_null(big[i]);
			memset(big[i], i, 100000 + (size_t)i);
			/* small allocations in between keep working */
			char *s = arena_strdup(a, "small");
			assert_string_equal(s, "small");
		}
		for (int i = 0; i < 64; i++) {
			assert_int_equal(big[i][0], i);
			assert_int_equal(big[i][100000 + i - 1], i);
		}
		assert_true(arena_used(a) >= 64 * 100000);
		arena_reset(a);
		assert_int_equal(arena_used(a), 0);
	}
	arena_free(a);
}

static void test_reset_reuses_first_chunk(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	void *first = arena_alloc(a, 16);
	for (int i = 0; i < 1000; i++)
		assert_non_null(arena_alloc(a, 64));
	arena_reset(a);
	assert_ptr_equal(arena_alloc(a, 16), first);
	arena_free(a);
}

static void test_overflow(void **state)
{
	(void)state;
	struct arena *a = arena_new(1024);
	assert_null(arena_alloc(a, SIZE_MAX));
	assert_null(arena_alloc(a, SIZE_MAX - 3));
	assert_null(arena_calloc(a, SIZE_MAX / 2, 3));
	assert_null(arena_calloc(a, (size_t)1 << 40, (size_t)1 << 40));
	/* still usable afterwards */
	assert_non_null(arena_alloc(a, 8));
	arena_free(a);
}

static void test_calloc_zeroes(void **state)
{
	(void)state;
	struct arena *a = arena_new(256);
	unsigned char *p = arena_alloc(a, 64);
	memset(p, 0xFF, 64);
	arena_reset(a);
	unsigned char *q = arena_calloc(a, 8, 8);
	for (int i = 0; i < 64; i++)
		assert_int_equal(q[i], 0);
	arena_free(a);
}

static void test_strings(void **state)
{
	(void)state;
	struct arena *a = arena_new(64);
	assert_string_equal(arena_strdup(a, ""), "");
	assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
	assert_string_equal(arena_strndup(a, "ab", 10), "ab");
	assert_string_equal(arena_printf(a, "%s-%d", "x", 42), "x-42");
	char longer[5000];
	memset(longer, 'z', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	char *p = arena_printf(a, "<%s>", longer);
	assert_int_equal(strlen(p), sizeof(longer) + 1);
	assert_int_equal(p[0], '<');
	assert_int_equal(p[sizeof(longer)], '>');
	arena_free(a);
}

static void test_zero_size_distinct(void **state)
{
	(void)state;
	struct arena *a = arena_new(256);
	void *x = arena_alloc(a, 0), *y = arena_alloc(a, 0);
	assert_non_null(x);
	assert_non_null(y);
	assert_ptr_not_equal(x, y);
	arena_free(a);
	arena_free(NULL);
}

/* A reset overwrites what the arena held (a request's body): in the first chunk, which stays. */
static void test_reset_wipes(void **state)
{
	(void)state;
	struct arena *a = arena_new(256);
	char *p = arena_strdup(a, "password=hunter2");
	size_t n = strlen(p);
	arena_reset(a);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(p[i], 0);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reset_wipes),
	    cmocka_unit_test(test_alignment_and_used),
	    cmocka_unit_test(test_distinct_memory),
	    cmocka_unit_test(test_many_large_and_reset),
	    cmocka_unit_test(test_reset_reuses_first_chunk),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_calloc_zeroes),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_zero_size_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
