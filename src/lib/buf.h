/* Growable byte buffer with JSON string escaping: log lines, metrics text,
 * response bodies. Never fails loudly: on allocation failure it sets oom and
 * drops further appends, and the caller checks buf_failed() once. */
#ifndef OPSD_BUF_H
#define OPSD_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	bool oom;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps the allocation */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a quoted JSON string (RFC 8259 §7): escapes ", \ and control
 * characters; invalid UTF-8 bytes become U+FFFD so output is always valid. */
void buf_json_str(struct buf *b, const char *s);
void buf_json_strn(struct buf *b, const char *s, size_t n);
/* NUL-terminated view of the contents ("" when empty). */
const char *buf_cstr(struct buf *b);
bool buf_failed(const struct buf *b);

#endif
