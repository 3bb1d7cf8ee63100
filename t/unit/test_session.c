#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/session.h"
#include "lib/crypto.h"
#include "lib/encoding.h"
#include "lib/util.h"

#define NAME SESSION_COOKIE_NAME
static const char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";
static const char OLD_SECRET[] = "0123456789abcdef0123456789abcdef-old-secret";

static uint8_t ID[SESSION_ID_LEN];
static char VALUE[SESSION_COOKIE_VALUE_LEN + 1];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ID); i++)
		ID[i] = (uint8_t)(i * 7 + 3);
	session_cookie_value(SECRET, ID, VALUE);
	return 0;
}

/* parse(header) with the test secret; the id must come back on success. */
static bool parse(const char *header)
{
	uint8_t id[SESSION_ID_LEN];
	memset(id, 0, sizeof(id));
	if (!session_cookie_parse(SECRET, header, id))
		return false;
	assert_memory_equal(id, ID, sizeof(id));
	return true;
}

static bool parse_fmt(const char *fmt, const char *value)
{
	char h[512];
	snprintf(h, sizeof(h), fmt, value);
	return parse(h);
}

static void test_value_shape(void **state)
{
	(void)state;
	char enc[64];
	assert_int_equal(strlen(VALUE), SESSION_COOKIE_VALUE_LEN);
	assert_int_equal(VALUE[43], '.');
	b64url_encode(ID, sizeof(ID), enc, sizeof(enc));
	assert_int_equal(strncmp(VALUE, enc, 43), 0);
	/* the MAC half is HMAC(secret, "session" || id) */
	uint8_t msg[7 + SESSION_ID_LEN], mac[32];
	memcpy(msg, "session", 7);
	memcpy(msg + 7, ID, sizeof(ID));
	hmac_sha256(SECRET, strlen(SECRET), msg, sizeof(msg), mac);
	b64url_encode(mac, sizeof(mac), enc, sizeof(enc));
	assert_string_equal(VALUE + 44, enc);
	/* deterministic for one secret, different under another */
	char again[SESSION_COOKIE_VALUE_LEN + 1], other[SESSION_COOKIE_VALUE_LEN + 1];
	session_cookie_value(SECRET, ID, again);
	session_cookie_value(OLD_SECRET, ID, other);
	assert_string_equal(again, VALUE);
	assert_string_not_equal(other, VALUE);
}

static void test_parse_ok(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    NAME "=%s",
	    "a=1; " NAME "=%s",
	    NAME "=%s; b=2",
	    "a=1; " NAME "=%s; b=2",
	    "a=1;" NAME "=%s;b=2",
	    "  " NAME "=%s  ",
	    "\t" NAME "=%s\t;x=y",
	    "a=1 ;  " NAME "=%s ; b",
	    "a=1; ; " NAME "=%s;;",
	    "nameless; " NAME "=%s",
	    /* other cookies whose names only resemble ours */
	    "__host-opsd_session=junk; " NAME "=%s; " NAME "x=junk; x" NAME "=junk",
	    "__Secure-opsd_session=junk; " NAME "=%s",
	    "a=" NAME "=junk; " NAME "=%s",
	};
	for (size_t i = 0; i < countof(ok); i++) {
		if (!parse_fmt(ok[i], VALUE))
			fail_msg("refused: %s", ok[i]);
	}
}

static void test_parse_absent(void **state)
{
	(void)state;
	assert_false(parse(""));
	assert_false(parse("a=1; b=2"));
	assert_false(parse(NAME));
	assert_false(parse(NAME "="));
	assert_false(parse(NAME "=;"));
	assert_false(parse_fmt("__host-opsd_session=%s", VALUE)); /* names are case-sensitive */
	assert_false(parse_fmt("__Host-Opsd_Session=%s", VALUE));
	assert_false(parse_fmt(NAME "2=%s", VALUE));
	assert_false(parse_fmt("x" NAME "=%s", VALUE));
	uint8_t id[SESSION_ID_LEN];
	assert_false(session_cookie_parse(SECRET, NULL, id));
	assert_false(session_cookie_parse(NULL, VALUE, id));
}

static void test_parse_duplicate(void **state)
{
	(void)state;
	char h[512];
	snprintf(h, sizeof(h), NAME "=%s; " NAME "=%s", VALUE, VALUE);
	assert_false(parse(h));
	assert_false(parse_fmt(NAME "=%s; " NAME "=junk", VALUE));
	assert_false(parse_fmt(NAME "=junk; " NAME "=%s", VALUE));
	assert_false(parse_fmt(NAME "=%s; " NAME "=", VALUE));
	/* a bare name without '=' is no second session cookie */
	assert_true(parse_fmt(NAME "=%s; a=1; " NAME, VALUE));
}

static void test_parse_forged(void **state)
{
	(void)state;
	char v[SESSION_COOKIE_VALUE_LEN + 1];
	/* flip one character in each half (staying inside the alphabet and canonical) */
	static const size_t pos[] = {0, 10, 41, 44, 60, 85};
	for (size_t i = 0; i < countof(pos); i++) {
		memcpy(v, VALUE, sizeof(v));
		v[pos[i]] = v[pos[i]] == 'A' ? 'B' : 'A';
		assert_false(parse_fmt(NAME "=%s", v));
	}
	/* swap the halves' roles: id of one session with the MAC of another */
	uint8_t other[SESSION_ID_LEN];
	char ov[SESSION_COOKIE_VALUE_LEN + 1];
	memcpy(other, ID, sizeof(other));
	other[0] ^= 1;
	session_cookie_value(SECRET, other, ov);
	memcpy(v, ov, 44);
	memcpy(v + 44, VALUE + 44, 44);
	assert_false(parse_fmt(NAME "=%s", v));
	/* the CSRF token is a MAC under the same secret, but for another purpose */
	char csrf[CSRF_TOKEN_LEN + 1];
	session_csrf_token(SECRET, ID, csrf);
	memcpy(v, VALUE, 44);
	memcpy(v + 44, csrf, sizeof(csrf));
	assert_false(parse_fmt(NAME "=%s", v));
}

static void test_parse_shape(void **state)
{
	(void)state;
	char v[SESSION_COOKIE_VALUE_LEN + 8];
	/* truncated */
	snprintf(v, sizeof(v), "%.*s", SESSION_COOKIE_VALUE_LEN - 1, VALUE);
	assert_false(parse_fmt(NAME "=%s", v));
	snprintf(v, sizeof(v), "%.*s", 44, VALUE);
	assert_false(parse_fmt(NAME "=%s", v));
	snprintf(v, sizeof(v), "%.*s", 43, VALUE);
	assert_false(parse_fmt(NAME "=%s", v));
	/* extra characters */
	static const char *const extra[] = {NAME "=%sA", NAME "=%s=", NAME "=%s.", NAME "=\"%s\"",
	    NAME "=%s x", NAME "=A%s"};
	for (size_t i = 0; i < countof(extra); i++)
		assert_false(parse_fmt(extra[i], VALUE));
	/* dot moved or missing */
	memcpy(v, VALUE, SESSION_COOKIE_VALUE_LEN + 1);
	v[43] = 'A';
	assert_false(parse_fmt(NAME "=%s", v));
	memcpy(v, VALUE, SESSION_COOKIE_VALUE_LEN + 1);
	v[42] = '.';
	v[43] = VALUE[42];
	assert_false(parse_fmt(NAME "=%s", v));
	/* characters outside the URL alphabet, in each half */
	static const char bad[] = "+/=% ;,\"\\";
	for (size_t i = 0; i < sizeof(bad) - 1; i++) {
		memcpy(v, VALUE, SESSION_COOKIE_VALUE_LEN + 1);
		v[5] = bad[i];
		assert_false(parse_fmt(NAME "=%s", v));
		memcpy(v, VALUE, SESSION_COOKIE_VALUE_LEN + 1);
		v[70] = bad[i];
		assert_false(parse_fmt(NAME "=%s", v));
	}
	/* non-canonical last character (its two unused bits set): the same
	 * bytes spelt another way; value + 1 is the next character here */
	memcpy(v, VALUE, SESSION_COOKIE_VALUE_LEN + 1);
	v[86] = (char)(v[86] + 1);
	assert_false(parse_fmt(NAME "=%s", v));
}

static void test_parse_wrong_secret(void **state)
{
	(void)state;
	char old[SESSION_COOKIE_VALUE_LEN + 1], h[256];
	uint8_t id[SESSION_ID_LEN];
	/* runbook 7: after rotating SESSION_SECRET, old cookies are refused */
	session_cookie_value(OLD_SECRET, ID, old);
	snprintf(h, sizeof(h), NAME "=%s", old);
	assert_true(session_cookie_parse(OLD_SECRET, h, id));
	assert_false(session_cookie_parse(SECRET, h, id));
	snprintf(h, sizeof(h), NAME "=%s", VALUE);
	assert_false(session_cookie_parse(OLD_SECRET, h, id));
	assert_false(session_cookie_parse("", h, id));
}

static void test_csrf(void **state)
{
	(void)state;
	char t[CSRF_TOKEN_LEN + 1], o[CSRF_TOKEN_LEN + 1], h[CSRF_TOKEN_LEN + 8];
	session_csrf_token(SECRET, ID, t);
	assert_int_equal(strlen(t), CSRF_TOKEN_LEN);
	assert_true(session_csrf_ok(SECRET, ID, t));
	/* bound to the session and to the secret */
	uint8_t other[SESSION_ID_LEN];
	memcpy(other, ID, sizeof(other));
	other[31] ^= 0x80;
	session_csrf_token(SECRET, other, o);
	assert_string_not_equal(o, t);
	assert_false(session_csrf_ok(SECRET, other, t));
	assert_false(session_csrf_ok(OLD_SECRET, ID, t));
	/* not the cookie's MAC */
	assert_int_not_equal(strncmp(t, VALUE + 44, CSRF_TOKEN_LEN), 0);
	assert_false(session_csrf_ok(SECRET, ID, VALUE + 44));
	/* missing, empty, wrong length, altered */
	assert_false(session_csrf_ok(SECRET, ID, NULL));
	assert_false(session_csrf_ok(SECRET, ID, ""));
	snprintf(h, sizeof(h), "%.*s", CSRF_TOKEN_LEN - 1, t);
	assert_false(session_csrf_ok(SECRET, ID, h));
	snprintf(h, sizeof(h), "%sA", t);
	assert_false(session_csrf_ok(SECRET, ID, h));
	snprintf(h, sizeof(h), " %s", t);
	assert_false(session_csrf_ok(SECRET, ID, h));
	snprintf(h, sizeof(h), "%s", t);
	h[0] = h[0] == 'A' ? 'B' : 'A';
	assert_false(session_csrf_ok(SECRET, ID, h));
	assert_false(session_csrf_ok(NULL, ID, t));
}

static void test_set_cookie(void **state)
{
	(void)state;
	char out[256];
	char want[256];
	session_set_cookie(VALUE, 43200, out, sizeof(out));
	snprintf(want, sizeof(want),
	    NAME "=%s; Path=/; Max-Age=43200; Secure; HttpOnly; SameSite=Strict", VALUE);
	assert_string_equal(out, want);
	session_set_cookie(NULL, 43200, out, sizeof(out));
	assert_string_equal(out, NAME "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
	session_set_cookie(VALUE, -5, out, sizeof(out));
	assert_non_null(strstr(out, "; Max-Age=0;"));
	/* a header cut short would lose its flags: nothing instead */
	session_set_cookie(VALUE, 60, out, 120);
	assert_string_equal(out, "");
}

/* HMAC keyed by the secret over a fixed text, 8 bytes in hex (the values
 * come from Python's hmac module); never a plain hash of the secret. */
static void test_fingerprint(void **state)
{
	char fp[SESSION_SECRET_FINGERPRINT_LEN + 1];

	(void)state;
	session_secret_fingerprint(SECRET, fp);
	assert_string_equal(fp, "c5ce8215cbc6feb3");
	assert_string_not_equal(fp, "dd12717eab056dbc"); /* sha256(secret) */
	session_secret_fingerprint(OLD_SECRET, fp);
	assert_string_equal(fp, "a58ae59623640709");
	session_secret_fingerprint(NULL, fp);
	assert_string_equal(fp, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_value_shape),
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_absent),
	    cmocka_unit_test(test_parse_duplicate),
	    cmocka_unit_test(test_parse_forged),
	    cmocka_unit_test(test_parse_shape),
	    cmocka_unit_test(test_parse_wrong_secret),
	    cmocka_unit_test(test_csrf),
	    cmocka_unit_test(test_set_cookie),
	    cmocka_unit_test(test_fingerprint),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
