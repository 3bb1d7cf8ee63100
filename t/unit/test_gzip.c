#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/gzip.h"

/* gzip(1) is the reference decoder: every member must decode to the input. */
static void assert_gunzips_to(const char *in, size_t n)
{
	char path[] = "/tmp/opsd-test-gzip-XXXXXX", cmd[96];
	struct buf b, back;
	FILE *p;
	char chunk[4096];
	size_t got;
	int fd;

	buf_init(&b);
	buf_init(&back);
	gzip_encode(in, n, &b);
	assert_false(buf_failed(&b));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "gzip -dc < %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((got = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(&back, chunk, got);
	assert_int_equal(pclose(p), 0);
	unlink(path);
	assert_int_equal(back.len, n);
	if (n)
		assert_memory_equal(back.data, in, n);
	buf_free(&b);
	buf_free(&back);
}

static void test_crc32(void **state)
{
	(void)state;
	/* RFC 1952's CRC-32 check value. */
	assert_int_equal(gzip_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(gzip_crc32(gzip_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
	assert_int_equal(gzip_crc32(0, "", 0), 0);
}

static void test_small_inputs(void **state)
{
	(void)state;
	assert_gunzips_to("", 0);
	assert_gunzips_to("a", 1);
	assert_gunzips_to("aaa", 3);
	assert_gunzips_to("\0\xff\x80\x7f", 4);
}

/* Long repeats (matches of 258, overlapping copies), every byte value, a
 * document larger than the window. */
static void test_large_inputs(void **state)
{
	(void)state;
	size_t n = 200000;
	char *s = malloc(n);
	struct buf b;

	assert_non_null(s);
	memset(s, 'x', n);
	assert_gunzips_to(s, n);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(i * 7 + i / 300);
	assert_gunzips_to(s, n);
	srand(7);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(rand() & 0xff);
	assert_gunzips_to(s, n);
	{
		static const char text[] = "Privacy policy \xc3\xbc line\n{\"type\":\"privacy\"}";

		for (size_t i = 0; i < n; i++)
			s[i] = text[i % (sizeof(text) - 1)];
	}
	assert_gunzips_to(s, n);
	/* Text compresses, and the same input gives the same bytes. */
	buf_init(&b);
	gzip_encode(s, n, &b);
	assert_true(b.len < n / 4);
	{
		struct buf again;

		buf_init(&again);
		gzip_encode(s, n, &again);
		assert_int_equal(again.len, b.len);
		assert_memory_equal(again.data, b.data, b.len);
		buf_free(&again);
	}
	buf_free(&b);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32),
	    cmocka_unit_test(test_small_inputs),
	    cmocka_unit_test(test_large_inputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
