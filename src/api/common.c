/* Small pieces every handler shares: the audit actor, list paging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/batch.h"
#include "core/entity.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/json.h"
#include "lib/util.h"

void req_actor(const struct req *r, struct audit_actor *a)
{
	a->user_id = r->who ? r->who->user_id : NULL;
	a->label = r->who ? principal_label(r->who) : "anonymous";
	a->ip = r->remote_addr;
	a->request_id = r->request_id;
}

bool perm_or_reply(struct req *r, enum perm p)
{
	struct json_object *d;

	if (r->who && perms_have(r->who->perms, p))
		return true;
	d = json_object_new_object();
	json_object_object_add(d, "permission", json_object_new_string(perm_name(p)));
	reply_error(r, E_FORBIDDEN, "you lack the permission this needs", d);
	return false;
}

bool reason_or_reply(struct req *r, const char **reason)
{
	*reason = json_get_str(r->json, "reason", NULL);
	if (!*reason || (*reason)[strspn(*reason, " \t\r\n")] != '\0')
		return true;
	reply_field_error(r, "reason", "must not be blank");
	return false;
}

const struct field_spec page_query[] = {
    PAGE_QUERY,
    {NULL, 0, 0, 0, 0, NULL},
};

bool page_or_reply(struct req *r, const char *kind, struct page *pg)
{
	const char *limit = req_query(r, "limit");
	const char *cursor = req_query(r, "cursor");
	char *end;

	memset(pg, 0, sizeof(*pg));
	pg->limit = PAGE_DEFAULT;
	if (limit) {
		pg->limit = strtoll(limit, &end, 10);
		if (*limit == '\0' || *end || pg->limit < 1 || pg->limit > PAGE_MAX) {
			reply_field_error(r, "limit", "must be an integer between 1 and 500");
			return false;
		}
	}
	if (cursor && *cursor) {
		if (!cursor_decode(kind, cursor, pg->after, sizeof(pg->after))) {
			reply_field_error(r, "cursor", "not a cursor of this list");
			return false;
		}
		pg->has_after = true;
	}
	return true;
}

void reply_page(struct req *r, struct json_object *items, bool more, const char *kind,
    const char *last_value)
{
	struct json_object *o = json_object_new_object();
	char cur[256];

	json_object_object_add(o, "items", items);
	if (more && last_value) {
		cursor_encode(kind, last_value, cur, sizeof(cur));
		json_object_object_add(o, "nextCursor", json_object_new_string(cur));
	} else {
		json_object_object_add(o, "nextCursor", NULL);
	}
	reply_json(r, 200, o);
}

bool uuid_param_or_reply(struct req *r, const char *name, struct opsd_uuid *out)
{
	const char *v = req_param(r, name);

	if (v && uuid_parse(v, out))
		return true;
	reply_error(r, E_NOT_FOUND, "no such resource", NULL);
	return false;
}

struct plain_row {
	struct json_object *(*fn)(const struct db_rows *rows, size_t i);
};

static struct json_object *plain_row(const struct db_rows *rows, size_t i, const void *ctx)
{
	return ((const struct plain_row *)ctx)->fn(rows, i);
}

void reply_id_list(struct req *r, const char *kind, const char *sql, const struct db_param *extra,
    size_t nextra, struct json_object *(*row_json)(const struct db_rows *rows, size_t i))
{
	struct plain_row pr = {row_json};

	reply_id_list_in(r, r->db, kind, sql, extra, nextra, plain_row, &pr);
}

void reply_id_list_in(struct req *r, struct db *d, const char *kind, const char *sql,
    const struct db_param *extra, size_t nextra,
    struct json_object *(*row_json)(const struct db_rows *rows, size_t i, const void *ctx),
    const void *ctx)
{
	struct db_param p[8];
	struct page pg;
	struct opsd_uuid after;
	struct db_rows rows;
	struct json_object *items;
	char last[UUID_STR_LEN + 1] = "";
	size_t n;

	if (nextra > countof(p) - 3 || !page_or_reply(r, kind, &pg))
		return;
	if (pg.has_after && !uuid_parse(pg.after, &after)) {
		reply_field_error(r, "cursor", "not a cursor of this list");
		return;
	}
	if (nextra)
		memcpy(p, extra, nextra * sizeof(*p));
	p[nextra] = DBP_I64(pg.has_after);
	p[nextra + 1] = pg.has_after ? DBP_BLOB(after.b, 16) : DBP_NULL;
	p[nextra + 2] = DBP_I64(pg.limit + 1);
	if (db_query(d, r->arena, sql, p, nextra + 3, &rows) != 0) {
		if (d == r->db)
			reply_db_error(r);
		else
			reply_unavailable(r, "the org's database is unavailable");
		return;
	}
	items = json_object_new_array();
	n = rows.nrows > (size_t)pg.limit ? (size_t)pg.limit : rows.nrows;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(items, row_json(&rows, i, ctx));
	if (n > 0)
		dbv_uuid(rows.val[n - 1][0], rows.len[n - 1][0], last);
	reply_page(r, items, rows.nrows > n, kind, last);
}

void reply_choice_error(struct req *r, const char *field, const char *const *choices)
{
	char why[200];

	json_choices_reason(choices, why, sizeof(why));
	reply_field_error(r, field, why);
}

const struct field_spec *entity_spec(struct field_spec *spec)
{
	spec[0].choices = entity_choices(ENTITIES_ALL);
	return spec;
}

const char *const *spec_choices(const struct field_spec *f)
{
	if (f->choices || f->type != FT_ENUM || strcmp(f->name, "entity") != 0)
		return f->choices;
	return entity_choices(ENTITIES_ALL);
}

struct db *record_db_or_reply(struct req *r, const struct entity *e, const struct opsd_uuid *id)
{
	struct db *d;
	enum tenant_rc rc = record_db(r->db, r->cfg, r->arena, e, id, &d);

	if (rc == TENANT_OK)
		return d;
	if (rc == TENANT_NO_ORG)
		reply_error(r, E_NOT_FOUND, "no such record", NULL);
	else
		reply_err(r, &tenant_errors[rc], NULL);
	return NULL;
}
