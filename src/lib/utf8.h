/* UTF-8 (RFC 3629), the one decoder: request bodies, log and JSON output,
 * database columns and mail headers all check text with it. */
#ifndef OPSD_UTF8_H
#define OPSD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the well-formed sequence at s, of the n bytes there; 0
 * when they do not start one: a stray continuation byte, an overlong form,
 * a UTF-16 surrogate, a code point past U+10FFFF or a cut sequence. */
size_t utf8_seq_len(const char *s, size_t n);
/* Every byte of s[0..n) belongs to a well-formed sequence. */
bool utf8_valid(const char *s, size_t n);
/* Code points in valid UTF-8 (bytes that are not continuations). */
size_t utf8_chars(const char *s, size_t n);

#endif
