#include <string.h>

#include "lib/arena.h"
#include "lib/diff.h"

struct lines {
	size_t n;
	const char **s;
	size_t *len;
};

static int split(struct arena *a, const char *t, struct lines *l)
{
	size_t n = 0, i = 0;

	for (const char *p = t; *p; p++)
		n += *p == '\n';
	n += t[0] != '\0' && t[strlen(t) - 1] != '\n';
	l->n = n;
	l->s = arena_calloc(a, n ? n : 1, sizeof(*l->s));
	l->len = arena_calloc(a, n ? n : 1, sizeof(*l->len));
	if (!l->s || !l->len)
		return -1;
	for (const char *p = t; *p && i < n; i++) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		l->s[i] = p;
		l->len[i] = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
		p += len + (e != NULL);
	}
	return 0;
}

static int same(const struct lines *x, size_t i, const struct lines *y, size_t j)
{
	return x->len[i] == y->len[j] && memcmp(x->s[i], y->s[j], x->len[i]) == 0;
}

static void put(struct diff_line *out, long *k, char op, const struct lines *l, size_t i)
{
	out[*k] = (struct diff_line){op, l->s[i], l->len[i]};
	(*k)++;
}

/* Myers 1986: for each edit count d, v[k] is the furthest x on diagonal k.
 * Only the band [-d, d] of each round is kept, for the backtrack. */
long diff_lines(struct arena *a, const char *old_text, const char *new_text, struct diff_line **out)
{
	struct lines x, y;
	long n, m, max, dfound = -1, k_out;
	long **trace;
	struct diff_line *res;

	if (split(a, old_text, &x) != 0 || split(a, new_text, &y) != 0)
		return -1;
	n = (long)x.n;
	m = (long)y.n;
	max = n + m < DIFF_MAX_EDITS ? n + m : DIFF_MAX_EDITS;
	res = arena_calloc(a, (size_t)(n + m) + 1, sizeof(*res));
	trace = arena_calloc(a, (size_t)max + 1, sizeof(*trace));
	if (!res || !trace)
		return -1;
	for (long d = 0; d <= max && dfound < 0; d++) {
		long *v = arena_calloc(a, (size_t)(2 * d + 3), sizeof(long));
		long *pv = d > 0 ? trace[d - 1] : NULL;

		if (!v)
			return -1;
		trace[d] = v;
		for (long k = -d; k <= d; k += 2) {
			/* pv is indexed k + (d - 1) + 1 = k + d. */
			long xx;

			if (d == 0)
				xx = 0;
			else if (k == -d || (k != d && pv[k - 1 + d] < pv[k + 1 + d]))
				xx = pv[k + 1 + d];
			else
				xx = pv[k - 1 + d] + 1;
			while (xx < n && xx - k < m && same(&x, (size_t)xx, &y, (size_t)(xx - k)))
				xx++;
			v[k + d + 1] = xx;
			if (xx >= n && xx - k >= m) {
				dfound = d;
				break;
			}
		}
	}
	k_out = 0;
	if (dfound < 0) {
		for (long i = 0; i < n; i++)
			put(res, &k_out, '-', &x, (size_t)i);
		for (long j = 0; j < m; j++)
			put(res, &k_out, '+', &y, (size_t)j);
		*out = res;
		return k_out;
	}
	/* Backtrack from (n, m) to (0, 0), writing the script from the end. */
	{
		long xx = n, yy = m, w = n + m;
		struct diff_line *tmp = arena_calloc(a, (size_t)(n + m) + 1, sizeof(*tmp));

		if (!tmp)
			return -1;
		for (long d = dfound; d > 0; d--) {
			long *pv = trace[d - 1];
			long k = xx - yy, pk, px, py;

			if (k == -d || (k != d && pv[k - 1 + d] < pv[k + 1 + d]))
				pk = k + 1;
			else
				pk = k - 1;
			px = pv[pk + d];
			py = px - pk;
			while (xx > px && yy > py && xx > 0 && yy > 0) {
				tmp[--w] = (struct diff_line){'=', x.s[xx - 1], x.len[xx - 1]};
				xx--, yy--;
			}
			if (pk == k + 1)
				tmp[--w] = (struct diff_line){'+', y.s[yy - 1], y.len[yy - 1]},
				yy--;
			else
				tmp[--w] = (struct diff_line){'-', x.s[xx - 1], x.len[xx - 1]},
				xx--;
		}
		while (xx > 0 && yy > 0) {
			tmp[--w] = (struct diff_line){'=', x.s[xx - 1], x.len[xx - 1]};
			xx--, yy--;
		}
		for (long i = w; i < n + m; i++)
			res[k_out++] = tmp[i];
	}
	*out = res;
	return k_out;
}
