#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/encoding.h"
#include "lib/util.h"

void db_time_from_ms(int64_t ms, char *out)
{
	char t[32];

	/* The same calendar as the API's times (gmtime_r and %Y would print
	 * year 999 as "999", and ms / 1000 rounds times before 1970 up). */
	format_rfc3339(ms, t);
	t[10] = ' ';
	str_copy(out, t, DB_TIME_LEN + 1);
}

bool dbv_uuid(const char *val, unsigned long len, char out[UUID_STR_LEN + 1])
{
	struct opsd_uuid u;

	if (!val || len != sizeof(u.b))
		return false;
	memcpy(u.b, val, sizeof(u.b));
	uuid_format(&u, out);
	return true;
}

static const char *cell(const struct db_rows *rows, size_t r, size_t c)
{
	return rows->val[r][c];
}

struct json_object *dbv_json_str(const struct db_rows *rows, size_t r, size_t c)
{
	const char *v = cell(rows, r, c);

	return v ? json_object_new_string_len(v, (int)rows->len[r][c]) : NULL;
}

struct json_object *dbv_json_uuid(const struct db_rows *rows, size_t r, size_t c)
{
	char s[UUID_STR_LEN + 1];

	if (!dbv_uuid(cell(rows, r, c), rows->len[r][c], s))
		return NULL;
	return json_object_new_string(s);
}

/* "2026-11-24 10:27:55.123" (the session time zone is UTC) → RFC 3339. */
bool dbv_rfc3339(const char *v, char out[DBV_RFC3339_LEN + 1])
{
	size_t n;

	if (!v || (n = strlen(v)) < 19)
		return false;
	snprintf(out, DBV_RFC3339_LEN + 1, "%.10sT%.8s%s%.3sZ", v, v + 11, ".",
	    n >= 23 ? v + 20 : "000");
	return true;
}

struct json_object *dbv_json_time(const struct db_rows *rows, size_t r, size_t c)
{
	char out[DBV_RFC3339_LEN + 1];

	return dbv_rfc3339(cell(rows, r, c), out) ? json_object_new_string(out) : NULL;
}

bool dbv_true(const char *val)
{
	return val && strcmp(val, "0") != 0;
}

struct json_object *dbv_json_bool(const struct db_rows *rows, size_t r, size_t c)
{
	const char *v = cell(rows, r, c);

	return v ? json_object_new_boolean(strcmp(v, "0") != 0) : NULL;
}

struct json_object *dbv_json_int(const struct db_rows *rows, size_t r, size_t c)
{
	const char *v = cell(rows, r, c);

	return v ? json_object_new_int64(strtoll(v, NULL, 10)) : NULL;
}

struct json_object *dbv_json_csv(const struct db_rows *rows, size_t r, size_t c)
{
	struct json_object *a = json_object_new_array();
	const char *v = cell(rows, r, c);

	while (v && *v) {
		size_t n = strcspn(v, ",");

		if (n > 0)
			json_object_array_add(a, json_object_new_string_len(v, (int)n));
		v += n;
		if (*v == ',')
			v++;
	}
	return a;
}

struct json_object *dbv_json_parse(const struct db_rows *rows, size_t r, size_t c)
{
	const char *v = cell(rows, r, c);

	return v ? json_tokener_parse(v) : NULL;
}

void cursor_encode(const char *kind, const char *value, char *out, size_t out_len)
{
	char raw[160];
	int n = snprintf(raw, sizeof(raw), "%s:%s", kind, value);

	if (n < 0 || (size_t)n >= sizeof(raw)) {
		if (out_len)
			out[0] = '\0';
		return;
	}
	b64url_encode(raw, (size_t)n, out, out_len);
}

bool cursor_decode(const char *kind, const char *cursor, char *out, size_t out_len)
{
	uint8_t raw[160];
	size_t n, klen = strlen(kind);

	if (!cursor || !b64url_decode(cursor, strlen(cursor), raw, sizeof(raw) - 1, &n))
		return false;
	raw[n] = '\0';
	if (n <= klen || memcmp(raw, kind, klen) != 0 || raw[klen] != ':')
		return false;
	if (memchr(raw, '\0', n))
		return false;
	return str_copy(out, (const char *)raw + klen + 1, out_len) < out_len;
}
