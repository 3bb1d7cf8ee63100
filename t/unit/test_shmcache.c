#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "infra/shmcache.h"

static void key_of(int n, uint8_t key[SHMC_KEY_LEN])
{
	memset(key, 0, SHMC_KEY_LEN);
	memcpy(key, &n, sizeof(n));
	key[31] = 0x5a;
}

static const uint8_t alice[16] = {1}, bob[16] = {2}, org_a[16] = {9};

/* Stored values come back; a missing key or a short buffer is a miss. */
static void test_put_get(void **state)
{
	(void)state;
	uint8_t k[SHMC_KEY_LEN], other[SHMC_KEY_LEN];
	char out[16];

	key_of(1, k);
	key_of(2, other);
	assert_true(shmcache_put(k, alice, org_a, "hello", 6, shmcache_epoch()));
	assert_int_equal(shmcache_get(k, out, sizeof(out), 0), 6);
	assert_string_equal(out, "hello");
	assert_int_equal(shmcache_get(other, out, sizeof(out), 0), -1);
	assert_int_equal(shmcache_get(k, out, 3, 0), -1);
	shmcache_patch(k, 1, "E", 1);
	assert_int_equal(shmcache_get(k, out, sizeof(out), 0), 6);
	assert_string_equal(out, "hEllo");
	assert_false(shmcache_put(k, alice, NULL, "x", SHMC_VALUE_MAX + 1, shmcache_epoch()));
}

/* A fill that began before an eviction stores nothing: it may hold what was just dropped. */
static void test_epoch_refuses_stale_fill(void **state)
{
	(void)state;
	uint8_t k[SHMC_KEY_LEN];
	char out[8];
	uint64_t e;

	key_of(3, k);
	e = shmcache_epoch();
	assert_int_equal(shmcache_evict(SHMC_USER, bob), 0);
	assert_false(shmcache_put(k, alice, NULL, "old", 4, e));
	assert_int_equal(shmcache_get(k, out, sizeof(out), 0), -1);
}

/* Evictions by user, org, key and all take exactly their entries. */
static void test_evict_scopes(void **state)
{
	(void)state;
	uint8_t k1[SHMC_KEY_LEN], k2[SHMC_KEY_LEN], k3[SHMC_KEY_LEN];
	char out[8];

	shmcache_evict(SHMC_ALL, NULL);
	key_of(10, k1);
	key_of(11, k2);
	key_of(12, k3);
	assert_true(shmcache_put(k1, alice, org_a, "a", 2, shmcache_epoch()));
	assert_true(shmcache_put(k2, bob, org_a, "b", 2, shmcache_epoch()));
	assert_true(shmcache_put(k3, bob, NULL, "c", 2, shmcache_epoch()));
	assert_int_equal(shmcache_evict(SHMC_USER, alice), 1);
	assert_int_equal(shmcache_get(k1, out, sizeof(out), 0), -1);
	assert_int_equal(shmcache_evict(SHMC_ORG, org_a), 1);
	assert_int_equal(shmcache_get(k2, out, sizeof(out), 0), -1);
	assert_int_equal(shmcache_get(k3, out, sizeof(out), 0), 2);
	assert_int_equal(shmcache_evict(SHMC_KEY, k3), 1);
	assert_true(shmcache_put(k1, alice, NULL, "a", 2, shmcache_epoch()));
	assert_int_equal(shmcache_evict(SHMC_ALL, NULL), 1);
	assert_int_equal(shmcache_evict(SHMC_USER, NULL), 0); /* no subject: nothing */
}

/* Keys that share a home slot all fit until the probe window is full; then the oldest goes. */
static void test_collisions(void **state)
{
	(void)state;
	uint8_t k[12][SHMC_KEY_LEN];
	char out[8];
	int found = 0;

	shmcache_evict(SHMC_ALL, NULL);
	for (int i = 0; i < 12; i++) {
		memset(k[i], 0, SHMC_KEY_LEN);
		k[i][31] = (uint8_t)i; /* same first three bytes: same home */
		assert_true(shmcache_put(k[i], alice, NULL, "v", 2, shmcache_epoch()));
	}
	for (int i = 0; i < 12; i++)
		found += shmcache_get(k[i], out, sizeof(out), 0) == 2;
	assert_int_equal(found, 8);
	assert_int_equal(shmcache_get(k[11], out, sizeof(out), 0), 2);
}

/* One poller at a time, again once the interval passed; a stuck claim is taken over; the cache
 * is fresh only after a successful poll, for max_age. */
static void test_poll_claims(void **state)
{
	(void)state;
	uint64_t last = 99;
	int64_t t = 1000000, ok = -1;

	assert_false(shmcache_fresh(t, 1000));
	assert_true(shmcache_poll_claim(t, 250, &last, &ok));
	assert_int_equal(last, 0);
	assert_int_equal(ok, 0);                                     /* never polled */
	assert_false(shmcache_poll_claim(t + 300, 250, &last, &ok)); /* still polling */
	shmcache_poll_done(true, t, 42);
	assert_true(shmcache_fresh(t + 999, 1000));
	assert_false(shmcache_fresh(t + 1000, 1000));
	assert_false(shmcache_poll_claim(t + 100, 250, &last, &ok));
	assert_true(shmcache_poll_claim(t + 400, 250, &last, &ok));
	assert_int_equal(last, 42);
	assert_int_equal(ok, t);
	/* its worker died: after 5 s another takes the poll over */
	assert_false(shmcache_poll_claim(t + 3000, 250, &last, &ok));
	assert_true(shmcache_poll_claim(t + 5400, 250, &last, &ok));
	shmcache_poll_done(true, t + 400,
	    50); /* the dead worker's late report counts for nothing */
	assert_false(shmcache_fresh(t + 5500, 1000));
	shmcache_poll_done(false, t + 5400, 60); /* a failed poll keeps last and freshness */
	assert_true(shmcache_poll_claim(t + 5700, 250, &last, &ok));
	assert_int_equal(last, 42);
	assert_int_equal(ok, t);
	assert_false(shmcache_polled_since(t));
	shmcache_poll_done(true, t + 5700, 7); /* the feed's ids were reset: last goes down */
	assert_true(shmcache_polled_since(t + 5699));
	assert_false(shmcache_polled_since(t + 5700));
	assert_true(shmcache_poll_claim(t + 6000, 250, &last, &ok));
	assert_int_equal(last, 7);
	shmcache_poll_done(true, t + 6000, 7);
}

/* An entry older than the age asked for is a miss, and is gone. */
static void test_max_age(void **state)
{
	(void)state;
	uint8_t k[SHMC_KEY_LEN];
	char out[8];
	struct timespec ts = {0, 20 * 1000 * 1000};

	key_of(77, k);
	assert_true(shmcache_put(k, alice, NULL, "v", 2, shmcache_epoch()));
	assert_int_equal(shmcache_get(k, out, sizeof(out), 60000), 2);
	nanosleep(&ts, NULL);
	assert_int_equal(shmcache_get(k, out, sizeof(out), 60000), 2);
	assert_int_equal(shmcache_get(k, out, sizeof(out), 10), -1);
	assert_int_equal(shmcache_get(k, out, sizeof(out), 0), -1);
}

static void test_first_sight(void **state)
{
	(void)state;
	assert_true(shmcache_first_sight(7));
	assert_false(shmcache_first_sight(7));
	assert_true(shmcache_first_sight(8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get),
	    cmocka_unit_test(test_epoch_refuses_stale_fill),
	    cmocka_unit_test(test_evict_scopes),
	    cmocka_unit_test(test_collisions),
	    cmocka_unit_test(test_poll_claims),
	    cmocka_unit_test(test_first_sight),
	    cmocka_unit_test(test_max_age),
	};

	if (shmcache_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
