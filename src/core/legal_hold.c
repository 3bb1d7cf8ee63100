/* The legal-hold guard and the held set (see legal_hold.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/entity.h"
#include "core/id_set.h"
#include "core/legal_hold.h"
#include "core/tenant_db.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/util.h"

int legal_hold_guard(struct db *d, struct db *control, struct arena *a, const struct entity *e,
    const uint8_t id[16], bool *held)
{
	char sql[256];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id, 16)};
	bool is_org = strcmp(e->org_column, "id") == 0;

	*held = false;
	snprintf(sql, sizeof(sql), "SELECT legal_hold, %s FROM %s WHERE id = ? FOR UPDATE",
	    e->org_column, e->table);
	if (db_query(d, a, sql, p, 1, &rows) != 0)
		return -1;
	if (rows.nrows != 1)
		return 1;
	*held = dbv_true(rows.val[0][0]);
	if (*held || is_org || !rows.val[0][1] || rows.len[0][1] != 16)
		return 0;
	{
		struct db_rows org;
		struct db_param q[] = {DBP_BLOB(rows.val[0][1], 16)};

		if (db_query(control, a,
		        "SELECT legal_hold FROM orgs WHERE id = ? LOCK IN SHARE MODE", q, 1,
		        &org) != 0)
			return -1;
		*held = org.nrows == 1 && dbv_true(org.val[0][0]);
	}
	return 0;
}

/* One row of the set guard's answer, sorted by id for lookup. */
struct guarded {
	uint8_t id[16];
	uint8_t org[16];
	bool has_org, held, done;
};

static int guarded_cmp(const void *x, const void *y)
{
	return memcmp(x, y, 16);
}

/* Binds ids[0..n) to slots placeholders, the last id repeated. */
static void bind_ids(struct db_param *p, size_t slots, const uint8_t (*ids)[16], size_t n)
{
	for (size_t i = 0; i < slots; i++)
		p[i] = DBP_BLOB(ids[i < n ? i : n - 1], 16);
}

/* The records of one statement's worth of ids, appended to g. */
static int guard_slice(struct db *d, struct arena *a, const struct entity *e,
    const char *state_column, const uint8_t (*ids)[16], size_t n, struct guarded *g, size_t *ng)
{
	char head[256], sql[ID_SET_SQL_LEN(256)];
	struct db_param p[ID_SET_MAX];
	size_t slots = id_set_slots(n);
	struct db_rows rows;

	snprintf(head, sizeof(head),
	    "SELECT id, legal_hold, %s IS NOT NULL, %s FROM %s WHERE id IN ", state_column,
	    e->org_column, e->table);
	if (!id_set_sql(sql, sizeof(sql), head, slots, " FOR UPDATE"))
		return -1;
	bind_ids(p, slots, ids, n);
	if (db_query(d, a, sql, p, slots, &rows) != 0)
		return -1;
	for (size_t r = 0; r < rows.nrows; r++) {
		struct guarded *x = &g[(*ng)++];

		memcpy(x->id, rows.val[r][0], 16);
		x->held = dbv_true(rows.val[r][1]);
		x->done = dbv_true(rows.val[r][2]);
		x->has_org = rows.val[r][3] && rows.len[r][3] == 16;
		if (x->has_org)
			memcpy(x->org, rows.val[r][3], 16);
	}
	return 0;
}

/* The held orgs among those of g's records not held themselves: their
 * records are held too. The org rows are read in share mode, as the guard
 * of one record does. */
static int guard_orgs(struct db *control, struct arena *a, struct guarded *g, size_t ng)
{
	uint8_t(*orgs)[16] = arena_calloc(a, ng ? ng : 1, 16);
	size_t n = 0, u = 0;

	if (!orgs)
		return -1;
	for (size_t i = 0; i < ng; i++)
		if (g[i].has_org && !g[i].held)
			memcpy(orgs[n++], g[i].org, 16);
	id_set_sort(orgs, n);
	for (size_t i = 0; i < n; i++)
		if (u == 0 || memcmp(orgs[u - 1], orgs[i], 16) != 0)
			memmove(orgs[u++], orgs[i], 16);
	for (size_t off = 0; off < u; off += ID_SET_MAX) {
		size_t k = u - off < ID_SET_MAX ? u - off : ID_SET_MAX, slots = id_set_slots(k);
		char sql[ID_SET_SQL_LEN(128)];
		struct db_param p[ID_SET_MAX];
		struct db_rows rows;

		if (!id_set_sql(sql, sizeof(sql), "SELECT id, legal_hold FROM orgs WHERE id IN ",
		        slots, " LOCK IN SHARE MODE"))
			return -1;
		bind_ids(p, slots, (const uint8_t(*)[16])orgs[off], k);
		if (db_query(control, a, sql, p, slots, &rows) != 0)
			return -1;
		for (size_t r = 0; r < rows.nrows; r++) {
			if (!dbv_true(rows.val[r][1]) || rows.len[r][0] != 16)
				continue;
			for (size_t i = 0; i < ng; i++)
				if (g[i].has_org && memcmp(g[i].org, rows.val[r][0], 16) == 0)
					g[i].held = true;
		}
	}
	return 0;
}

int legal_hold_guard_set(struct db *d, struct db *control, struct arena *a, const struct entity *e,
    const char *state_column, const uint8_t (*ids)[16], size_t n, struct hold_state *out)
{
	struct guarded *g = arena_calloc(a, n ? n : 1, sizeof(*g));
	uint8_t(*sorted)[16] = arena_calloc(a, n ? n : 1, 16);
	size_t ng = 0;

	memset(out, 0, n * sizeof(*out));
	if (!g || !sorted)
		return -1;
	/* Locked in id order across statements too: two batches over the same
	 * records wait for each other rather than deadlock. */
	memcpy(sorted, ids, n * 16);
	id_set_sort(sorted, n);
	for (size_t off = 0; off < n; off += ID_SET_MAX)
		if (guard_slice(d, a, e, state_column, (const uint8_t(*)[16])sorted + off,
		        n - off < ID_SET_MAX ? n - off : ID_SET_MAX, g, &ng) != 0)
			return -1;
	if (strcmp(e->org_column, "id") != 0 && guard_orgs(control, a, g, ng) != 0)
		return -1;
	if (ng > 1)
		qsort(g, ng, sizeof(*g), guarded_cmp);
	for (size_t k = 0; k < n; k++) {
		const struct guarded *x =
		    ng ? bsearch(ids[k], g, ng, sizeof(*g), guarded_cmp) : NULL;

		if (x)
			out[k] = (struct hold_state){true, x->held, x->done};
	}
	return 0;
}

int legal_hold_org_any(struct db *tdb, struct db *control, struct arena *a, const uint8_t org[16],
    bool *held)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(org, 16)};

	*held = false;
	if (db_query(control, a, "SELECT legal_hold FROM orgs WHERE id = ?", p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && dbv_true(rows.val[0][0])) {
		*held = true;
		return 0;
	}
	for (size_t i = 0; i < ENTITY__MAX; i++) {
		char sql[160];

		if (!entities[i].tenant)
			continue;
		snprintf(sql, sizeof(sql),
		    "SELECT 1 FROM %s WHERE org_id = ? AND legal_hold = 1 LIMIT 1",
		    entities[i].table);
		if (db_query(tdb, a, sql, p, 1, &rows) != 0)
			return -1;
		if (rows.nrows) {
			*held = true;
			return 0;
		}
	}
	return 0;
}

/* ---- the held set ------------------------------------------------------ */

#define HELD_PAGE 10000

static int held_add(struct held_set *s, const char *v, unsigned long len)
{
	if (len != 16)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct opsd_uuid *ids = realloc(s->ids, cap * sizeof(*ids));

		if (!ids)
			return -1;
		s->ids = ids;
		s->cap = cap;
	}
	memcpy(s->ids[s->n++].b, v, 16);
	return 0;
}

static int uuid_cmp(const void *x, const void *y)
{
	return memcmp(x, y, 16);
}

/* One entity's held ids, in keyset pages so a held org with a million
 * records does not need a million-row result in memory at once. */
/* Held orgs, from the control database: records of these are held too. */
static int held_orgs(struct db *control, struct arena *a, struct db_rows *rows)
{
	return db_query(control, a, "SELECT id FROM orgs WHERE legal_hold = 1", NULL, 0, rows);
}

static int held_collect_entity(struct db *d, struct db *control, struct arena *a,
    const struct entity *e, struct held_set *out)
{
	char sql[512];
	uint8_t after[16] = {0};
	bool is_org = strcmp(e->org_column, "id") == 0;

	snprintf(sql, sizeof(sql),
	    "SELECT id FROM %s WHERE legal_hold = 1 AND id > ? ORDER BY id LIMIT ?", e->table);
	for (;;) {
		struct db_rows rows;
		struct db_param p[] = {DBP_BLOB(after, 16), DBP_I64(HELD_PAGE)};

		arena_reset(a);
		if (db_query(d, a, sql, p, countof(p), &rows) != 0)
			return -1;
		for (size_t i = 0; i < rows.nrows; i++)
			if (held_add(out, rows.val[i][0], rows.len[i][0]) != 0)
				return -1;
		if (rows.nrows < HELD_PAGE)
			break;
		memcpy(after, rows.val[rows.nrows - 1][0], 16);
	}
	if (is_org)
		return 0;
	/* Every record of a held org, org by org (the org row and the records
	 * may be in different databases). */
	{
		struct db_rows orgs;
		struct opsd_uuid *list;
		size_t n;

		arena_reset(a);
		if (held_orgs(control, a, &orgs) != 0)
			return -1;
		n = orgs.nrows;
		list = malloc((n ? n : 1) * sizeof(*list));
		if (!list)
			return -1;
		for (size_t i = 0; i < n; i++)
			memcpy(list[i].b, orgs.val[i][0], 16);
		snprintf(sql, sizeof(sql),
		    "SELECT id FROM %s WHERE %s = ? AND id > ? ORDER BY id LIMIT ?", e->table,
		    e->org_column);
		for (size_t o = 0; o < n; o++) {
			memset(after, 0, sizeof(after));
			for (;;) {
				struct db_rows rows;
				struct db_param p[] = {DBP_BLOB(list[o].b, 16), DBP_BLOB(after, 16),
				    DBP_I64(HELD_PAGE)};

				arena_reset(a);
				if (db_query(d, a, sql, p, countof(p), &rows) != 0) {
					free(list);
					return -1;
				}
				for (size_t i = 0; i < rows.nrows; i++)
					if (held_add(out, rows.val[i][0], rows.len[i][0]) != 0) {
						free(list);
						return -1;
					}
				if (rows.nrows < HELD_PAGE)
					break;
				memcpy(after, rows.val[rows.nrows - 1][0], 16);
			}
		}
		free(list);
	}
	return 0;
}

int legal_hold_collect(struct db *control, const struct opsd_config *cfg, struct held_set *out)
{
	struct arena *a = arena_new(64 * 1024);
	struct db_rows ded;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!a)
		return -1;
	for (size_t i = 0; i < ENTITY__MAX && rc == 0; i++)
		rc = held_collect_entity(control, control, a, &entities[i], out);
	/* Tenant records of dedicated orgs live in their own databases. */
	if (rc == 0 &&
	    (rc = db_query(control, a,
	         "SELECT JSON_VALUE(dedicated_target, '$.sealed') FROM orgs WHERE db_mode = 'dedicated'",
	         NULL, 0, &ded)) == 0) {
		char **sealed = calloc(ded.nrows ? ded.nrows : 1, sizeof(*sealed));

		for (size_t o = 0; sealed && o < ded.nrows; o++)
			sealed[o] = ded.val[o][0] ? strdup(ded.val[o][0]) : NULL;
		for (size_t o = 0; sealed && o < ded.nrows && rc == 0; o++) {
			char err[256];
			struct db *d =
			    sealed[o] ? tenant_db_sealed(cfg, sealed[o], err, sizeof(err)) : NULL;

			if (!d || db_ensure(d) != 0) {
				rc = -1;
				break;
			}
			for (size_t i = 0; i < ENTITY__MAX && rc == 0; i++)
				if (entities[i].tenant)
					rc = held_collect_entity(d, control, a, &entities[i], out);
		}
		for (size_t o = 0; sealed && o < ded.nrows; o++)
			free(sealed[o]);
		if (!sealed)
			rc = -1;
		free(sealed);
	}
	arena_free(a);
	if (rc != 0) {
		held_set_free(out);
		return -1;
	}
	if (out->n)
		qsort(out->ids, out->n, sizeof(*out->ids), uuid_cmp);
	return 0;
}

bool held_set_has(const struct held_set *s, const uint8_t id[16])
{
	return s->n && bsearch(id, s->ids, s->n, sizeof(*s->ids), uuid_cmp) != NULL;
}

void held_set_free(struct held_set *s)
{
	free(s->ids);
	memset(s, 0, sizeof(*s));
}
