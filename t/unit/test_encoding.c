/* lib/encoding.c: base64 in its three decodings and both encodings, and
 * percent-decoding (hex has its cases in test_util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/encoding.h"

/* RFC 4648 §10's test vectors, padded and not. */
static void test_b64_vectors(void **state)
{
	static const struct {
		const char *in, *padded;
	} v[] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	char out[16];
	uint8_t back[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t len = strlen(v[i].in), plain = strcspn(v[i].padded, "=");

		assert_int_equal(b64_encode(false, true, v[i].in, len, out, sizeof(out)),
		    strlen(v[i].padded));
		assert_string_equal(out, v[i].padded);
		assert_int_equal(b64_encode(false, false, v[i].in, len, out, sizeof(out)), plain);
		assert_true(b64_decode(B64_STRICT_STD, out, plain, back, sizeof(back), &n));
		assert_int_equal(n, len);
		assert_memory_equal(back, v[i].in, len);
		assert_true(b64_decode(B64_LENIENT, v[i].padded, strlen(v[i].padded), back,
		    sizeof(back), &n));
		assert_int_equal(n, len);
	}
	/* too small for the text and its NUL */
	assert_int_equal(b64_encode(false, true, "foo", 3, out, 4), 0);
	assert_string_equal(out, "");
}

static void test_b64_strictness(void **state)
{
	uint8_t b[8];
	size_t n;

	(void)state;
	assert_false(b64_decode(B64_STRICT_STD, "Zg==", 4, b, sizeof(b), &n)); /* padding */
	assert_false(b64_decode(B64_STRICT_STD, "Zh", 2, b, sizeof(b), &n));   /* not canonical */
	assert_false(b64_decode(B64_STRICT_STD, "Z", 1, b, sizeof(b), &n)); /* impossible length */
	assert_false(b64_decode(B64_STRICT_STD, "-_8", 3, b, sizeof(b), &n)); /* URL alphabet */
	assert_true(b64_decode(B64_STRICT_URL, "-_8", 3, b, sizeof(b), &n));
	assert_false(b64_decode(B64_STRICT_URL, "+/8", 3, b, sizeof(b), &n));
	assert_false(b64_decode(B64_STRICT_URL, "Zm9vYmFy", 8, b, 5, &n)); /* does not fit */
	/* configuration keys: either alphabet, padding optional, at most two '=' */
	assert_true(b64_decode(B64_LENIENT, "-_8=", 4, b, sizeof(b), &n));
	assert_true(b64_decode(B64_LENIENT, "+/8", 3, b, sizeof(b), &n));
	assert_false(b64_decode(B64_LENIENT, "Zg===", 5, b, sizeof(b), &n));
	assert_false(b64_decode(B64_LENIENT, "Z!==", 4, b, sizeof(b), &n));
}

static void test_pct_decode(void **state)
{
	char out[16];

	(void)state;
	assert_true(pct_decode("a%20b+c", 7, false, out, sizeof(out)));
	assert_string_equal(out, "a b+c");
	assert_true(pct_decode("a%20b+c", 7, true, out, sizeof(out)));
	assert_string_equal(out, "a b c");
	assert_true(pct_decode("%E2%82%ac", 9, false, out, sizeof(out)));
	assert_string_equal(out, "\xE2\x82\xAC");
	assert_false(pct_decode("%00", 3, false, out, sizeof(out)));  /* encoded NUL */
	assert_false(pct_decode("a\0b", 3, false, out, sizeof(out))); /* raw NUL */
	assert_false(pct_decode("%4", 2, false, out, sizeof(out)));   /* cut escape */
	assert_false(pct_decode("%zz", 3, false, out, sizeof(out)));
	assert_false(pct_decode("abcd", 4, false, out, 4)); /* no room for the NUL */
	assert_true(pct_decode("abc", 3, false, out, 4));
	assert_true(pct_decode("", 0, false, out, 1));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_vectors),
	    cmocka_unit_test(test_b64_strictness),
	    cmocka_unit_test(test_pct_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
