/* Containment (runbook 4) and rotation (runbook 7): flushing the MariaDB
 * session store, which every worker on every host sees at once, and the IP
 * blocklist, which every worker enforces before anything else. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/blocklist.h"
#include "core/blocklist_nginx.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/util.h"

static const char *const flush_scopes[] = {"all", "user", "org", NULL};

const struct field_spec sessions_flush_spec[] = {
    {"scope", FT_ENUM, FIELD_REQUIRED, 0, 0, flush_scopes},
    {"id", FT_UUID, FIELD_NULLABLE, 0, 0, NULL},
    /* also revoke the scope's API tokens, which a flush alone leaves valid */
    {"tokens", FT_BOOL, 0, 0, 0, NULL},
    /* why, for the audit event (the console asks for it) */
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_sessions_flush(struct req *r)
{
	const char *scope_name, *id;
	enum flush_scope scope = FLUSH_ALL;
	struct audit_actor a;
	struct flush_result res = {0};
	struct json_object *o;

	if (!req_validate_or_reply(r, sessions_flush_spec) || !reason_or_reply(r, &res.reason))
		return;
	scope_name = json_get_str(r->json, "scope", "all");
	id = json_get_str(r->json, "id", NULL);
	res.with_tokens = json_get_bool(r->json, "tokens", false);
	for (enum flush_scope s = FLUSH_ALL; s <= FLUSH_ORG; s++)
		if (strcmp(scope_name, flush_scope_name(s)) == 0)
			scope = s;
	if (scope != FLUSH_ALL && !id) {
		reply_field_error(r, "id", "required for scope user or org");
		return;
	}
	/* revoking tokens is its own permission (a token scoped to flushing
	 * sessions only must not reach the tokens) */
	if (res.with_tokens && !perm_or_reply(r, P_SECURITY_TOKENS_REVOKE))
		return;
	req_actor(r, &a);
	if (sessions_flush_audited(r->db, &a, scope, id, &res) != 0) {
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "scope", json_object_new_string(scope_name));
	json_object_object_add(o, "flushed", json_object_new_int64((int64_t)res.sessions));
	if (res.with_tokens)
		json_object_object_add(o, "tokensRevoked",
		    json_object_new_int64((int64_t)res.tokens));
	reply_json(r, 200, o);
}

/* ---- blocklist (runbook 4 step 2) -------------------------------------- */

const struct field_spec blocklist_add_spec[] = {
    {"cidr", FT_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"reason", FT_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"expiresAt", FT_TIME, FIELD_NULLABLE, 0, 0, NULL},
    {"force", FT_BOOL, FIELD_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The body's cidr, parsed, or a 400 naming it (with the network to use when
 * host bits are set). */
static bool cidr_or_reply(struct req *r, struct cidr *c)
{
	enum cidr_err e = cidr_parse(json_get_str(r->json, "cidr", ""), c);
	char why[200], net[CIDR_STR_LEN];

	if (e == CIDR_OK)
		return true;
	if (e == CIDR_HOST_BITS) {
		cidr_format(c, net);
		snprintf(why, sizeof(why), "%s: the network is %s (a single host has no prefix)",
		    cidr_err_text(e), net);
	} else {
		snprintf(why, sizeof(why), "%s", cidr_err_text(e));
	}
	reply_field_error(r, "cidr", why);
	return false;
}

/* expiresAt in the future (0 when absent), or a 400. */
static bool expiry_or_reply(struct req *r, int64_t *ms)
{
	const char *s = json_get_str(r->json, "expiresAt", NULL);

	*ms = 0;
	if (!s)
		return true;
	if (!parse_rfc3339(s, ms) || *ms <= now_ms()) {
		reply_field_error(r, "expiresAt", "must be a time in the future");
		return false;
	}
	return true;
}

/* An operator who blocks the range they are calling from locks themselves
 * out of the API (opsctl blocklist remove still works): only on purpose. */
static bool not_self_or_reply(struct req *r, const struct cidr *c)
{
	uint8_t addr[16];
	char why[200];

	if (json_get_bool(r->json, "force", false) || !addr_parse16(r->remote_addr, addr) ||
	    !cidr_contains(c, addr))
		return true;
	snprintf(why, sizeof(why),
	    "contains your own address %s; send \"force\": true to block it anyway",
	    r->remote_addr);
	reply_field_error(r, "cidr", why);
	return false;
}

static void reply_blocklist_conflict(struct req *r, const struct cidr *c)
{
	char cidr_s[CIDR_STR_LEN];
	struct db_rows rows;
	struct db_param p[1];
	struct json_object *d = json_object_new_object();

	cidr_format(c, cidr_s);
	p[0] = DBP_STR(cidr_s);
	json_object_object_add(d, "cidr", json_object_new_string(cidr_s));
	if (db_query(r->db, r->arena, "SELECT id FROM ip_blocklist WHERE cidr = ?", p, 1, &rows) ==
	        0 &&
	    rows.nrows == 1)
		json_object_object_add(d, "id", dbv_json_uuid(&rows, 0, 0));
	reply_error(r, E_CONFLICT, blocklist_errors[BL_DUPLICATE].message, d);
}

void api_blocklist_add(struct req *r)
{
	struct cidr c;
	int64_t expires_ms;
	const char *reason;
	struct audit_actor a;
	char id[UUID_STR_LEN + 1];
	struct opsd_uuid u;
	struct db_rows rows;
	enum blocklist_err e;

	if (!req_validate_or_reply(r, blocklist_add_spec) || !cidr_or_reply(r, &c) ||
	    !expiry_or_reply(r, &expires_ms) || !reason_or_reply(r, &reason) ||
	    !not_self_or_reply(r, &c))
		return;
	req_actor(r, &a);
	e = blocklist_add(r->db, &a, &c, reason, expires_ms, id);
	if (e == BL_DUPLICATE) {
		reply_blocklist_conflict(r, &c);
		return;
	}
	if (e != BL_OK) {
		reply_err(r, &blocklist_errors[e], NULL);
		return;
	}
	if (!uuid_parse(id, &u) || blocklist_fetch(r->db, r->arena, &u, &rows) != 0 ||
	    rows.nrows != 1) {
		reply_db_error(r);
		return;
	}
	reply_json(r, 201, blocklist_row_json(&rows, 0));
}

/* ?format=json (the default) pages the entries; the other formats give the whole active list
 * in a firewall's syntax (core/blocklist_nginx.h), for sysadmins who block upstream. */
const struct field_spec blocklist_list_query[] = {
    PAGE_QUERY,
    {"format", FT_ENUM, 0, 0, 0, blocklist_format_names},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The format asked for, or a 400 naming the choices (or refusing paging with a text format). */
static bool blocklist_format_or_reply(struct req *r, enum blocklist_format *f)
{
	const char *s = req_query(r, "format");

	*f = BF_JSON;
	if (!s)
		return true;
	for (*f = BF_JSON; *f < BF__MAX && strcmp(s, blocklist_format_names[*f]) != 0; (*f)++)
		;
	if (*f == BF__MAX) {
		reply_choice_error(r, "format", blocklist_format_names);
		return false;
	}
	if (*f != BF_JSON && (req_query(r, "limit") || req_query(r, "cursor"))) {
		reply_field_error(r, req_query(r, "limit") ? "limit" : "cursor",
		    "only with format=json: the other formats hold the whole list");
		return false;
	}
	return true;
}

static void reply_blocklist_text(struct req *r, enum blocklist_format f)
{
	struct db_rows rows;
	const char **cidrs;
	char now[32];
	struct buf b;

	if (db_query(r->db, r->arena,
	        "SELECT cidr FROM ip_blocklist WHERE " BLOCKLIST_ACTIVE " ORDER BY cidr", NULL, 0,
	        &rows) != 0) {
		reply_db_error(r);
		return;
	}
	if (!(cidrs = arena_calloc(r->arena, rows.nrows ? rows.nrows : 1, sizeof(*cidrs)))) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return;
	}
	for (size_t i = 0; i < rows.nrows; i++)
		cidrs[i] = rows.val[i][0] ? rows.val[i][0] : "";
	format_rfc3339(now_ms(), now);
	buf_init(&b);
	blocklist_firewall_render(f, cidrs, rows.nrows, now, &b);
	if (buf_failed(&b))
		reply_error(r, E_INTERNAL, "out of memory", NULL);
	else
		reply_raw(r, 200, "text/plain; charset=utf-8", b.data ? b.data : "", b.len);
	buf_free(&b);
}

void api_blocklist_list(struct req *r)
{
	enum blocklist_format f;

	if (!blocklist_format_or_reply(r, &f))
		return;
	if (f != BF_JSON) {
		reply_blocklist_text(r, f);
		return;
	}
	reply_id_list(r, "blocklist",
	    "SELECT " BLOCKLIST_COLUMNS " FROM ip_blocklist WHERE " BLOCKLIST_ACTIVE
	    " AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?",
	    NULL, 0, blocklist_row_json);
}

/* DELETE takes an optional body: {"reason"} for the audit event. */
const struct field_spec blocklist_remove_spec[] = {
    {"reason", FT_STRING, FIELD_NULLABLE, 1, 500, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_blocklist_delete(struct req *r)
{
	struct opsd_uuid id;
	struct audit_actor a;
	struct db_rows rows;
	enum blocklist_err e;
	struct json_object *o;
	const char *reason = NULL;

	if (r->json &&
	    (!req_validate_or_reply(r, blocklist_remove_spec) || !reason_or_reply(r, &reason)))
		return;
	if (!uuid_param_or_reply(r, "id", &id))
		return;
	if (blocklist_fetch(r->db, r->arena, &id, &rows) != 0) {
		reply_db_error(r);
		return;
	}
	req_actor(r, &a);
	e = rows.nrows == 1 ? blocklist_remove(r->db, &a, &id, reason) : BL_NOT_FOUND;
	if (e != BL_OK) {
		reply_err(r, &blocklist_errors[e], NULL);
		return;
	}
	o = blocklist_row_json(&rows, 0);
	json_object_object_add(o, "removed", json_object_new_boolean(1));
	reply_json(r, 200, o);
}
