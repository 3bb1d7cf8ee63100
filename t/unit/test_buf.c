#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"

static char *json_of(const char *s, size_t n)
{
	static struct buf b;
	buf_free(&b);
	if (s == NULL)
		return NULL;
	buf_json_strn(&b, s, n);
	assert_false(buf_failed(&b));
	return b.data;
}

/* The output must parse back with json-c to the string expected. */
static void assert_roundtrip(const char *in, size_t n, const char *expect)
{
	const char *out = json_of(in, n);
	struct json_object *o = json_tokener_parse(out);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_string));
	assert_int_equal((size_t)json_object_get_string_len(o), strlen(expect));
	assert_memory_equal(json_object_get_string(o), expect, strlen(expect));
	json_object_put(o);
}

static void test_empty(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(b.len, 0);
	buf_puts(&b, "");
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void test_append_and_reset(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "abc");
	buf_putc(&b, '-');
	buf_append(&b, "xyz123", 3);
	buf_printf(&b, "%d/%s", 42, "q");
	assert_string_equal(buf_cstr(&b), "abc-xyz42/q");
	assert_int_equal(b.len, 11);
	char *keep = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_ptr_equal(b.data, keep);
	buf_free(&b);
	assert_null(b.data);
}

static void test_growth(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 100000; i++)
		buf_printf(&b, "%05d", i % 100000);
	assert_int_equal(b.len, 500000);
	assert_memory_equal(b.data + 5 * 99999, "99999", 5);
	assert_int_equal(b.data[b.len], '\0');
	assert_false(buf_failed(&b));
	buf_free(&b);
}

static void test_oom_sticky(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "ok");
	/* an impossible size trips the overflow guard instead of crashing */
	buf_append(&b, "x", SIZE_MAX - 1);
	assert_true(buf_failed(&b));
	buf_puts(&b, "more");
	assert_string_equal(buf_cstr(&b), "ok");
	buf_reset(&b);
	assert_false(buf_failed(&b));
	buf_free(&b);
}

static void test_json_escapes(void **state)
{
	(void)state;
	assert_string_equal(json_of("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	assert_string_equal(json_of("\n\r\t", 3), "\"\\n\\r\\t\"");
	assert_string_equal(json_of("\x01\x1f", 2), "\"\\u0001\\u001f\"");
	assert_string_equal(json_of("a\0b", 3), "\"a\\u0000b\"");
	assert_string_equal(json_of("", 0), "\"\"");
	assert_roundtrip("tab\there \"q\" \\ /", 16, "tab\there \"q\" \\ /");
}

static void test_json_utf8_kept(void **state)
{
	(void)state;
	const char *s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
	assert_string_equal(json_of(s, strlen(s)), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
	assert_roundtrip(s, strlen(s), s);
}

static void test_json_invalid_utf8(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
	    {"a\xC0\xAF"
	     "b",
	        "a\xEF\xBF\xBD\xEF\xBF\xBD"
	        "b"},                                                 /* overlong '/' */
	    {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
	    {"x\xE2\x82", "x\xEF\xBF\xBD\xEF\xBF\xBD"},               /* truncated */
	    {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* >10FFFF */
	    {"\xFF", "\xEF\xBF\xBD"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char expect[64];
		snprintf(expect, sizeof(expect), "\"%s\"", cases[i].out);
		assert_string_equal(json_of(cases[i].in, strlen(cases[i].in)), expect);
		assert_roundtrip(cases[i].in, strlen(cases[i].in), cases[i].out);
	}
}

static void test_json_str_null(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	buf_json_str(&b, NULL);
	buf_putc(&b, ' ');
	buf_json_str(&b, "x");
	assert_string_equal(buf_cstr(&b), "null \"x\"");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_append_and_reset),
	    cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_oom_sticky),
	    cmocka_unit_test(test_json_escapes),
	    cmocka_unit_test(test_json_utf8_kept),
	    cmocka_unit_test(test_json_invalid_utf8),
	    cmocka_unit_test(test_json_str_null),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_of(NULL, 0);
	return rc;
}
