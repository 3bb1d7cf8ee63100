/* The FastCGI framing check that runs before libfcgi reads a connection's
 * records: any byte stream must get a verdict without reading outside it,
 * and a stream it calls sound must really hold a BEGIN_REQUEST and PARAMS
 * whose name/value lengths fit. */
#include "fuzz.h"

#include "server/fcgi_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi_frame f;
	/* An exact-size copy, so ASan sees any read past the bytes received. */
	unsigned char *buf = malloc(size ? size : 1);
	enum fcgi_frame_verdict v;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	v = fcgi_frame_scan(buf, size, &f);
	switch (v) {
	case FRAME_SOUND:
		if (f.request_id == 0 || f.why != NULL)
			abort();
		break;
	case FRAME_BAD:
		if (f.why == NULL)
			abort();
		break;
	case FRAME_MORE:
		/* More is asked for only beyond what is there. */
		if (f.need <= size)
			abort();
		break;
	default:
		abort();
	}
	/* The verdict depends on the bytes up to the decision only: one byte
	 * less either asks for more or decides the same. The worker relies on it
	 * when it scans again after every peek. */
	if (v != FRAME_MORE && size > 0) {
		struct fcgi_frame g;
		enum fcgi_frame_verdict w = fcgi_frame_scan(buf, size - 1, &g);

		if (w != FRAME_MORE && (w != v || g.why != f.why))
			abort();
	}
	free(buf);
	return 0;
}
