/* UUIDv7, RFC 9562 §5.7 with the §6.2 method 1 counter in rand_a. */
#include "lib/uuid.h"

#include "lib/util.h"

#include <string.h>
#include <sys/random.h>

/* Per thread (uuid.h): the last timestamp and counter handed out. The jobs
 * process makes ids on two threads (its loop and the outbox sender); each
 * keeps its own counter, so ids stay monotonic per thread and unique by
 * their random bits. */
static _Thread_local uint64_t last_ms;
static _Thread_local unsigned seq;

static void fill_random(void *p, size_t n)
{
	/* getrandom is the fallback should OpenSSL's DRBG ever fail */
	if (!random_bytes(p, n) && getrandom(p, n, 0) != (ssize_t)n)
		memset(p, 0, n);
}

void uuid7_new(struct opsd_uuid *out)
{
	uint8_t rnd[10];
	fill_random(rnd, sizeof(rnd));
	uint64_t ms = (uint64_t)now_ms();
	if (ms > last_ms) {
		last_ms = ms;
		/* random start below 1024 leaves room for a burst within the ms */
		seq = ((unsigned)rnd[0] << 8 | rnd[1]) & 0x3FF;
	} else if (++seq > 0xFFF) {
		/* counter exhausted (or clock went back): borrow the next ms, §6.2 */
		last_ms++;
		seq = 0;
	}
	uint8_t *b = out->b;
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(last_ms >> (40 - 8 * i));
	b[6] = (uint8_t)(0x70 | (seq >> 8));
	b[7] = (uint8_t)seq;
	b[8] = (uint8_t)(0x80 | (rnd[2] & 0x3F));
	memcpy(b + 9, rnd + 3, 7);
}

void uuid_format(const struct opsd_uuid *u, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->b[i] >> 4];
		*p++ = hex[u->b[i] & 0xF];
	}
	*p = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool uuid_parse(const char *s, struct opsd_uuid *out)
{
	struct opsd_uuid u;
	if (s == NULL || strnlen(s, UUID_STR_LEN + 1) != UUID_STR_LEN)
		return false;
	for (int i = 0, j = 0; i < UUID_STR_LEN; j++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		u.b[j] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	*out = u;
	return true;
}

uint64_t uuid7_unix_ms(const struct opsd_uuid *u)
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | u->b[i];
	return ms;
}

int uuid_version(const struct opsd_uuid *u)
{
	return u->b[6] >> 4;
}
