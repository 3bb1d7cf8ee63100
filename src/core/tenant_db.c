/* Routing of tenant records and their write path (see tenant_db.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/entity.h"
#include "core/id_set.h"
#include "core/tenant_db.h"
#include "infra/config.h"
#include "infra/data_key.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- connections to dedicated databases ------------------------------- */

/* A worker talks to a handful of dedicated databases at most; the slots
 * are reused least recently used first. Keyed by sha256 of the sealed
 * target, so no secret is kept in the clear beyond the connection. Every
 * request reads the org's sealed target afresh, and new credentials (or a
 * target re-sealed under another data key) are new sealed text: the next
 * request on every worker connects with them, and the connection made with
 * the old ones is never asked for again. It is closed once idle for
 * POOL_IDLE_MS, so no session of a replaced database user lingers. */
#define POOL_SLOTS 8
#define POOL_IDLE_MS 60000

static struct pool_slot {
	uint8_t key[32];
	struct db *db;
	int64_t used;
} pool[POOL_SLOTS];

struct db *tenant_db_sealed(const struct opsd_config *cfg, const char *sealed, char *err,
    size_t err_len)
{
	uint8_t key[32];
	char uri[1200];
	struct pool_slot *victim = &pool[0], *hit = NULL;
	int64_t now = mono_ms();
	enum data_key_open_rc rc;
	struct db *d;

	sha256_raw(sealed, strlen(sealed), key);
	for (size_t i = 0; i < POOL_SLOTS; i++) {
		if (pool[i].db && memcmp(pool[i].key, key, 32) == 0)
			hit = &pool[i];
		else if (pool[i].db && now - pool[i].used > POOL_IDLE_MS) {
			db_close(pool[i].db);
			pool[i].db = NULL;
		}
		if (!pool[i].db || pool[i].used < victim->used)
			victim = &pool[i];
	}
	if (hit) {
		hit->used = now;
		return hit->db;
	}
	if ((rc = data_key_open(cfg, sealed, uri, sizeof(uri))) != DK_OPENED) {
		snprintf(err, err_len, "%s", data_key_open_error(rc));
		return NULL;
	}
	d = db_open(uri, err, err_len);
	OPENSSL_cleanse(uri, sizeof(uri));
	if (!d)
		return NULL;
	db_close(victim->db);
	memcpy(victim->key, key, 32);
	victim->db = d;
	victim->used = now;
	return d;
}

void tenant_db_close_all(void)
{
	for (size_t i = 0; i < POOL_SLOTS; i++) {
		db_close(pool[i].db);
		pool[i].db = NULL;
	}
}

/* ---- routing ----------------------------------------------------------- */

/* The org row as routing and writes read it; lock is "" or a locking
 * clause. */
static int org_row(struct db *control, struct arena *a, const uint8_t org[16], bool lock,
    struct db_rows *rows)
{
	struct db_param p[] = {DBP_BLOB(org, 16)};

	return db_query(control, a,
	    lock
	        ? "SELECT db_mode, JSON_VALUE(dedicated_target, '$.sealed'), legal_hold,"
	          " capture_changes, IFNULL(write_frozen_until > NOW(3), 0) FROM orgs WHERE id = ?"
	          " LOCK IN SHARE MODE"
	        : "SELECT db_mode, JSON_VALUE(dedicated_target, '$.sealed'), legal_hold,"
	          " capture_changes, IFNULL(write_frozen_until > NOW(3), 0) FROM orgs WHERE id = ?",
	    p, 1, rows);
}

/* Fills out from an org_row result: TENANT_OK or TENANT_UNREACHABLE. */
static enum tenant_rc route(const struct opsd_config *cfg, struct db *control,
    const struct db_rows *rows, struct tenant_org *out)
{
	char *const *v = rows->val[0];
	char err[256];

	out->dedicated = v[0] && strcmp(v[0], "dedicated") == 0;
	out->legal_hold = dbv_true(v[2]);
	out->frozen = dbv_true(v[4]);
	out->db = control;
	if (!out->dedicated)
		return 0;
	if (!v[1] || !(out->db = tenant_db_sealed(cfg, v[1], err, sizeof(err)))) {
		log_msg(LL_ERROR, "tenant_db_unreachable", "%s",
		    v[1] ? err : "no dedicated target");
		return TENANT_UNREACHABLE;
	}
	if (db_ensure(out->db) != 0)
		return TENANT_UNREACHABLE;
	return TENANT_OK;
}

enum tenant_rc tenant_org_db(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const uint8_t org[16], struct tenant_org *out)
{
	struct db_rows rows;

	memset(out, 0, sizeof(*out));
	if (org_row(control, a, org, false, &rows) != 0)
		return TENANT_DB_ERROR;
	if (rows.nrows != 1)
		return TENANT_NO_ORG;
	return route(cfg, control, &rows, out);
}

/* ---- writes ------------------------------------------------------------- */

#define WRITE_ATTEMPTS 3

/* One attempt; *retry when it failed on a deadlock or lock wait timeout. */
static enum tenant_rc write_once(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const uint8_t org[16], int (*fn)(struct tenant_tx *, void *), void *ctx, bool *retry)
{
	struct tenant_tx tx = {.control = control, .a = a};
	struct tenant_org t;
	struct db_rows rows;
	int rc;

	*retry = false;
	if (db_begin(control) != 0)
		return TENANT_DB_ERROR;
	if (org_row(control, a, org, true, &rows) != 0)
		goto fail;
	if (rows.nrows != 1) {
		db_rollback(control);
		return TENANT_NO_ORG;
	}
	if (route(cfg, control, &rows, &t) != TENANT_OK) {
		db_rollback(control);
		return TENANT_UNREACHABLE;
	}
	if (t.frozen) {
		db_rollback(control);
		return TENANT_FROZEN;
	}
	memcpy(tx.org, org, 16);
	tx.tdb = t.db;
	tx.capture = dbv_true(rows.val[0][3]);
	tx.org_held = t.legal_hold;
	if (tx.tdb != control && db_begin(tx.tdb) != 0)
		goto fail;
	rc = fn(&tx, ctx);
	if (rc > 0) {
		if (tx.tdb != control)
			db_rollback(tx.tdb);
		db_rollback(control);
		return TENANT_REFUSED;
	}
	if (rc < 0)
		goto fail;
	/* The tenant change commits first: a failure between the two commits
	 * leaves a change whose audit event is missing (logged below), never
	 * an audit event for a change that did not happen. */
	if (tx.tdb != control && db_commit(tx.tdb) != 0)
		goto fail;
	if (db_commit(control) != 0) {
		if (tx.tdb == control)
			goto fail;
		log_msg(LL_ERROR, "tenant_audit_lost",
		    "a dedicated-database change committed but its control transaction failed: %s",
		    db_error(control));
		db_rollback(control);
		return TENANT_DB_ERROR;
	}
	return TENANT_OK;
fail:
	*retry = db_retryable(control) || (tx.tdb && db_retryable(tx.tdb));
	if (tx.tdb && tx.tdb != control)
		db_rollback(tx.tdb);
	db_rollback(control);
	return TENANT_DB_ERROR;
}

enum tenant_rc tenant_write(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const uint8_t org[16], int (*fn)(struct tenant_tx *tx, void *ctx), void *ctx)
{
	enum tenant_rc rc = TENANT_DB_ERROR;
	bool retry = true;

	for (int i = 0; i < WRITE_ATTEMPTS && retry; i++)
		rc = write_once(control, cfg, a, org, fn, ctx, &retry);
	return rc;
}

int tenant_changelog_add(struct tenant_tx *tx, const struct entity *e, const uint8_t row_id[16],
    const char *op)
{
	struct db_param p[] = {DBP_BLOB(tx->org, 16), DBP_STR(e->table), DBP_BLOB(row_id, 16),
	    DBP_STR(op)};

	if (!tx->capture)
		return 0;
	return db_exec(tx->tdb,
	    "INSERT INTO tenant_changelog (org_id, table_name, row_id, op) VALUES (?, ?, ?, ?)", p,
	    countof(p), NULL);
}

/* ---- locating records ---------------------------------------------------- */

/* The ids not found yet, looked up in d (only org's records when org is
 * set) in statements of ID_SET_MAX ids. */
static int locate_in(struct db *d, struct arena *a, const struct entity *e, const uint8_t *org,
    const uint8_t (*ids)[16], size_t n, uint8_t (*orgs)[16], bool *found)
{
	char head[160], sql[ID_SET_SQL_LEN(160)];
	struct db_param p[1 + ID_SET_MAX];
	uint8_t(*want)[16] = arena_calloc(a, n ? n : 1, 16);
	size_t nw = 0, np = 0;

	if (!want)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!found[i])
			memcpy(want[nw++], ids[i], 16);
	snprintf(head, sizeof(head), "SELECT id, org_id FROM %s WHERE %sid IN ", e->table,
	    org ? "org_id = ? AND " : "");
	if (org)
		p[np++] = DBP_BLOB(org, 16);
	for (size_t off = 0; off < nw; off += ID_SET_MAX) {
		size_t k = nw - off < ID_SET_MAX ? nw - off : ID_SET_MAX, slots = id_set_slots(k);
		struct db_rows rows;
		uint8_t(*got)[16];

		if (!id_set_sql(sql, sizeof(sql), head, slots, " ORDER BY id"))
			return -1;
		for (size_t i = 0; i < slots; i++)
			p[np + i] = DBP_BLOB(want[off + (i < k ? i : k - 1)], 16);
		if (db_query(d, a, sql, p, np + slots, &rows) != 0)
			return -1;
		if (!(got = arena_calloc(a, rows.nrows ? rows.nrows : 1, 16)))
			return -1;
		for (size_t r = 0; r < rows.nrows; r++)
			memcpy(got[r], rows.val[r][0], 16);
		/* rows come in id order: their org by the position of the id */
		for (size_t i = 0; i < n; i++) {
			long at = found[i]
			              ? -1
			              : id_set_find((const uint8_t(*)[16])got, rows.nrows, ids[i]);

			if (at >= 0 && rows.len[at][1] == 16) {
				memcpy(orgs[i], rows.val[at][1], 16);
				found[i] = true;
			}
		}
	}
	return 0;
}

int tenant_locate(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const struct entity *e, const uint8_t (*ids)[16], size_t n, uint8_t (*orgs)[16], bool *found)
{
	struct db_rows ded;
	size_t missing = 0;

	memset(found, 0, n * sizeof(*found));
	if (locate_in(control, a, e, NULL, ids, n, orgs, found) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		missing += !found[i];
	if (!missing)
		return 0;
	/* What a lookup yields is the org: writes then go through tenant_write
	 * to the org's current database, even for a row still in the shared
	 * database while a migration cleans its source up. */
	if (db_query(control, a,
	        "SELECT id, JSON_VALUE(dedicated_target, '$.sealed') FROM orgs WHERE db_mode = 'dedicated'",
	        NULL, 0, &ded) != 0)
		return -1;
	/* A dedicated database that cannot be asked does not stop the others:
	 * only when ids stay unresolved with one of them down is the answer
	 * "cannot tell" (-1) rather than "not found". */
	bool down = false;

	for (size_t o = 0; o < ded.nrows && missing; o++) {
		char err[256];
		struct db *d =
		    ded.val[o][1] ? tenant_db_sealed(cfg, ded.val[o][1], err, sizeof(err)) : NULL;

		if (!d || db_ensure(d) != 0 ||
		    locate_in(d, a, e, (const uint8_t *)ded.val[o][0], ids, n, orgs, found) != 0) {
			down = true;
			continue;
		}
		missing = 0;
		for (size_t i = 0; i < n; i++)
			missing += !found[i];
	}
	return missing && down ? -1 : 0;
}
