#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/encoding.h"
#include "lib/util.h"

/* Cheap parameters for tests; SCRYPT_DEFAULT is exercised once. */
static const struct scrypt_params FAST = {10, 8, 1};
/* The salt and key of the pinned vector in test_password_known_vector. */
#define SALT "AAECAwQFBgcICQoLDA0ODw"
#define KEY "mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlRU"
#define HEAD "$scrypt$ln=10,r=8,p=1$"

static void test_b64url_vectors(void **state)
{
	(void)state;
	/* RFC 4648 §10, without padding */
	static const struct {
		const char *in, *out;
	} v[] = {
	    {"", ""},
	    {"f", "Zg"},
	    {"fo", "Zm8"},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"},
	    {"fooba", "Zm9vYmE"},
	    {"foobar", "Zm9vYmFy"},
	};
	char out[16];
	uint8_t dec[16];
	size_t n;
	for (size_t i = 0; i < countof(v); i++) {
		assert_int_equal(b64url_encode(v[i].in, strlen(v[i].in), out, sizeof(out)),
		    strlen(v[i].out));
		assert_string_equal(out, v[i].out);
		assert_true(b64url_decode(v[i].out, strlen(v[i].out), dec, sizeof(dec), &n));
		assert_int_equal(n, strlen(v[i].in));
		assert_memory_equal(dec, v[i].in, n);
	}
	/* the URL alphabet: 0xfb 0xff is "+/8" in standard base64 */
	static const uint8_t hi[] = {0xfb, 0xff};
	assert_int_equal(b64url_encode(hi, 2, out, sizeof(out)), 3);
	assert_string_equal(out, "-_8");
	/* too small an output buffer writes nothing */
	assert_int_equal(b64url_encode("foobar", 6, out, 8), 0);
	assert_string_equal(out, "");
}

static void test_b64url_roundtrip(void **state)
{
	(void)state;
	uint8_t raw[64], dec[64];
	char enc[100];
	size_t n;
	for (size_t len = 0; len <= sizeof(raw); len++) {
		assert_true(random_bytes(raw, sizeof(raw)));
		size_t el = b64url_encode(raw, len, enc, sizeof(enc));
		assert_int_equal(el, (len * 4 + 2) / 3);
		assert_true(b64url_decode(enc, el, dec, sizeof(dec), &n));
		assert_int_equal(n, len);
		assert_memory_equal(dec, raw, len);
	}
}

static void test_b64url_strict(void **state)
{
	(void)state;
	uint8_t dec[16];
	size_t n;
	static const char *const bad[] = {
	    "Zg==",  /* padding */
	    "Zm9v ", /* whitespace */
	    "Zm 9v",
	    "Zm9v\n",
	    "Zm+v", /* standard alphabet */
	    "Zm/v",
	    "Z", /* impossible length */
	    "Zm9vY",
	    "Zh", /* non-canonical: unused bits set */
	    "Zm9",
	    "Zm\x80v",
	};
	for (size_t i = 0; i < countof(bad); i++)
		assert_false(b64url_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), &n));
	/* an embedded NUL is not an alphabet character */
	assert_false(b64url_decode("Zm\0v", 4, dec, sizeof(dec), &n));
	/* output capacity is respected */
	assert_false(b64url_decode("Zm9vYmFy", 8, dec, 5, &n));
	assert_true(b64url_decode("Zm9vYmFy", 8, dec, 6, &n));
	assert_false(b64url_decode(NULL, 0, dec, sizeof(dec), &n));
}

static void test_hmac_sha256(void **state)
{
	(void)state;
	uint8_t out[32];
	char hex[65];
	/* RFC 4231 §4.3, test case 2 */
	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, out);
	hex_encode(out, 32, hex);
	assert_string_equal(hex,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* empty key: RFC 2104 pads it to the block size with zeros */
	hmac_sha256(NULL, 0, "", 0, out);
	hex_encode(out, 32, hex);
	assert_string_equal(hex,
	    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_sha256_raw(void **state)
{
	(void)state;
	uint8_t out[32];
	char hex[65];
	/* FIPS 180-2 appendix B.1 */
	sha256_raw("abc", 3, out);
	hex_encode(out, 32, hex);
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_raw("", 0, out);
	hex_encode(out, 32, hex);
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_token_new(void **state)
{
	(void)state;
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];
	assert_true(token_new(a));
	assert_true(token_new(b));
	assert_int_equal(strlen(a), TOKEN_LEN);
	assert_int_equal(strncmp(a, TOKEN_PREFIX, 5), 0);
	assert_true(token_well_formed(a));
	assert_true(token_well_formed(b));
	assert_string_not_equal(a, b);
}

static void test_token_well_formed(void **state)
{
	(void)state;
	char t[TOKEN_LEN + 1], s[TOKEN_LEN + 8];
	assert_true(token_new(t));
	assert_false(token_well_formed(NULL));
	assert_false(token_well_formed(""));
	assert_false(token_well_formed(TOKEN_PREFIX));
	/* wrong prefix */
	snprintf(s, sizeof(s), "%s", t);
	s[4] = '-';
	assert_false(token_well_formed(s));
	snprintf(s, sizeof(s), "OPSD_%s", t + 5);
	assert_false(token_well_formed(s));
	/* one short, one long */
	snprintf(s, sizeof(s), "%.*s", TOKEN_LEN - 1, t);
	assert_false(token_well_formed(s));
	snprintf(s, sizeof(s), "%sA", t);
	assert_false(token_well_formed(s));
	/* characters outside the URL alphabet */
	static const char bad[] = "+/=. %\"";
	for (size_t i = 0; i < sizeof(bad) - 1; i++) {
		snprintf(s, sizeof(s), "%s", t);
		s[20] = bad[i];
		assert_false(token_well_formed(s));
	}
	/* 32 bytes leave the last character's two low bits unused: must be zero */
	snprintf(s, sizeof(s), "opsd_%042dB", 0);
	for (size_t i = 5; i < TOKEN_LEN - 1; i++)
		s[i] = 'A';
	assert_false(token_well_formed(s));
	s[TOKEN_LEN - 1] = 'E';
	assert_true(token_well_formed(s));
}

static void test_password_roundtrip(void **state)
{
	(void)state;
	char h1[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash("correct horse", &FAST, h1, sizeof(h1)), 0);
	assert_int_equal(password_hash("correct horse", &FAST, h2, sizeof(h2)), 0);
	/* $scrypt$ln=10,r=8,p=1$ + 22 chars of salt + $ + 43 chars of key */
	assert_int_equal(strncmp(h1, "$scrypt$ln=10,r=8,p=1$", 22), 0);
	assert_int_equal(strlen(h1), 22 + 22 + 1 + 43);
	assert_int_equal(h1[44], '$');
	assert_string_not_equal(h1, h2); /* fresh salt each time */
	assert_int_equal(password_verify("correct horse", h1, &FAST), PW_OK);
	assert_int_equal(password_verify("correct horse", h2, &FAST), PW_OK);
	assert_int_equal(password_verify("correct horsE", h1, &FAST), PW_MISMATCH);
	assert_int_equal(password_verify("", h1, &FAST), PW_MISMATCH);
	assert_int_equal(password_verify("correct horse", h1, NULL), PW_OK);
	/* the empty password is a password like any other */
	assert_int_equal(password_hash("", &FAST, h1, sizeof(h1)), 0);
	assert_int_equal(password_verify("", h1, &FAST), PW_OK);
	assert_int_equal(password_verify(" ", h1, &FAST), PW_MISMATCH);
	/* output buffer too small */
	assert_int_equal(password_hash("x", &FAST, h1, 40), -1);
	assert_string_equal(h1, "");
}

static void test_password_known_vector(void **state)
{
	(void)state;
	/* Python's hashlib.scrypt(b"correct horse battery staple", salt=bytes(range(16)),
	 * n=1024, r=8, p=1, dklen=32), standard base64 without padding; the same
	 * hashlib reproduces RFC 7914 §12's N=1024 vector. */
	static const char phc[] = "$scrypt$ln=10,r=8,p=1$" SALT "$" KEY;
	assert_int_equal(password_verify("correct horse battery staple", phc, &FAST), PW_OK);
	assert_int_equal(password_verify("correct horse battery stapl", phc, &FAST), PW_MISMATCH);
}

static void test_password_rehash(void **state)
{
	(void)state;
	char h[PASSWORD_HASH_MAX];
	const struct scrypt_params cheaper = {9, 8, 1}, r4 = {10, 4, 1}, p2 = {10, 8, 2};
	assert_int_equal(password_hash("pw", &FAST, h, sizeof(h)), 0);
	assert_int_equal(password_verify("pw", h, &cheaper), PW_OK_REHASH);
	assert_int_equal(password_verify("pw", h, &r4), PW_OK_REHASH);
	assert_int_equal(password_verify("pw", h, &p2), PW_OK_REHASH);
	assert_int_equal(password_verify("pw", h, &SCRYPT_DEFAULT), PW_OK_REHASH);
	/* a mismatch stays a mismatch whatever the parameters */
	assert_int_equal(password_verify("pX", h, &cheaper), PW_MISMATCH);
	/* other stored parameters are honoured */
	assert_int_equal(password_hash("pw", &p2, h, sizeof(h)), 0);
	assert_int_equal(strncmp(h, "$scrypt$ln=10,r=8,p=2$", 22), 0);
	assert_int_equal(password_verify("pw", h, &p2), PW_OK);
	assert_int_equal(password_verify("pw", h, &FAST), PW_OK_REHASH);
}

static void test_password_default_params(void **state)
{
	(void)state;
	/* N=2^17, r=8 needs 128 MiB: above OpenSSL's default maxmem */
	char h[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash("production", &SCRYPT_DEFAULT, h, sizeof(h)), 0);
	assert_int_equal(strncmp(h, "$scrypt$ln=17,r=8,p=1$", 22), 0);
	assert_int_equal(password_verify("production", h, &SCRYPT_DEFAULT), PW_OK);
}

static void test_password_bad_hash(void **state)
{
	(void)state;
	static const char *const params[] = {
	    "ln=0,r=8,p=1",
	    "ln=23,r=8,p=1",
	    "ln=010,r=8,p=1",
	    "ln=+9,r=8,p=1",
	    "ln=-1,r=8,p=1",
	    "ln=100,r=8,p=1",
	    "ln=10,r=0,p=1",
	    "ln=10,r=33,p=1",
	    "ln=10,r=8,p=0",
	    "ln=10,r=8,p=17",
	    "ln=10,p=1,r=8",
	    "LN=10,r=8,p=1",
	    "ln=10,r=8",
	    "ln=10,r=8,p=1,x=1",
	    "ln=10, r=8,p=1",
	    "ln=,r=8,p=1",
	    "ln=10,r=8,p=1 ",
	};
	char phc[PASSWORD_HASH_MAX + 64];
	for (size_t i = 0; i < countof(params); i++) {
		snprintf(phc, sizeof(phc), "$scrypt$%s$%s$%s", params[i], SALT, KEY);
		assert_int_equal(password_verify("x", phc, &FAST), PW_BAD_HASH);
	}
	static const char *const whole[] = {
	    "",
	    "$scrypt$",
	    HEAD,
	    HEAD SALT,
	    HEAD SALT "$",
	    HEAD SALT "==$" KEY,                                      /* padding */
	    HEAD SALT "$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S_AXJlRU", /* URL alphabet */
	    HEAD "AAECAwQFBgcICQoLDA0O$" KEY,                         /* 15-byte salt */
	    HEAD SALT "$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlQ",  /* 31-byte key */
	    HEAD SALT "$" KEY "$",                                    /* trailing junk */
	    HEAD SALT "$" KEY " ",
	    HEAD SALT "$" KEY "A",
	    "$SCRYPT$ln=10,r=8,p=1$" SALT "$" KEY,
	    "scrypt$ln=10,r=8,p=1$" SALT "$" KEY,
	    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
	    "plaintext",
	};
	for (size_t i = 0; i < countof(whole); i++)
		assert_int_equal(password_verify("x", whole[i], &FAST), PW_BAD_HASH);
	assert_int_equal(password_verify("x", NULL, &FAST), PW_BAD_HASH);
	/* hash refuses parameters it would not verify */
	char h[PASSWORD_HASH_MAX];
	const struct scrypt_params too_big = {23, 8, 1}, zero_r = {10, 0, 1};
	assert_int_equal(password_hash("x", &too_big, h, sizeof(h)), -1);
	assert_int_equal(password_hash("x", &zero_r, h, sizeof(h)), -1);
	assert_int_equal(password_hash("x", NULL, h, sizeof(h)), -1);
}

static void test_password_max_len(void **state)
{
	(void)state;
	static char longest[PASSWORD_MAX_LEN + 1], too_long[PASSWORD_MAX_LEN + 2];
	char h[PASSWORD_HASH_MAX];
	memset(longest, 'a', PASSWORD_MAX_LEN);
	memset(too_long, 'a', PASSWORD_MAX_LEN + 1);
	assert_int_equal(password_hash(longest, &FAST, h, sizeof(h)), 0);
	assert_int_equal(password_verify(longest, h, &FAST), PW_OK);
	assert_int_equal(password_hash(too_long, &FAST, h, sizeof(h)), -1);
	/* an overlong password never matches, even one whose prefix would */
	assert_int_equal(password_hash(longest, &FAST, h, sizeof(h)), 0);
	assert_int_equal(password_verify(too_long, h, &FAST), PW_MISMATCH);
	assert_int_equal(password_verify(NULL, h, &FAST), PW_MISMATCH);
}

static void test_password_burn(void **state)
{
	(void)state;
	const struct scrypt_params p = {13, 8, 1};
	char h[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash("pw", &p, h, sizeof(h)), 0);
	int64_t t0 = mono_us();
	assert_int_equal(password_verify("wrong", h, &p), PW_MISMATCH);
	int64_t t1 = mono_us();
	password_burn("wrong", &p);
	int64_t t2 = mono_us();
	password_burn(NULL, &p);
	/* the same scrypt work: loosely comparable even on a busy machine */
	assert_true((t2 - t1) * 4 > (t1 - t0));
	assert_true((t1 - t0) * 4 > (t2 - t1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64url_vectors),
	    cmocka_unit_test(test_b64url_roundtrip),
	    cmocka_unit_test(test_b64url_strict),
	    cmocka_unit_test(test_hmac_sha256),
	    cmocka_unit_test(test_sha256_raw),
	    cmocka_unit_test(test_token_new),
	    cmocka_unit_test(test_token_well_formed),
	    cmocka_unit_test(test_password_roundtrip),
	    cmocka_unit_test(test_password_known_vector),
	    cmocka_unit_test(test_password_rehash),
	    cmocka_unit_test(test_password_default_params),
	    cmocka_unit_test(test_password_bad_hash),
	    cmocka_unit_test(test_password_max_len),
	    cmocka_unit_test(test_password_burn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
