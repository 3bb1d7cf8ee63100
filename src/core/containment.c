/* Containing accounts: disable, enable, revoke API tokens (see containment.h). */
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/auth.h"
#include "core/containment.h"
#include "core/principal_cache.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* Both payloads carry the reason only when one was given. */
static struct json_object *payload_with_reason(const char *reason)
{
	struct json_object *p = json_object_new_object();

	if (reason)
		json_object_object_add(p, "reason", json_object_new_string(reason));
	return p;
}

/* ---- disable, enable ----------------------------------------------------- */

struct contain_tx {
	struct arena *a;
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1];
	struct user_containment *c;
	const struct audit_actor *actor;
	enum user_err err;
};

static int contain_fn(struct db *d, void *arg)
{
	struct contain_tx *x = arg;
	struct user_containment *c = x->c;
	struct db_param p[] = {DBP_BLOB(x->id.b, 16)};
	struct db_rows rows;
	char org[UUID_STR_LEN + 1] = "";
	struct json_object *payload;
	bool disabled, archived;

	x->err = USER_OK; /* db_tx may run this again after a deadlock */
	c->changed = false;
	if (db_query(d, x->a,
	        "SELECT disabled_at IS NOT NULL, archived_at IS NOT NULL, org_id FROM users"
	        " WHERE id = ? FOR UPDATE",
	        p, 1, &rows) != 0)
		goto fail;
	if (rows.nrows != 1) {
		x->err = USER_NOT_FOUND;
		return 1;
	}
	disabled = strcmp(rows.val[0][0], "1") == 0;
	archived = strcmp(rows.val[0][1], "1") == 0;
	if (rows.val[0][2])
		dbv_uuid(rows.val[0][2], rows.len[0][2], org);
	/* Deleting or archiving ended the account for good. */
	if (!c->disable && archived) {
		x->err = USER_ARCHIVED;
		return 1;
	}
	if (disabled == c->disable)
		return 0;
	if (c->disable
	        ? user_lock_out(d, x->id.b) != 0
	        : db_exec(d, "UPDATE users SET disabled_at = NULL WHERE id = ?", p, 1, NULL) != 0)
		goto fail;
	payload = payload_with_reason(c->reason);
	json_object_object_add(payload, "disabled", json_object_new_boolean(c->disable));
	if (c->disable)
		json_object_object_add(payload, "credentialsRevoked", json_object_new_boolean(1));
	if (audit_append(d, x->actor, c->disable ? AA_USER_DISABLED : AA_USER_ENABLED,
	        org[0] ? org : NULL, "user", x->id_s, payload) != 0)
		goto fail;
	c->changed = true;
	return 0;
fail:
	x->err = USER_DB_ERROR;
	return -1;
}

enum user_err user_contain(struct db *d, struct arena *a, const char *id,
    struct user_containment *c, const struct audit_actor *actor)
{
	struct contain_tx x = {.a = a, .c = c, .actor = actor};
	struct opsd_uuid me;

	if (!uuid_parse(id, &x.id))
		return USER_NOT_FOUND;
	uuid_format(&x.id, x.id_s);
	if (actor->user_id && uuid_parse(actor->user_id, &me) && memcmp(me.b, x.id.b, 16) == 0)
		return USER_SELF;
	if (db_tx(d, contain_fn, &x) < 0)
		return USER_DB_ERROR;
	return x.err;
}

/* ---- API tokens ------------------------------------------------------------ */

/* Each selector: its name (the answer's and the event's scope), how to find
 * the owner and org of the id it names (none for all), the event's target
 * type, and the statement of core/auth.c that revokes a whole scope (one
 * token has its own). */
static const struct {
	const char *name;
	const char *subject_sql;
	const char *target_type;
	enum flush_scope scope;
} selectors[] = {
    [TOKENS_OF_USER] = {"user", "SELECT id, org_id FROM users WHERE id = ?", "user", FLUSH_USER},
    [TOKENS_ALL] = {"all", NULL, NULL, FLUSH_ALL},
    [TOKENS_ONE] = {"token",
        "SELECT u.id, u.org_id FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?",
        "api_token", FLUSH_USER},
    [TOKENS_OF_ORG] = {"org", "SELECT NULL, id FROM orgs WHERE id = ?", "org", FLUSH_ORG},
};

const char *token_selector_name(enum token_selector s)
{
	return (size_t)s < countof(selectors) ? selectors[s].name : "?";
}

struct revoke_tx {
	struct arena *a;
	const struct audit_actor *actor;
	struct token_revocation *t;
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1];
	bool found;
};

/* The owner (TOKENS_ONE) and org of the selected user, token or org: the
 * org the event is about. x->found false when there is none. */
static int revoke_subject(struct db *d, struct revoke_tx *x, char owner[UUID_STR_LEN + 1],
    char org[UUID_STR_LEN + 1])
{
	const char *sql = selectors[x->t->sel].subject_sql;
	struct db_param p[] = {DBP_BLOB(x->id.b, 16)};
	struct db_rows rows;

	owner[0] = org[0] = '\0';
	x->found = sql == NULL;
	if (x->found)
		return 0;
	if (db_query(d, x->a, sql, p, 1, &rows) != 0)
		return -1;
	x->found = rows.nrows == 1;
	if (!x->found)
		return 1;
	if (rows.val[0][0])
		dbv_uuid(rows.val[0][0], rows.len[0][0], owner);
	if (rows.val[0][1])
		dbv_uuid(rows.val[0][1], rows.len[0][1], org);
	return 0;
}

static int revoke_fn(struct db *d, void *arg)
{
	struct revoke_tx *x = arg;
	struct token_revocation *t = x->t;
	char owner[UUID_STR_LEN + 1], org[UUID_STR_LEN + 1];
	struct db_param p[] = {DBP_BLOB(x->id.b, 16)};
	struct json_object *payload;
	int rc;

	t->revoked = 0; /* db_tx may run this again after a deadlock */
	if ((rc = revoke_subject(d, x, owner, org)) != 0)
		return rc;
	if (t->sel == TOKENS_ONE)
		pcache_invalidate(PCACHE_INV_USER, owner);
	if (t->sel == TOKENS_ONE
	        ? db_exec(d,
	              "UPDATE api_tokens SET revoked_at = NOW(3) WHERE id = ? AND revoked_at IS NULL",
	              p, 1, &t->revoked) != 0
	        : tokens_revoke_scope(d, selectors[t->sel].scope, x->id_s, &t->revoked) != 0)
		return -1;
	payload = payload_with_reason(t->reason);
	json_object_object_add(payload, "scope",
	    json_object_new_string(token_selector_name(t->sel)));
	json_object_object_add(payload, "revoked", json_object_new_int64((int64_t)t->revoked));
	if (t->sel == TOKENS_ONE)
		json_object_object_add(payload, "userId", json_object_new_string(owner));
	return audit_append(d, x->actor, AA_SECURITY_TOKENS_REVOKED, org[0] ? org : NULL,
	    selectors[t->sel].target_type, t->sel == TOKENS_ALL ? NULL : x->id_s, payload);
}

enum token_rc tokens_revoke_audited(struct db *d, struct arena *a, const struct audit_actor *actor,
    struct token_revocation *t)
{
	struct revoke_tx x = {.a = a, .actor = actor, .t = t};

	t->revoked = 0;
	if ((size_t)t->sel >= countof(selectors))
		return TOKEN_NOT_FOUND;
	if (t->sel != TOKENS_ALL) {
		if (!t->id || !uuid_parse(t->id, &x.id))
			return TOKEN_NOT_FOUND;
		uuid_format(&x.id, x.id_s);
	}
	if (db_tx(d, revoke_fn, &x) < 0)
		return TOKEN_DB_ERROR;
	return x.found ? TOKEN_REVOKED : TOKEN_NOT_FOUND;
}

/* ---- the live tokens ------------------------------------------------------- */

/* A uuid filter: its 16 bytes, NULL (any) when absent; false when malformed. */
static bool uuid_filter(const char *text, struct opsd_uuid *u, struct db_param *p)
{
	*p = DBP_NULL;
	if (!text)
		return true;
	if (!uuid_parse(text, u))
		return false;
	*p = DBP_BLOB(u->b, 16);
	return true;
}

int tokens_live_list(struct db *d, struct arena *a, const struct token_filter *f,
    struct db_rows *rows)
{
	struct opsd_uuid user, org, before;
	struct db_param pu, po, pb;

	if (!uuid_filter(f->user_id, &user, &pu) || !uuid_filter(f->org_id, &org, &po) ||
	    !uuid_filter(f->before_id, &before, &pb)) {
		memset(rows, 0, sizeof(*rows));
		return 0;
	}
	{
		struct db_param p[] = {pu, pu, po, po, DBP_I64(f->no_expiry), pb, pb,
		    DBP_I64(f->limit)};

		return db_query(d, a,
		    "SELECT t.id, t.name, t.scopes, t.expires_at, t.created_at, t.last_used_at,"
		    " t.revoked_at, t.user_id, u.org_id FROM api_tokens t JOIN users u ON u.id = t.user_id"
		    " WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > NOW(3))"
		    " AND (? IS NULL OR t.user_id = ?) AND (? IS NULL OR u.org_id = ?)"
		    " AND (? = 0 OR t.expires_at IS NULL) AND (? IS NULL OR t.id < ?)"
		    " ORDER BY t.id DESC LIMIT ?",
		    p, countof(p), rows);
	}
}
