/* What exports write (api/export.c): a record as core/records.c builds it
 * from a row, as JSON (json-c) and as CSV (lib/csv.c), and the JSON
 * strings of log lines (lib/buf.c buf_json_strn). Checked: the JSON parses
 * back strictly (UTF-8 validated) to the same values, alone and inside the
 * streamed {"items":[...]} document; the CSV, read back by the small RFC
 * 4180 reader below, gives the record's keys and values; csv_names of any
 * names reads back the same. Input: an entity index byte, then cells
 * separated by 0x01 (strings as the database returns them: valid UTF-8). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/entity.h"
#include "core/records.h"
#include "fuzz.h"
#include "infra/db.h"
#include "lib/buf.h"
#include "lib/csv.h"
#include "lib/utf8.h"

#define MAX_FIELDS 64

struct csv_rec {
	size_t n;
	char *f[MAX_FIELDS];
	size_t len[MAX_FIELDS];
};

/* Strict RFC 4180 §2: a record per CRLF; quoted fields double their quotes;
 * an unquoted field holds no quote, CR or LF. Returns the bytes consumed,
 * 0 on a syntax error. */
static size_t csv_read(const char *s, size_t n, struct csv_rec *r)
{
	size_t i = 0;
	r->n = 0;
	for (;;) {
		struct buf f;
		buf_init(&f);
		buf_puts(&f, "");
		if (i < n && s[i] == '"') {
			for (i++;; i++) {
				if (i >= n)
					return 0;
				if (s[i] == '"') {
					if (i + 1 < n && s[i + 1] == '"') {
						buf_putc(&f, '"');
						i++;
						continue;
					}
					i++;
					break;
				}
				buf_putc(&f, s[i]);
			}
		} else {
			for (; i < n && s[i] != ',' && s[i] != '\r'; i++) {
				if (s[i] == '"' || s[i] == '\n')
					return 0;
				buf_putc(&f, s[i]);
			}
		}
		if (r->n == MAX_FIELDS || buf_failed(&f))
			abort();
		r->len[r->n] = f.len;
		r->f[r->n++] = f.data;
		if (i < n && s[i] == ',') {
			i++;
			continue;
		}
		if (i + 1 < n && s[i] == '\r' && s[i + 1] == '\n')
			return i + 2;
		return 0; /* every record ends in CRLF */
	}
}

static void csv_rec_free(struct csv_rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->f[i]);
	r->n = 0;
}

static void same_value(struct json_object *want, struct json_object *got)
{
	if (json_object_get_type(want) == json_type_double) {
		/* a DECIMAL column is written as its text: any number type back */
		if (!json_object_is_type(got, json_type_double) &&
		    !json_object_is_type(got, json_type_int))
			abort();
		if (json_object_get_double(got) != json_object_get_double(want))
			abort();
		return;
	}
	if (!json_object_equal(want, got))
		abort();
}

static void check_json(struct json_object *rec)
{
	const char *text = json_object_to_json_string_ext(rec,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = strlen(text);
	struct json_object *back = fuzz_parse_strict(text, n);
	if (back == NULL || !json_object_is_type(back, json_type_object) ||
	    json_object_object_length(back) != json_object_object_length(rec))
		abort();
	json_object_object_foreach (rec, k, v) {
		struct json_object *g;
		if (!json_object_object_get_ex(back, k, &g))
			abort();
		same_value(v, g);
	}
	json_object_put(back);

	/* the streamed document: {"items":[rec,rec]} */
	struct buf doc;
	buf_init(&doc);
	buf_puts(&doc, "{\"items\":[");
	buf_puts(&doc, text);
	buf_putc(&doc, ',');
	buf_puts(&doc, text);
	buf_puts(&doc, "]}\n");
	struct json_object *all = fuzz_parse_strict(doc.data, doc.len - 1);
	if (all == NULL)
		abort();
	json_object_put(all);
	buf_free(&doc);
}

/* The text csv_row gives a value (a C string: it ends at a NUL). */
static const char *csv_text(struct json_object *v)
{
	if (v == NULL)
		return "";
	if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array))
		return json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return json_object_get_string(v);
}

static void check_csv(struct json_object *rec)
{
	struct buf b;
	struct csv_rec h, r;
	buf_init(&b);
	csv_header(&b, rec);
	csv_row(&b, rec);
	if (buf_failed(&b))
		abort();
	size_t used = csv_read(b.data, b.len, &h);
	if (used == 0 || csv_read(b.data + used, b.len - used, &r) + used != b.len)
		abort();
	if (h.n != (size_t)json_object_object_length(rec) || r.n != h.n)
		abort();
	size_t i = 0;
	json_object_object_foreach (rec, k, v) {
		if (strcmp(h.f[i], k) != 0 || strcmp(r.f[i], csv_text(v)) != 0)
			abort();
		i++;
	}
	csv_rec_free(&h);
	csv_rec_free(&r);
	buf_free(&b);
}

static void check_names(char **cells, const unsigned long *len, size_t n)
{
	struct buf b;
	struct csv_rec r;
	if (n == 0 || n > MAX_FIELDS)
		return;
	for (size_t i = 0; i < n; i++)
		if (memchr(cells[i], '\0', len[i]) != NULL)
			return; /* names are C strings */
	buf_init(&b);
	csv_names(&b, (const char *const *)cells, n);
	if (csv_read(b.data, b.len, &r) != b.len || r.n != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (strcmp(r.f[i], cells[i]) != 0)
			abort();
	csv_rec_free(&r);
	buf_free(&b);
}

static void check_json_str(const char *s, size_t n)
{
	struct buf b;
	buf_init(&b);
	buf_json_strn(&b, s, n);
	struct json_object *o = fuzz_parse_strict(b.data, b.len);
	if (o == NULL || !json_object_is_type(o, json_type_string))
		abort();
	if (utf8_valid(s, n) && ((size_t)json_object_get_string_len(o) != n ||
	                            memcmp(json_object_get_string(o), s, n) != 0))
		abort();
	json_object_put(o);
	buf_free(&b);
}

/* A DECIMAL's text, as MariaDB returns one: -?digits(.digits)?, short,
 * no leading zero. */
static bool decimal_text(const char *s, size_t n)
{
	size_t i = s[0] == '-', d = 0, dots = 0;
	if (n > 16 || i >= n || (s[i] == '0' && i + 1 < n && s[i + 1] != '.'))
		return false;
	for (; i < n; i++) {
		if (s[i] == '.' && d > 0 && dots++ == 0 && i + 1 < n)
			continue;
		if (s[i] < '0' || s[i] > '9')
			return false;
		d++;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { MAXC = 2 + ENTITY_MAX_COLS + 5 };
	char *cells[MAXC] = {0};
	unsigned long len[MAXC] = {0};
	size_t nc = 0;

	if (size < 1 || size > 8192)
		return 0;
	check_json_str((const char *)data + 1, size - 1);
	const struct entity *e = &entities[data[0] % ENTITY__MAX];
	char *copy = malloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (char *s = copy, *p = copy;; p++) {
		if (p == copy + size - 1 || *p == '\x01') {
			bool end = p == copy + size - 1;
			*p = '\0';
			if (nc < MAXC) {
				cells[nc] = s;
				len[nc++] = (unsigned long)(p - s);
			}
			s = p + 1;
			if (end)
				break;
		}
	}
	check_names(cells, len, nc);

	/* the row: id, org_id, the entity's columns, then legal_hold,
	 * pii_stripped, archived, created_at, updated_at */
	size_t ncols = 2 + e->ncols + 5;
	char *row[MAXC];
	unsigned long rlen[MAXC];
	static char uuid_a[16] = "0123456789abcdef", times[2][24];
	for (size_t c = 0; c < ncols; c++) {
		char *v = c < nc ? cells[c] : NULL;
		unsigned long l = c < nc ? len[c] : 0;
		if (c < 2) {
			v = l == 0 ? NULL : uuid_a; /* BINARY(16) */
			l = 16;
		} else if (c < 2 + e->ncols) {
			if (v && e->cols[c - 2].type == FT_NUMBER && !decimal_text(v, l))
				v = NULL;
			if (v && !utf8_valid(v, l))
				v = NULL; /* utf8mb4 columns */
		} else if (c < 2 + e->ncols + 3) {
			v = v == NULL ? NULL : l % 2 ? "1" : "0";
		} else {
			/* DATETIME(3): digits from the cell's bytes */
			char *t = times[c - (2 + e->ncols + 3)];
			if (v) {
				memcpy(t, "2026-11-24 10:27:55.123", 24);
				for (size_t i = 0; i < l && i < 23; i++)
					if (t[i] >= '0' && t[i] <= '9')
						t[i] = (char)('0' + (unsigned char)v[i] % 10);
				v = t;
				l = 23;
			}
		}
		row[c] = v;
		rlen[c] = v ? l : 0;
	}
	char **rows_val[1] = {row};
	unsigned long *rows_len[1] = {rlen};
	struct db_rows rows = {1, ncols, NULL, rows_val, rows_len};
	struct json_object *rec = record_json(e, &rows, 0);
	check_json(rec);
	check_csv(rec);
	json_object_put(rec);
	free(copy);
	return 0;
}
