#include "lib/utf8.h"

size_t utf8_seq_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte (RFC 3629 §4) */
	size_t len;

	if (n == 0)
		return 0;
	if (u[0] < 0x80)
		return 1;
	if (u[0] >= 0xC2 && u[0] <= 0xDF) {
		len = 2;
	} else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
		len = 3;
		if (u[0] == 0xE0)
			lo = 0xA0; /* overlong */
		else if (u[0] == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
		len = 4;
		if (u[0] == 0xF0)
			lo = 0x90; /* overlong */
		else if (u[0] == 0xF4)
			hi = 0x8F; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || u[1] < lo || u[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((u[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0, len; i < n; i += len)
		if ((len = utf8_seq_len(s + i, n - i)) == 0)
			return false;
	return true;
}

size_t utf8_chars(const char *s, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += ((unsigned char)s[i] & 0xC0) != 0x80;
	return count;
}
