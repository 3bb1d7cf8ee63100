/* Line diff (Myers' O(ND) algorithm) for GET /legal/:type/diff. */
#ifndef OPSD_DIFF_H
#define OPSD_DIFF_H

#include <stddef.h>

struct arena;

struct diff_line {
	char op;       /* '=' kept, '-' only in the old text, '+' only in the new */
	const char *s; /* points into the input text */
	size_t len;    /* without the line break */
};

/* Beyond this many differing lines the answer is "all old lines removed,
 * all new lines added": correct, just not minimal, and bounded in memory. */
#define DIFF_MAX_EDITS 2000

/* Diffs two texts line by line ("\n" or "\r\n"). The lines are allocated in
 * the arena. Returns the number of lines in *out, or -1 when out of memory. */
long diff_lines(struct arena *a, const char *old_text, const char *new_text,
    struct diff_line **out);

#endif
