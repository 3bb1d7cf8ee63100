/* The control plane the API and opsctl call: start, finalize and abort
 * each check the request, then record it with its audit event in one
 * transaction; the engine does the work. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "core/audit.h"
#include "core/legal_hold.h"
#include "core/tenant_db.h"
#include "infra/config.h"
#include "infra/data_key.h"
#include "infra/db.h"
#include "infra/metrics.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "migration/internal.h"
#include "migration/migration.h"

/* What mig_start works out, step by step, before it records the
 * migration (start_fn writes it). */
struct start {
	struct db *control;
	const struct opsd_config *cfg;
	const struct audit_actor *actor;
	const struct mig_request *req;
	struct arena *a;
	char *detail; /* may be NULL */
	size_t detail_len;
	struct opsd_uuid id, org;
	long long chunk;
	bool to_dedicated;
	bool held;              /* the org or a record of it is under legal hold */
	struct db_rows org_row; /* slug, db_mode, the sealed dedicated target */
	uint8_t key[32];        /* OPSD_DATA_KEY's, to seal the target */
	char base[1200], target[1200], server[1200], redacted[1100], dbname[65], err[512];
	struct db *tgt; /* shared_to_dedicated: the target's server */
	struct db *src; /* where the org's rows are now */
	char *sealed;
	const char *source_sealed; /* dedicated_to_shared: the org's dedicated database */
};

/* A human reason for the refusal, when the caller asked for one. */
static void start_detail(struct start *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void start_detail(struct start *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->detail)
		return;
	va_start(ap, fmt);
	vsnprintf(s->detail, s->detail_len, fmt, ap);
	va_end(ap);
}

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

/* A reason is optional; one that is given says something (not only
 * blanks), briefly. */
static bool reason_valid(const char *reason)
{
	return !reason || (reason[strspn(reason, " \t\r\n")] && strlen(reason) <= 500);
}

/* The request's own fields. */
static enum mig_err check_request(struct start *s)
{
	const struct mig_request *q = s->req;

	if (!q->org_id || !uuid_parse(q->org_id, &s->org))
		return MIG_E_NO_ORG;
	s->chunk = q->chunk_size ? q->chunk_size : MIG_CHUNK_DEFAULT;
	if (s->chunk < 1 || s->chunk > MIG_CHUNK_MAX)
		return MIG_E_CHUNK;
	if (!reason_valid(q->reason))
		return MIG_E_REASON;
	if (q->db_name && !db_name_valid(q->db_name))
		return MIG_E_DBNAME;
	s->to_dedicated =
	    q->direction && strcmp(q->direction, mig_directions[MIG_TO_DEDICATED]) == 0;
	if (!s->to_dedicated &&
	    (!q->direction || strcmp(q->direction, mig_directions[MIG_TO_SHARED]) != 0))
		return MIG_E_DIRECTION;
	return MIG_OK;
}

/* The org exists and lives where the direction moves it from. */
static enum mig_err check_org(struct start *s)
{
	struct db_param p[] = {DBP_BLOB(s->org.b, 16)};

	if (db_query(s->control, s->a,
	        "SELECT slug, db_mode, JSON_VALUE(dedicated_target, '$.sealed') FROM orgs"
	        " WHERE id = ?",
	        p, 1, &s->org_row) != 0)
		return MIG_E_DB;
	if (s->org_row.nrows != 1)
		return MIG_E_NO_ORG;
	if (strcmp(s->org_row.val[0][1], s->to_dedicated ? "shared" : "dedicated") != 0)
		return MIG_E_DIRECTION;
	return MIG_OK;
}

/* No other migration of the org is under way. */
static enum mig_err check_none_active(struct start *s)
{
	struct db_rows active;
	struct db_param p[] = {DBP_BLOB(s->org.b, 16)};

	if (db_query(s->control, s->a, "SELECT 1 FROM migrations WHERE active_org = ?", p, 1,
	        &active) != 0)
		return MIG_E_DB;
	return active.nrows ? MIG_E_IN_PROGRESS : MIG_OK;
}

/* The key the target's credentials are sealed with. */
static enum mig_err read_data_key(struct start *s)
{
	return config_data_key(s->cfg, s->key) ? MIG_OK : MIG_E_NO_KEY;
}

/* The database to fill: dbName, else the URI's own, else org_<slug>. */
static void name_target_db(struct start *s, const struct db_uri *u)
{
	if (s->req->db_name)
		str_copy(s->dbname, s->req->db_name, sizeof(s->dbname));
	else if (u->dbname[0] && db_name_valid(u->dbname))
		str_copy(s->dbname, u->dbname, sizeof(s->dbname));
	else {
		/* org_<slug>, the slug's '-' as '_', cut to 64 characters */
		snprintf(s->dbname, sizeof(s->dbname), "org_%.60s", s->org_row.val[0][0]);
		for (size_t i = 0; s->dbname[i]; i++)
			if (!isalnum((unsigned char)s->dbname[i]))
				s->dbname[i] = '_';
	}
}

/* The target database holds no rows of this org, and never is a database
 * someone else lives in: the shared one, another org's, or one another
 * migration is filling. */
static enum mig_err check_target_free(struct start *s)
{
	struct db_uri shared = {0};
	struct db_rows used;
	struct db_param q[] = {DBP_STR(s->dbname), DBP_BLOB(s->org.b, 16)};
	int rc;

	if ((rc = holds_org_rows(s->tgt, s->a, s->dbname, s->org.b)) != 0) {
		if (rc < 0)
			start_detail(s, "%s", db_error(s->tgt));
		return rc < 0 ? MIG_E_UNREACHABLE : MIG_E_TARGET_NOT_EMPTY;
	}
	if (db_uri_parse(s->cfg->db_uri, &shared, s->err, sizeof(s->err)))
		explicit_bzero(shared.pass, sizeof(shared.pass));
	if ((rc = holds_other_rows(s->tgt, s->a, s->dbname, s->org.b)) != 0 ||
	    strcmp(shared.dbname, s->dbname) == 0) {
		start_detail(s, "database %s is in use by other orgs", s->dbname);
		return rc < 0 ? MIG_E_UNREACHABLE : MIG_E_TARGET_NOT_EMPTY;
	}
	if (db_query(s->control, s->a,
	        "SELECT 1 FROM migrations m JOIN orgs o ON o.id = m.org_id"
	        " WHERE m.db_name = ? AND m.org_id <> ? AND m.direction = 'shared_to_dedicated'"
	        " AND (m.active_org IS NOT NULL OR (m.status = 'completed' AND m.dry_run = 0"
	        " AND o.db_mode = 'dedicated')) LIMIT 1",
	        q, 2, &used) != 0)
		return MIG_E_DB;
	if (used.nrows) {
		start_detail(s, "database %s belongs to another org's migration", s->dbname);
		return MIG_E_TARGET_NOT_EMPTY;
	}
	return MIG_OK;
}

/* shared_to_dedicated: the target is the request's URI (or
 * OPSD_DEDICATED_DB_URI) with the database to fill; its server must answer
 * and the database be free for this org. */
static enum mig_err dedicated_target(struct start *s)
{
	const struct mig_request *q = s->req;
	const char *dedicated = s->cfg->dedicated_db_uri;
	struct db_uri u;

	if (!q->target_uri && (!dedicated || !dedicated[0]))
		return MIG_E_NO_TARGET;
	str_copy(s->base, q->target_uri ? q->target_uri : dedicated, sizeof(s->base));
	if (!db_uri_parse(s->base, &u, s->err, sizeof(s->err)))
		return MIG_E_URI;
	name_target_db(s, &u);
	if (!db_name_valid(s->dbname))
		return MIG_E_DBNAME;
	if (!uri_with_db(s->base, s->dbname, s->target, sizeof(s->target)) ||
	    !uri_with_db(s->base, "", s->server, sizeof(s->server)) ||
	    !db_uri_parse(s->target, &u, s->err, sizeof(s->err)))
		return MIG_E_URI;
	db_uri_redacted(&u, s->redacted, sizeof(s->redacted)); /* user:*** while pass is set */
	explicit_bzero(u.pass, sizeof(u.pass));
	if (!(s->tgt = connect_checked(s->server, s->err, sizeof(s->err)))) {
		start_detail(s, "%s", s->err);
		return MIG_E_UNREACHABLE;
	}
	return check_target_free(s);
}

/* dedicated_to_shared: back into the shared database (the control
 * connection's own), which must hold no rows of the org, from the org's
 * dedicated database, which must answer. */
static enum mig_err shared_target(struct start *s)
{
	const struct mig_request *q = s->req;
	const char *sealed = s->org_row.val[0][2];
	struct db_uri u;
	int rc;

	if (q->target_uri || q->db_name) {
		start_detail(s, "dedicated_to_shared moves into the shared database: no %s",
		    q->target_uri ? "targetUri" : "dbName");
		return q->target_uri ? MIG_E_URI : MIG_E_DBNAME;
	}
	str_copy(s->target, s->cfg->db_uri, sizeof(s->target));
	if (!db_uri_parse(s->target, &u, s->err, sizeof(s->err)))
		return MIG_E_URI;
	db_uri_redacted(&u, s->redacted, sizeof(s->redacted)); /* user:*** while pass is set */
	explicit_bzero(u.pass, sizeof(u.pass));
	str_copy(s->dbname, u.dbname, sizeof(s->dbname));
	if (!sealed || !(s->src = tenant_db_sealed(s->cfg, sealed, s->err, sizeof(s->err)))) {
		start_detail(s, "the org's dedicated database: %s",
		    sealed ? s->err : "no target recorded");
		return MIG_E_UNREACHABLE;
	}
	if ((rc = holds_org_rows(s->control, s->a, NULL, s->org.b)) != 0)
		return rc < 0 ? MIG_E_DB : MIG_E_TARGET_NOT_EMPTY;
	s->source_sealed = sealed;
	return MIG_OK;
}

/* The one guard's rule over the whole org, in the source: a hold refuses
 * the migration unless the request overrides it. */
static enum mig_err check_legal_hold(struct start *s)
{
	if (legal_hold_org_any(s->src, s->control, s->a, s->org.b, &s->held) != 0)
		return MIG_E_DB;
	return s->held && !s->req->override_legal_hold ? MIG_E_LEGAL_HOLD : MIG_OK;
}

/* The migration's row and its events, in the caller's transaction. */
static int start_fn(struct db *d, void *arg)
{
	struct start *s = arg;
	const struct mig_request *q = s->req;
	struct opsd_uuid actor;
	char id_s[UUID_STR_LEN + 1];
	struct json_object *payload;
	struct db_param p[] = {
	    DBP_BLOB(s->id.b, 16),
	    DBP_BLOB(s->org.b, 16),
	    DBP_STR(q->direction),
	    DBP_I64(q->dry_run),
	    DBP_I64(s->chunk),
	    DBP_STR(s->sealed),
	    DBP_STR(s->redacted),
	    DBP_STR(s->dbname),
	    DBP_I64(q->override_legal_hold),
	    DBP_STR(q->reason),
	    s->actor->user_id && uuid_parse(s->actor->user_id, &actor) ? DBP_BLOB(actor.b, 16)
	                                                               : DBP_NULL,
	    DBP_STR(s->source_sealed),
	};

	if (db_exec(d,
	        "INSERT INTO migrations (id, org_id, direction, dry_run, chunk_size, target_sealed,"
	        " target_redacted, db_name, override_legal_hold, reason, created_by, source_sealed)"
	        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	        p, countof(p), NULL) != 0)
		return -1;
	uuid_format(&s->id, id_s);
	payload = json_object_new_object();
	json_object_object_add(payload, "direction", json_object_new_string(q->direction));
	json_object_object_add(payload, "dryRun", json_object_new_boolean(q->dry_run));
	json_object_object_add(payload, "chunkSize", json_object_new_int64(s->chunk));
	json_object_object_add(payload, "dbName", json_object_new_string(s->dbname));
	json_object_object_add(payload, "overrideLegalHold",
	    json_object_new_boolean(q->override_legal_hold));
	if (audit_append(d, s->actor, AA_MIGRATION_STARTED, q->org_id, "migration", id_s,
	        payload) != 0)
		return -1;
	if (!s->held)
		return 0;
	/* The override is its own event: a reviewer searching for it finds it. */
	payload = json_object_new_object();
	json_object_object_add(payload, "migrationId", json_object_new_string(id_s));
	if (q->reason)
		json_object_object_add(payload, "reason", json_object_new_string(q->reason));
	return audit_append(d, s->actor, AA_MIGRATION_LEGAL_HOLD_OVERRIDE, q->org_id, "org",
	    q->org_id, payload);
}

/* The target sealed with OPSD_DATA_KEY, then the migration `pending` with
 * its events in one transaction (a second start of the org that got here
 * meanwhile is a duplicate active_org). */
static enum mig_err record_start(struct start *s)
{
	size_t len = SEALED_LEN(strlen(s->target));

	s->sealed = malloc(len);
	if (!s->sealed || !secret_seal(s->key, s->target, s->sealed, len))
		return MIG_E_DB;
	uuid7_new(&s->id);
	if (db_tx(s->control, start_fn, s) != 0)
		return db_duplicate(s->control) ? MIG_E_IN_PROGRESS : MIG_E_DB;
	return MIG_OK;
}

enum mig_err mig_start(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const struct mig_request *req, char *id_out, char *detail,
    size_t detail_len)
{
	struct start s = {.control = control,
	    .cfg = cfg,
	    .actor = actor,
	    .req = req,
	    .a = arena_new(16 * 1024),
	    .detail = detail,
	    .detail_len = detail_len,
	    .src = control};
	enum mig_err e;

	if (detail && detail_len)
		detail[0] = '\0';
	if (!s.a)
		return MIG_E_DB;
	/* Each step answers MIG_OK or the refusal; the first refusal stands. */
	if ((e = check_request(&s)) == MIG_OK && (e = check_org(&s)) == MIG_OK &&
	    (e = check_none_active(&s)) == MIG_OK && (e = read_data_key(&s)) == MIG_OK &&
	    (e = s.to_dedicated ? dedicated_target(&s) : shared_target(&s)) == MIG_OK &&
	    (e = check_legal_hold(&s)) == MIG_OK && (e = record_start(&s)) == MIG_OK) {
		uuid_format(&s.id, id_out);
		metrics_migration(MIG_PENDING);
	}
	OPENSSL_cleanse(s.key, sizeof(s.key));
	OPENSSL_cleanse(s.target, sizeof(s.target));
	OPENSSL_cleanse(s.server, sizeof(s.server));
	OPENSSL_cleanse(s.base, sizeof(s.base));
	free(s.sealed);
	db_close(s.tgt);
	arena_free(s.a);
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
    enum audit_action action, const char *reason, bool dry_run)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "status", json_object_new_string(mig_status_name(m->status)));
	if (dry_run)
		json_object_object_add(p, "dryRun", json_object_new_boolean(1));
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
	bool dry_run; /* a rehearsal, not the real thing */
	unsigned long long changed;
};

static int request_fn(struct db *d, void *arg)
{
	struct request_tx *x = arg;

	if (db_exec(d, x->sql, x->p, x->np, &x->changed) != 0)
		return -1;
	if (x->changed == 0)
		return 1;
	return request_audit(d, x->actor, x->m, x->action, x->reason, x->dry_run);
}

/* The org's latest migration, at ready_for_cutover (a real one, not a dry
 * run), whose target answers now: a lost target refuses the cut-over, or
 * its rehearsal, before anything is frozen, switched or rehearsed. */
static enum mig_err ready_with_target(struct db *control, const struct opsd_config *cfg,
    struct arena *a, const char *org_id, struct mig *m, char *detail, size_t detail_len)
{
	char uri[1200], server[1200], err[512] = "the stored target is not a valid URI";
	struct db *t = NULL;
	enum data_key_open_rc open_rc;
	enum mig_err e;

	if ((e = active_or_err(control, a, org_id, m)) != MIG_OK)
		return e;
	if (m->status != MIG_READY || m->dry_run)
		return MIG_E_NOT_READY;
	e = MIG_E_UNREACHABLE;
	if ((open_rc = data_key_open(cfg, m->sealed, uri, sizeof(uri))) != DK_OPENED)
		str_copy(err, data_key_open_error(open_rc), sizeof(err));
	else if (uri_with_db(uri, m->to_dedicated ? m->db_name : "", server, sizeof(server)) &&
	         (t = connect_checked(m->to_dedicated ? server : uri, err, sizeof(err))) != NULL)
		e = MIG_OK;
	if (e != MIG_OK && detail)
		snprintf(detail, detail_len, "%s", err);
	OPENSSL_cleanse(uri, sizeof(uri));
	OPENSSL_cleanse(server, sizeof(server));
	db_close(t);
	return e;
}

enum mig_err mig_finalize(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *reason, char *detail,
    size_t detail_len)
{
	struct arena *a;
	struct mig m;
	enum mig_err e;

	if (detail && detail_len)
		detail[0] = '\0';
	if (!reason_valid(reason))
		return MIG_E_REASON;
	if (!(a = arena_new(8192)))
		return MIG_E_DB;
	if ((e = ready_with_target(control, cfg, a, org_id, &m, detail, detail_len)) == MIG_OK) {
		struct db_param p[] = {DBP_STR(mig_status_name(MIG_CUTTING_OVER)),
		    DBP_STR(mig_phase_name(PHASE_FREEZE)), DBP_BLOB(m.id, 16),
		    DBP_STR(mig_status_name(MIG_READY))};
		struct request_tx x = {.m = &m,
		    .actor = actor,
		    .sql = "UPDATE migrations SET status = ?, phase = ?, error = NULL"
		           " WHERE id = ? AND status = ?",
		    .p = p,
		    .np = countof(p),
		    .action = AA_MIGRATION_FINALIZE_REQUESTED,
		    .reason = reason};
		int rc = db_tx(control, request_fn, &x);

		e = rc < 0 ? MIG_E_DB : rc > 0 ? MIG_E_NOT_READY : MIG_OK;
	}
	if (e == MIG_OK)
		metrics_migration(MIG_CUTTING_OVER);
	arena_free(a);
	return e;
}

enum mig_err mig_rehearse(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *reason, char *id_out,
    char *detail, size_t detail_len)
{
	struct arena *a;
	struct mig m;
	enum mig_err e;

	if (detail && detail_len)
		detail[0] = '\0';
	if (!reason_valid(reason))
		return MIG_E_REASON;
	if (!(a = arena_new(8192)))
		return MIG_E_DB;
	if ((e = ready_with_target(control, cfg, a, org_id, &m, detail, detail_len)) == MIG_OK &&
	    m.phase == PHASE_REHEARSAL)
		e = MIG_E_REHEARSING;
	if (e == MIG_OK) {
		/* The engine sees the phase and rehearses; the last report goes. */
		struct db_param p[] = {DBP_STR(mig_phase_name(PHASE_REHEARSAL)), DBP_BLOB(m.id, 16),
		    DBP_STR(mig_status_name(MIG_READY)), DBP_STR(mig_phase_name(PHASE_NONE))};
		struct request_tx x = {.m = &m,
		    .actor = actor,
		    .sql = "UPDATE migrations SET phase = ?, report = NULL, error = NULL"
		           " WHERE id = ? AND status = ? AND phase = ?",
		    .p = p,
		    .np = countof(p),
		    .action = AA_MIGRATION_FINALIZE_REQUESTED,
		    .reason = reason,
		    .dry_run = true};
		int rc = db_tx(control, request_fn, &x);

		e = rc < 0 ? MIG_E_DB : rc > 0 ? MIG_E_NOT_READY : MIG_OK;
	}
	if (e == MIG_OK)
		str_copy(id_out, m.id_s, UUID_STR_LEN + 1);
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

/* Asks the engine to abort m (read just before): MIG_OK, MIG_E_FINISHED when
 * it is too late, MIG_E_DB, or -1 when its status moved on since the read
 * (read it again). */
static int abort_request(struct db *control, const struct audit_actor *actor, struct mig *m,
    const char *reason)
{
	struct db_param p[] = {DBP_STR(mig_status_name(MIG_ABORTING)),
	    DBP_STR(mig_phase_name(PHASE_NONE)), DBP_STR(reason), DBP_BLOB(m->id, 16),
	    DBP_STR(mig_status_name(m->status)), DBP_STR(mig_phase_name(PHASE_SOURCE_CLEANUP))};
	struct request_tx x = {.m = m,
	    .actor = actor,
	    .sql = "UPDATE migrations SET status = ?, phase = ?, abort_reason = ?,"
	           " abort_requested_at = NOW(3) WHERE id = ? AND status = ?"
	           " AND phase <> ?",
	    .p = p,
	    .np = countof(p),
	    .action = AA_MIGRATION_ABORT_REQUESTED,
	    .reason = reason};
	int rc = db_tx(control, request_fn, &x);

	if (rc < 0)
		return db_duplicate(control) ? MIG_E_FINISHED : MIG_E_DB;
	return rc > 0 ? -1 : MIG_OK;
}

enum mig_err mig_abort(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *org_id, const char *migration_id,
    const char *reason)
{
	struct arena *a = arena_new(8192);
	struct mig m;
	int e = MIG_E_FINISHED;

	(void)cfg;
	if (!a)
		return MIG_E_DB;
	if (!reason_valid(reason)) {
		e = MIG_E_REASON;
		goto out;
	}
	/* The engine moves the migration on between our read and our update: read
	 * it again and ask again (a few times: each step takes a while). */
	for (int attempt = 0; attempt < 5; attempt++) {
		arena_reset(a);
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
		if ((e = abort_request(control, actor, &m, reason)) != -1)
			break;
		e = MIG_E_FINISHED;
	}
	if (e == MIG_OK)
		metrics_migration(MIG_ABORTING);
out:
	arena_free(a);
	return (enum mig_err)e;
}
