#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "lib/uuid.h"

#define BURST 10000

static void test_version_and_variant(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct opsd_uuid u;
		uuid7_new(&u);
		assert_int_equal(uuid_version(&u), 7);
		assert_int_equal(u.b[6] >> 4, 7);
		assert_int_equal(u.b[8] >> 6, 2); /* variant 10 */
	}
}

static void test_timestamp(void **state)
{
	(void)state;
	struct opsd_uuid u;
	int64_t before = now_ms();
	uuid7_new(&u);
	int64_t after = now_ms();
	/* a burst may borrow a few ms ahead; never behind */
	assert_true((int64_t)uuid7_unix_ms(&u) >= before);
	assert_true((int64_t)uuid7_unix_ms(&u) <= after + 10);
}

static void test_monotonic_burst(void **state)
{
	(void)state;
	struct opsd_uuid *ids = calloc(BURST, sizeof(*ids));
	assert_non_null(ids);
	for (int i = 0; i < BURST; i++)
		uuid7_new(&ids[i]);
	for (int i = 1; i < BURST; i++) {
		if (memcmp(ids[i - 1].b, ids[i].b, 16) >= 0) {
			char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];
			uuid_format(&ids[i - 1], a);
			uuid_format(&ids[i], b);
			fail_msg("not increasing at %d: %s then %s", i, a, b);
		}
		/* the string form sorts the same way */
		char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];
		uuid_format(&ids[i - 1], a);
		uuid_format(&ids[i], b);
		assert_true(strcmp(a, b) < 0);
	}
	free(ids);
}

static void test_format_parse_roundtrip(void **state)
{
	(void)state;
	struct opsd_uuid u, v;
	char s[UUID_STR_LEN + 1];
	uuid7_new(&u);
	uuid_format(&u, s);
	assert_int_equal(strlen(s), UUID_STR_LEN);
	assert_int_equal(s[8], '-');
	assert_int_equal(s[13], '-');
	assert_int_equal(s[14], '7');
	assert_int_equal(s[18], '-');
	assert_int_equal(s[23], '-');
	for (int i = 0; i < UUID_STR_LEN; i++)
		assert_true(s[i] == '-' || strchr("0123456789abcdef", s[i]) != NULL);
	assert_true(uuid_parse(s, &v));
	assert_memory_equal(u.b, v.b, 16);
}

static void test_parse_known(void **state)
{
	(void)state;
	struct opsd_uuid u;
	char s[UUID_STR_LEN + 1];
	/* RFC 9562 Appendix A.6 example */
	assert_true(uuid_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", &u));
	assert_int_equal(uuid_version(&u), 7);
	assert_int_equal(uuid7_unix_ms(&u), 0x017F22E279B0ULL);
	uuid_format(&u, s);
	assert_string_equal(s, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
	assert_true(uuid_parse("00000000-0000-0000-0000-000000000000", &u));
	assert_int_equal(uuid_version(&u), 0);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "017f22e2-79b0-7cc3-98c4-dc0c0c07398",   /* short */
	    "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", /* long */
	    "017f22e279b07cc398c4dc0c0c07398f",      /* no hyphens */
	    "017f22e2-79b0-7cc3-98c4dc0c0c07398f0",  /* misplaced hyphen */
	    "017f22e2-79b0-7cc3-98c4-dc0c0c07398g",  /* bad digit */
	    "{017f22e2-79b0-7cc3-98c4-dc0c0c0739}",
	    "017f22e2_79b0_7cc3_98c4_dc0c0c07398f",
	    " 17f22e2-79b0-7cc3-98c4-dc0c0c07398f",
	    "017f22e2-79b0-7cc3-98c4-dc0c0c07398 ",
	    "017f22e2--9b0-7cc3-98c4-dc0c0c07398f",
	    "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c",
	};
	struct opsd_uuid u;
	memset(&u, 0x5A, sizeof(u));
	for (size_t i = 0; i < countof(bad); i++)
		if (uuid_parse(bad[i], &u))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(uuid_parse(NULL, &u));
	for (int i = 0; i < 16; i++)
		assert_int_equal(u.b[i], 0x5A); /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version_and_variant),
	    cmocka_unit_test(test_timestamp),
	    cmocka_unit_test(test_monotonic_burst),
	    cmocka_unit_test(test_format_parse_roundtrip),
	    cmocka_unit_test(test_parse_known),
	    cmocka_unit_test(test_parse_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
