/* RFC 4180 CSV, one writer for every export: a field is quoted when it
 * holds a comma, a quote, CR or LF, with its quotes doubled; records end in
 * CRLF. */
#ifndef OPSD_CSV_H
#define OPSD_CSV_H

#include <stddef.h>

struct buf;
struct json_object;

/* One field; NULL is an empty field. */
void csv_field(struct buf *b, const char *s);
/* A header record of names. */
void csv_names(struct buf *b, const char *const *names, size_t n);
/* A header record of an object's keys, in order. */
void csv_header(struct buf *b, struct json_object *rec);
/* A record of an object's values, in order: null is an empty field, a
 * string its text, an object or an array its compact JSON text. */
void csv_row(struct buf *b, struct json_object *rec);

#endif
