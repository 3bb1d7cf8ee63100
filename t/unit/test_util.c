#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/arena.h"
#include "lib/encoding.h"
#include "lib/util.h"

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

static void test_clocks(void **state)
{
	(void)state;
	int64_t t = now_ms();
	assert_true(t > 1700000000000LL); /* after 2023 */
	int64_t m1 = mono_us(), m2 = mono_us();
	assert_true(m2 >= m1);
	assert_true(mono_ms() >= m1 / 1000);
}

static void test_format_rfc3339(void **state)
{
	(void)state;
	char out[32];
	format_rfc3339(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	format_rfc3339(1795516075123LL, out);
	assert_string_equal(out, "2026-11-24T10:27:55.123Z");
	format_rfc3339(951782400000LL, out); /* leap day 2000 */
	assert_string_equal(out, "2000-02-29T00:00:00.000Z");
	format_rfc3339(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	format_rfc3339(253402300799999LL, out);
	assert_string_equal(out, "9999-12-31T23:59:59.999Z");
}

static void test_parse_rfc3339_valid(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
	    {"1970-01-01T00:00:00Z", 0},
	    {"1970-01-01T00:00:00.000Z", 0},
	    {"2026-11-24T10:27:55.123Z", 1795516075123LL},
	    {"2026-11-24t10:27:55.123z", 1795516075123LL},
	    {"2026-11-24T11:27:55.123+01:00", 1795516075123LL},
	    {"2026-11-24T05:57:55.123-04:30", 1795516075123LL},
	    {"2026-11-24T10:27:55.1234567Z", 1795516075123LL}, /* extra digits truncated */
	    {"2026-11-24T10:27:55.1Z", 1795516075100LL},
	    {"2000-02-29T00:00:00Z", 951782400000LL},
	    {"2024-02-29T23:59:59.999Z", 1709251199999LL},
	    {"1970-01-01T00:00:00+23:59", -86340000LL},
	    {"0000-01-01T00:00:00Z", -62167219200000LL},     /* the first instant */
	    {"9999-12-31T23:59:59.999Z", 253402300799999LL}, /* the last one */
	    {"0000-01-01T00:59:00+00:59", -62167219200000LL},
	};
	for (size_t i = 0; i < countof(ok); i++) {
		int64_t ms = -42;
		assert_true(parse_rfc3339(ok[i].s, &ms));
		assert_int_equal(ms, ok[i].ms);
	}
}

static void test_parse_rfc3339_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "", "2026-11-23", "2026-11-24T10:27:55", /* no offset */
	    "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-31T00:00:00Z",
	    "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", /* not leap years */
	    "2026-11-00T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T23:60:00Z",
	    "2026-11-23T23:59:61Z", "2026-11-24T10:27:55.Z", "2026-11-24T10:27:55+0100",
	    "2026-11-24T10:27:55+24:00", "2026-11-24T10:27:55+01:60", "2026-11-24T10:27:55Zx",
	    "2026-11-23 09:07:55Z", "26-11-23T09:07:55Z", "2026-1-23T09:07:55Z",
	    "2026-11-24T10:27:55ZZ", "+2026-11-24T10:27:55Z", "2026-11-23T09:07:5aZ",
	    "0000-01-01T00:00:00+01:00", /* moved before year 0 by its offset */
	    "9999-12-31T23:59:59-01:00", /* and past year 9999 */
	    "9999-12-31T23:59:60Z",      /* a leap second past the last instant */
	};
	for (size_t i = 0; i < countof(bad); i++) {
		int64_t ms = 0;
		if (parse_rfc3339(bad[i], &ms))
			fail_msg("accepted %s", bad[i]);
	}
	int64_t ms;
	assert_false(parse_rfc3339(NULL, &ms));
}

static void test_rfc3339_roundtrip(void **state)
{
	(void)state;
	char out[32];
	for (int64_t t = -86400000LL * 800; t < 86400000LL * 365 * 60;
	     t += 86400000LL * 7 + 12345) {
		int64_t back;
		format_rfc3339(t, out);
		assert_true(parse_rfc3339(out, &back));
		assert_int_equal(back, t);
	}
}

static void test_hex(void **state)
{
	(void)state;
	unsigned char in[] = {0x00, 0x01, 0xab, 0xff};
	unsigned char out[4];
	char s[9];
	hex_encode(in, 4, s);
	assert_string_equal(s, "0001abff");
	assert_true(hex_decode("0001ABff", out, 4));
	assert_memory_equal(in, out, 4);
	assert_false(hex_decode("0001abf", out, 4));   /* short */
	assert_false(hex_decode("0001abff0", out, 4)); /* long */
	assert_false(hex_decode("0001abfg", out, 4));  /* bad digit */
	assert_false(hex_decode("00 1abff", out, 4));
	hex_encode(in, 0, s);
	assert_string_equal(s, "");
}

static void test_sha256(void **state)
{
	(void)state;
	char out[65];
	sha256_hex("", 0, out);
	assert_string_equal(out,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", 3, out);
	assert_string_equal(out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_random(void **state)
{
	(void)state;
	unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
	assert_true(random_bytes(a, sizeof(a)));
	assert_true(random_bytes(b, sizeof(b)));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_true(random_bytes(a, 0));
}

static void test_url_decode(void **state)
{
	(void)state;
	assert_string_equal(url_decode(A, "a%20b+c", 7, false), "a b+c");
	assert_string_equal(url_decode(A, "a%20b+c", 7, true), "a b c");
	assert_string_equal(url_decode(A, "%2f%2F%C3%A9", 12, false), "//\xC3\xA9");
	assert_string_equal(url_decode(A, "abc", 2, false), "ab"); /* honours n */
	assert_string_equal(url_decode(A, "", 0, false), "");
	assert_null(url_decode(A, "%", 1, false));
	assert_null(url_decode(A, "%4", 2, false));
	assert_null(url_decode(A, "%41%4", 5, false));
	assert_null(url_decode(A, "%zz", 3, false));
	assert_null(url_decode(A, "%g1", 3, false));
	assert_null(url_decode(A, "a%00b", 5, false));
	assert_null(url_decode(A, "a\0b", 3, false));
	/* the escape is cut by n even though the string goes on */
	assert_null(url_decode(A, "%41", 2, false));
}

static void test_query(void **state)
{
	(void)state;
	const char *q = "a=1&b=two+words&c=%2Fx&full&a=2&empty=&&=zero&d%61ta=x";
	assert_string_equal(query_get(A, q, "a"), "1"); /* first of repeated keys */
	assert_string_equal(query_get(A, q, "b"), "two words");
	assert_string_equal(query_get(A, q, "c"), "/x");
	assert_string_equal(query_get(A, q, "full"), "");
	assert_string_equal(query_get(A, q, "empty"), "");
	assert_string_equal(query_get(A, q, "data"), "x"); /* encoded key */
	assert_null(query_get(A, q, "missing"));
	assert_null(query_get(A, q, ""));
	assert_null(query_get(A, q, "ful"));
	assert_null(query_get(A, q, "fulll"));
	assert_null(query_get(A, "x=%zz", "x")); /* malformed value */
	assert_null(query_get(A, "x=%00", "x"));
	assert_string_equal(query_get(A, "x%zz=1&x=2", "x"), "2");
	/* keys longer than any name: skipped, the real one still found */
	assert_string_equal(
	    query_get(A,
	        "limitlimitlimitlimitlimitlimitlimitlimitlimitlimitlimitlimitlimit=1"
	        "&limit=5",
	        "limit"),
	    "5");
	assert_string_equal(query_get(A, "%6c%69%6d%69%74=7", "limit"), "7"); /* all encoded */
	assert_string_equal(query_get(A, "li+mit=1", "li mit"), "1"); /* "+" in a key is a space */
	assert_null(query_get(A, NULL, "a"));
	assert_null(query_get(A, "", "a"));
	assert_true(query_has(q, "full"));
	assert_true(query_has(q, "empty"));
	assert_true(query_has("full", "full"));
	assert_true(query_has("?x&full=1", "full"));
	assert_false(query_has(q, "zero"));
	assert_false(query_has(q, "missing"));
	assert_false(query_has(NULL, "full"));
}

static void test_loopback(void **state)
{
	(void)state;
	static const char *const yes[] = {
	    "127.0.0.1",
	    "127.255.255.254",
	    "127.1.2.3",
	    "::1",
	    "0:0:0:0:0:0:0:1",
	    "::ffff:127.0.0.1",
	    "::FFFF:127.9.9.9",
	};
	static const char *const no[] = {
	    "128.0.0.1",
	    "10.0.0.1",
	    "0.0.0.0",
	    "::",
	    "::2",
	    "::ffff:10.0.0.1",
	    "::ffff:128.0.0.1",
	    "localhost",
	    "",
	    "127.0.0.1 ",
	    " 127.0.0.1",
	    "127.0.0",
	    "[::1]",
	    "fe80::1",
	    "127.0.0.256",
	    "::127.0.0.1",
	};
	for (size_t i = 0; i < countof(yes); i++)
		if (!addr_is_loopback(yes[i]))
			fail_msg("not loopback: %s", yes[i]);
	for (size_t i = 0; i < countof(no); i++)
		if (addr_is_loopback(no[i]))
			fail_msg("loopback: %s", no[i]);
	assert_false(addr_is_loopback(NULL));
}

static void test_strings(void **state)
{
	(void)state;
	char dst[4];
	assert_int_equal(str_copy(dst, "abcdef", sizeof(dst)), 6);
	assert_string_equal(dst, "abc");
	assert_int_equal(str_copy(dst, "ab", sizeof(dst)), 2);
	assert_string_equal(dst, "ab");
	dst[0] = 'q';
	assert_int_equal(str_copy(dst, "xyz", 0), 3);
	assert_int_equal(dst[0], 'q');
	assert_true(str_has_prefix("mysql://x", "mysql://"));
	assert_true(str_has_prefix("abc", ""));
	assert_false(str_has_prefix("my", "mysql"));
	assert_true(ct_equal("secret", "secret", 6));
	assert_false(ct_equal("secret", "secreT", 6));
	assert_true(ct_equal("a", "b", 0));
}

static void test_parse_ll_range(void **state)
{
	(void)state;
	long long v = 7;
	assert_true(parse_ll_range("0", 0, 10, &v));
	assert_int_equal(v, 0);
	assert_true(parse_ll_range("36500", 0, 36500, &v));
	assert_int_equal(v, 36500);
	assert_true(parse_ll_range("-3", -5, 5, &v));
	assert_int_equal(v, -3);
	v = 7;
	assert_false(parse_ll_range("36501", 0, 36500, &v));
	assert_false(parse_ll_range("-1", 0, 10, &v));
	assert_false(parse_ll_range("", 0, 10, &v));
	assert_false(parse_ll_range(NULL, 0, 10, &v));
	assert_false(parse_ll_range("abc", 0, 10, &v));
	assert_false(parse_ll_range("5x", 0, 10, &v));
	assert_false(parse_ll_range(" 5", 0, 10, &v));
	assert_false(parse_ll_range("+5", 0, 10, &v));
	assert_false(parse_ll_range("99999999999999999999", 0, 10, &v));
	assert_int_equal(v, 7); /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clocks),
	    cmocka_unit_test(test_format_rfc3339),
	    cmocka_unit_test(test_parse_rfc3339_valid),
	    cmocka_unit_test(test_parse_rfc3339_invalid),
	    cmocka_unit_test(test_rfc3339_roundtrip),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_sha256),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_url_decode),
	    cmocka_unit_test(test_parse_ll_range),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_loopback),
	    cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
