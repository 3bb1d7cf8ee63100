/* The FastCGI framing of a connection's first records (BEGIN_REQUEST, then
 * PARAMS up to the empty one), checked over the bytes received so far, before
 * libfcgi parses them: libfcgi trusts the peer's name/value lengths and
 * aborts the process when one asks for gigabytes. Pure: no I/O, so the
 * fuzzer drives it with arbitrary bytes. */
#ifndef OPSD_FCGI_FRAME_H
#define OPSD_FCGI_FRAME_H

#include <stddef.h>

/* FastCGI 1.0 record types (fastcgi spec §8). */
enum {
	FCGI_BEGIN = 1,
	FCGI_ABORT = 2,
	FCGI_END = 3,
	FCGI_PARAMS_T = 4,
	FCGI_STDIN_T = 5,
	FCGI_STDOUT_T = 6
};
#define FCGI_HEADER 8
/* nginx sends headers (at most 4 x 8 KiB by default) plus ~30 fixed params:
 * anything beyond this is not a request we want to parse. */
#define FCGI_PARAMS_MAX (128u * 1024)
#define FCGI_PARAMS_COUNT_MAX 2000

enum fcgi_frame_verdict {
	FRAME_SOUND, /* BEGIN_REQUEST and every PARAMS record are well formed */
	FRAME_BAD,   /* malformed: why says how */
	FRAME_MORE   /* not decided yet: scan again once need bytes are there */
};

struct fcgi_frame {
	unsigned request_id; /* the BEGIN_REQUEST's id, 0 before it */
	const char *why;     /* FRAME_BAD: a static string */
	size_t need;         /* FRAME_MORE: bytes needed, counted from buf */
};

/* Scans buf[0..have) from its start (a later call with more bytes scans
 * again). Uses a static scratch buffer for the joined PARAMS: one caller at a
 * time. */
enum fcgi_frame_verdict fcgi_frame_scan(const unsigned char *buf, size_t have,
    struct fcgi_frame *f);

#endif
