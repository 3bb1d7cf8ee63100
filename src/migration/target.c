/* A dedicated org's database target replaced (README "Runbook 7", rotating a
 * dedicated database's password): the new target is connected to and
 * checked before anything is saved, then sealed under OPSD_DATA_KEY and
 * written with its audit event in one transaction. Every worker reads the
 * org's sealed target on each request, so the next request anywhere uses
 * the new credentials (core/tenant_db.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "core/audit.h"
#include "core/tenant_db.h"
#include "infra/config.h"
#include "infra/data_key.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "migration/internal.h"
#include "migration/migration.h"

struct set_target {
	struct db *control;
	const struct opsd_config *cfg;
	const struct audit_actor *actor;
	const struct mig_target_request *req;
	struct arena *a;
	char *detail;
	size_t detail_len;
	struct opsd_uuid org;
	char org_s[UUID_STR_LEN + 1];
	struct data_keyring keys;
	struct db_rows org_row; /* db_mode, redacted and sealed current target */
	char target[1200], redacted[1100], dbname[65], err[512];
	struct db_uri now; /* the new target's parts, password cleared */
	struct db *tgt;
	char *sealed;
};

static void target_detail(struct set_target *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void target_detail(struct set_target *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->detail)
		return;
	va_start(ap, fmt);
	vsnprintf(s->detail, s->detail_len, fmt, ap);
	va_end(ap);
}

/* ^[a-z][a-z0-9_]{0,63}$, as a migration's dbName. */
static bool target_db_name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len < 1 || len > 64 || n[0] < 'a' || n[0] > 'z')
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

static enum mig_err check_target_request(struct set_target *s)
{
	const struct mig_target_request *q = s->req;

	if (!q->org_id || !uuid_parse(q->org_id, &s->org))
		return MIG_E_NO_ORG;
	uuid_format(&s->org, s->org_s);
	if (q->reason && (!q->reason[strspn(q->reason, " \t\r\n")] || strlen(q->reason) > 500))
		return MIG_E_REASON;
	if (q->db_name && !target_db_name_valid(q->db_name))
		return MIG_E_DBNAME;
	return data_keyring_load(s->cfg, &s->keys) ? MIG_OK : MIG_E_NO_KEY;
}

/* The org is dedicated and no migration of it is under way (a move back
 * to shared holds the current target as its source). lock: in the
 * writing transaction. */
static enum mig_err check_target_org(struct set_target *s, bool lock)
{
	struct db_param p[] = {DBP_BLOB(s->org.b, 16)};
	struct db_rows active;

	if (db_query(s->control, s->a,
	        lock ? "SELECT db_mode, JSON_VALUE(dedicated_target, '$.redacted'),"
	               " JSON_VALUE(dedicated_target, '$.sealed') FROM orgs WHERE id = ? FOR UPDATE"
	             : "SELECT db_mode, JSON_VALUE(dedicated_target, '$.redacted'),"
	               " JSON_VALUE(dedicated_target, '$.sealed') FROM orgs WHERE id = ?",
	        p, 1, &s->org_row) != 0 ||
	    db_query(s->control, s->a, "SELECT 1 FROM migrations WHERE active_org = ?", p, 1,
	        &active) != 0)
		return MIG_E_DB;
	if (s->org_row.nrows != 1)
		return MIG_E_NO_ORG;
	if (strcmp(s->org_row.val[0][0], "dedicated") != 0)
		return MIG_E_NOT_DEDICATED;
	return active.nrows ? MIG_E_IN_PROGRESS : MIG_OK;
}

/* The new target: the request's URI (or OPSD_DEDICATED_DB_URI) with
 * dbName, else the URI's own database, else the one the org uses now. */
static enum mig_err build_target(struct set_target *s)
{
	const char *base = s->req->target_uri ? s->req->target_uri : s->cfg->dedicated_db_uri;
	struct db_uri u, cur;

	if (!base || !*base)
		return MIG_E_NO_TARGET;
	if (!db_uri_parse(base, &u, s->err, sizeof(s->err)))
		return MIG_E_URI;
	explicit_bzero(u.pass, sizeof(u.pass));
	if (s->req->db_name)
		str_copy(s->dbname, s->req->db_name, sizeof(s->dbname));
	else if (u.dbname[0])
		str_copy(s->dbname, u.dbname, sizeof(s->dbname));
	else if (s->org_row.val[0][1] &&
	         db_uri_parse(s->org_row.val[0][1], &cur, s->err, sizeof(s->err)))
		str_copy(s->dbname, cur.dbname, sizeof(s->dbname));
	if (!target_db_name_valid(s->dbname))
		return MIG_E_DBNAME;
	if (!uri_with_db(base, s->dbname, s->target, sizeof(s->target)) ||
	    !db_uri_parse(s->target, &s->now, s->err, sizeof(s->err)))
		return MIG_E_URI;
	db_uri_redacted(&s->now, s->redacted, sizeof(s->redacted));
	explicit_bzero(s->now.pass, sizeof(s->now.pass));
	if (!(s->tgt = connect_checked(s->target, s->err, sizeof(s->err)))) {
		target_detail(s, "%s", s->err);
		return MIG_E_UNREACHABLE;
	}
	return MIG_OK;
}

/* The tables the tenant write path uses, and what it does to each: read,
 * insert, update and delete (each tried on no row, then rolled back). */
static enum mig_err check_target_rights(struct set_target *s)
{
	static const char *const probes[] = {
	    "SELECT org_id FROM %s WHERE 1 = 0",
	    "INSERT INTO %s (org_id) SELECT org_id FROM %s WHERE 1 = 0",
	    "UPDATE %s SET org_id = org_id WHERE 1 = 0",
	    "DELETE FROM %s WHERE 1 = 0",
	};
	const char *t[MAX_TABLES + 1];
	size_t n = tenant_tables(t);
	enum mig_err e = MIG_OK;

	t[n++] = "tenant_changelog";
	/* Strict mode would refuse the INSERT for its missing columns before
	 * the rights are looked at; this connection is the check's alone. */
	if (db_exec_script(s->tgt, "SET SESSION sql_mode = ''") != 0 || db_begin(s->tgt) != 0) {
		target_detail(s, "%s", db_error(s->tgt));
		return MIG_E_UNREACHABLE;
	}
	for (size_t i = 0; i < n && e == MIG_OK; i++)
		for (size_t k = 0; k < countof(probes) && e == MIG_OK; k++) {
			char sql[256];

			snprintf(sql, sizeof(sql), probes[k], t[i], t[i]);
			if (db_exec(s->tgt, sql, NULL, 0, NULL) != 0) {
				target_detail(s, "database %s, table %s: %s", s->dbname, t[i],
				    db_error(s->tgt));
				e = MIG_E_TARGET_INVALID;
			}
		}
	db_rollback(s->tgt);
	return e;
}

/* The target holds this org's rows and no other org's. It may hold none
 * only when the org has none where it lives now (asked when that database
 * still answers: the old credentials may already be gone). */
static enum mig_err check_target_rows(struct set_target *s)
{
	const char *sealed = s->org_row.val[0][2];
	struct db *cur;
	int rc;

	if ((rc = holds_other_rows(s->tgt, s->a, NULL, s->org.b)) != 0) {
		target_detail(s, "database %s holds rows of other orgs", s->dbname);
		return rc < 0 ? MIG_E_UNREACHABLE : MIG_E_TARGET_INVALID;
	}
	if ((rc = holds_org_rows(s->tgt, s->a, NULL, s->org.b)) != 0)
		return rc < 0 ? MIG_E_UNREACHABLE : MIG_OK;
	cur = sealed ? tenant_db_sealed(s->cfg, sealed, s->err, sizeof(s->err)) : NULL;
	if (cur && db_ensure(cur) == 0 && holds_org_rows(cur, s->a, NULL, s->org.b) == 0)
		return MIG_OK;
	target_detail(s, "database %s holds no rows of this org", s->dbname);
	return MIG_E_TARGET_INVALID;
}

/* host, port, database and user of a target: never its password. */
static struct json_object *target_json(const struct db_uri *u)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "host", json_object_new_string(u->host));
	if (u->port)
		json_object_object_add(o, "port", json_object_new_int((int)u->port));
	json_object_object_add(o, "database", json_object_new_string(u->dbname));
	json_object_object_add(o, "user", json_object_new_string(u->user));
	return o;
}

static int set_target_fn(struct db *d, void *arg)
{
	struct set_target *s = arg;
	struct db_param p[] = {DBP_STR(s->sealed), DBP_STR(s->redacted), DBP_BLOB(s->org.b, 16)};
	struct json_object *payload = target_json(&s->now);
	struct db_uri before;
	enum mig_err e;

	/* what was checked before the connection still holds under the lock */
	if ((e = check_target_org(s, true)) != MIG_OK) {
		json_object_put(payload);
		return (int)e;
	}
	if (s->org_row.val[0][1] &&
	    db_uri_parse(s->org_row.val[0][1], &before, s->err, sizeof(s->err)))
		json_object_object_add(payload, "previous", target_json(&before));
	if (s->req->reason)
		json_object_object_add(payload, "reason", json_object_new_string(s->req->reason));
	if (db_exec(d,
	        "UPDATE orgs SET dedicated_target = JSON_OBJECT('sealed', ?, 'redacted', ?)"
	        " WHERE id = ?",
	        p, countof(p), NULL) != 0) {
		json_object_put(payload);
		return -1;
	}
	return audit_append(d, s->actor, AA_ORG_DEDICATED_TARGET_CHANGED, s->org_s, "org", s->org_s,
	    payload);
}

static enum mig_err record_target(struct set_target *s)
{
	size_t len = SEALED_LEN(strlen(s->target));
	int rc;

	if (!(s->sealed = malloc(len)) || !data_keyring_seal(&s->keys, s->target, s->sealed, len))
		return MIG_E_DB;
	rc = db_tx(s->control, set_target_fn, s);
	return rc == 0 ? MIG_OK : rc > 0 ? (enum mig_err)rc : MIG_E_DB;
}

enum mig_err mig_set_target(struct db *control, const struct opsd_config *cfg,
    const struct audit_actor *actor, const struct mig_target_request *req, char *redacted,
    size_t redacted_len, char *detail, size_t detail_len)
{
	struct set_target s = {.control = control,
	    .cfg = cfg,
	    .actor = actor,
	    .req = req,
	    .a = arena_new(16 * 1024),
	    .detail = detail,
	    .detail_len = detail_len};
	enum mig_err e;

	if (detail && detail_len)
		detail[0] = '\0';
	if (!s.a)
		return MIG_E_DB;
	/* Each step answers MIG_OK or the refusal; the first refusal stands. */
	if ((e = check_target_request(&s)) == MIG_OK &&
	    (e = check_target_org(&s, false)) == MIG_OK && (e = build_target(&s)) == MIG_OK &&
	    (e = check_target_rights(&s)) == MIG_OK && (e = check_target_rows(&s)) == MIG_OK &&
	    (e = record_target(&s)) == MIG_OK && redacted)
		snprintf(redacted, redacted_len, "%s", s.redacted);
	data_keyring_wipe(&s.keys);
	OPENSSL_cleanse(s.target, sizeof(s.target));
	free(s.sealed);
	db_close(s.tgt);
	arena_free(s.a);
	return e;
}
