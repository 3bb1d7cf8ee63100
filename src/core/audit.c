/* Appending to the audit chain and checking one stored event (the pure
 * hashing lives in audit_hash.c, the replay in audit_verify.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/audit_internal.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"

const struct audit_action_info audit_actions[AA__MAX] = {
    [AA_LEGAL_UPDATED] = {"legal.updated", true},
    [AA_LEGAL_ACCEPTED] = {"legal.accepted", true},
    [AA_COMPLIANCE_PII_STRIPPED] = {"compliance.pii_stripped", true},
    [AA_COMPLIANCE_LEGAL_HOLD_SET] = {"compliance.legal_hold_set", true},
    [AA_COMPLIANCE_LEGAL_HOLD_RELEASED] = {"compliance.legal_hold_released", true},
    [AA_COMPLIANCE_ARCHIVED] = {"compliance.archived", true},
    [AA_COMPLIANCE_EXPORTED] = {"compliance.exported", true},
    [AA_COMPLIANCE_SUBJECTS_SEARCHED] = {"compliance.subjects_searched", false},
    [AA_SECURITY_SESSIONS_FLUSHED] = {"security.sessions_flushed", true},
    [AA_SECURITY_RATE_LIMITED] = {"security.rate_limited", true},
    [AA_SECURITY_BLOCKLIST_ADDED] = {"security.blocklist_added", true},
    [AA_SECURITY_BLOCKLIST_REMOVED] = {"security.blocklist_removed", true},
    [AA_SECURITY_TOKENS_REVOKED] = {"security.tokens_revoked", true},
    [AA_SECURITY_SESSION_SECRET_ROTATED] = {"security.session_secret_rotated", false},
    [AA_SECURITY_DATA_KEY_ROTATED] = {"security.data_key_rotated", false},
    [AA_SECURITY_RATE_LIMITS_CHANGED] = {"security.rate_limits_changed", true},
    [AA_AUTH_LOGIN_SUCCEEDED] = {"auth.login_succeeded", false},
    [AA_AUTH_LOGIN_FAILED] = {"auth.login_failed", true},
    [AA_AUTH_LOGIN_THROTTLED] = {"auth.login_throttled", true},
    [AA_AUTH_LOGOUT] = {"auth.logout", false},
    [AA_AUTH_PASSWORD_CHANGED] = {"auth.password_changed", false},
    [AA_AUTH_TOKEN_CREATED] = {"auth.token_created", false},
    [AA_AUTH_TOKEN_REVOKED] = {"auth.token_revoked", false},
    [AA_MIGRATION_STARTED] = {"migration.started", true},
    [AA_MIGRATION_LEGAL_HOLD_OVERRIDE] = {"migration.legal_hold_override", true},
    [AA_MIGRATION_PROGRESS] = {"migration.progress", false},
    [AA_MIGRATION_READY_FOR_CUTOVER] = {"migration.ready_for_cutover", false},
    [AA_MIGRATION_DRY_RUN_COMPLETED] = {"migration.dry_run_completed", false},
    [AA_MIGRATION_FINALIZE_REQUESTED] = {"migration.finalize_requested", false},
    [AA_MIGRATION_FINALIZE_REHEARSED] = {"migration.finalize_rehearsed", false},
    [AA_MIGRATION_CUTOVER_REFUSED] = {"migration.cutover_refused", true},
    [AA_MIGRATION_FINALIZED] = {"migration.finalized", true},
    [AA_MIGRATION_ABORT_REQUESTED] = {"migration.abort_requested", false},
    [AA_MIGRATION_ABORTED] = {"migration.aborted", true},
    [AA_MIGRATION_FAILED] = {"migration.failed", true},
    [AA_AUDIT_PURGED] = {"audit.purged", true},
    [AA_AUDIT_VERIFIED] = {"audit.verified", false},
    [AA_USER_CREATED] = {"user.created", false},
    [AA_USER_UPDATED] = {"user.updated", false},
    /* counted: disabling and re-enabling accounts is containment (runbook 4) */
    [AA_USER_DISABLED] = {"user.disabled", true},
    [AA_USER_ENABLED] = {"user.enabled", true},
    [AA_USER_DELETED] = {"user.deleted", false},
    [AA_ORG_CREATED] = {"org.created", false},
    [AA_ORG_DEDICATED_TARGET_CHANGED] = {"org.dedicated_target_changed", false},
    [AA_TENANT_CREATED] = {"tenant.created", false},
    [AA_TENANT_UPDATED] = {"tenant.updated", false},
    [AA_TENANT_DELETED] = {"tenant.deleted", false},
    [AA_EMAIL_SENT] = {"email.sent", false},
    [AA_EMAIL_FAILED] = {"email.failed", false},
    [AA_EMAIL_SUPPRESSED] = {"email.suppressed", false},
    [AA_EMAIL_RETRY_REQUESTED] = {"email.retry_requested", false},
    [AA_EMAIL_TEST_REQUESTED] = {"email.test_requested", false},
};

/* A UUID string parameter as BINARY(16), NULL when absent or malformed. */
static struct db_param uuid_param(const char *s, struct opsd_uuid *buf)
{
	if (!s || !uuid_parse(s, buf))
		return DBP_NULL;
	return DBP_BLOB(buf->b, sizeof(buf->b));
}

int audit_append(struct db *d, const struct audit_actor *actor, enum audit_action action,
    const char *org_id, const char *target_type, const char *target_id, struct json_object *payload)
{
	struct arena *a = arena_new(4096);
	struct audit_record rec;
	struct db_rows head;
	struct opsd_uuid id, actor_u, org_u;
	char id_s[UUID_STR_LEN + 1], when[DB_TIME_LEN + 1];
	const char *text;
	uint8_t hash[32];
	int rc = -1;

	if (!payload)
		payload = json_object_new_object();
	text = audit_payload_text(payload);
	if (!a)
		goto out;
	if (db_query(d, a, "SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE", NULL,
	        0, &head) != 0)
		goto out;
	if (head.nrows != 1 || head.len[0][1] != 32) {
		log_msg(LL_ERROR, "audit_head_missing", "audit_chain_head has no valid row");
		goto out;
	}
	uuid7_new(&id);
	uuid_format(&id, id_s);
	db_time_from_ms(now_ms(), when);
	memset(&rec, 0, sizeof(rec));
	rec.seq = strtoll(head.val[0][0], NULL, 10) + 1;
	rec.id = id_s;
	rec.occurred_at = when;
	rec.actor_id = actor->user_id;
	rec.actor_label = actor->label ? actor->label : "system";
	rec.org_id = org_id;
	rec.action = audit_actions[action].name;
	rec.target_type = target_type;
	rec.target_id = target_id;
	rec.ip = actor->ip;
	rec.request_id = actor->request_id;
	rec.payload = text;
	memcpy(rec.prev_hash, head.val[0][1], 32);
	audit_record_hash(&rec, hash);
	{
		struct db_param p[] = {
		    DBP_I64(rec.seq),
		    DBP_BLOB(id.b, 16),
		    DBP_STR(when),
		    uuid_param(rec.actor_id, &actor_u),
		    DBP_STR(rec.actor_label),
		    uuid_param(org_id, &org_u),
		    DBP_STR(rec.action),
		    DBP_STR(target_type),
		    DBP_STR(target_id),
		    DBP_STR(rec.ip),
		    DBP_STR(rec.request_id),
		    DBP_STR(text),
		    DBP_BLOB(rec.prev_hash, 32),
		    DBP_BLOB(hash, 32),
		};
		struct db_param h[] = {DBP_I64(rec.seq), DBP_BLOB(hash, 32)};

		if (db_exec(d,
		        "INSERT INTO audit_events (seq, id, occurred_at, actor_id, actor_label, org_id,"
		        " action, target_type, target_id, ip, request_id, payload, prev_hash, hash)"
		        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		        p, countof(p), NULL) != 0)
			goto out;
		if (db_exec(d, "UPDATE audit_chain_head SET seq = ?, hash = ? WHERE id = 1", h,
		        countof(h), NULL) != 0)
			goto out;
		/* opsd_audit_events_total, counted in the database so that every
		 * writer counts (opsctl, the jobs process, other hosts) and the
		 * count commits with the event. The chain head's row lock taken
		 * above already serialises appends: this row adds no contention. */
		if (db_exec(d,
		        "INSERT INTO audit_action_counts (action, n) VALUES (?, 1)"
		        " ON DUPLICATE KEY UPDATE n = n + 1",
		        &p[6], 1, NULL) != 0)
			goto out;
	}
	{
		struct logline *l = log_begin(LL_INFO, "audit");

		log_str(l, "action", rec.action);
		log_str(l, "auditId", id_s);
		if (target_type)
			log_str(l, "targetType", target_type);
		log_end(l);
	}
	rc = 0;
out:
	json_object_put(payload);
	arena_free(a);
	return rc;
}

int audit_action_counts(struct db *d, uint64_t counts[AA__MAX])
{
	struct arena *a = arena_new(4096);
	struct db_rows rows;
	int rc = -1;

	memset(counts, 0, AA__MAX * sizeof(counts[0]));
	if (!a || db_query(d, a, "SELECT action, n FROM audit_action_counts", NULL, 0, &rows) != 0)
		goto out;
	for (size_t i = 0; i < rows.nrows; i++)
		for (int k = 0; k < AA__MAX; k++)
			if (rows.val[i][0] && strcmp(rows.val[i][0], audit_actions[k].name) == 0)
				counts[k] = strtoull(rows.val[i][1], NULL, 10);
	rc = 0;
out:
	arena_free(a);
	return rc;
}

struct append_args {
	const struct audit_actor *actor;
	enum audit_action action;
	const char *org_id, *target_type, *target_id;
	struct json_object *payload;
};

static int append_fn(struct db *d, void *ctx)
{
	struct append_args *x = ctx;
	/* db_tx may retry: each attempt consumes its own reference. */
	struct json_object *p = json_object_get(x->payload);

	return audit_append(d, x->actor, x->action, x->org_id, x->target_type, x->target_id, p);
}

int audit_append_tx(struct db *d, const struct audit_actor *actor, enum audit_action action,
    const char *org_id, const char *target_type, const char *target_id, struct json_object *payload)
{
	struct append_args x = {actor, action, org_id, target_type, target_id, payload};
	int rc;

	if (!x.payload)
		x.payload = json_object_new_object();
	rc = db_tx(d, append_fn, &x);
	json_object_put(x.payload);
	return rc;
}

bool audit_row_hash_ok(const struct db_rows *rows, size_t r, const uint8_t prev[32], char *id_out)
{
	char id[UUID_STR_LEN + 1], actor[UUID_STR_LEN + 1], org[UUID_STR_LEN + 1];
	struct audit_record rec;
	uint8_t hash[32];
	char *const *v = rows->val[r];
	const unsigned long *len = rows->len[r];

	if (!dbv_uuid(v[1], len[1], id))
		str_copy(id, "(malformed id)", sizeof(id));
	str_copy(id_out, id, UUID_STR_LEN + 1);
	if (len[12] != 32 || len[13] != 32 || memcmp(v[12], prev, 32) != 0)
		return false;
	memset(&rec, 0, sizeof(rec));
	rec.seq = strtoll(v[0], NULL, 10);
	rec.id = id;
	rec.occurred_at = v[2];
	rec.actor_id = dbv_uuid(v[3], len[3], actor) ? actor : NULL;
	rec.actor_label = v[4];
	rec.org_id = dbv_uuid(v[5], len[5], org) ? org : NULL;
	rec.action = v[6];
	rec.target_type = v[7];
	rec.target_id = v[8];
	rec.ip = v[9];
	rec.request_id = v[10];
	rec.payload = v[11];
	memcpy(rec.prev_hash, v[12], 32);
	audit_record_hash(&rec, hash);
	/* A NULL actor_id/org_id that was a UUID (or the reverse) changes the
	 * hash too: the stored form is what was hashed. */
	if ((v[3] && !rec.actor_id) || (v[5] && !rec.org_id))
		return false;
	return memcmp(hash, v[13], 32) == 0;
}
