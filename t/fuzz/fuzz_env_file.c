/* The env file parser (infra/env_file.c): any text either parses into
 * pairs whose keys are shell names, or is refused whole (no pair seen);
 * and every value parsed comes back unchanged when written again as
 * KEY="value" with its backslashes, quotes and newlines escaped. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "infra/config.h"
#include "lib/buf.h"

struct seen {
	struct pairs p;
	int calls;
};

static void collect(const char *key, const char *value, void *ctx)
{
	struct seen *s = ctx;
	s->calls++;
	pairs_add(key, value, &s->p);
}

static void check_key(const char *k)
{
	if (!isalpha((unsigned char)k[0]) && k[0] != '_')
		abort();
	for (const char *c = k; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			abort();
}

/* KEY="value" as the parser reads it back */
static void put_quoted(struct buf *b, const char *k, const char *v)
{
	buf_printf(b, "%s=\"", k);
	for (; *v; v++) {
		if (*v == '\n')
			buf_puts(b, "\\n");
		else {
			if (*v == '"' || *v == '\\')
				buf_putc(b, '\\');
			buf_putc(b, *v);
		}
	}
	buf_puts(b, "\"\n");
}

static int parse(const char *text, size_t n, bool private_file, struct seen *s)
{
	char err[256];
	char *copy = malloc(n + 1);
	if (copy == NULL)
		return -2;
	memcpy(copy, text, n);
	copy[n] = '\0';
	memset(s, 0, sizeof(*s));
	int rc =
	    config_parse_env_text(copy, "fuzz.env", private_file, collect, s, err, sizeof(err));
	free(copy);
	if (rc < 0 && (s->calls != 0 || err[0] == '\0'))
		abort(); /* all or nothing, and a reason */
	if (rc >= 0 && rc != s->calls)
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a, b, c;
	if (size > 64 * 1024 || memchr(data, '\0', size) != NULL)
		return 0; /* the file reader refuses NUL bytes before parsing */
	int rc = parse((const char *)data, size, true, &a);
	/* the same text in a group-readable file: refused only for a secret */
	int rc_open = parse((const char *)data, size, false, &c);
	if (rc_open >= 0 && rc_open != rc)
		abort();
	if (rc < 0 && rc_open >= 0)
		abort();
	pairs_free(&c.p);
	if (rc < 0) {
		pairs_free(&a.p);
		return 0;
	}

	struct buf out;
	buf_init(&out);
	for (size_t i = 0; i < a.p.n; i += 2) {
		check_key(a.p.kv[i]);
		put_quoted(&out, a.p.kv[i], a.p.kv[i + 1]);
	}
	if (buf_failed(&out))
		abort();
	if (parse(out.data ? out.data : "", out.len, true, &b) != rc)
		abort();
	for (size_t i = 0; i < a.p.n; i++)
		if (strcmp(a.p.kv[i], b.p.kv[i]) != 0)
			abort();
	buf_free(&out);
	pairs_free(&a.p);
	pairs_free(&b.p);
	return 0;
}
