#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/arena.h"
#include "lib/diff.h"

/* Renders a script as "=a -b +c" for compact comparisons. */
static const char *render(const char *old_text, const char *new_text)
{
	static char buf[4096];
	struct arena *a = arena_new(4096);
	struct diff_line *d;
	long n = diff_lines(a, old_text, new_text, &d);
	size_t w = 0;

	assert_true(n >= 0);
	buf[0] = '\0';
	for (long i = 0; i < n; i++)
		w += (size_t)snprintf(buf + w, sizeof(buf) - w, "%s%c%.*s", i ? " " : "", d[i].op,
		    (int)d[i].len, d[i].s);
	arena_free(a);
	return buf;
}

/* Applying the script to the old text must give the new one, and keeping
 * only '=' and '-' lines must give the old one. */
static void check_roundtrip(const char *old_text, const char *new_text)
{
	struct arena *a = arena_new(4096);
	struct diff_line *d;
	long n = diff_lines(a, old_text, new_text, &d);
	char o[8192] = "", nw[8192] = "";

	assert_true(n >= 0);
	for (long i = 0; i < n; i++) {
		if (d[i].op != '+')
			snprintf(o + strlen(o), sizeof(o) - strlen(o), "%.*s\n", (int)d[i].len,
			    d[i].s);
		if (d[i].op != '-')
			snprintf(nw + strlen(nw), sizeof(nw) - strlen(nw), "%.*s\n", (int)d[i].len,
			    d[i].s);
	}
	arena_free(a);
	{
		char eo[8192], en[8192];

		snprintf(eo, sizeof(eo), "%s%s", old_text,
		    *old_text && old_text[strlen(old_text) - 1] != '\n' ? "\n" : "");
		snprintf(en, sizeof(en), "%s%s", new_text,
		    *new_text && new_text[strlen(new_text) - 1] != '\n' ? "\n" : "");
		assert_string_equal(o, eo);
		assert_string_equal(nw, en);
	}
}

static void test_identical(void **state)
{
	(void)state;
	assert_string_equal(render("a\nb\nc\n", "a\nb\nc\n"), "=a =b =c");
	assert_string_equal(render("", ""), "");
}

static void test_change_one_line(void **state)
{
	(void)state;
	assert_string_equal(render("a\nb\nc\n", "a\nB\nc\n"), "=a -b +B =c");
	assert_string_equal(render("a\nb\n", "a\nb\nc\n"), "=a =b +c");
	assert_string_equal(render("x\na\n", "a\n"), "-x =a");
	assert_string_equal(render("", "a\n"), "+a");
	assert_string_equal(render("a\n", ""), "-a");
}

static void test_crlf_and_no_final_newline(void **state)
{
	(void)state;
	assert_string_equal(render("a\r\nb", "a\nb\n"), "=a =b");
}

static void test_roundtrips(void **state)
{
	(void)state;
	check_roundtrip("a\nb\nc\nd\ne\n", "b\nc\nx\ne\nf\n");
	check_roundtrip("1\n2\n3\n", "3\n2\n1\n");
	check_roundtrip("same\nsame\nsame\n", "same\nother\nsame\n");
	check_roundtrip("", "only new\n");
	check_roundtrip("p\nq\n", "");
}

/* Beyond DIFF_MAX_EDITS the script is still correct (all out, all in). */
static void test_large_fallback(void **state)
{
	static char o[200000], nw[200000];
	struct arena *a = arena_new(1 << 20);
	struct diff_line *d;
	size_t wo = 0, wn = 0;
	long n, minus = 0, plus = 0;

	(void)state;
	for (int i = 0; i < 3000; i++) {
		wo += (size_t)snprintf(o + wo, sizeof(o) - wo, "old %d\n", i);
		wn += (size_t)snprintf(nw + wn, sizeof(nw) - wn, "new %d\n", i);
	}
	n = diff_lines(a, o, nw, &d);
	assert_int_equal(n, 6000);
	for (long i = 0; i < n; i++) {
		minus += d[i].op == '-';
		plus += d[i].op == '+';
	}
	assert_int_equal(minus, 3000);
	assert_int_equal(plus, 3000);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identical),
	    cmocka_unit_test(test_change_one_line),
	    cmocka_unit_test(test_crlf_and_no_final_newline),
	    cmocka_unit_test(test_roundtrips),
	    cmocka_unit_test(test_large_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
