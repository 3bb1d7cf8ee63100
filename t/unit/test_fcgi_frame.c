#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "server/fcgi_frame.h"

/* A stream under construction: records appended in order. */
static unsigned char s[4096];
static size_t len;

static void rec(unsigned type, unsigned id, const void *p, size_t n, unsigned pad)
{
	unsigned char h[FCGI_HEADER] = {1, (unsigned char)type, (unsigned char)(id >> 8),
	    (unsigned char)id, (unsigned char)(n >> 8), (unsigned char)n, (unsigned char)pad, 0};

	memcpy(s + len, h, sizeof(h));
	memcpy(s + len + sizeof(h), p, n);
	memset(s + len + sizeof(h) + n, 0, pad);
	len += sizeof(h) + n + pad;
}

static void begin(unsigned id, unsigned role)
{
	unsigned char b[8] = {(unsigned char)(role >> 8), (unsigned char)role, 0};

	len = 0;
	rec(FCGI_BEGIN, id, b, sizeof(b), 0);
}

static enum fcgi_frame_verdict scan(struct fcgi_frame *f)
{
	return fcgi_frame_scan(s, len, f);
}

static void test_sound(void **state)
{
	static const char pairs[] = "\x0e\x03REQUEST_METHODGET\x0b\x08REQUEST_URI/healthz";
	struct fcgi_frame f;

	(void)state;
	begin(7, 1);
	rec(FCGI_PARAMS_T, 7, pairs, 10, 3); /* a pair split across records */
	rec(FCGI_PARAMS_T, 7, pairs + 10, sizeof(pairs) - 1 - 10, 0);
	rec(FCGI_PARAMS_T, 7, "", 0, 0);
	assert_int_equal(scan(&f), FRAME_SOUND);
	assert_int_equal(f.request_id, 7);
	/* every shorter prefix asks for exactly what its next step needs */
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(fcgi_frame_scan(s, n, &f), FRAME_MORE);
		assert_true(f.need > n && f.need <= len);
	}
}

static void test_bad(void **state)
{
	struct fcgi_frame f;

	(void)state;
	/* a value length of 2 GiB, which libfcgi would try to allocate */
	begin(1, 1);
	rec(FCGI_PARAMS_T, 1,
	    "\x01\xff\xff\xff\xff"
	    "A",
	    6, 0);
	rec(FCGI_PARAMS_T, 1, "", 0, 0);
	assert_int_equal(scan(&f), FRAME_BAD);
	assert_string_equal(f.why, "name/value length past the end of PARAMS");
	assert_int_equal(f.request_id, 1);

	begin(1, 2);
	assert_int_equal(scan(&f), FRAME_BAD);
	assert_string_equal(f.why, "only the RESPONDER role is served");

	begin(1, 1);
	rec(FCGI_STDIN_T, 1, "x", 1, 0);
	assert_int_equal(scan(&f), FRAME_BAD);
	assert_string_equal(f.why, "expected PARAMS for the request");

	begin(1, 1);
	rec(FCGI_PARAMS_T, 1, "\x00\x01x", 3, 0);
	rec(FCGI_PARAMS_T, 1, "", 0, 0);
	assert_int_equal(scan(&f), FRAME_BAD);
	assert_string_equal(f.why, "empty param name");

	len = 0;
	rec(FCGI_BEGIN, 1, "\0\1\0\0\0\0\0\0", 8, 0);
	s[0] = 2;
	assert_int_equal(scan(&f), FRAME_BAD);
	assert_string_equal(f.why, "not FastCGI version 1");
	assert_int_equal(f.request_id, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sound),
	    cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
