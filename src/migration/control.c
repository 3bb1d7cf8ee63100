/* The control plane the API and opsctl call: start, finalize and abort
 * each check the request, then record it with its audit event in one
 * transaction; the engine does the work. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "lib/arena.h"
#include "core/audit.h"
#include "infra/config.h"
#include "lib/crypto.h"
#include "infra/db.h"
#include "migration/internal.h"
#include "core/legal_hold.h"
#include "infra/metrics.h"
#include "migration/migration.h"
#include "core/tenant_db.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* ^[a-z][a-z0-9_]{0,63}$: safe to quote into DDL. */
static bool db_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

struct start_tx {
	const struct mig_request *req;
	const struct audit_actor *actor;
	struct opsd_uuid id, org;
	const char *sealed, *redacted, *db_name, *source_sealed;
	long long chunk;
	bool held;
};

static int start_fn(struct db *d, void *arg)
{
	struct start_tx *x = arg;
	const struct mig_request *q = x->req;
	struct opsd_uuid actor;
	char id_s[UUID_STR_LEN + 1];
	struct json_object *payload;
	struct db_param p[] = {
	    DBP_BLOB(x->id.b, 16),
	    DBP_BLOB(x->org.b, 16),
	    DBP_STR(q->direction),
	    DBP_I64(q->dry_run),
	    DBP_I64(x->chunk),
	    DBP_STR(x->sealed),
	    DBP_STR(x->redacted),
	    DBP_STR(x->db_name),
	    DBP_I64(q->override_legal_hold),
	    DBP_STR(q->reason),
	    x->actor->user_id && uuid_parse(x->actor->user_id, &actor) ? DBP_BLOB(actor.b, 16)
	                                                               : DBP_NULL,
	    DBP_STR(x->source_sealed),
	};

	if (db_exec(d,
	        "INSERT INTO migrations (id, org_id, direction, dry_run, chunk_size, target_sealed,"
	        " target_redacted, db_name, override_legal_hold, reason, created_by, source_sealed)"
	        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	        p, countof(p), NULL) != 0)
		return -1;
	uuid_format(&x->id, id_s);
	payload = json_object_new_object();
	json_object_object_add(payload, "direction", json_object_new_string(q->direction));
	json_object_object_add(payload, "dryRun", json_object_new_boolean(q->dry_run));
	json_object_object_add(payload, "chunkSize", json_object_new_int64(x->chunk));
	json_object_object_add(payload, "dbName", json_object_new_string(x->db_name));
	json_object_object_add(payload, "overrideLegalHold",
	    json_object_new_boolean(q->override_legal_hold));
	if (audit_append(d, x->actor, AA_MIGRATION_STARTED, q->org_id, "migration", id_s,
	        payload) != 0)
		return -1;
	if (!x->held)
		return 0;
	/* The override is its own event: a reviewer searching for it finds it. */
	payload = json_object_new_object();
	json_object_object_add(payload, "migrationId", json_object_new_string(id_s));
	json_object_object_add(payload, "reason", json_object_new_string(q->reason));
	return audit_append(d, x->actor, AA_MIGRATION_LEGAL_HOLD_OVERRIDE, q->org_id, "org",
	    q->org_id, payload);
}

enum mig_err mig_start(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const struct mig_request *req, char *id_out, char *detail,
    size_t detail_len)
{
	struct start_tx x = {.req = req, .actor = actor};
	struct arena *a = arena_new(16 * 1024);
	struct db_rows rows;
	struct db_uri u;
	uint8_t key[32];
	char base[1200], target[1200], server[1200], redacted[1100], dbname[65], err[512];
	char *sealed = NULL;
	struct db *tgt = NULL, *src = control;
	bool to_dedicated;
	enum mig_err e = MIG_E_DB;
	int rc;

	if (detail && detail_len)
		detail[0] = '\0';
	memset(key, 0, sizeof(key));
	if (!a)
		return MIG_E_DB;
	if (!req->org_id || !uuid_parse(req->org_id, &x.org)) {
		e = MIG_E_NO_ORG;
		goto out;
	}
	x.chunk = req->chunk_size ? req->chunk_size : MIG_CHUNK_DEFAULT;
	if (x.chunk < 1 || x.chunk > MIG_CHUNK_MAX) {
		e = MIG_E_CHUNK;
		goto out;
	}
	if (!req->reason || !req->reason[0] || strlen(req->reason) > 500) {
		e = MIG_E_REASON;
		goto out;
	}
	if (req->db_name && !db_name_valid(req->db_name)) {
		e = MIG_E_DBNAME;
		goto out;
	}
	to_dedicated = req->direction && strcmp(req->direction, "shared_to_dedicated") == 0;
	if (!to_dedicated &&
	    (!req->direction || strcmp(req->direction, "dedicated_to_shared") != 0)) {
		e = MIG_E_DIRECTION;
		goto out;
	}
	{
		struct db_param p[] = {DBP_BLOB(x.org.b, 16)};

		if (db_query(control, a,
		        "SELECT slug, db_mode, JSON_VALUE(dedicated_target, '$.sealed') FROM orgs"
		        " WHERE id = ?",
		        p, 1, &rows) != 0)
			goto out;
		if (rows.nrows != 1) {
			e = MIG_E_NO_ORG;
			goto out;
		}
		if (strcmp(rows.val[0][1], to_dedicated ? "shared" : "dedicated") != 0) {
			e = MIG_E_DIRECTION;
			goto out;
		}
	}
	{
		struct db_rows active;
		struct db_param p[] = {DBP_BLOB(x.org.b, 16)};

		if (db_query(control, a, "SELECT 1 FROM migrations WHERE active_org = ?", p, 1,
		        &active) != 0)
			goto out;
		if (active.nrows) {
			e = MIG_E_IN_PROGRESS;
			goto out;
		}
	}
	if (!config_data_key(cfg, key)) {
		e = MIG_E_NO_KEY;
		goto out;
	}
	if (to_dedicated) {
		const char *slug = rows.val[0][0];

		if (!req->target_uri && (!cfg->dedicated_db_uri || !cfg->dedicated_db_uri[0])) {
			e = MIG_E_NO_TARGET;
			goto out;
		}
		str_copy(base, req->target_uri ? req->target_uri : cfg->dedicated_db_uri,
		    sizeof(base));
		if (!db_uri_parse(base, &u, err, sizeof(err))) {
			e = MIG_E_URI;
			goto out;
		}
		if (req->db_name)
			str_copy(dbname, req->db_name, sizeof(dbname));
		else if (u.dbname[0] && db_name_valid(u.dbname))
			str_copy(dbname, u.dbname, sizeof(dbname));
		else {
			/* org_<slug>, the slug's '-' as '_', cut to 64 characters */
			snprintf(dbname, sizeof(dbname), "org_%.60s", slug);
			for (size_t i = 0; dbname[i]; i++)
				if (!isalnum((unsigned char)dbname[i]))
					dbname[i] = '_';
		}
		if (!db_name_valid(dbname)) {
			e = MIG_E_DBNAME;
			goto out;
		}
		if (!uri_with_db(base, dbname, target, sizeof(target)) ||
		    !uri_with_db(base, "", server, sizeof(server)) ||
		    !db_uri_parse(target, &u, err, sizeof(err))) {
			e = MIG_E_URI;
			goto out;
		}
		explicit_bzero(u.pass, sizeof(u.pass));
		db_uri_redacted(&u, redacted, sizeof(redacted));
		if (!(tgt = connect_checked(server, err, sizeof(err)))) {
			if (detail)
				snprintf(detail, detail_len, "%s", err);
			e = MIG_E_UNREACHABLE;
			goto out;
		}
		if ((rc = holds_org_rows(tgt, a, dbname, x.org.b)) != 0) {
			if (rc < 0 && detail)
				snprintf(detail, detail_len, "%s", db_error(tgt));
			e = rc < 0 ? MIG_E_UNREACHABLE : MIG_E_TARGET_NOT_EMPTY;
			goto out;
		}
		/* Never a database someone else lives in: the shared one, another
		 * org's, or one another migration is filling. */
		{
			struct db_uri shared = {0};
			struct db_rows used;
			struct db_param q[] = {DBP_STR(dbname), DBP_BLOB(x.org.b, 16)};

			if (db_uri_parse(cfg->db_uri, &shared, err, sizeof(err)))
				explicit_bzero(shared.pass, sizeof(shared.pass));
			if ((rc = holds_other_rows(tgt, a, dbname, x.org.b)) != 0 ||
			    strcmp(shared.dbname, dbname) == 0) {
				if (detail)
					snprintf(detail, detail_len,
					    "database %s is in use by other orgs", dbname);
				e = rc < 0 ? MIG_E_UNREACHABLE : MIG_E_TARGET_NOT_EMPTY;
				goto out;
			}
			if (db_query(control, a,
			        "SELECT 1 FROM migrations m JOIN orgs o ON o.id = m.org_id"
			        " WHERE m.db_name = ? AND m.org_id <> ? AND m.direction = 'shared_to_dedicated'"
			        " AND (m.active_org IS NOT NULL OR (m.status = 'completed' AND m.dry_run = 0"
			        " AND o.db_mode = 'dedicated')) LIMIT 1",
			        q, 2, &used) != 0)
				goto out;
			if (used.nrows) {
				if (detail)
					snprintf(detail, detail_len,
					    "database %s belongs to another org's migration",
					    dbname);
				e = MIG_E_TARGET_NOT_EMPTY;
				goto out;
			}
		}
	} else {
		/* Back into the shared database: the control connection's own. */
		if (req->target_uri || req->db_name) {
			e = req->target_uri ? MIG_E_URI : MIG_E_DBNAME;
			if (detail)
				snprintf(detail, detail_len,
				    "dedicated_to_shared moves into the shared database: no %s",
				    req->target_uri ? "targetUri" : "dbName");
			goto out;
		}
		str_copy(target, cfg->db_uri, sizeof(target));
		if (!db_uri_parse(target, &u, err, sizeof(err))) {
			e = MIG_E_URI;
			goto out;
		}
		explicit_bzero(u.pass, sizeof(u.pass));
		db_uri_redacted(&u, redacted, sizeof(redacted));
		str_copy(dbname, u.dbname, sizeof(dbname));
		if (!rows.val[0][2] ||
		    !(src = tenant_db_sealed(cfg, rows.val[0][2], err, sizeof(err)))) {
			if (detail)
				snprintf(detail, detail_len, "the org's dedicated database: %s",
				    rows.val[0][2] ? err : "no target recorded");
			e = MIG_E_UNREACHABLE;
			goto out;
		}
		if ((rc = holds_org_rows(control, a, NULL, x.org.b)) != 0) {
			e = rc < 0 ? MIG_E_DB : MIG_E_TARGET_NOT_EMPTY;
			goto out;
		}
		x.source_sealed = rows.val[0][2];
	}
	/* The one guard's rule over the whole org, in the source. */
	if (legal_hold_org_any(src, control, a, x.org.b, &x.held) != 0)
		goto out;
	if (x.held && !req->override_legal_hold) {
		e = MIG_E_LEGAL_HOLD;
		goto out;
	}
	sealed = malloc(SEALED_LEN(strlen(target)));
	if (!sealed || !secret_seal(key, target, sealed, SEALED_LEN(strlen(target))))
		goto out;
	x.sealed = sealed;
	x.redacted = redacted;
	x.db_name = dbname;
	uuid7_new(&x.id);
	if (db_tx(control, start_fn, &x) != 0) {
		e = db_errno(control) == 1062 ? MIG_E_IN_PROGRESS : MIG_E_DB;
		goto out;
	}
	uuid_format(&x.id, id_out);
	metrics_migration(MIG_PENDING);
	e = MIG_OK;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(target, sizeof(target));
	OPENSSL_cleanse(server, sizeof(server));
	OPENSSL_cleanse(base, sizeof(base));
	free(sealed);
	db_close(tgt);
	arena_free(a);
	return e;
}

/* The org's latest migration, loaded. */
static enum mig_err active_or_err(struct db *control, struct arena *a, const char *org_id,
    struct mig *m)
{
	struct db_rows rows;
	enum mig_err e = latest_row(control, a, org_id, &rows);

	if (e == MIG_OK)
		mig_from_row(&rows, 0, m);
	return e;
}

static int request_audit(struct db *control, const struct audit_actor *actor, const struct mig *m,
    enum audit_action action, const char *reason)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "status", json_object_new_string(mig_status_name(m->status)));
	if (reason)
		json_object_object_add(p, "reason", json_object_new_string(reason));
	return audit_append(control, actor, action, m->org_s, "migration", m->id_s, p);
}

/* An operator's request: one UPDATE of the migration, guarded by the
 * status it was read in, and its event when the UPDATE changed the row. */
struct request_tx {
	const struct mig *m;
	const struct audit_actor *actor;
	const char *sql;
	const struct db_param *p;
	size_t np;
	enum audit_action action;
	const char *reason;
	unsigned long long changed;
};

static int request_fn(struct db *d, void *arg)
{
	struct request_tx *x = arg;

	if (db_exec(d, x->sql, x->p, x->np, &x->changed) != 0)
		return -1;
	if (x->changed == 0)
		return 1;
	return request_audit(d, x->actor, x->m, x->action, x->reason);
}

enum mig_err mig_finalize(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, char *detail, size_t detail_len)
{
	struct arena *a = arena_new(8192);
	struct mig m;
	uint8_t key[32];
	char uri[1200], server[1200], err[512];
	struct db *t = NULL;
	enum mig_err e;

	if (detail && detail_len)
		detail[0] = '\0';
	if (!a)
		return MIG_E_DB;
	if ((e = active_or_err(control, a, org_id, &m)) != MIG_OK)
		goto out;
	if (m.status != MIG_READY || m.dry_run) {
		e = MIG_E_NOT_READY;
		goto out;
	}
	/* Re-validate the target now: a lost target refuses the cut-over
	 * before anything is frozen or switched. */
	e = MIG_E_UNREACHABLE;
	if (!config_data_key(cfg, key) || !secret_open(key, m.sealed, uri, sizeof(uri))) {
		if (detail)
			snprintf(detail, detail_len,
			    "the stored target cannot be opened with OPSD_DATA_KEY");
		goto out;
	}
	if (!uri_with_db(uri, m.to_dedicated ? m.db_name : "", server, sizeof(server)) ||
	    !(t = connect_checked(m.to_dedicated ? server : uri, err, sizeof(err)))) {
		if (detail)
			snprintf(detail, detail_len, "%s", t ? "bad target" : err);
		goto out;
	}
	{
		struct db_param p[] = {DBP_STR(mig_status_name(MIG_CUTTING_OVER)),
		    DBP_STR(mig_phase_name(PHASE_FREEZE)), DBP_BLOB(m.id, 16),
		    DBP_STR(mig_status_name(MIG_READY))};
		struct request_tx x = {.m = &m,
		    .actor = actor,
		    .sql = "UPDATE migrations SET status = ?, phase = ?, error = NULL"
		           " WHERE id = ? AND status = ?",
		    .p = p,
		    .np = countof(p),
		    .action = AA_MIGRATION_FINALIZE_REQUESTED};
		int rc = db_tx(control, request_fn, &x);

		e = rc < 0 ? MIG_E_DB : rc > 0 ? MIG_E_NOT_READY : MIG_OK;
	}
	if (e == MIG_OK)
		metrics_migration(MIG_CUTTING_OVER);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(uri, sizeof(uri));
	OPENSSL_cleanse(server, sizeof(server));
	db_close(t);
	arena_free(a);
	return e;
}

/* One migration of the org by id. MIG_E_NO_MIGRATION when it is not the
 * org's. */
static enum mig_err by_id_or_err(struct db *control, struct arena *a, const char *org_id,
    const char *migration_id, struct mig *m)
{
	struct opsd_uuid org, id;
	struct db_rows rows;
	struct db_param p[2];

	if (!org_id || !uuid_parse(org_id, &org) || !uuid_parse(migration_id, &id))
		return MIG_E_NO_MIGRATION;
	p[0] = DBP_BLOB(id.b, 16);
	p[1] = DBP_BLOB(org.b, 16);
	if (db_query(control, a,
	        "SELECT " MIG_COLUMNS " FROM migrations WHERE id = ? AND org_id = ?", p, 2,
	        &rows) != 0)
		return MIG_E_DB;
	if (rows.nrows != 1)
		return MIG_E_NO_MIGRATION;
	mig_from_row(&rows, 0, m);
	return MIG_OK;
}

enum mig_err mig_abort(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *migration_id,
    const char *reason)
{
	struct arena *a = arena_new(8192);
	struct mig m;
	enum mig_err e;

	(void)cfg;
	if (!a)
		return MIG_E_DB;
	if (!reason || !reason[0] || strlen(reason) > 500) {
		e = MIG_E_REASON;
		goto out;
	}
	if ((e = migration_id ? by_id_or_err(control, a, org_id, migration_id, &m)
	                      : active_or_err(control, a, org_id, &m)) != MIG_OK)
		goto out;
	/* After the routing switch the org lives in the target: too late. */
	if (m.status == MIG_COMPLETED || m.status == MIG_ABORTED ||
	    (m.status == MIG_CUTTING_OVER && m.phase == PHASE_SOURCE_CLEANUP)) {
		e = MIG_E_FINISHED;
		goto out;
	}
	if (m.status == MIG_ABORTING)
		goto out; /* already on its way: the same answer again */
	{
		struct db_param p[] = {DBP_STR(mig_status_name(MIG_ABORTING)),
		    DBP_STR(mig_phase_name(PHASE_NONE)), DBP_STR(reason), DBP_BLOB(m.id, 16),
		    DBP_STR(mig_status_name(m.status)),
		    DBP_STR(mig_phase_name(PHASE_SOURCE_CLEANUP))};
		struct request_tx x = {.m = &m,
		    .actor = actor,
		    .sql = "UPDATE migrations SET status = ?, phase = ?, abort_reason = ?,"
		           " abort_requested_at = NOW(3) WHERE id = ? AND status = ?"
		           " AND phase <> ?",
		    .p = p,
		    .np = countof(p),
		    .action = AA_MIGRATION_ABORT_REQUESTED,
		    .reason = reason};
		int rc = db_tx(control, request_fn, &x);

		e = rc < 0   ? (db_errno(control) == 1062 ? MIG_E_FINISHED : MIG_E_DB)
		    : rc > 0 ? MIG_E_FINISHED
		             : MIG_OK;
	}
	if (e == MIG_OK)
		metrics_migration(MIG_ABORTING);
out:
	arena_free(a);
	return e;
}
