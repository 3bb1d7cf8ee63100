/* The migration status document (migration/status.c mig_status_render)
 * from any row the migrations table can hold and any of its
 * migration_tables rows. The input is cells separated by 0x01: the
 * MIG_COLUMNS of one row, then five per table (name, rows copied, rows
 * total, copy done, verify done); each cell is shaped into what its column
 * can return (BINARY(16), an ENUM, a BIGINT, a DATETIME(3), UTF-8 text, a
 * JSON column's valid text, NULL where the column allows it). The document
 * is valid JSON with the documented keys in order, the same when rendered
 * twice, its totals the sums of its tables, percent within 0..100, and no
 * rate or ETA negative. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "infra/db.h"
#include "lib/json.h"
#include "lib/utf8.h"
#include "migration/internal.h"
#include "migration/migration.h"

#define NCOLS (M_SOURCE_SEALED + 1)
#define FUZZ_TABLES 32
#define TCOLS 10 /* the SELECT of migration_tables */

static const char *const keys[] = {"id", "orgId", "direction", "status", "phase", "dryRun",
    "chunkSize", "target", "dbName", "reason", "abortReason", "overrideLegalHold", "tables",
    "rowsCopied", "rowsTotal", "percent", "rowsPerSecond", "etaSeconds", "throttled",
    "throttleReason", "changelog", "verification", "report", "freezeMs", "error", "createdBy",
    "createdAt", "updatedAt", "finishedAt"};

/* Cells live here for one input; a fresh pool each time. */
static char pool[1 << 17];
static size_t pool_used;

static char *keep(const char *s, size_t n)
{
	if (pool_used + n + 1 > sizeof(pool))
		return NULL;
	char *p = pool + pool_used;
	memcpy(p, s, n);
	p[n] = '\0';
	pool_used += n + 1;
	return p;
}

static int64_t bytes_i64(const char *s, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n && i < 8; i++)
		v = v << 8 | (unsigned char)s[i];
	return (int64_t)v;
}

static char *int_text(int64_t v, unsigned long *len)
{
	char t[32];
	int n = snprintf(t, sizeof(t), "%" PRId64, v);
	*len = (unsigned long)n;
	return keep(t, (size_t)n);
}

/* A table's row count: what a table of this world can hold. */
static int64_t rows_count(const char *s, size_t n)
{
	return bytes_i64(s, n) & ((INT64_C(1) << 40) - 1);
}

static char *time_text(const char *s, size_t n, unsigned long *len)
{
	char t[] = "2026-11-24 10:27:55.123";
	for (size_t i = 0; i < n && i < sizeof(t) - 1; i++)
		if (t[i] >= '0' && t[i] <= '9')
			t[i] = (char)('0' + (unsigned char)s[i] % 10);
	*len = sizeof(t) - 1;
	return keep(t, sizeof(t) - 1);
}

/* One cell shaped for column c; NULL where the column allows it and the
 * cell is empty. */
static char *shape(size_t c, const char *s, size_t n, unsigned long *len)
{
	static const size_t nullable[] = {M_DBNAME, M_REASON, M_ABORT_REASON, M_SNAPSHOT, M_APPLIED,
	    M_VERIFICATION, M_REPORT, M_FREEZE_MS, M_THROTTLE, M_ERROR, M_LEASE, M_COPY_US,
	    M_FINISHED_AT, M_CREATED_BY, M_SOURCE_SEALED};
	*len = 0;
	for (size_t i = 0; i < sizeof(nullable) / sizeof(nullable[0]); i++)
		if (nullable[i] == c && n == 0)
			return NULL;
	switch (c) {
	case M_ID:
	case M_ORG:
	case M_CREATED_BY: {
		char b[16] = {0};
		memcpy(b, s, n < 16 ? n : 16);
		*len = 16;
		return keep(b, 16);
	}
	case M_DIRECTION: {
		const char *d = mig_directions[n % MIG_DIRECTION__MAX];
		*len = strlen(d);
		return keep(d, *len);
	}
	case M_STATUS: {
		const char *st = mig_statuses[(n ? (unsigned char)s[0] : 0) % MIG__MAX];
		*len = strlen(st);
		return keep(st, *len);
	}
	case M_DRY:
	case M_CREATED_DB:
	case M_OVERRIDE:
		*len = 1;
		return keep(n % 2 ? "1" : "0", 1);
	case M_CHUNK:
	case M_ROUND:
	case M_FREEZE_MS:
	case M_PCT_AUDITED:
		return int_text((int32_t)bytes_i64(s, n), len); /* INT */
	case M_SNAPSHOT:
	case M_APPLIED:
	case M_SINCE_AUDIT:
	case M_COPY_US:
		return int_text(bytes_i64(s, n), len); /* BIGINT */
	case M_CREATED_AT:
	case M_UPDATED_AT:
	case M_FINISHED_AT:
		return time_text(s, n, len);
	case M_VERIFICATION:
	case M_REPORT: {
		/* a JSON column holds valid JSON */
		struct json_object *o = NULL;
		if (json_parse_body(s, n, &o, NULL, 0) != JSON_PARSE_OK)
			return NULL;
		json_object_put(o);
		*len = n;
		return keep(s, n);
	}
	default: /* VARCHAR and TEXT: UTF-8 */
		if (!utf8_valid(s, n) || memchr(s, '\0', n))
			return NULL;
		*len = n;
		return keep(s, n);
	}
}

static int64_t get_i64(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		abort();
	return json_object_get_int64(v);
}

static double get_num(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) ||
	    !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		abort();
	return json_object_get_double(v);
}

static void check(struct json_object *doc, const struct db_rows *tables)
{
	const char *text = json_object_to_json_string_ext(doc,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct json_object *back = fuzz_parse_strict(text, strlen(text));
	if (back == NULL)
		abort(); /* valid JSON */
	size_t i = 0;
	json_object_object_foreach (back, k, v) {
		(void)v;
		if (i >= sizeof(keys) / sizeof(keys[0]) || strcmp(k, keys[i]) != 0)
			abort(); /* the documented keys, in order */
		i++;
	}
	if (i != sizeof(keys) / sizeof(keys[0]))
		abort();
	struct json_object *list;
	json_object_object_get_ex(back, "tables", &list);
	if ((size_t)json_object_array_length(list) != tables->nrows)
		abort();
	int64_t copied = 0, total = 0;
	for (size_t t = 0; t < tables->nrows; t++) {
		copied += get_i64(json_object_array_get_idx(list, t), "rowsCopied");
		total += get_i64(json_object_array_get_idx(list, t), "rowsTotal");
	}
	if (get_i64(back, "rowsCopied") != copied || get_i64(back, "rowsTotal") != total)
		abort();
	double pct = get_num(back, "percent");
	if (!(pct >= 0 && pct <= 100) || get_num(back, "rowsPerSecond") < 0)
		abort();
	struct json_object *eta;
	json_object_object_get_ex(back, "etaSeconds", &eta);
	if (eta != NULL &&
	    (!json_object_is_type(eta, json_type_int) || json_object_get_int64(eta) < 0))
		abort();
	json_object_put(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cell[NCOLS + FUZZ_TABLES * 5];
	size_t clen[NCOLS + FUZZ_TABLES * 5], nc = 0;
	const char *s = (const char *)data;

	if (size > 32768)
		return 0;
	pool_used = 0;
	for (size_t i = 0, start = 0; i <= size && nc < sizeof(cell) / sizeof(cell[0]); i++) {
		if (i == size || s[i] == '\x01') {
			cell[nc] = (char *)s + start;
			clen[nc++] = i - start;
			start = i + 1;
		}
	}

	char *row[NCOLS];
	unsigned long rlen[NCOLS];
	for (size_t c = 0; c < NCOLS; c++)
		row[c] = shape(c, c < nc ? cell[c] : "", c < nc ? clen[c] : 0, &rlen[c]);
	char **rv[1] = {row};
	unsigned long *rl[1] = {rlen};
	struct db_rows rows = {1, NCOLS, NULL, rv, rl};

	static char *tv[FUZZ_TABLES][TCOLS];
	static unsigned long tl[FUZZ_TABLES][TCOLS];
	char **tvp[FUZZ_TABLES];
	unsigned long *tlp[FUZZ_TABLES];
	size_t nt = nc > NCOLS ? (nc - NCOLS) / 5 : 0;
	for (size_t t = 0; t < nt; t++) {
		char **c5 = cell + NCOLS + 5 * t;
		size_t *l5 = clen + NCOLS + 5 * t;
		memset(tv[t], 0, sizeof(tv[t]));
		memset(tl[t], 0, sizeof(tl[t]));
		if (utf8_valid(c5[0], l5[0]) && !memchr(c5[0], '\0', l5[0])) {
			tv[t][0] = keep(c5[0], l5[0]);
			tl[t][0] = l5[0];
		}
		tv[t][1] = int_text(rows_count(c5[1], l5[1]), &tl[t][1]);
		tv[t][2] = int_text(rows_count(c5[2], l5[2]), &tl[t][2]);
		tv[t][3] = keep(l5[3] % 2 ? "1" : "0", 1);
		tv[t][4] = keep(l5[4] % 2 ? "1" : "0", 1);
		tl[t][3] = tl[t][4] = 1;
		tvp[t] = tv[t];
		tlp[t] = tl[t];
	}
	struct db_rows tables = {nt, TCOLS, NULL, tvp, tlp};
	/* pending: unknown, or a count, as the input's length says */
	long long pending = (long long)(size % 1000);
	const long long *pp = size % 3 ? &pending : NULL;

	struct json_object *a = mig_status_render(&rows, 0, &tables, pp);
	struct json_object *b = mig_status_render(&rows, 0, &tables, pp);
	if (strcmp(json_object_to_json_string(a), json_object_to_json_string(b)) != 0)
		abort(); /* deterministic */
	check(a, &tables);
	json_object_put(a);
	json_object_put(b);
	return 0;
}
