/* Small shared helpers: clocks, RFC 3339, hex, SHA-256, URL decoding. */
#include "lib/util.h"

#include "lib/arena.h"
#include "lib/encoding.h"
#include "lib/utf8.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_ns(clockid_t id, int64_t div)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * (1000000000 / div) + ts.tv_nsec / div;
}

int64_t now_ms(void)
{
	return clock_ns(CLOCK_REALTIME, 1000000);
}

int64_t mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC, 1000000);
}

int64_t mono_us(void)
{
	return clock_ns(CLOCK_MONOTONIC, 1000);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void format_rfc3339(int64_t ms, char *out)
{
	int64_t days = floor_div(ms, 86400000);
	/* not ms - days * 86400000: that overflows near INT64_MIN */
	int64_t rem = ms % 86400000 + (ms % 86400000 < 0 ? 86400000 : 0);
	int64_t y;
	int mo, d;
	char tmp[80]; /* room for any int64 year; real ones fit out[32] */
	civil_from_days(days, &y, &mo, &d);
	snprintf(tmp, sizeof(tmp), "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, mo, d,
	    (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
	    (int)(rem % 1000));
	str_copy(out, tmp, 32);
}

/* Reads exactly n digits at *s. */
static bool digits(const char **s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*s)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool expect(const char **s, char a, char b)
{
	if (**s != a && **s != b)
		return false;
	(*s)++;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 3339 §5.6 date-time; §5.7 limits on each field. */
bool parse_rfc3339(const char *s, int64_t *ms_out)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
	if (s == NULL || !digits(&s, 4, &y) || !expect(&s, '-', '-') || !digits(&s, 2, &mo) ||
	    !expect(&s, '-', '-') || !digits(&s, 2, &d) || !expect(&s, 'T', 't') ||
	    !digits(&s, 2, &h) || !expect(&s, ':', ':') || !digits(&s, 2, &mi) ||
	    !expect(&s, ':', ':') || !digits(&s, 2, &sec))
		return false;
	if (*s == '.') {
		s++;
		int n = 0;
		for (; *s >= '0' && *s <= '9'; s++, n++)
			if (n < 3)
				frac = frac * 10 + (*s - '0');
		if (n == 0)
			return false;
		for (; n < 3; n++)
			frac *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (!digits(&s, 2, &oh) || !expect(&s, ':', ':') || !digits(&s, 2, &om) ||
		    oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
		return false;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	secs -= (int64_t)sign * (oh * 3600 + om * 60);
	/* An offset (or a leap second) can move the instant out of the years the
	 * text could name and a DATETIME can hold, 0000-9999: refused like any
	 * other invalid time rather than failing later in SQL. */
	if (secs < days_from_civil(0, 1, 1) * 86400 || secs >= days_from_civil(10000, 1, 1) * 86400)
		return false;
	*ms_out = secs * 1000 + frac;
	return true;
}

void sha256_hex(const void *p, size_t n, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1) {
		/* cannot happen with the built-in provider; never return a fake hash */
		out[0] = '\0';
		return;
	}
	hex_encode(md, len, out);
}

bool random_bytes(void *p, size_t n)
{
	unsigned char *b = p;
	while (n > 0) {
		int step = n > 1u << 20 ? 1 << 20 : (int)n;
		if (RAND_bytes(b, step) != 1)
			return false;
		b += step;
		n -= (size_t)step;
	}
	return true;
}

/* Finds the first pair of query whose decoded key is name (names are
 * opsd's own, shorter than the key buffer); val and vlen get its raw value
 * (NULL when the pair has no '='). */
static bool query_find(const char *query, const char *name, const char **val, size_t *vlen)
{
	char key[64];

	if (query == NULL || name == NULL || *name == '\0')
		return false;
	for (const char *p = query; *p != '\0';) {
		size_t len = strcspn(p, "&");
		size_t klen = strcspn(p, "=&");

		if (pct_decode(p, klen, true, key, sizeof(key)) && strcmp(key, name) == 0) {
			*val = klen < len ? p + klen + 1 : NULL;
			*vlen = klen < len ? len - klen - 1 : 0;
			return true;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return false;
}

char *query_get(struct arena *a, const char *query, const char *name)
{
	const char *val;
	size_t vlen;
	if (!query_find(query, name, &val, &vlen))
		return NULL;
	if (val == NULL)
		return arena_strdup(a, "");
	return url_decode(a, val, vlen, true);
}

bool query_has(const char *query, const char *name)
{
	const char *val;
	size_t vlen;
	return query_find(query, name, &val, &vlen);
}

bool addr_is_loopback(const char *addr)
{
	struct in_addr v4;
	struct in6_addr v6;
	if (addr == NULL)
		return false;
	if (inet_pton(AF_INET, addr, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &v6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&v6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

bool ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

size_t str_copy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void str_copy_utf8(char *dst, const char *src, size_t size)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t w = 0;

	if (size == 0)
		return;
	while (*s) {
		size_t n = utf8_seq_len((const char *)s, strnlen((const char *)s, 4));

		if (n == 0) {
			if (w + 1 >= size)
				break;
			dst[w++] = '?';
			s++;
			continue;
		}
		if (w + n >= size)
			break;
		memcpy(dst + w, s, n);
		w += n;
		s += n;
	}
	dst[w] = '\0';
}

bool parse_ll_range(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!s || !*s ||
	    !(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}
