/* Route matching on path segments. Among the routes whose pattern fits the
 * path, the one with a literal at the leftmost position where they differ
 * wins ("/users/me" before "/users/:id"); table order breaks exact ties. */
#include "http/router.h"

#include "lib/arena.h"
#include "lib/encoding.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_SEGMENTS 32

struct seg {
	const char *p;
	size_t len;
};

/* Splits "/a/b" into segments; false on an empty segment, too many, or no
 * leading '/'. "/" has zero segments. */
static bool split(const char *path, struct seg *segs, int *count)
{
	*count = 0;
	if (path == NULL || path[0] != '/')
		return false;
	if (path[1] == '\0')
		return true;
	for (const char *p = path + 1;;) {
		size_t len = strcspn(p, "/");
		if (len == 0 || *count == MAX_SEGMENTS)
			return false;
		segs[(*count)++] = (struct seg){p, len};
		if (p[len] == '\0')
			return true;
		p += len + 1;
	}
}

/* Score of pattern against path: bit (31 - i) set for a literal segment i,
 * -1 when it does not fit. */
static long long fit(const struct seg *pat, int np, const struct seg *path, int n)
{
	long long score = 0;
	if (np != n)
		return -1;
	for (int i = 0; i < n; i++) {
		if (pat[i].p[0] == ':')
			continue;
		if (pat[i].len != path[i].len || memcmp(pat[i].p, path[i].p, path[i].len) != 0)
			return -1;
		score |= 1LL << (MAX_SEGMENTS - 1 - i);
	}
	return score;
}

static bool method_matches(const char *route, const char *method)
{
	return strcmp(route, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(route, "GET") == 0);
}

/* Appends m to the ", "-separated Allow list unless it is already there. */
static void allow_add(char *allow, size_t len, const char *m)
{
	size_t mlen = strlen(m);
	for (const char *p = allow; *p != '\0';) {
		size_t t = strcspn(p, ",");
		if (t == mlen && strncmp(p, m, mlen) == 0)
			return;
		p += t;
		p += strspn(p, ", ");
	}
	size_t used = strlen(allow);
	snprintf(allow + used, len - used, "%s%s", used ? ", " : "", m);
}

enum route_result router_match(const struct route *table, size_t n, const char *method,
    const char *path, bool test_routes, struct arena *a, const struct route **found,
    struct route_params *params, char *allow, size_t allow_len)
{
	struct seg segs[MAX_SEGMENTS], pat[MAX_SEGMENTS];
	int nsegs, npat;
	const struct route *best = NULL;
	long long best_score = -1;
	bool path_known = false;

	*found = NULL;
	if (params != NULL)
		params->n = 0;
	if (allow != NULL && allow_len > 0)
		allow[0] = '\0';
	if (method == NULL || !split(path, segs, &nsegs))
		return ROUTE_NOT_FOUND;
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &table[i];
		if ((r->flags & RF_TEST_ONLY) && !test_routes)
			continue;
		if (!split(r->pattern, pat, &npat))
			continue;
		long long score = fit(pat, npat, segs, nsegs);
		if (score < 0)
			continue;
		path_known = true;
		if (allow != NULL && allow_len > 0) {
			allow_add(allow, allow_len, r->method);
			if (strcmp(r->method, "GET") == 0)
				allow_add(allow, allow_len, "HEAD");
		}
		if (method_matches(r->method, method) && score > best_score) {
			best = r;
			best_score = score;
		}
	}
	if (best == NULL)
		return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;

	split(best->pattern, pat, &npat);
	for (int i = 0; i < npat && params != NULL; i++) {
		if (pat[i].p[0] != ':' || params->n == ROUTE_MAX_PARAMS)
			continue;
		char *name = arena_strndup(a, pat[i].p + 1, pat[i].len - 1);
		/* RFC 3986 §2.1: an encoded '/' or NUL must not change the path's shape */
		char *value = url_decode(a, segs[i].p, segs[i].len, false);
		if (name == NULL || value == NULL || strchr(value, '/') != NULL) {
			params->n = 0;
			return ROUTE_BAD_PATH;
		}
		params->name[params->n] = name;
		params->value[params->n++] = value;
	}
	*found = best;
	return ROUTE_FOUND;
}

static bool param_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Checks one pattern; returns a problem or NULL. */
static const char *pattern_problem(const char *pattern)
{
	struct seg segs[MAX_SEGMENTS];
	int n;
	if (pattern == NULL || pattern[0] != '/')
		return "pattern must start with '/'";
	if (!split(pattern, segs, &n))
		return "pattern has an empty segment or too many segments";
	int params = 0;
	for (int i = 0; i < n; i++) {
		const struct seg *s = &segs[i];
		if (memchr(s->p + 1, ':', s->len - 1) != NULL)
			return "':' may only start a segment";
		if (s->p[0] != ':')
			continue;
		if (s->len == 1)
			return "empty parameter name";
		for (size_t k = 1; k < s->len; k++)
			if (!param_char(s->p[k]))
				return "parameter names are letters, digits and '_'";
		for (int j = 0; j < i; j++)
			if (segs[j].p[0] == ':' && segs[j].len == s->len &&
			    memcmp(segs[j].p, s->p, s->len) == 0)
				return "duplicate parameter name";
		if (++params > ROUTE_MAX_PARAMS)
			return "too many parameters";
	}
	return NULL;
}

static bool method_valid(const char *m)
{
	if (m == NULL || *m == '\0')
		return false;
	for (; *m != '\0'; m++)
		if (!isupper((unsigned char)*m))
			return false;
	return true;
}

/* Same method and same shape (parameter names ignored): one would shadow the other. */
static bool same_route(const struct route *x, const struct route *y)
{
	struct seg a[MAX_SEGMENTS], b[MAX_SEGMENTS];
	int na, nb;
	if (!method_valid(x->method) || !method_valid(y->method) ||
	    strcmp(x->method, y->method) != 0 || !split(x->pattern, a, &na) ||
	    !split(y->pattern, b, &nb) || na != nb)
		return false;
	for (int i = 0; i < na; i++) {
		bool pa = a[i].p[0] == ':', pb = b[i].p[0] == ':';
		if (pa != pb || (!pa && (a[i].len != b[i].len || memcmp(a[i].p, b[i].p, a[i].len))))
			return false;
	}
	return true;
}

int router_check_table(const struct route *table, size_t n,
    void (*fn)(const char *problem, void *ctx), void *ctx)
{
	char line[512];
	int problems = 0;
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &table[i];
		const char *why = !method_valid(r->method) ? "method must be upper-case letters"
		                  : r->handler == NULL     ? "no handler"
		                  : (r->flags & RF_LEGAL_CONTAIN) && r->perm == P_NONE
		                      ? "a containment route must name a permission"
		                      : pattern_problem(r->pattern);
		for (size_t j = 0; why == NULL && j < i; j++)
			if (same_route(&table[j], r))
				why = "duplicate of an earlier route";
		if (why == NULL)
			continue;
		problems++;
		snprintf(line, sizeof(line), "route %zu (%s %s): %s", i,
		    r->method ? r->method : "(null)", r->pattern ? r->pattern : "(null)", why);
		if (fn != NULL)
			fn(line, ctx);
	}
	return problems;
}
