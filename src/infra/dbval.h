/* Column values ↔ JSON and parameters: UUIDs stored as BINARY(16), times as
 * DATETIME(3) in UTC, list cursors. One place for every conversion. */
#ifndef OPSD_DBVAL_H
#define OPSD_DBVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

struct json_object;
struct db_rows;

#define DB_TIME_LEN 23 /* "2026-11-24 10:27:55.123" */

/* "YYYY-MM-DD HH:MM:SS.mmm" for a DATETIME(3) parameter. out[DB_TIME_LEN + 1]. */
void db_time_from_ms(int64_t ms, char *out);
/* A 16-byte column value as a UUID string; false if it is not 16 bytes. */
bool dbv_uuid(const char *val, unsigned long len, char out[UUID_STR_LEN + 1]);
/* A DATETIME(3) value as RFC 3339 ("2026-11-24T10:27:55.123Z"); false
 * for NULL or a value too short to be a time. */
#define DBV_RFC3339_LEN 24
bool dbv_rfc3339(const char *val, char out[DBV_RFC3339_LEN + 1]);
/* A TINYINT(1) or boolean expression as returned: true unless NULL or "0". */
bool dbv_true(const char *val);

/* JSON values of row r, column c (NULL column → JSON null). */
struct json_object *dbv_json_str(const struct db_rows *rows, size_t r, size_t c);
struct json_object *dbv_json_uuid(const struct db_rows *rows, size_t r, size_t c);
struct json_object *dbv_json_time(const struct db_rows *rows, size_t r, size_t c); /* RFC 3339 */
struct json_object *dbv_json_bool(const struct db_rows *rows, size_t r, size_t c);
struct json_object *dbv_json_int(const struct db_rows *rows, size_t r, size_t c);
/* A comma list column ("a,b") as a JSON array of strings. */
struct json_object *dbv_json_csv(const struct db_rows *rows, size_t r, size_t c);
/* Parses a JSON text column; a column that is not JSON becomes null. */
struct json_object *dbv_json_parse(const struct db_rows *rows, size_t r, size_t c);

/* Opaque list cursors (README "API"): base64url of "<kind>:<value>". The kind
 * keeps a cursor of one list from being replayed on another. */
void cursor_encode(const char *kind, const char *value, char *out, size_t out_len);
/* Writes the value into out; false when malformed or of another kind. */
bool cursor_decode(const char *kind, const char *cursor, char *out, size_t out_len);

#endif
