/* Passwords (scrypt, PHC strings), HMAC-SHA256, SHA-256, base64 and API
 * tokens, all through OpenSSL 3. */
#include "lib/crypto.h"
#include "lib/encoding.h"

#include "lib/log.h"
#include "lib/secret.h"
#include "lib/util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN 32

/* Accepted cost bounds: below them a hash is worthless, above them one
 * stored string could make a login allocate gigabytes. */
#define LN_MIN 1
#define LN_MAX 22
#define R_MIN 1
#define R_MAX 32
#define P_MIN 1
#define P_MAX 16

/* HMAC/SHA-256 cannot fail with the default provider; if they ever do,
 * unpredictable output makes every comparison against it fail closed. */
static void fail_closed(uint8_t out[32], const char *what)
{
	log_msg(LL_ERROR, "crypto_failed", "%s failed", what);
	if (!random_bytes(out, 32))
		abort(); /* neither digest nor RNG works: nothing can be trusted */
}

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[32])
{
	unsigned int len = 0;
	/* HMAC() refuses a NULL key even when its length is 0 */
	if (key == NULL)
		key = "";
	if (msg == NULL)
		msg = "";
	if (HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &len) == NULL || len != 32)
		fail_closed(out, "HMAC-SHA256");
}

void sha256_raw(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	if (p == NULL)
		p = "";
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
		fail_closed(out, "SHA-256");
}

static bool params_in_bounds(const struct scrypt_params *sp)
{
	return sp != NULL && sp->ln >= LN_MIN && sp->ln <= LN_MAX && sp->r >= R_MIN &&
	       sp->r <= R_MAX && sp->p >= P_MIN && sp->p <= P_MAX;
}

/* scrypt through the provider KDF (RFC 7914). 0 or -1. */
static int scrypt_derive(const char *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
    const struct scrypt_params *sp, uint8_t key[KEY_LEN])
{
	uint64_t n = (uint64_t)1 << sp->ln, r = (uint64_t)sp->r, p = (uint64_t)sp->p;
	/* OpenSSL's default cap is 32 MiB; N=2^17, r=8 needs 128 MiB (128 * N * r) */
	uint64_t maxmem = 2 * 128 * n * r + ((uint64_t)64 << 20);
	int rc = -1;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = NULL;
	if (kdf == NULL)
		goto fail;
	ctx = EVP_KDF_CTX_new(kdf);
	if (ctx == NULL)
		goto fail;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, pw_len),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_R, &r),
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_P, &p),
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
	    OSSL_PARAM_construct_end(),
	};
	if (EVP_KDF_derive(ctx, key, KEY_LEN, params) != 1)
		goto fail;
	rc = 0;
fail:
	if (rc != 0)
		log_msg(LL_ERROR, "scrypt_failed", "scrypt ln=%d r=%d p=%d failed", sp->ln, sp->r,
		    sp->p);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

int password_hash(const char *password, const struct scrypt_params *p, char *out, size_t out_len)
{
	uint8_t salt[SALT_LEN], key[KEY_LEN];
	char salt_b64[32], key_b64[48];
	int rc = -1;
	if (out != NULL && out_len > 0)
		out[0] = '\0';
	if (password == NULL || out == NULL || !params_in_bounds(p))
		return -1;
	size_t pw_len = strnlen(password, PASSWORD_MAX_LEN + 1);
	if (pw_len > PASSWORD_MAX_LEN)
		return -1;
	if (!random_bytes(salt, sizeof(salt)))
		goto fail;
	if (scrypt_derive(password, pw_len, salt, sizeof(salt), p, key) != 0)
		goto fail;
	b64_encode(false, false, salt, sizeof(salt), salt_b64, sizeof(salt_b64));
	b64_encode(false, false, key, sizeof(key), key_b64, sizeof(key_b64));
	int n = snprintf(out, out_len, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", p->ln, p->r, p->p, salt_b64,
	    key_b64);
	if (n < 0 || (size_t)n >= out_len) {
		out[0] = '\0';
		goto fail;
	}
	rc = 0;
fail:
	secret_wipe(key, sizeof(key));
	return rc;
}

/* Decimal without sign or leading zero, at most two digits; advances *s. */
static bool parse_small_uint(const char **s, int *out)
{
	const char *p = *s;
	int v = 0, digits = 0;
	if (*p == '0')
		return false;
	while (*p >= '0' && *p <= '9' && digits < 3) {
		v = v * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (digits == 0 || digits > 2)
		return false;
	*out = v;
	*s = p;
	return true;
}

static bool expect(const char **s, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*s, lit, n) != 0)
		return false;
	*s += n;
	return true;
}

/* $scrypt$ln=L,r=R,p=P$<salt>$<key>, exactly as password_hash writes it. */
static bool phc_parse(const char *phc, struct scrypt_params *sp, uint8_t salt[SALT_LEN],
    uint8_t key[KEY_LEN])
{
	const char *s = phc;
	size_t got = 0;
	if (s == NULL || strnlen(s, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
		return false;
	if (!expect(&s, "$scrypt$ln=") || !parse_small_uint(&s, &sp->ln) || !expect(&s, ",r=") ||
	    !parse_small_uint(&s, &sp->r) || !expect(&s, ",p=") || !parse_small_uint(&s, &sp->p) ||
	    !expect(&s, "$"))
		return false;
	if (!params_in_bounds(sp))
		return false;
	const char *dollar = strchr(s, '$');
	if (dollar == NULL)
		return false;
	if (!b64_decode(B64_STRICT_STD, s, (size_t)(dollar - s), salt, SALT_LEN, &got) ||
	    got != SALT_LEN)
		return false;
	s = dollar + 1;
	if (!b64_decode(B64_STRICT_STD, s, strlen(s), key, KEY_LEN, &got) || got != KEY_LEN)
		return false;
	return true;
}

enum pw_result password_verify(const char *password, const char *phc,
    const struct scrypt_params *current)
{
	struct scrypt_params sp;
	uint8_t salt[SALT_LEN], stored[KEY_LEN], key[KEY_LEN];
	enum pw_result res = PW_MISMATCH;
	if (!phc_parse(phc, &sp, salt, stored))
		return PW_BAD_HASH;
	size_t pw_len =
	    password == NULL ? PASSWORD_MAX_LEN + 1 : strnlen(password, PASSWORD_MAX_LEN + 1);
	if (pw_len > PASSWORD_MAX_LEN) {
		/* same work as a real verify, so length does not show in the timing */
		password_burn(password, &sp);
		return PW_MISMATCH;
	}
	if (scrypt_derive(password, pw_len, salt, sizeof(salt), &sp, key) != 0)
		goto done;
	if (CRYPTO_memcmp(key, stored, KEY_LEN) != 0)
		goto done;
	res = PW_OK;
	if (current != NULL && (sp.ln != current->ln || sp.r != current->r || sp.p != current->p))
		res = PW_OK_REHASH;
done:
	secret_wipe(key, sizeof(key));
	return res;
}

void password_burn(const char *password, const struct scrypt_params *p)
{
	static const uint8_t salt[SALT_LEN] = "opsd-burn-salt!";
	uint8_t key[KEY_LEN];
	if (password == NULL)
		password = "";
	if (!params_in_bounds(p))
		return;
	(void)scrypt_derive(password, strnlen(password, PASSWORD_MAX_LEN), salt, sizeof(salt), p,
	    key);
	secret_wipe(key, sizeof(key));
}

bool token_new(char out[TOKEN_LEN + 1])
{
	uint8_t raw[32];
	const size_t prefix_len = sizeof(TOKEN_PREFIX) - 1;
	out[0] = '\0';
	if (!random_bytes(raw, sizeof(raw)))
		return false;
	memcpy(out, TOKEN_PREFIX, prefix_len);
	size_t n = b64url_encode(raw, sizeof(raw), out + prefix_len, TOKEN_LEN + 1 - prefix_len);
	secret_wipe(raw, sizeof(raw));
	if (prefix_len + n != TOKEN_LEN) {
		out[0] = '\0';
		return false;
	}
	return true;
}

bool token_well_formed(const char *s)
{
	uint8_t raw[32];
	size_t got = 0;
	const size_t prefix_len = sizeof(TOKEN_PREFIX) - 1;
	if (s == NULL || strnlen(s, TOKEN_LEN + 1) != TOKEN_LEN ||
	    strncmp(s, TOKEN_PREFIX, prefix_len) != 0)
		return false;
	/* decoding also rejects non-canonical last characters */
	return b64url_decode(s + prefix_len, TOKEN_LEN - prefix_len, raw, sizeof(raw), &got) &&
	       got == sizeof(raw);
}

/* ---- secrets at rest --------------------------------------------------- */

#define SEAL_LABEL "opsd secret seal v1"
#define SEAL_NONCE 12
#define SEAL_TAG 16

static void seal_key(const uint8_t data_key[32], uint8_t key[32])
{
	hmac_sha256(data_key, 32, SEAL_LABEL, strlen(SEAL_LABEL), key);
}

bool secret_seal(const uint8_t data_key[32], const char *plain, char *out, size_t out_len)
{
	size_t n = strlen(plain);
	uint8_t key[32], *buf = malloc(SEAL_NONCE + n + SEAL_TAG);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0;
	bool ok = false;

	if (!buf || !ctx || n > 4096 || out_len < SEALED_LEN(n) || !random_bytes(buf, SEAL_NONCE))
		goto out;
	seal_key(data_key, key);
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
	    EVP_EncryptUpdate(ctx, buf + SEAL_NONCE, &len, (const uint8_t *)plain, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(ctx, buf + SEAL_NONCE + len, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, buf + SEAL_NONCE + n) != 1)
		goto out;
	ok = b64url_encode(buf, SEAL_NONCE + n + SEAL_TAG, out, out_len) > 0;
out:
	secret_wipe(key, sizeof(key));
	if (buf) {
		secret_wipe(buf, SEAL_NONCE + n + SEAL_TAG);
		free(buf);
	}
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

bool secret_open(const uint8_t data_key[32], const char *sealed, char *out, size_t out_len)
{
	size_t slen = strlen(sealed), n = 0;
	uint8_t key[32], *buf = malloc(slen + 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0;
	bool ok = false;

	if (!buf || !ctx || !b64url_decode(sealed, slen, buf, slen + 1, &n) ||
	    n < SEAL_NONCE + SEAL_TAG || n - SEAL_NONCE - SEAL_TAG >= out_len)
		goto out;
	n -= SEAL_NONCE + SEAL_TAG;
	seal_key(data_key, key);
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
	    EVP_DecryptUpdate(ctx, (uint8_t *)out, &len, buf + SEAL_NONCE, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, buf + SEAL_NONCE + n) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (uint8_t *)out + len, &fin) != 1)
		goto out;
	out[n] = '\0';
	ok = true;
out:
	if (!ok && out_len)
		secret_wipe(out, out_len);
	secret_wipe(key, sizeof(key));
	free(buf);
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}
