#include <stdbool.h>
#include <string.h>

#include "server/fcgi_frame.h"

static unsigned be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Reads a name or value length (1 byte, or 4 with the top bit set). */
static bool nv_len(const unsigned char *p, size_t n, size_t *pos, size_t *out)
{
	if (*pos >= n)
		return false;
	if (!(p[*pos] & 0x80)) {
		*out = p[(*pos)++];
		return true;
	}
	if (n - *pos < 4)
		return false;
	*out = ((size_t)(p[*pos] & 0x7f) << 24) | ((size_t)p[*pos + 1] << 16) |
	       ((size_t)p[*pos + 2] << 8) | p[*pos + 3];
	*pos += 4;
	return true;
}

static const char *check_pairs(const unsigned char *p, size_t n)
{
	size_t pos = 0;
	int count = 0;

	while (pos < n) {
		size_t nl, vl;

		if (!nv_len(p, n, &pos, &nl) || !nv_len(p, n, &pos, &vl))
			return "truncated name/value length";
		if (nl > n - pos || vl > n - pos - nl)
			return "name/value length past the end of PARAMS";
		if (nl == 0)
			return "empty param name";
		pos += nl + vl;
		if (++count > FCGI_PARAMS_COUNT_MAX)
			return "too many params";
	}
	return NULL;
}

static enum fcgi_frame_verdict bad(struct fcgi_frame *f, const char *why)
{
	f->why = why;
	return FRAME_BAD;
}

static enum fcgi_frame_verdict more(struct fcgi_frame *f, size_t need)
{
	f->need = need;
	return FRAME_MORE;
}

enum fcgi_frame_verdict fcgi_frame_scan(const unsigned char *buf, size_t have, struct fcgi_frame *f)
{
	static unsigned char params[FCGI_PARAMS_MAX];
	size_t pos = 0, plen = 0;
	bool begun = false;

	f->request_id = 0;
	f->why = NULL;
	f->need = 0;
	for (;;) {
		const unsigned char *h;
		unsigned type, id, clen, padlen;

		if (pos + FCGI_HEADER > have)
			return more(f, pos + FCGI_HEADER);
		h = buf + pos;
		type = h[1];
		id = be16(h + 2);
		clen = be16(h + 4);
		padlen = h[6];
		if (h[0] != 1)
			return bad(f, "not FastCGI version 1");
		if (pos + FCGI_HEADER + clen + padlen > have)
			return more(f, pos + FCGI_HEADER + clen + padlen);
		pos += FCGI_HEADER;
		if (!begun) {
			/* Management records (id 0) may come first; libfcgi answers them. */
			if (id == 0 && type != FCGI_BEGIN) {
				pos += clen + padlen;
				continue;
			}
			if (type != FCGI_BEGIN || clen != 8 || id == 0)
				return bad(f, "expected BEGIN_REQUEST");
			if (be16(buf + pos) != 1)
				return bad(f, "only the RESPONDER role is served");
			begun = true;
			f->request_id = id;
		} else if (type != FCGI_PARAMS_T || id != f->request_id) {
			return bad(f, "expected PARAMS for the request");
		} else if (clen == 0) {
			f->why = check_pairs(params, plen);
			return f->why ? FRAME_BAD : FRAME_SOUND;
		} else {
			if (plen + clen > sizeof(params))
				return bad(f, "PARAMS larger than allowed");
			memcpy(params + plen, buf + pos, clen);
			plen += clen;
		}
		pos += clen + padlen;
	}
}
