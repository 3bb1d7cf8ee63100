/* The two ends of a migration: connections (the target's kept for the
 * migration in hand), the tenant tables and their columns, and the
 * statements the copy, catch-up and verification build from them. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/entity.h"
#include "core/tenant_db.h"
#include "infra/config.h"
#include "infra/data_key.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "migration/internal.h"
#include "migration/migration.h"

size_t tenant_tables(const char *out[MAX_TABLES])
{
	size_t n = 0;

	for (size_t i = 0; i < ENTITY__MAX && n < MAX_TABLES; i++)
		if (entities[i].tenant)
			out[n++] = entities[i].table;
	return n;
}

bool known_table(const char *name)
{
	const char *t[MAX_TABLES];
	size_t n = tenant_tables(t);

	for (size_t i = 0; name && i < n; i++)
		if (strcmp(t[i], name) == 0)
			return true;
	return false;
}

bool uri_with_db(const char *uri, const char *db, char *out, size_t len)
{
	const char *scheme = strstr(uri, "://"), *at, *path, *query;

	if (!scheme)
		return false;
	at = strrchr(scheme + 3, '@');
	path = strchr(at ? at : scheme + 3, '/');
	query = strchr(at ? at : scheme + 3, '?');
	if (!path || (query && query < path))
		path = query ? query : uri + strlen(uri);
	query = strchr(path, '?');
	return (size_t)snprintf(out, len, "%.*s/%s%s", (int)(path - uri), uri, db,
	           query ? query : "") < len;
}

struct db *connect_checked(const char *uri, char *err, size_t len)
{
	struct db *d = db_open(uri, err, len);
	struct arena *a;
	struct db_rows rows;

	if (!d)
		return NULL;
	a = arena_new(1024);
	if (!a || db_query(d, a, "SELECT 1", NULL, 0, &rows) != 0) {
		snprintf(err, len, "%s", a ? db_error(d) : "out of memory");
		db_close(d);
		d = NULL;
	}
	arena_free(a);
	return d;
}

/* Whether d holds rows of the org (others: of any other org) in a tenant
 * table. schema may be NULL (the connection's own database). -1 on error. */
static int holds_rows(struct db *d, struct arena *a, const char *schema, const uint8_t org[16],
    bool others)
{
	const char *t[MAX_TABLES];
	size_t n = tenant_tables(t);
	struct db_param p[] = {DBP_BLOB(org, 16)};

	for (size_t i = 0; i < n; i++) {
		char sql[256];
		struct db_rows rows;
		struct db_param s[] = {DBP_STR(schema), DBP_STR(t[i])};

		if (schema) {
			if (db_query(d, a,
			        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND"
			        " TABLE_NAME = ?",
			        s, 2, &rows) != 0)
				return -1;
			if (rows.nrows == 0)
				continue;
		}
		snprintf(sql, sizeof(sql), "SELECT 1 FROM %s%s%s%s WHERE org_id %s ? LIMIT 1",
		    schema ? "`" : "", schema ? schema : "", schema ? "`." : "", t[i],
		    others ? "<>" : "=");
		if (db_query(d, a, sql, p, 1, &rows) != 0)
			return -1;
		if (rows.nrows)
			return 1;
	}
	return 0;
}

int holds_org_rows(struct db *d, struct arena *a, const char *schema, const uint8_t org[16])
{
	return holds_rows(d, a, schema, org, false);
}

int holds_other_rows(struct db *d, struct arena *a, const char *schema, const uint8_t org[16])
{
	return holds_rows(d, a, schema, org, true);
}

/* The connections of the migration in hand (one process works one
 * migration at a time; another id closes them). */
static struct {
	uint8_t id[16];
	struct db *target, *second;
} ends;

void ends_close(void)
{
	db_close(ends.target);
	db_close(ends.second);
	ends.target = ends.second = NULL;
	memset(ends.id, 0, 16);
}

/* The target URI in the clear, for as long as a connect needs it. */
static bool target_uri(const struct run *x, const char *db, char *out, size_t len)
{
	char uri[1200];
	bool ok =
	    data_key_open(x->cfg, x->m.sealed, uri, sizeof(uri)) == DK_OPENED &&
	    (db ? uri_with_db(uri, db, out, len) : (size_t)snprintf(out, len, "%s", uri) < len);

	OPENSSL_cleanse(uri, sizeof(uri));
	return ok;
}

int connect_ends(struct run *x)
{
	char uri[1200], err[512];

	if (x->m.to_dedicated) {
		x->src = x->control;
		if (ends.target && memcmp(ends.id, x->m.id, 16) == 0 &&
		    db_ensure(ends.target) == 0) {
			x->dst = ends.target;
			return 0;
		}
		ends_close();
		if (!target_uri(x, NULL, uri, sizeof(uri))) {
			set_error(x->control, &x->m,
			    "the stored target cannot be opened with the data keys");
			return -1;
		}
		ends.target = connect_checked(uri, err, sizeof(err));
		OPENSSL_cleanse(uri, sizeof(uri));
		if (!ends.target) {
			set_error(x->control, &x->m, "target: %s", err);
			return -1;
		}
		memcpy(ends.id, x->m.id, 16);
		x->dst = ends.target;
		return 0;
	}
	/* dedicated_to_shared: the org's dedicated database as recorded at the
	 * start (the org row forgets it at the switch) */
	x->dst = x->control;
	if (!x->m.source_sealed ||
	    !(x->src = tenant_db_sealed(x->cfg, x->m.source_sealed, err, sizeof(err))) ||
	    db_ensure(x->src) != 0) {
		set_error(x->control, &x->m, "source: %s",
		    !x->m.source_sealed ? "no dedicated source recorded"
		    : x->src            ? db_error(x->src)
		                        : err);
		return -1;
	}
	return 0;
}

struct db *second_target(struct run *x)
{
	char uri[1200], err[512];

	if (ends.second && memcmp(ends.id, x->m.id, 16) == 0 && db_ensure(ends.second) == 0)
		return ends.second;
	db_close(ends.second);
	ends.second = NULL;
	if (x->m.to_dedicated) {
		if (memcmp(ends.id, x->m.id, 16) != 0 || !target_uri(x, NULL, uri, sizeof(uri)))
			return NULL;
		ends.second = connect_checked(uri, err, sizeof(err));
		OPENSSL_cleanse(uri, sizeof(uri));
	} else {
		/* the target is the control database; the target connection kept
		 * here is only the second writer's */
		memcpy(ends.id, x->m.id, 16);
		ends.second =
		    db_open_rotating(x->cfg->db_uri, x->cfg->db_uri_previous, err, sizeof(err));
	}
	return ends.second;
}

struct db *target_server(struct run *x, const char *what)
{
	char uri[1200], err[512] = "the stored target cannot be opened with the data keys";
	struct db *server = NULL;

	if (target_uri(x, "", uri, sizeof(uri)))
		server = connect_checked(uri, err, sizeof(err));
	OPENSSL_cleanse(uri, sizeof(uri));
	if (!server)
		set_error(x->control, &x->m, "%s: %s", what, err);
	return server;
}

int target_db_exists(struct run *x, struct db *server)
{
	struct db_rows rows;
	struct db_param s[] = {DBP_STR(x->m.db_name)};

	if (db_query(server, x->a,
	        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", s, 1,
	        &rows) != 0)
		return -1;
	return rows.nrows > 0;
}

int table_cols(struct db *d, struct arena *a, const char *table, struct cols *c)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_STR(table)};
	size_t l = 0, u = 0, k, nulls;
	char nullmap[512] = "";

	memset(c, 0, sizeof(*c));
	if (db_query(d, a,
	        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS"
	        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND IS_GENERATED = 'NEVER'"
	        " ORDER BY ORDINAL_POSITION",
	        p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 0 || rows.nrows > MAX_COLS)
		return -1;
	/* The row count, and BIT_XOR of CRC32 over each row's columns and its
	 * NULL map: a sum that does not depend on the order rows are read in,
	 * so both sides of a range compare whatever their physical order. */
	k = (size_t)snprintf(c->checksum, sizeof(c->checksum),
	    "COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS('#'");
	nulls = 0;
	for (size_t i = 0; i < rows.nrows; i++) {
		const char *name = rows.val[i][0], *type = rows.val[i][1];

		for (const char *s = name; *s; s++)
			if (!(isalnum((unsigned char)*s) || *s == '_'))
				return -1;
		c->binary[i] = strstr(type, "binary") || strstr(type, "blob");
		l += (size_t)snprintf(c->list + l, sizeof(c->list) - l, "%s`%s`", i ? ", " : "",
		    name);
		u += (size_t)snprintf(c->update + u, sizeof(c->update) - u, "%s`%s` = VALUES(`%s`)",
		    i ? ", " : "", name, name);
		k += (size_t)snprintf(c->checksum + k, sizeof(c->checksum) - k, ", `%s`", name);
		nulls += (size_t)snprintf(nullmap + nulls, sizeof(nullmap) - nulls,
		    "%sISNULL(`%s`)", i ? ", " : "", name);
	}
	k += (size_t)snprintf(c->checksum + k, sizeof(c->checksum) - k, ", CONCAT(%s)))), 0)",
	    nullmap);
	c->n = rows.nrows;
	if (l >= sizeof(c->list) || u >= sizeof(c->update) || k >= sizeof(c->checksum) ||
	    nulls >= sizeof(nullmap))
		return -1;
	/* One row's CRC32, the same expression the sum XORs: the copy reads it
	 * with the row, so the source's sum of a chunk costs no second read. */
	{
		const char *from = strstr(c->checksum, "CRC32(");
		size_t len = strlen(from) - strlen("), 0)");

		if ((size_t)snprintf(c->listsum, sizeof(c->listsum), "%s, %.*s", c->list, (int)len,
		        from) >= sizeof(c->listsum))
			return -1;
	}
	return 0;
}

/* A statement binds at most 65,535 values, and its packet must stay
 * under max_allowed_packet (16 MB by default): a batch ends before whichever
 * comes first of those many rows or UPSERT_BYTES of values (with a few
 * bytes of framing each). Its row count is then rounded down to a power of
 * two, so that a connection prepares and keeps at most a handful of
 * statement texts per table, not one per batch. */
#define UPSERT_PARAMS 65535
#define UPSERT_BYTES (4u << 20)
#define UPSERT_PARAM_OVERHEAD 4

static size_t pow2_floor(size_t n)
{
	size_t p = 1;

	while (p <= n / 2)
		p *= 2;
	return p;
}

/* Rows from i (at most to) that fit one statement: at least one. */
static size_t upsert_batch(const struct cols *c, const struct db_rows *rows, size_t i, size_t to)
{
	size_t max_rows = UPSERT_PARAMS / (c->n ? c->n : 1), n, bytes = 0;

	for (n = 0; i + n < to && n < max_rows; n++) {
		size_t row = c->n * UPSERT_PARAM_OVERHEAD;

		for (size_t col = 0; col < c->n; col++)
			row += rows->len[i + n][col];
		if (n > 0 && bytes + row > UPSERT_BYTES)
			break;
		bytes += row;
	}
	return pow2_floor(n ? n : 1);
}

int upsert(struct db *dst, struct arena *a, const char *table, const struct cols *c,
    const struct db_rows *rows, size_t from, size_t to)
{
	for (size_t i = from, n; i < to; i += n) {
		size_t np = 0, k, cap;
		char *sql;
		struct db_param *p;

		n = upsert_batch(c, rows, i, to);
		cap = 256 + strlen(c->list) + strlen(c->update) + n * (c->n * 3 + 4);
		sql = arena_alloc(a, cap);
		p = arena_alloc(a, n * c->n * sizeof(*p));
		if (!sql || !p)
			return -1;
		k = (size_t)snprintf(sql, cap, "INSERT INTO `%s` (%s) VALUES ", table, c->list);
		for (size_t r = i; r < i + n; r++) {
			sql[k++] = r > i ? ',' : ' ';
			sql[k++] = '(';
			for (size_t col = 0; col < c->n; col++) {
				const char *v = rows->val[r][col];
				unsigned long len = rows->len[r][col];

				if (col)
					sql[k++] = ',';
				sql[k++] = '?';
				p[np++] = !v               ? DBP_NULL
				          : c->binary[col] ? DBP_BLOB(v, len)
				                           : DBP_STRN(v, len);
			}
			sql[k++] = ')';
		}
		snprintf(sql + k, cap - k, " ON DUPLICATE KEY UPDATE %s", c->update);
		if (db_exec(dst, sql, p, np, NULL) != 0)
			return -1;
	}
	return 0;
}

int select_range(struct db *d, struct arena *a, const char *table, const struct cols *c,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, long long limit,
    struct db_rows *rows)
{
	return select_range_as(d, a, table, c->list, org, lo, hi, limit, rows);
}

int select_range_as(struct db *d, struct arena *a, const char *table, const char *list,
    const uint8_t org[16], const uint8_t lo[16], const uint8_t *hi, long long limit,
    struct db_rows *rows)
{
	char sql[4400];
	struct db_param p[4];
	size_t np = 0;

	snprintf(sql, sizeof(sql),
	    "SELECT %s FROM `%s` FORCE INDEX (`%s" ORG_INDEX "`) WHERE org_id = ? AND id > ?%s"
	    " ORDER BY id%s",
	    list, table, table, hi ? " AND id <= ?" : "", limit ? " LIMIT ?" : "");
	p[np++] = DBP_BLOB(org, 16);
	p[np++] = DBP_BLOB(lo, 16);
	if (hi)
		p[np++] = DBP_BLOB(hi, 16);
	if (limit)
		p[np++] = DBP_I64(limit);
	return db_query(d, a, sql, p, np, rows);
}

const uint8_t id_zero[16] = {0};
