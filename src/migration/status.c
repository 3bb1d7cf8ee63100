/* The status document of a migration, and an org's history of them. */

#include <json-c/json.h>
#include <math.h>

#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "migration/internal.h"
#include "migration/migration.h"

struct json_object *json_text(const char *v)
{
	struct json_object *o;

	if (!v)
		return NULL;
	o = json_tokener_parse(v);
	return o ? o : json_object_new_string(v);
}

struct json_object *mig_status_render(const struct db_rows *rows, size_t r,
    const struct db_rows *tables, const long long *pending_changes)
{
	char *const *v = rows->val[r];
	struct json_object *o = json_object_new_object(), *list = json_object_new_array();
	long long copied = 0, total = 0;
	double secs = (double)num(v[M_COPY_US]) / 1e6, rate, eta;
	struct mig m;

	mig_from_row(rows, r, &m);
	json_object_object_add(o, "id", json_object_new_string(m.id_s));
	json_object_object_add(o, "orgId", json_object_new_string(m.org_s));
	json_object_object_add(o, "direction", dbv_json_str(rows, r, M_DIRECTION));
	json_object_object_add(o, "status", dbv_json_str(rows, r, M_STATUS));
	json_object_object_add(o, "phase",
	    v[M_PHASE] && v[M_PHASE][0] ? dbv_json_str(rows, r, M_PHASE) : NULL);
	json_object_object_add(o, "dryRun", json_object_new_boolean(m.dry_run));
	json_object_object_add(o, "chunkSize", json_object_new_int(m.chunk));
	json_object_object_add(o, "target", dbv_json_str(rows, r, M_REDACTED));
	json_object_object_add(o, "dbName", dbv_json_str(rows, r, M_DBNAME));
	json_object_object_add(o, "reason", dbv_json_str(rows, r, M_REASON));
	json_object_object_add(o, "abortReason", dbv_json_str(rows, r, M_ABORT_REASON));
	json_object_object_add(o, "overrideLegalHold", json_object_new_boolean(m.override));
	for (size_t i = 0; tables && i < tables->nrows; i++) {
		const struct db_rows *t = tables;
		struct json_object *e = json_object_new_object();

		copied += num(t->val[i][1]);
		total += num(t->val[i][2]);
		json_object_object_add(e, "table", dbv_json_str(t, i, 0));
		json_object_object_add(e, "rowsCopied", json_object_new_int64(num(t->val[i][1])));
		json_object_object_add(e, "rowsTotal", json_object_new_int64(num(t->val[i][2])));
		json_object_object_add(e, "done", json_object_new_boolean(dbv_true(t->val[i][3])));
		json_object_object_add(e, "verified",
		    json_object_new_boolean(dbv_true(t->val[i][4])));
		json_object_array_add(list, e);
	}
	json_object_object_add(o, "tables", list);
	json_object_object_add(o, "rowsCopied", json_object_new_int64(copied));
	json_object_object_add(o, "rowsTotal", json_object_new_int64(total));
	json_object_object_add(o, "percent",
	    json_object_new_double(
	        total > 0 ? (double)(copied > total ? total : copied) * 100.0 / (double)total
	                  : (m.status >= MIG_CATCHING_UP ? 100.0 : 0.0)));
	rate = secs > 0.001 ? (double)copied / secs : 0;
	json_object_object_add(o, "rowsPerSecond", json_object_new_double(trunc(rate)));
	/* a crawl over a long copy can put the ETA past int64 (null: unknown) */
	eta = m.status == MIG_COPYING && rate > 0 && total > copied
	          ? (double)(total - copied) / rate
	          : -1;
	json_object_object_add(o, "etaSeconds",
	    eta >= 0 && eta < 9e18 ? json_object_new_int64((int64_t)eta) : NULL);
	json_object_object_add(o, "throttled", json_object_new_boolean(v[M_THROTTLE] != NULL));
	json_object_object_add(o, "throttleReason", dbv_json_str(rows, r, M_THROTTLE));
	{
		struct json_object *c = json_object_new_object();

		json_object_object_add(c, "snapshot",
		    v[M_SNAPSHOT] ? json_object_new_int64(m.snapshot) : NULL);
		json_object_object_add(c, "applied",
		    v[M_APPLIED] ? json_object_new_int64(m.applied) : NULL);
		json_object_object_add(c, "pending",
		    pending_changes ? json_object_new_int64(*pending_changes) : NULL);
		json_object_object_add(o, "changelog", c);
	}
	json_object_object_add(o, "verification", json_text(v[M_VERIFICATION]));
	json_object_object_add(o, "report", json_text(v[M_REPORT]));
	json_object_object_add(o, "freezeMs",
	    v[M_FREEZE_MS] ? json_object_new_int64(num(v[M_FREEZE_MS])) : NULL);
	json_object_object_add(o, "error", dbv_json_str(rows, r, M_ERROR));
	json_object_object_add(o, "createdBy", dbv_json_uuid(rows, r, M_CREATED_BY));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, r, M_CREATED_AT));
	json_object_object_add(o, "updatedAt", dbv_json_time(rows, r, M_UPDATED_AT));
	json_object_object_add(o, "finishedAt", dbv_json_time(rows, r, M_FINISHED_AT));
	return o;
}

/* Row r's document with what only the database knows: its tables and the
 * changes not replayed yet. */
static struct json_object *status_doc(struct db *control, struct arena *a,
    const struct db_rows *rows, size_t r)
{
	struct db_rows t, n;
	struct db_param p[] = {DBP_BLOB(rows->val[r][M_ID], 16)};
	long long pending = 0;
	bool have_tables, have_pending = false;
	struct mig m;

	mig_from_row(rows, r, &m);
	have_tables = db_query(control, a,
	                  "SELECT table_name, rows_copied, rows_total, copy_done, verify_done,"
	                  " source_rows, target_rows, chunks_verified, chunks_mismatched,"
	                  " chunks_repaired"
	                  " FROM migration_tables WHERE migration_id = ? ORDER BY table_name",
	                  p, 1, &t) == 0;
	/* changes captured and not replayed yet (known when the source is
	 * the shared database; the dedicated one is not asked here) */
	if (rows->val[r][M_APPLIED] && m.to_dedicated && m.status < MIG_COMPLETED) {
		struct db_param q[] = {DBP_BLOB(m.org, 16), DBP_I64(m.applied)};

		if (db_query(control, a,
		        "SELECT COUNT(*) FROM tenant_changelog WHERE org_id = ? AND id > ?", q, 2,
		        &n) == 0) {
			pending = num(n.val[0][0]);
			have_pending = true;
		}
	}
	return mig_status_render(rows, r, have_tables ? &t : NULL, have_pending ? &pending : NULL);
}

struct json_object *mig_status_json(struct db *control, struct arena *a, const char *org_id,
    enum mig_err *err)
{
	struct db_rows rows;

	if ((*err = latest_row(control, a, org_id, &rows)) != MIG_OK)
		return NULL;
	return status_doc(control, a, &rows, 0);
}

/* The migrations of one status (NULL: any) and one org (NULL: every
 * org), newest first, below the id before (NULL: from the newest), at most
 * limit; *more says whether more follow. */
static struct json_object *list_docs(struct db *control, struct arena *a, const char *status,
    const uint8_t *org, const uint8_t *before, long long limit, bool *more, enum mig_err *err)
{
	struct db_param p[] = {DBP_STR(status), DBP_STR(status), DBP_I64(org != NULL),
	    org ? DBP_BLOB(org, 16) : DBP_NULL, DBP_I64(before != NULL),
	    before ? DBP_BLOB(before, 16) : DBP_NULL, DBP_I64(limit + 1)};
	struct db_rows rows;
	struct json_object *items;
	size_t n;

	*err = MIG_E_DB;
	*more = false;
	if (db_query(control, a,
	        "SELECT " MIG_COLUMNS " FROM migrations WHERE (? IS NULL OR status = ?)"
	        " AND (? = 0 OR org_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?",
	        p, countof(p), &rows) != 0)
		return NULL;
	*err = MIG_OK;
	n = rows.nrows > (size_t)limit ? (size_t)limit : rows.nrows;
	*more = rows.nrows > n;
	items = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(items, status_doc(control, a, &rows, i));
	return items;
}

struct json_object *mig_history_json(struct db *control, struct arena *a, const char *org_id,
    const uint8_t *before, long long limit, bool *more, enum mig_err *err)
{
	struct opsd_uuid org;
	struct db_rows o;
	struct db_param p[1];

	*more = false;
	*err = MIG_E_NO_ORG;
	if (!org_id || !uuid_parse(org_id, &org))
		return NULL;
	p[0] = DBP_BLOB(org.b, 16);
	if (db_query(control, a, "SELECT 1 FROM orgs WHERE id = ?", p, 1, &o) != 0) {
		*err = MIG_E_DB;
		return NULL;
	}
	if (o.nrows != 1)
		return NULL;
	return list_docs(control, a, NULL, org.b, before, limit, more, err);
}

struct json_object *mig_list_json(struct db *control, struct arena *a, int status,
    const uint8_t *before, long long limit, bool *more, enum mig_err *err)
{
	const char *name = status >= 0 ? mig_status_name((enum mig_status)status) : NULL;

	return list_docs(control, a, name, NULL, before, limit, more, err);
}
