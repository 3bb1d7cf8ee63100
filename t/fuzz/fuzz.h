/* What every harness (t/fuzz/fuzz_NAME.c) shares: libFuzzer's entry points,
 * declared for -Wmissing-prototypes, and a NUL-terminated copy of the input
 * for parsers of C strings. */
#ifndef OPSD_FUZZ_H
#define OPSD_FUZZ_H

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

#endif
