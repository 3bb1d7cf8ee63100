/* Small helpers shared by every layer: time, hex, hashes, URL decoding. */
#ifndef OPSD_UTIL_H
#define OPSD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

#define countof(a) (sizeof(a) / sizeof((a)[0]))

int64_t now_ms(void);  /* CLOCK_REALTIME, ms since the epoch */
int64_t mono_ms(void); /* CLOCK_MONOTONIC */
int64_t mono_us(void);
/* RFC 3339 UTC with milliseconds: 2026-11-24T10:27:55.123Z; out[32]. */
void format_rfc3339(int64_t ms, char *out);
/* Parses RFC 3339 (Z or ±hh:mm offset, optional fraction); false if malformed. */
bool parse_rfc3339(const char *s, int64_t *ms_out);
/* A whole decimal number in [min, max], nothing else (no sign games, no
 * trailing text). */
bool parse_ll_range(const char *s, long long min, long long max, long long *out);

void sha256_hex(const void *p, size_t n, char *out); /* out[65] */
/* Cryptographically secure (OpenSSL RAND_bytes); false on failure. */
bool random_bytes(void *p, size_t n);

/* Value of name in an application/x-www-form-urlencoded query string,
 * decoded into the arena; NULL if absent or malformed. "" for `?full`. */
char *query_get(struct arena *a, const char *query, const char *name);
bool query_has(const char *query, const char *name);

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool addr_is_loopback(const char *addr);
/* Constant-time comparison for secrets. */
bool ct_equal(const void *a, const void *b, size_t n);
/* strlcpy semantics: always NUL-terminates, returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t size);
bool str_has_prefix(const char *s, const char *prefix);
/* Copies src for a utf8mb4 column: invalid bytes become '?', and the copy is
 * cut at a character boundary so it always fits in size (with its NUL). */
void str_copy_utf8(char *dst, const char *src, size_t size);

#endif
