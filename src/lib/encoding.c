#include "lib/encoding.h"

#include <string.h>

#include "lib/arena.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- hex ---------------------------------------------------------------- */

void hex_encode(const void *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0xF];
	}
	out[2 * n] = '\0';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool hex_decode(const char *s, void *out, size_t n)
{
	unsigned char *b = out;

	if (strnlen(s, 2 * n + 1) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* ---- base64 ------------------------------------------------------------- */

size_t b64_encode(bool url, bool pad, const void *p, size_t n, char *out, size_t out_len)
{
	const char *alpha = url ? b64_url : b64_std;
	const uint8_t *b = p;
	size_t need = pad ? (n + 2) / 3 * 4 : n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
	size_t o = 0;

	if (out_len < need + 1) {
		if (out_len > 0)
			out[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)b[i + 1] << 8;
		if (left > 2)
			v |= b[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (left > 1)
			out[o++] = alpha[v >> 6 & 63];
		else if (pad)
			out[o++] = '=';
		if (left > 2)
			out[o++] = alpha[v & 63];
		else if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(enum b64_decoding how, char c)
{
	const char *alpha = how == B64_STRICT_URL ? b64_url : b64_std;
	const char *hit = c != '\0' ? memchr(alpha, c, 64) : NULL;

	if (hit)
		return (int)(hit - alpha);
	/* RFC 4648 §5's two characters, accepted beside §4's in configuration */
	if (how == B64_LENIENT && (c == '-' || c == '_'))
		return c == '-' ? 62 : 63;
	return -1;
}

bool b64_decode(enum b64_decoding how, const char *s, size_t slen, uint8_t *out, size_t out_cap,
    size_t *out_len)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0, padding = 0;

	if (s == NULL)
		return false;
	if (how == B64_LENIENT)
		while (slen > 0 && s[slen - 1] == '=' && padding < 3)
			slen--, padding++;
	if (padding > 2 || slen % 4 == 1 || slen / 4 * 3 + (slen % 4 ? slen % 4 - 1 : 0) > out_cap)
		return false;
	for (size_t i = 0; i < slen; i++) {
		int v = b64_value(how, s[i]);

		if (v < 0)
			return false;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0 && how != B64_LENIENT)
		return false;
	if (out_len != NULL)
		*out_len = o;
	return true;
}

size_t b64url_encode(const void *p, size_t n, char *out, size_t out_len)
{
	return b64_encode(true, false, p, n, out, out_len);
}

bool b64url_decode(const char *s, size_t slen, uint8_t *out, size_t out_cap, size_t *out_len)
{
	return b64_decode(B64_STRICT_URL, s, slen, out, out_cap, out_len);
}

/* ---- percent-encoding --------------------------------------------------- */

bool pct_decode(const char *s, size_t n, bool form, char *out, size_t out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return false;
			hi = hex_val(s[i + 1]);
			lo = hex_val(s[i + 2]);
			/* RFC 3986 §2.1; an encoded NUL would cut the value short */
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return false;
			c = hi << 4 | lo;
			i += 2;
		} else if (c == '\0') {
			return false;
		} else if (form && c == '+') {
			c = ' ';
		}
		if (o + 1 >= out_len)
			return false;
		out[o++] = (char)c;
	}
	if (out_len == 0)
		return false;
	out[o] = '\0';
	return true;
}

char *url_decode(struct arena *a, const char *s, size_t n, bool form)
{
	char *out = arena_alloc(a, n + 1);

	return out && pct_decode(s, n, form, out, n + 1) ? out : NULL;
}
