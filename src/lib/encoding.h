/* Bytes as text and back, one implementation each: hex, base64 (RFC 4648)
 * and percent-encoding (RFC 3986 §2.1). */
#ifndef OPSD_ENCODING_H
#define OPSD_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

void hex_encode(const void *p, size_t n, char *out); /* out[2n + 1], lower case */
/* Decodes exactly 2n hex digits (either case) into n bytes; false on a bad
 * digit or length. */
bool hex_decode(const char *s, void *out, size_t n);

/* base64 of n bytes: the standard alphabet (§4) or the URL one (§5), with
 * or without '=' padding. Returns the length written (out needs
 * 4 * ceil(n / 3) + 1), 0 (and "") when out is too small. */
size_t b64_encode(bool url, bool pad, const void *p, size_t n, char *out, size_t out_len);
enum b64_decoding {
	/* Unpadded, one alphabet, canonical (the unused low bits of the last
	 * character are zero, RFC 4648 §3.5): every byte string has exactly one
	 * encoding. Tokens, cookies, cursors, sealed secrets, password hashes. */
	B64_STRICT_URL,
	B64_STRICT_STD,
	/* Either alphabet, '=' padding optional: keys pasted into configuration. */
	B64_LENIENT,
};
/* Decodes s[0..slen) into out (at most out_cap bytes); false when it is
 * not base64 of that kind or does not fit. *out_len (may be NULL) gets the
 * length. */
bool b64_decode(enum b64_decoding how, const char *s, size_t slen, uint8_t *out, size_t out_cap,
    size_t *out_len);
/* The URL alphabet without padding, strict: what opsd itself issues. */
size_t b64url_encode(const void *p, size_t n, char *out, size_t out_len);
bool b64url_decode(const char *s, size_t slen, uint8_t *out, size_t out_cap, size_t *out_len);

/* Percent-decodes s[0..n) (and '+' → ' ' when form is true) into out with
 * its NUL; false on a malformed escape, an encoded or raw NUL, or when it
 * does not fit out_len. */
bool pct_decode(const char *s, size_t n, bool form, char *out, size_t out_len);
/* The same into the arena; NULL when malformed. */
char *url_decode(struct arena *a, const char *s, size_t n, bool form);

#endif
