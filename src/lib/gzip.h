/* A gzip member (RFC 1952) of a buffer, compressed with DEFLATE (RFC 1951):
 * LZ77 matches over a 32 KiB window coded with the fixed Huffman codes. For
 * the precompressed files nginx serves beside the public legal documents:
 * text compresses to a third or so, and opsd needs no compression library. */
#ifndef OPSD_GZIP_H
#define OPSD_GZIP_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* RFC 1952's CRC-32 of n bytes, continued from crc (0 to start). */
uint32_t gzip_crc32(uint32_t crc, const void *p, size_t n);

/* Appends the gzip member of in[0..n) to out, with no name and a zero
 * modification time, so that the same input always gives the same bytes.
 * The caller checks buf_failed(out). */
void gzip_encode(const void *in, size_t n, struct buf *out);

#endif
