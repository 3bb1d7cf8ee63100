#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/utf8.h"

static enum json_parse_err parse(const char *s, size_t n, struct json_object **out)
{
	char why[128] = "";
	enum json_parse_err e = json_parse_body(s, n, out, why, sizeof(why));
	if (e == JSON_PARSE_OK)
		assert_non_null(*out);
	else {
		assert_null(*out);
		assert_true(why[0] != '\0');
	}
	return e;
}

static enum json_parse_err parse_str(const char *s)
{
	struct json_object *o;
	enum json_parse_err e = parse(s, strlen(s), &o);
	json_object_put(o);
	return e;
}

static void test_utf8_valid(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "",
	    "ascii",
	    "\xC2\x80",
	    "\xDF\xBF",
	    "\xE0\xA0\x80",
	    "\xED\x9F\xBF",
	    "\xEE\x80\x80",
	    "\xEF\xBF\xBF",
	    "\xF0\x90\x80\x80",
	    "\xF4\x8F\xBF\xBF",
	    "caf\xC3\xA9",
	};
	static const char *const bad[] = {
	    "\x80",
	    "\xBF",
	    "\xC0\x80",
	    "\xC1\xBF", /* overlong 2-byte */
	    "\xE0\x80\x80",
	    "\xE0\x9F\xBF", /* overlong 3-byte */
	    "\xF0\x80\x80\x80",
	    "\xF0\x8F\xBF\xBF", /* overlong 4-byte */
	    "\xED\xA0\x80",
	    "\xED\xBF\xBF", /* surrogates */
	    "\xF4\x90\x80\x80",
	    "\xF5\x80\x80\x80",
	    "\xFF",
	    "\xFE",
	    "\xC2",
	    "\xE2\x82",
	    "\xF0\x9F\x98", /* truncated */
	    "\xC2\x41",
	    "\xE2\x28\xA1",
	    "a\xF0\x9F\x98\x28",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!utf8_valid(good[i], strlen(good[i])))
			fail_msg("rejected good #%zu", i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (utf8_valid(bad[i], strlen(bad[i])))
			fail_msg("accepted bad #%zu", i);
	/* n bounds the check: a sequence cut by n is truncated */
	assert_false(utf8_valid("\xC3\xA9", 1));
	assert_true(utf8_valid("a\0b", 3));
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct json_object *o;
	const char *s = " {\"a\":1,\"b\":\"x\",\"c\":[true,null]} \r\n";
	assert_int_equal(parse(s, strlen(s), &o), JSON_PARSE_OK);
	assert_int_equal(json_get_int(o, "a", 0), 1);
	assert_string_equal(json_get_str(o, "b", NULL), "x");
	json_object_put(o);
	/* the body need not be NUL-terminated: n is honoured */
	char raw[] = {'{', '}', 'X'};
	assert_int_equal(parse(raw, 2, &o), JSON_PARSE_OK);
	json_object_put(o);
}

static const char *raw_nul(void)
{
	return "{}\0 ";
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct json_object *o;
	assert_int_equal(parse(NULL, 0, &o), JSON_PARSE_EMPTY);
	assert_int_equal(parse_str(""), JSON_PARSE_EMPTY);
	assert_int_equal(parse_str(" \n\t"), JSON_PARSE_EMPTY);
	assert_int_equal(parse_str("{"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":1,}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":\"x}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{} x"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{}{}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{}\n]"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse(raw_nul(), 4, &o), JSON_PARSE_SYNTAX);
	/* json-c's leniencies are refused too (RFC 8259) */
	assert_int_equal(parse_str("{'a':1}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":NaN}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":Infinity}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":-Infinity}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":1.}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":\"tab\there\"}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":01}"), JSON_PARSE_SYNTAX);
	/* ... and those json-c writes back as they came, which is not JSON
	 * (found by t/fuzz/fuzz_audit_payload.c) */
	assert_int_equal(parse_str("{\"a\":-.5}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":00.5}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":[1,-01]}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":00}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":[0,-0,0.05,1e05,1E-05,-0.0e+00,10]}"), JSON_PARSE_OK);
	assert_int_equal(parse_str("{a:1}"), JSON_PARSE_SYNTAX);
	assert_int_equal(parse_str("{\"a\":\"\\x41\"}"), JSON_PARSE_SYNTAX);
	/* ... while escapes, exponents and keywords inside strings are fine */
	assert_int_equal(parse_str("{\"NaN 'x'\":\"\\\"\\t\\ud83d\\ude00\","
	                           "\"e\":-1.5E+3,\"t\":[true,false,null]}"),
	    JSON_PARSE_OK);
	assert_int_equal(parse_str("[1,2]"), JSON_PARSE_NOT_OBJECT);
	assert_int_equal(parse_str("\"s\""), JSON_PARSE_NOT_OBJECT);
	assert_int_equal(parse_str("123"), JSON_PARSE_NOT_OBJECT);
	assert_int_equal(parse_str("null"), JSON_PARSE_NOT_OBJECT);
	assert_int_equal(parse_str("{\"a\":\"\xC0\xAF\"}"), JSON_PARSE_UTF8);
	assert_int_equal(parse_str("{\"a\":\"\xED\xA0\x80\"}"), JSON_PARSE_UTF8);
	assert_int_equal(parse_str("{\"a\":\"\xE2\x82\"}"), JSON_PARSE_UTF8);
}

static char *nested(int depth)
{
	char *s = malloc((size_t)depth * 6 + 16);
	size_t n = 0;
	s[n++] = '{';
	for (int i = 1; i < depth; i++) {
		memcpy(s + n, "\"a\":{", 5);
		n += 5;
	}
	for (int i = 0; i < depth; i++)
		s[n++] = '}';
	s[n] = '\0';
	return s;
}

static void test_depth(void **state)
{
	(void)state;
	char *ok = nested(JSON_MAX_DEPTH), *deep = nested(JSON_MAX_DEPTH + 1);
	char *huge = nested(100000);
	assert_int_equal(parse_str(ok), JSON_PARSE_OK);
	assert_int_equal(parse_str(deep), JSON_PARSE_DEPTH);
	assert_int_equal(parse_str(huge), JSON_PARSE_DEPTH);
	free(ok);
	free(deep);
	free(huge);
	/* arrays count too */
	char arr[200] = "{\"a\":";
	size_t n = strlen(arr);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		arr[n++] = '[';
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		arr[n++] = ']';
	arr[n++] = '}';
	arr[n] = '\0';
	assert_int_equal(parse_str(arr), JSON_PARSE_DEPTH);
}

static void test_size_limit(void **state)
{
	(void)state;
	size_t n = JSON_MAX_BODY + 1;
	char *s = malloc(n);
	struct json_object *o;
	memset(s, ' ', n);
	s[0] = '{';
	s[JSON_MAX_BODY - 1] = '}';
	assert_int_equal(parse(s, JSON_MAX_BODY, &o), JSON_PARSE_OK);
	json_object_put(o);
	assert_int_equal(parse(s, n, &o), JSON_PARSE_TOO_BIG);
	/* a big but legal string value */
	memset(s, 'a', JSON_MAX_BODY);
	memcpy(s, "{\"a\":\"", 6);
	memcpy(s + JSON_MAX_BODY - 2, "\"}", 2);
	assert_int_equal(parse(s, JSON_MAX_BODY, &o), JSON_PARSE_OK);
	assert_int_equal(strlen(json_get_str(o, "a", "")), JSON_MAX_BODY - 8);
	json_object_put(o);
	free(s);
}

static const char *const colours[] = {"red", "green", NULL};

static const struct field_spec spec[] = {
    {"message", FT_STRING, FIELD_REQUIRED, 1, 200, NULL},
    {"count", FT_INT, 0, 0, 100, NULL},
    {"flag", FT_BOOL, 0, 0, 0, NULL},
    {"meta", FT_OBJECT, FIELD_NULLABLE, 0, 0, NULL},
    {"tags", FT_STRING_ARRAY, 0, 0, 3, NULL},
    {"id", FT_UUID, 0, 0, 0, NULL},
    {"at", FT_TIME, 0, 0, 0, NULL},
    {"colour", FT_ENUM, 0, 0, 0, colours},
    {"big", FT_INT, 0, 0, 0, NULL},
    {NULL, FT_STRING, 0, 0, 0, NULL},
};

/* Validates body and returns the reason given for field (NULL if none). */
static int validate(const char *body, struct json_object **details)
{
	struct json_object *o;
	assert_int_equal(parse(body, strlen(body), &o), JSON_PARSE_OK);
	int n = json_validate(o, spec, details);
	json_object_put(o);
	return n;
}

static const char *reason(struct json_object *details, const char *field)
{
	struct json_object *fields, *r;
	assert_true(json_object_object_get_ex(details, "fields", &fields));
	if (!json_object_object_get_ex(fields, field, &r))
		return NULL;
	return json_object_get_string(r);
}

static void expect_one(const char *body, const char *field, const char *why)
{
	struct json_object *d = NULL;
	int n = validate(body, &d);
	if (n != 1)
		fail_msg("%s: %d problems", body, n);
	assert_non_null(d);
	const char *got = reason(d, field);
	if (got == NULL || strcmp(got, why) != 0)
		fail_msg("%s: %s: got \"%s\", want \"%s\"", body, field, got ? got : "(none)", why);
	json_object_put(d);
}

static void test_validate_ok(void **state)
{
	(void)state;
	struct json_object *d = (struct json_object *)1;
	assert_int_equal(validate("{\"message\":\"hi\"}", &d), 0);
	assert_null(d);
	assert_int_equal(
	    validate("{\"message\":\"hi\",\"count\":100,\"flag\":false,\"meta\":null,"
	             "\"tags\":[\"a\",\"b\",\"c\"],\"id\":\"017f22e2-79b0-7cc3-98c4-"
	             "dc0c0c07398f\",\"at\":\"2026-01-01T00:00:00Z\",\"colour\":\"green\","
	             "\"big\":-5}",
	        &d),
	    0);
	assert_int_equal(validate("{\"message\":\"hi\",\"count\":0}", NULL), 0);
}

static void test_validate_problems(void **state)
{
	(void)state;
	expect_one("{}", "message", "required");
	expect_one("{\"message\":null}", "message", "must not be null");
	expect_one("{\"message\":5}", "message", "must be a string");
	expect_one("{\"message\":\"\"}", "message", "must not be empty");
	expect_one("{\"message\":\"a\\u0000b\"}", "message", "must be a string");
	expect_one("{\"message\":\"x\",\"extra\":1}", "extra", "unknown field");
	expect_one("{\"message\":\"x\",\"count\":101}", "count", "must be between 0 and 100");
	expect_one("{\"message\":\"x\",\"count\":-1}", "count", "must be between 0 and 100");
	expect_one("{\"message\":\"x\",\"count\":1.5}", "count", "must be an integer");
	expect_one("{\"message\":\"x\",\"count\":\"1\"}", "count", "must be an integer");
	expect_one("{\"message\":\"x\",\"big\":99999999999999999999999}", "big", "is out of range");
	expect_one("{\"message\":\"x\",\"big\":-99999999999999999999999}", "big",
	    "is out of range");
	expect_one("{\"message\":\"x\",\"big\":1e400}", "big", "must be an integer");
	expect_one("{\"message\":\"x\",\"flag\":1}", "flag", "must be a boolean");
	expect_one("{\"message\":\"x\",\"meta\":[]}", "meta", "must be an object");
	expect_one("{\"message\":\"x\",\"tags\":\"a\"}", "tags", "must be an array of strings");
	expect_one("{\"message\":\"x\",\"tags\":[\"a\",\"\"]}", "tags",
	    "must be an array of non-empty strings");
	expect_one("{\"message\":\"x\",\"tags\":[\"a\",1]}", "tags",
	    "must be an array of non-empty strings");
	expect_one("{\"message\":\"x\",\"tags\":[\"a\",\"b\",\"c\",\"d\"]}", "tags",
	    "must be at most 3 items");
	expect_one("{\"message\":\"x\",\"id\":\"nope\"}", "id", "must be a UUID");
	expect_one("{\"message\":\"x\",\"at\":\"2026-02-30T00:00:00Z\"}", "at",
	    "must be an RFC 3339 date-time");
	expect_one("{\"message\":\"x\",\"colour\":\"blue\"}", "colour",
	    "must be one of: red, green");
	expect_one("{\"message\":\"x\",\"colour\":\"RED\"}", "colour",
	    "must be one of: red, green");
}

static void test_validate_lengths(void **state)
{
	(void)state;
	char body[2048];
	char msg[1024];
	memset(msg, 'a', 200);
	msg[200] = '\0';
	snprintf(body, sizeof(body), "{\"message\":\"%s\"}", msg);
	assert_int_equal(validate(body, NULL), 0);
	msg[200] = 'a';
	msg[201] = '\0';
	snprintf(body, sizeof(body), "{\"message\":\"%s\"}", msg);
	expect_one(body, "message", "must be at most 200 characters");
	/* 200 two-byte characters are 200 characters, not 400 */
	for (int i = 0; i < 200; i++)
		memcpy(msg + 2 * i, "\xC3\xA9", 2);
	msg[400] = '\0';
	snprintf(body, sizeof(body), "{\"message\":\"%s\"}", msg);
	assert_int_equal(validate(body, NULL), 0);
}

static void test_validate_many(void **state)
{
	(void)state;
	struct json_object *d;
	int n = validate("{\"count\":\"x\",\"zzz\":1,\"yyy\":2}", &d);
	assert_int_equal(n, 4);
	assert_string_equal(reason(d, "message"), "required");
	assert_string_equal(reason(d, "count"), "must be an integer");
	assert_string_equal(reason(d, "zzz"), "unknown field");
	assert_string_equal(reason(d, "yyy"), "unknown field");
	json_object_put(d);
	/* not an object */
	struct json_object *arr = json_object_new_array();
	assert_int_equal(json_validate(arr, spec, &d), 1);
	assert_non_null(d);
	json_object_put(d);
	json_object_put(arr);
}

static void test_getters(void **state)
{
	(void)state;
	struct json_object *o;
	const char *s = "{\"s\":\"v\",\"i\":7,\"b\":true,\"n\":null,\"x\":\"7\"}";
	assert_int_equal(parse(s, strlen(s), &o), JSON_PARSE_OK);
	assert_string_equal(json_get_str(o, "s", "d"), "v");
	assert_string_equal(json_get_str(o, "n", "d"), "d");
	assert_string_equal(json_get_str(o, "missing", "d"), "d");
	assert_string_equal(json_get_str(o, "i", "d"), "d");
	assert_int_equal(json_get_int(o, "i", -1), 7);
	assert_int_equal(json_get_int(o, "x", -1), -1);
	assert_int_equal(json_get_int(o, "n", -1), -1);
	assert_true(json_get_bool(o, "b", false));
	assert_false(json_get_bool(o, "missing", false));
	assert_true(json_get_bool(o, "i", true));
	assert_int_equal(json_get_int(NULL, "i", 3), 3);
	json_object_put(o);
}

/* Every string value of a parsed body is overwritten in place: no password outlives the request. */
static void test_wipe_strings(void **state)
{
	(void)state;
	struct json_object *o;
	const char *s = "{\"password\":\"hunter2-secret\",\"n\":{\"t\":[\"opsd_tok\",1,\"a long "
	                "value past any inline buffer of json-c\"]},\"i\":7}";
	const char *vals[3];
	size_t lens[3];

	assert_int_equal(parse(s, strlen(s), &o), JSON_PARSE_OK);
	struct json_object *t = json_object_object_get(json_object_object_get(o, "n"), "t");
	vals[0] = json_object_get_string(json_object_object_get(o, "password"));
	vals[1] = json_object_get_string(json_object_array_get_idx(t, 0));
	vals[2] = json_object_get_string(json_object_array_get_idx(t, 2));
	for (int i = 0; i < 3; i++)
		lens[i] = strlen(vals[i]);
	json_wipe_strings(o);
	for (int i = 0; i < 3; i++)
		for (size_t k = 0; k < lens[i]; k++)
			assert_int_equal(vals[i][k], 0);
	assert_int_equal(json_get_int(o, "i", -1), 7);
	json_wipe_strings(NULL);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wipe_strings),
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_validate_ok),
	    cmocka_unit_test(test_validate_problems),
	    cmocka_unit_test(test_validate_lengths),
	    cmocka_unit_test(test_validate_many),
	    cmocka_unit_test(test_getters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
