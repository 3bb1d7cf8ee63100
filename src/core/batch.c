/* The runner of compliance batches (see batch.h). */
#include <string.h>

#include <json-c/json.h>

#include "core/batch.h"
#include "core/entity.h"
#include "core/tenant_db.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/log.h"

struct group {
	struct id_batch *b;
	id_batch_fn fn;
};

static int control_fn(struct db *d, void *arg)
{
	struct group *g = arg;

	g->b->tx = NULL;
	return g->fn(d, d, g->b);
}

static int group_fn(struct tenant_tx *tx, void *arg)
{
	struct group *g = arg;

	g->b->tx = tx;
	return g->fn(tx->tdb, tx->control, g->b);
}

static void set_group(struct id_batch *b, const char *what)
{
	for (size_t i = 0; i < b->nidx; i++)
		b->what[b->idx[i]] = what;
}

enum batch_rc id_batch_run(struct id_batch *b, id_batch_fn fn)
{
	uint8_t(*ids)[16], (*orgs)[16];
	bool *found, *done;
	size_t *idx, applied = 0, failed = 0;

	b->what = arena_calloc(b->arena, b->n ? b->n : 1, sizeof(*b->what));
	idx = arena_calloc(b->arena, b->n ? b->n : 1, sizeof(*idx));
	if (!b->what || !idx)
		return BATCH_NO_MEMORY;
	if (!b->e->tenant) {
		struct group g = {b, fn};

		for (size_t i = 0; i < b->n; i++)
			idx[i] = i;
		b->idx = idx;
		b->nidx = b->n;
		return db_tx(b->control, control_fn, &g) == 0 ? BATCH_OK : BATCH_DB_ERROR;
	}
	ids = arena_calloc(b->arena, b->n, 16);
	orgs = arena_calloc(b->arena, b->n, 16);
	found = arena_calloc(b->arena, b->n, sizeof(*found));
	done = arena_calloc(b->arena, b->n, sizeof(*done));
	if (!ids || !orgs || !found || !done)
		return BATCH_NO_MEMORY;
	for (size_t i = 0; i < b->n; i++)
		memcpy(ids[i], b->ids[i].b, 16);
	if (tenant_locate(b->control, b->cfg, b->arena, b->e, (const uint8_t(*)[16])ids, b->n, orgs,
	        found) != 0)
		return BATCH_DB_ERROR;
	/* Ids found nowhere: still one audited attempt (fn finds nothing in
	 * the shared database and says not_found). */
	b->nidx = 0;
	for (size_t i = 0; i < b->n; i++)
		if (!found[i]) {
			b->what[i] = "not_found";
			idx[b->nidx++] = i;
			done[i] = true;
		}
	if (b->nidx) {
		struct group g = {b, fn};

		b->idx = idx;
		b->org = NULL;
		if (db_tx(b->control, control_fn, &g) != 0)
			return BATCH_DB_ERROR;
	}
	/* One group per org, in the order the ids came. */
	for (size_t i = 0; i < b->n; i++) {
		struct group g = {b, fn};
		struct opsd_uuid org;
		char org_s[UUID_STR_LEN + 1];
		enum tenant_rc rc;

		if (done[i])
			continue;
		b->nidx = 0;
		for (size_t j = i; j < b->n; j++)
			if (!done[j] && memcmp(orgs[j], orgs[i], 16) == 0) {
				idx[b->nidx++] = j;
				done[j] = true;
			}
		b->idx = idx;
		memcpy(org.b, orgs[i], 16);
		uuid_format(&org, org_s);
		b->org = org_s;
		b->tx = NULL;
		rc = tenant_write(b->control, b->cfg, b->arena, orgs[i], group_fn, &g);
		if (rc == TENANT_OK)
			applied++;
		else if (rc == TENANT_FROZEN)
			set_group(b, "org_migrating");
		else if (rc == TENANT_NO_ORG)
			set_group(b, "not_found");
		else {
			log_msg(LL_ERROR, "batch_group_failed", "org %s: %s", org_s,
			    db_error(b->control));
			set_group(b, "unavailable");
			failed++;
		}
		b->org = NULL;
		b->tx = NULL;
	}
	/* Nothing applied anywhere: an error, not a list of failures. */
	return failed && !applied ? BATCH_UNAVAILABLE : BATCH_OK;
}

struct json_object *id_batch_group_ids(const struct id_batch *b)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < b->nidx; i++) {
		char s[UUID_STR_LEN + 1];

		uuid_format(&b->ids[b->idx[i]], s);
		json_object_array_add(a, json_object_new_string(s));
	}
	return a;
}

const char *id_batch_outcome(const struct id_batch *b, size_t i)
{
	return b->what[i] ? b->what[i] : "unavailable";
}

void id_batch_count(struct json_object *counts, const char *what)
{
	struct json_object *c;

	if (json_object_object_get_ex(counts, what, &c))
		json_object_set_int(c, json_object_get_int(c) + 1);
	else
		json_object_object_add(counts, what, json_object_new_int(1));
}

struct json_object *id_batch_results_json(const struct id_batch *b, struct json_object *o)
{
	struct json_object *results = json_object_new_array(), *counts = NULL;

	if (!o)
		o = json_object_new_object();
	if (!json_object_object_get_ex(o, "counts", &counts)) {
		counts = json_object_new_object();
		json_object_object_add(o, "counts", counts);
	}
	for (size_t i = 0; i < b->n; i++) {
		struct json_object *e = json_object_new_object();
		char s[UUID_STR_LEN + 1];

		uuid_format(&b->ids[i], s);
		json_object_object_add(e, "id", json_object_new_string(s));
		json_object_object_add(e, "result", json_object_new_string(id_batch_outcome(b, i)));
		json_object_array_add(results, e);
		id_batch_count(counts, id_batch_outcome(b, i));
	}
	json_object_object_add(o, "results", results);
	return o;
}

struct json_object *id_batch_group_counts(const struct id_batch *b)
{
	struct json_object *counts = json_object_new_object();

	for (size_t i = 0; i < b->nidx; i++)
		id_batch_count(counts, id_batch_outcome(b, b->idx[i]));
	return counts;
}

enum tenant_rc record_db(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const struct entity *e, const struct opsd_uuid *id, struct db **out)
{
	uint8_t org[1][16];
	bool found = false;
	struct tenant_org t;
	enum tenant_rc rc;

	*out = NULL;
	if (!e->tenant) {
		*out = control;
		return TENANT_OK;
	}
	if (tenant_locate(control, cfg, a, e, (const uint8_t(*)[16])id->b, 1, org, &found) != 0)
		return TENANT_DB_ERROR;
	if (!found)
		return TENANT_NO_ORG;
	rc = tenant_org_db(control, cfg, a, org[0], &t);
	if (rc == TENANT_OK)
		*out = t.db;
	return rc;
}
