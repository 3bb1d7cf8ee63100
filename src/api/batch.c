/* The runner of compliance batches (see id_batch in api.h). */
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "lib/arena.h"
#include "infra/db.h"
#include "core/entity.h"
#include "lib/log.h"
#include "core/tenant_db.h"
#include "lib/util.h"

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

bool id_batch_run(struct id_batch *b, id_batch_fn fn)
{
	struct req *r = b->r;
	uint8_t(*ids)[16], (*orgs)[16];
	bool *found, *done;
	size_t *idx, applied = 0, failed = 0;

	b->what = arena_calloc(r->arena, b->n ? b->n : 1, sizeof(*b->what));
	idx = arena_calloc(r->arena, b->n ? b->n : 1, sizeof(*idx));
	if (!b->what || !idx) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return false;
	}
	if (!b->e->tenant) {
		struct group g = {b, fn};

		for (size_t i = 0; i < b->n; i++)
			idx[i] = i;
		b->idx = idx;
		b->nidx = b->n;
		if (db_tx(r->db, control_fn, &g) != 0) {
			reply_db_error(r);
			return false;
		}
		return true;
	}
	ids = arena_calloc(r->arena, b->n, 16);
	orgs = arena_calloc(r->arena, b->n, 16);
	found = arena_calloc(r->arena, b->n, sizeof(*found));
	done = arena_calloc(r->arena, b->n, sizeof(*done));
	if (!ids || !orgs || !found || !done) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return false;
	}
	for (size_t i = 0; i < b->n; i++)
		memcpy(ids[i], b->ids[i].b, 16);
	if (tenant_locate(r->db, r->cfg, r->arena, b->e, (const uint8_t(*)[16])ids, b->n, orgs,
	        found) != 0) {
		reply_db_error(r);
		return false;
	}
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
		if (db_tx(r->db, control_fn, &g) != 0) {
			reply_db_error(r);
			return false;
		}
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
		rc = tenant_write(r->db, r->cfg, r->arena, orgs[i], group_fn, &g);
		if (rc == TENANT_OK)
			applied++;
		else if (rc == TENANT_FROZEN)
			set_group(b, "org_migrating");
		else if (rc == TENANT_NO_ORG)
			set_group(b, "not_found");
		else {
			log_msg(LL_ERROR, "batch_group_failed", "org %s: %s", org_s,
			    db_error(r->db));
			set_group(b, "unavailable");
			failed++;
		}
		b->org = NULL;
		b->tx = NULL;
	}
	/* Nothing applied anywhere: an error, not a list of failures. */
	if (failed && !applied) {
		reply_unavailable(r, "the records' databases are unavailable; nothing was changed");
		return false;
	}
	return true;
}

void id_batch_reply(struct id_batch *b, struct json_object *o)
{
	struct json_object *results = json_object_new_array(), *counts = NULL;

	if (!o)
		o = json_object_new_object();
	if (!json_object_object_get_ex(o, "counts", &counts)) {
		counts = json_object_new_object();
		json_object_object_add(o, "counts", counts);
	}

	for (size_t i = 0; i < b->n; i++) {
		struct json_object *e = json_object_new_object(), *c;
		char s[UUID_STR_LEN + 1];
		const char *what = b->what[i] ? b->what[i] : "unavailable";

		uuid_format(&b->ids[i], s);
		json_object_object_add(e, "id", json_object_new_string(s));
		json_object_object_add(e, "result", json_object_new_string(what));
		json_object_array_add(results, e);
		if (json_object_object_get_ex(counts, what, &c))
			json_object_set_int(c, json_object_get_int(c) + 1);
		else
			json_object_object_add(counts, what, json_object_new_int(1));
	}
	json_object_object_add(o, "results", results);
	reply_json(b->r, 200, o);
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

struct json_object *id_batch_group_counts(const struct id_batch *b)
{
	struct json_object *counts = json_object_new_object(), *c;

	for (size_t i = 0; i < b->nidx; i++) {
		const char *what = b->what[b->idx[i]] ? b->what[b->idx[i]] : "unavailable";

		if (json_object_object_get_ex(counts, what, &c))
			json_object_set_int(c, json_object_get_int(c) + 1);
		else
			json_object_object_add(counts, what, json_object_new_int(1));
	}
	return counts;
}

struct db *record_db_or_reply(struct req *r, const struct entity *e, const struct opsd_uuid *id)
{
	uint8_t org[1][16];
	bool found = false;
	struct tenant_org t;
	enum tenant_rc rc;

	if (!e->tenant)
		return r->db;
	if (tenant_locate(r->db, r->cfg, r->arena, e, (const uint8_t(*)[16])id->b, 1, org,
	        &found) != 0) {
		reply_db_error(r);
		return NULL;
	}
	if (!found) {
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
		return NULL;
	}
	rc = tenant_org_db(r->db, r->cfg, r->arena, org[0], &t);
	if (rc == TENANT_OK)
		return t.db;
	if (rc == TENANT_NO_ORG)
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
	else
		reply_err(r, &tenant_errors[rc], NULL);
	return NULL;
}
