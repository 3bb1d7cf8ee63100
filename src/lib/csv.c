#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "lib/buf.h"
#include "lib/csv.h"

void csv_field(struct buf *b, const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

void csv_names(struct buf *b, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		csv_field(b, names[i]);
	}
	buf_puts(b, "\r\n");
}

void csv_header(struct buf *b, struct json_object *rec)
{
	bool first = true;

	json_object_object_foreach (rec, key, val) {
		(void)val;
		if (!first)
			buf_putc(b, ',');
		first = false;
		csv_field(b, key);
	}
	buf_puts(b, "\r\n");
}

void csv_row(struct buf *b, struct json_object *rec)
{
	bool first = true;

	json_object_object_foreach (rec, key, val) {
		(void)key;
		if (!first)
			buf_putc(b, ',');
		first = false;
		if (json_object_is_type(val, json_type_object) ||
		    json_object_is_type(val, json_type_array))
			csv_field(b, json_object_to_json_string_ext(val,
			                 JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		else if (val)
			csv_field(b, json_object_get_string(val));
	}
	buf_puts(b, "\r\n");
}
