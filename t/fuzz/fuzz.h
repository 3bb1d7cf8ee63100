/* What every harness (t/fuzz/fuzz_NAME.c) shares: libFuzzer's entry points,
 * declared for -Wmissing-prototypes, and a NUL-terminated copy of the input
 * for parsers of C strings. */
#ifndef OPSD_FUZZ_H
#define OPSD_FUZZ_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a C string (cut at its first NUL byte); free() it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* s[0..n) parsed as exactly one JSON document, strictly (RFC 8259, valid
 * UTF-8), or NULL; json_object_put() it. */
static inline struct json_object *fuzz_parse_strict(const char *s, size_t n)
{
	struct json_tokener *t = json_tokener_new();
	struct json_object *o;

	if (!t)
		abort();
	json_tokener_set_flags(t, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(t, s, (int)n);
	if (o != NULL && json_tokener_get_parse_end(t) != n) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(t);
	return o;
}

#endif
