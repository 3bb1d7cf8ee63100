/* The data key ring (infra/data_key.c) and the anchor keys derived from it
 * (core/audit_hash.c): what a previous key sealed or signed still opens
 * and verifies; the current key seals and signs; a key outside the ring
 * opens nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "infra/config.h"
#include "infra/data_key.h"
#include "lib/crypto.h"
#include "lib/util.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define KEY_C "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000"
#define PLAIN "mysql://orguser:pw-ring-secret@db.internal:3306/org_acme"

static struct opsd_config cfg(const char *current, const char *previous)
{
	struct opsd_config c;

	memset(&c, 0, sizeof(c));
	c.data_key = current ? strdup(current) : NULL;
	c.data_key_previous = previous ? strdup(previous) : NULL;
	return c;
}

static void cfg_free(struct opsd_config *c)
{
	free(c->data_key);
	free(c->data_key_previous);
}

/* PLAIN sealed under key alone. */
static char *sealed_under(const char *key)
{
	struct opsd_config c = cfg(key, NULL);
	struct data_keyring r;
	char *out = malloc(SEALED_LEN(strlen(PLAIN)));

	assert_true(data_keyring_load(&c, &r));
	assert_true(data_keyring_seal(&r, PLAIN, out, SEALED_LEN(strlen(PLAIN))));
	data_keyring_wipe(&r);
	cfg_free(&c);
	return out;
}

static void test_ring_opens_previous(void **state)
{
	(void)state;
	char *under_a = sealed_under(KEY_A), *under_b = sealed_under(KEY_B);
	struct opsd_config c = cfg(KEY_B, KEY_C "," KEY_A);
	struct data_keyring r;
	char out[256];

	assert_true(data_keyring_load(&c, &r));
	assert_int_equal(r.n, 3);
	assert_int_equal(data_keyring_open(&r, under_b, out, sizeof(out)), 0);
	assert_string_equal(out, PLAIN);
	assert_int_equal(data_keyring_open(&r, under_a, out, sizeof(out)), 2);
	assert_string_equal(out, PLAIN);
	assert_int_equal(data_key_open(&c, under_a, out, sizeof(out)), DK_OPENED);
	/* what the ring seals opens under the current key alone */
	{
		char again[256];
		struct opsd_config only_b = cfg(KEY_B, NULL);

		assert_true(data_keyring_seal(&r, PLAIN, again, sizeof(again)));
		assert_int_equal(data_key_open(&only_b, again, out, sizeof(out)), DK_OPENED);
		cfg_free(&only_b);
	}
	data_keyring_wipe(&r);
	assert_int_equal(r.n, 0);
	cfg_free(&c);
	free(under_a);
	free(under_b);
}

static void test_ring_refuses_foreign(void **state)
{
	(void)state;
	char *under_a = sealed_under(KEY_A);
	struct opsd_config c = cfg(KEY_B, KEY_C), none = cfg(NULL, KEY_A);
	char out[256] = "x";

	assert_int_equal(data_key_open(&c, under_a, out, sizeof(out)), DK_FOREIGN);
	assert_int_equal(out[0], '\0');
	assert_int_equal(data_key_open(&none, under_a, out, sizeof(out)), DK_NO_KEY);
	assert_null(strstr(data_key_open_error(DK_FOREIGN), "pw-"));
	assert_non_null(strstr(data_key_open_error(DK_FOREIGN), "OPSD_DATA_KEY_PREVIOUS"));
	cfg_free(&c);
	cfg_free(&none);
	free(under_a);
}

static void test_fingerprint(void **state)
{
	(void)state;
	struct opsd_config c = cfg(KEY_A, KEY_B);
	struct data_keyring r;
	char fa[DATA_KEY_FP_LEN + 1], fb[DATA_KEY_FP_LEN + 1], again[DATA_KEY_FP_LEN + 1];

	assert_true(data_keyring_load(&c, &r));
	data_key_fingerprint(r.key[0], fa);
	data_key_fingerprint(r.key[1], fb);
	data_key_fingerprint(r.key[0], again);
	assert_int_equal(strlen(fa), DATA_KEY_FP_LEN);
	assert_string_equal(fa, again);
	assert_string_not_equal(fa, fb);
	assert_null(strstr(KEY_A, fa)); /* not a piece of the key */
	data_keyring_wipe(&r);
	cfg_free(&c);
}

/* An anchor signed under a previous key is found by its key_id and
 * verifies; the current key signs new ones. */
static void test_anchor_keys(void **state)
{
	(void)state;
	struct opsd_config old = cfg(KEY_A, NULL), ring = cfg(KEY_B, KEY_A),
	                   other = cfg(KEY_C, NULL);
	struct audit_keys ka, kr, kc;
	struct audit_anchor an = {.first_seq = 1, .last_seq = 9};
	uint8_t sig[32];

	memset(an.prev_hash, 1, 32);
	memset(an.last_hash, 2, 32);
	assert_true(audit_anchor_keys(&old, &ka));
	assert_true(audit_anchor_keys(&ring, &kr));
	assert_true(audit_anchor_keys(&other, &kc));
	assert_int_equal(kr.n, 2);
	assert_string_equal(kr.id[1], ka.id[0]);
	assert_string_not_equal(kr.id[0], ka.id[0]);
	audit_anchor_sign(&an, ka.key[0], sig);
	assert_non_null(audit_keys_find(&kr, ka.id[0]));
	assert_true(audit_anchor_valid(&an, audit_keys_find(&kr, ka.id[0]), sig));
	assert_null(audit_keys_find(&kc, ka.id[0]));
	assert_null(audit_keys_find(NULL, ka.id[0]));
	audit_keys_wipe(&kr);
	assert_int_equal(kr.n, 0);
	assert_null(audit_keys_find(&kr, ka.id[0]));
	audit_keys_wipe(&ka);
	audit_keys_wipe(&kc);
	cfg_free(&old);
	cfg_free(&ring);
	cfg_free(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_opens_previous),
	    cmocka_unit_test(test_ring_refuses_foreign),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_anchor_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
