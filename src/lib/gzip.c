#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/gzip.h"

uint32_t gzip_crc32(uint32_t crc, const void *p, size_t n)
{
	static uint32_t table[256];
	const unsigned char *s = p;

	if (!table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- bits, least significant first (RFC 1951 3.1.1) ------------------- */

struct bits {
	struct buf *out;
	uint32_t acc;
	int n;
};

static void put_bits(struct bits *b, uint32_t v, int n)
{
	b->acc |= v << b->n;
	b->n += n;
	while (b->n >= 8) {
		buf_putc(b->out, (char)(b->acc & 0xff));
		b->acc >>= 8;
		b->n -= 8;
	}
}

/* Huffman codes go out most significant bit first. */
static void put_code(struct bits *b, uint32_t code, int n)
{
	uint32_t r = 0;

	for (int i = 0; i < n; i++)
		r |= ((code >> i) & 1) << (n - 1 - i);
	put_bits(b, r, n);
}

/* The fixed literal/length code (RFC 1951 3.2.6). */
static void put_symbol(struct bits *b, unsigned sym)
{
	if (sym < 144)
		put_code(b, 0x30 + sym, 8);
	else if (sym < 256)
		put_code(b, 0x190 + sym - 144, 9);
	else if (sym < 280)
		put_code(b, sym - 256, 7);
	else
		put_code(b, 0xc0 + sym - 280, 8);
}

static const uint16_t len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35,
    43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4,
    4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
    257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
    9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static void put_match(struct bits *b, unsigned len, unsigned dist)
{
	int l = 28, d = 29;

	while (len_base[l] > len)
		l--;
	put_symbol(b, 257 + (unsigned)l);
	put_bits(b, len - len_base[l], len_extra[l]);
	while (dist_base[d] > dist)
		d--;
	put_code(b, (uint32_t)d, 5);
	put_bits(b, dist - dist_base[d], dist_extra[d]);
}

/* ---- LZ77 over hash chains ---------------------------------------------- */

#define WINDOW 32768
#define MIN_MATCH 3
#define MAX_MATCH 258
#define HASH_BITS 15
#define MAX_CHAIN 64

static unsigned hash3(const unsigned char *p)
{
	return ((unsigned)p[0] << 10 ^ (unsigned)p[1] << 5 ^ p[2]) & ((1u << HASH_BITS) - 1);
}

static void deflate_fixed(const unsigned char *s, size_t n, struct buf *out)
{
	int32_t *head = malloc(sizeof(int32_t) << HASH_BITS);
	int32_t *prev = malloc(sizeof(int32_t) * WINDOW);
	struct bits b = {out, 0, 0};
	size_t i = 0;

	if (!head || !prev) {
		out->oom = true;
		goto out;
	}
	memset(head, 0xff, sizeof(int32_t) << HASH_BITS);
	put_bits(&b, 1, 1); /* BFINAL: the only block */
	put_bits(&b, 1, 2); /* BTYPE 01: fixed codes */
	while (i < n) {
		size_t best = 0, dist = 0;

		if (n - i >= MIN_MATCH) {
			unsigned h = hash3(s + i);
			int32_t c = head[h];
			size_t max = n - i < MAX_MATCH ? n - i : MAX_MATCH;

			for (int chain = 0;
			     c >= 0 && i - (size_t)c <= WINDOW - 1 && chain < MAX_CHAIN; chain++) {
				size_t l = 0;

				while (l < max && s[(size_t)c + l] == s[i + l])
					l++;
				if (l > best) {
					best = l;
					dist = i - (size_t)c;
					if (l == max)
						break;
				}
				c = prev[(size_t)c % WINDOW];
			}
		}
		if (best < MIN_MATCH)
			best = 1;
		if (best >= MIN_MATCH)
			put_match(&b, (unsigned)best, (unsigned)dist);
		else
			put_symbol(&b, s[i]);
		/* Every position passed enters its chain, so later matches find it. */
		for (size_t k = 0; k < best; k++, i++)
			if (n - i >= MIN_MATCH) {
				unsigned h = hash3(s + i);

				prev[i % WINDOW] = head[h];
				head[h] = (int32_t)i;
			}
	}
	put_symbol(&b, 256); /* end of block */
	put_bits(&b, 0, 7);  /* flush the last partial byte */
out:
	free(head);
	free(prev);
}

static void put_le32(struct buf *out, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		buf_putc(out, (char)((v >> (8 * i)) & 0xff));
}

void gzip_encode(const void *in, size_t n, struct buf *out)
{
	/* ID1 ID2, CM deflate, no flags, MTIME 0, XFL 0, OS unknown (RFC 1952 2.3). */
	static const char header[10] = {0x1f, (char)0x8b, 8, 0, 0, 0, 0, 0, 0, (char)0xff};

	buf_append(out, header, sizeof(header));
	deflate_fixed(in, n, out);
	put_le32(out, gzip_crc32(0, in, n));
	put_le32(out, (uint32_t)n);
}
