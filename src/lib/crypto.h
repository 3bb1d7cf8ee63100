/* Passwords, MACs and opaque tokens, all through OpenSSL. */
#ifndef OPSD_CRYPTO_H
#define OPSD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* scrypt cost (README "Identity, sessions and roles": N=2^17, r=8, p=1 per OWASP; tests tune ln
 * down). */
struct scrypt_params {
	int ln; /* log2(N) */
	int r;
	int p;
};
#define SCRYPT_DEFAULT ((struct scrypt_params){17, 8, 1})
#define PASSWORD_HASH_MAX 160
#define PASSWORD_MAX_LEN 1024 /* bytes; longer input is refused before hashing */

/* PHC string: $scrypt$ln=17,r=8,p=1$<salt b64>$<hash b64> (16-byte salt,
 * 32-byte key, standard base64 without padding). 0 or -1. */
int password_hash(const char *password, const struct scrypt_params *p, char *out, size_t out_len);

enum pw_result {
	PW_MISMATCH,  /* wrong password */
	PW_OK,        /* matches, parameters current */
	PW_OK_REHASH, /* matches, but stored with other parameters: rehash now */
	PW_BAD_HASH,  /* the stored string is not a hash we understand */
};
/* Constant-time comparison of the derived key. */
enum pw_result password_verify(const char *password, const char *phc,
    const struct scrypt_params *current);
/* Spends the same work as a verify, for logins of unknown accounts, so that
 * timing does not tell which emails exist. */
void password_burn(const char *password, const struct scrypt_params *p);

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[32]);
void sha256_raw(const void *p, size_t n, uint8_t out[32]);

/* API tokens: "opsd_" + base64url(32 random bytes) (48 characters). The
 * database keeps only sha256 of the whole string. */
#define TOKEN_PREFIX "opsd_"
#define TOKEN_LEN 48
bool token_new(char out[TOKEN_LEN + 1]);
/* Shape check before any lookup (prefix, length, alphabet). */
bool token_well_formed(const char *s);

/* Secrets at rest (migration targets, README "Runbook 3"): AES-256-GCM under a key
 * derived from OPSD_DATA_KEY, as base64url(nonce(12) | ciphertext | tag(16)).
 * seal returns false on failure; open returns false when the text was not
 * sealed under this key or was altered. SEALED_LEN(n) sizes seal's out. */
#define SEALED_LEN(n) (((12 + (n) + 16) * 4 + 2) / 3 + 1)
bool secret_seal(const uint8_t data_key[32], const char *plain, char *out, size_t out_len);
bool secret_open(const uint8_t data_key[32], const char *sealed, char *out, size_t out_len);

#endif
