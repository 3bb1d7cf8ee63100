/* Per-request bump allocator: everything a request allocates lives here
 * and is released at once by arena_reset() after FCGX_Finish_r. */
#ifndef OPSD_ARENA_H
#define OPSD_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

struct arena *arena_new(size_t chunk_size);
void arena_free(struct arena *a);
/* Frees every chunk but the first, so steady-state requests never malloc. */
void arena_reset(struct arena *a);
/* Returns 8-byte aligned memory; NULL only when malloc fails or n overflows. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t count, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Bytes handed out since the last reset (for tests and the slow log). */
size_t arena_used(const struct arena *a);

#endif
