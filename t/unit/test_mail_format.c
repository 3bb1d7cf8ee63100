#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mail_format.h"

/* 2026-11-24T10:27:55.123Z */
#define DATE_MS 1795516075123LL

static struct mail_message msg(const char *subject, const char *body)
{
	struct mail_message m = {
	    .message_id = "0190f5a2-7b3c-7def-8abc-0123456789ab@example.test",
	    .to = "alice@example.test",
	    .subject = subject,
	    .body = body,
	    .date_ms = DATE_MS,
	};
	return m;
}

static char *format(const struct mail_message *m)
{
	struct buf b;
	buf_init(&b);
	assert_true(mail_format(m, "ops@example.test", &b));
	char *s = strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static const char *body_of(const char *s)
{
	const char *p = strstr(s, "\r\n\r\n");
	assert_non_null(p);
	return p + 4;
}

/* Every line ends with CRLF, none longer than max (without the CRLF). */
static void assert_lines(const char *s, size_t max)
{
	size_t col = 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			p++;
			col = 0;
			continue;
		}
		assert_int_not_equal(*p, '\n');
		col++;
		assert_true(col <= max);
	}
	assert_int_equal(col, 0);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* RFC 2045 §6.7 decoder, CRLF kept as "\n" so it compares with LF input. */
static char *qp_decode(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	assert_non_null(out);
	for (const char *p = s; *p != '\0';) {
		if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
			p += 3;
		} else if (p[0] == '=') {
			assert_true(hexval(p[1]) >= 0 && hexval(p[2]) >= 0);
			*o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
			p += 3;
		} else if (p[0] == '\r' && p[1] == '\n') {
			*o++ = '\n';
			p += 2;
		} else {
			/* only printable ASCII and SP/TAB appear literally */
			assert_true(
			    (*p >= 33 && *p <= 126 && *p != '=') || *p == ' ' || *p == '\t');
			if (*p == ' ' || *p == '\t')
				assert_true(p[1] != '\r');
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* Decodes "Subject: =?UTF-8?B?..?=\r\n =?UTF-8?B?..?=\r\n" (RFC 2047 §6.2:
 * the folding whitespace between encoded-words is dropped). */
static char *subject_decode(const char *msgtext)
{
	const char *p = strstr(msgtext, "\r\nSubject:");
	assert_non_null(p);
	p += strlen("\r\nSubject:");
	char *out = calloc(1, 4096);
	size_t olen = 0;
	assert_non_null(out);
	for (;;) {
		assert_int_equal(*p, ' ');
		p++;
		assert_memory_equal(p, "=?UTF-8?B?", 10);
		const char *end = strstr(p + 10, "?=");
		assert_non_null(end);
		assert_true((size_t)(end + 2 - p) <= 75);
		unsigned char tmp[256];
		int n = EVP_DecodeBlock(tmp, (const unsigned char *)p + 10, (int)(end - p - 10));
		assert_true(n >= 0);
		/* EVP_DecodeBlock counts the '=' padding as zero bytes */
		for (const char *q = end - 1; *q == '='; q--)
			n--;
		memcpy(out + olen, tmp, (size_t)n);
		olen += (size_t)n;
		p = end + 2;
		assert_memory_equal(p, "\r\n", 2);
		p += 2;
		if (*p != ' ')
			break;
	}
	return out;
}

static void test_ascii_headers_exact(void **state)
{
	(void)state;
	struct mail_message m = msg("Your export is ready", "Hello,\nit is ready.\n");
	char *s = format(&m);
	assert_string_equal(s, "Date: Tue, 24 Nov 2026 10:27:55 +0000\r\n"
	                       "Message-ID: <0190f5a2-7b3c-7def-8abc-0123456789ab@example.test>\r\n"
	                       "From: ops@example.test\r\n"
	                       "To: alice@example.test\r\n"
	                       "Subject: Your export is ready\r\n"
	                       "MIME-Version: 1.0\r\n"
	                       "Content-Type: text/plain; charset=UTF-8\r\n"
	                       "Content-Transfer-Encoding: quoted-printable\r\n"
	                       "\r\n"
	                       "Hello,\r\n"
	                       "it is ready.\r\n");
	free(s);
}

static void test_date_single_digit_day(void **state)
{
	(void)state;
	struct mail_message m = msg("x", "");
	m.date_ms = 0; /* Thu, 01 Jan 1970 */
	char *s = format(&m);
	assert_true(strncmp(s, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n", 39) == 0);
	assert_string_equal(body_of(s), "");
	free(s);
}

static void test_subject_encoded_roundtrip(void **state)
{
	(void)state;
	const char *subjects[] = {
	    "Réinitialisation du mot de passe",
	    "パスワードのリセットのお知らせ：アカウントの安全のために確認してください",
	    "emoji "
	    "🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂"
	    "🙂🙂🙂 end",
	    "looks like =?UTF-8?B?YQ==?= an encoded word",
	    "a plain ASCII subject that is far too long to sit on one header line of 78 chars",
	    "tab\there",
	};
	for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		struct mail_message m = msg(subjects[i], "x");
		char *s = format(&m);
		assert_lines(s, 76);
		char *dec = subject_decode(s);
		assert_string_equal(dec, subjects[i]);
		free(dec);
		free(s);
	}
}

static void test_subject_words_hold_whole_characters(void **state)
{
	(void)state;
	/* 3-byte characters: a 39/45-byte limit must not split one */
	char subj[400] = "";
	for (int i = 0; i < 40; i++)
		strcat(subj, "€");
	struct mail_message m = msg(subj, "x");
	char *s = format(&m);
	const char *p = strstr(s, "Subject:");
	while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
		const char *end = strstr(p, "?=");
		unsigned char tmp[128];
		int n = EVP_DecodeBlock(tmp, (const unsigned char *)p + 10, (int)(end - p - 10));
		for (const char *q = end - 1; *q == '='; q--)
			n--;
		assert_int_equal(n % 3, 0);
		for (int k = 0; k < n; k += 3)
			assert_memory_equal(tmp + k, "€", 3);
		p = end;
	}
	free(s);
}

static void test_long_lines_soft_breaks(void **state)
{
	(void)state;
	char body[1200];
	size_t n = 0;
	for (int i = 0; i < 300; i++)
		body[n++] = (char)('a' + i % 26);
	body[n++] = '\n';
	for (int i = 0; i < 100; i++) {
		memcpy(body + n, "é=", 3);
		n += 3;
	}
	body[n++] = '\n';
	memset(body + n, 'x', 76); /* exactly 76: fits without a soft break */
	n += 76;
	body[n++] = '\n';
	body[n] = '\0';
	struct mail_message m = msg("long", body);
	char *s = format(&m);
	const char *b = body_of(s);
	assert_lines(b, 76);
	assert_non_null(strstr(b, "=\r\n"));
	char x76[80];
	memset(x76, 'x', 76);
	memcpy(x76 + 76, "\r\n", 3);
	assert_non_null(strstr(b, x76));
	char *dec = qp_decode(b);
	assert_string_equal(dec, body);
	free(dec);
	free(s);
}

static void test_qp_specials(void **state)
{
	(void)state;
	struct mail_message m = msg("x", "a=b\ntrailing space \ntab\t\ncafé\nFrom me\n.\n..\n");
	char *s = format(&m);
	assert_string_equal(body_of(s), "a=3Db\r\n"
	                                "trailing space=20\r\n"
	                                "tab=09\r\n"
	                                "caf=C3=A9\r\n"
	                                "=46rom me\r\n"
	                                ".\r\n"
	                                "..\r\n");
	free(s);
}

/* A soft break that leaves "From " at the start of the next line: encoded
 * there too, or an mbox store would turn it into ">From " (found by
 * t/fuzz/fuzz_mail_format.c). */
static void test_from_after_soft_break(void **state)
{
	(void)state;
	char body[100], want[120];
	memset(body, 'a', 75);
	strcpy(body + 75, "From here\n");
	memset(want, 'a', 75);
	strcpy(want + 75, "=\r\n=46rom here\r\n");
	struct mail_message m = msg("x", body);
	char *s = format(&m);
	assert_string_equal(body_of(s), want);
	free(s);
}

static void test_crlf_everywhere(void **state)
{
	(void)state;
	struct mail_message m = msg("mixed", "unix\nmac\rdos\r\n\n\r\r\nlast");
	char *s = format(&m);
	assert_lines(s, 78);
	assert_string_equal(body_of(s), "unix\r\nmac\r\ndos\r\n\r\n\r\n\r\nlast\r\n");
	free(s);
}

static void assert_refused(const struct mail_message *m, const char *from)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "keep");
	assert_false(mail_format(m, from, &b));
	assert_string_equal(buf_cstr(&b), "keep");
	buf_free(&b);
}

static void test_injection_refused(void **state)
{
	(void)state;
	struct mail_message m;
	m = msg("hi\r\nBcc: victim@example.test", "x");
	assert_refused(&m, "ops@example.test");
	m = msg("hi\nX: y", "x");
	assert_refused(&m, "ops@example.test");
	m = msg("hi\r", "x");
	assert_refused(&m, "ops@example.test");
	m = msg("hi", "x");
	m.to = "alice@example.test\r\nBcc: victim@example.test";
	assert_refused(&m, "ops@example.test");
	m = msg("hi", "x");
	m.to = "alice@example.test, victim@example.test";
	assert_refused(&m, "ops@example.test");
	m = msg("hi", "x");
	m.to = "alice@example.test>";
	assert_refused(&m, "ops@example.test");
	m = msg("hi", "x");
	assert_refused(&m, "ops@example.test\nBcc: victim@example.test");
	m = msg("hi", "x");
	assert_refused(&m, "");
	m = msg("hi", "x");
	m.message_id = "id@example.test>\r\nBcc: victim@example.test";
	assert_refused(&m, "ops@example.test");
	m = msg("hi", "x");
	m.message_id = "";
	assert_refused(&m, "ops@example.test");
}

static void test_invalid_utf8_refused(void **state)
{
	(void)state;
	const char *bad[] = {
	    "\xff",
	    "caf\xc3",
	    "\xc0\xaf",
	    "\xed\xa0\x80",
	    "\xf4\x90\x80\x80",
	    "\xe2\x82",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mail_message m = msg(bad[i], "x");
		assert_refused(&m, "ops@example.test");
		m = msg("x", bad[i]);
		assert_refused(&m, "ops@example.test");
	}
	struct mail_message ok = msg("\xf0\x9f\x99\x82", "\xe2\x82\xac");
	char *s = format(&ok);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ascii_headers_exact),
	    cmocka_unit_test(test_date_single_digit_day),
	    cmocka_unit_test(test_subject_encoded_roundtrip),
	    cmocka_unit_test(test_subject_words_hold_whole_characters),
	    cmocka_unit_test(test_long_lines_soft_breaks),
	    cmocka_unit_test(test_qp_specials),
	    cmocka_unit_test(test_from_after_soft_break),
	    cmocka_unit_test(test_crlf_everywhere),
	    cmocka_unit_test(test_injection_refused),
	    cmocka_unit_test(test_invalid_utf8_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
