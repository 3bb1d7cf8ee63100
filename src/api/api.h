/* Handlers, one file per runbook area. They see a validated struct req and
 * answer through the reply_* helpers of http/http.h. */
#ifndef OPSD_API_H
#define OPSD_API_H

#include <stdbool.h>

#include "core/users.h"
#include "http/http.h"
#include "lib/uuid.h"

/* common.c: what every handler needs besides http/http.h. */
struct audit_actor;
struct json_object;
/* The audit actor of this request: the principal (or anonymous), its
 * address and request id. */
void req_actor(const struct req *r, struct audit_actor *a);
/* true when the caller holds p; else 403 forbidden naming p in
 * details.permission (what the pipeline answers for a route's own). */
bool perm_or_reply(struct req *r, enum perm p);
/* The body's "reason" (its length is the field spec's), NULL when absent;
 * 400 on "reason" when it is blank. */
bool reason_or_reply(struct req *r, const char **reason);

/* ?limit= (1..500, default 50) and ?cursor= of a list whose cursor kind is
 * kind. Replies 400 itself on a bad value. */
struct page {
	long long limit;
	bool has_after;
	char after[64]; /* the decoded cursor value */
};
bool page_or_reply(struct req *r, const char *kind, struct page *pg);
/* {"items": items, "nextCursor": …}: rows were fetched with limit + 1; the
 * extra one (dropped by the caller) means there is a next page after
 * last_value. */
void reply_page(struct req *r, struct json_object *items, bool more, const char *kind,
    const char *last_value);
/* A list keyed by a BINARY(16) id in its first column. sql ends with
 * "(? = 0 OR id > ?) ORDER BY id LIMIT ?" (or < and DESC); extra holds the
 * parameters before those three. Replies with the page itself. */
struct db_param;
struct db_rows;
void reply_id_list(struct req *r, const char *kind, const char *sql, const struct db_param *extra,
    size_t nextra, struct json_object *(*row_json)(const struct db_rows *rows, size_t i));
/* The same on database d, with a context for the row renderer (tenant
 * records: the entity). */
void reply_id_list_in(struct req *r, struct db *d, const char *kind, const char *sql,
    const struct db_param *extra, size_t nextra,
    struct json_object *(*row_json)(const struct db_rows *rows, size_t i, const void *ctx),
    const void *ctx);
/* auth.c: 503 unavailable with Retry-After when every password check slot
 * of the host stayed busy (infra/pwgate.h). */
void reply_password_busy(struct req *r);
/* 400 validation_failed on field: "must be one of: a, b, c". */
void reply_choice_error(struct req *r, const char *field, const char *const *choices);
/* The "entity" field of a body (first in its spec): one of the entity
 * table's names, filled in by entity_spec, which returns the spec. */
#define ENTITY_FIELD                                                                               \
	{                                                                                          \
		"entity", FT_ENUM, FIELD_REQUIRED, 0, 0, NULL                                      \
	}
struct field_spec;
const struct field_spec *entity_spec(struct field_spec *spec);
/* The choices of an FT_ENUM field: its own, or an ENTITY_FIELD's (also
 * before entity_spec filled them in) from the entity table. */
const char *const *spec_choices(const struct field_spec *f);
/* Path parameter that must be a UUID; replies 404 itself otherwise. */
bool uuid_param_or_reply(struct req *r, const char *name, struct opsd_uuid *out);

/* auth.c */
void api_auth_login(struct req *r);
void api_auth_logout(struct req *r);
void api_auth_me(struct req *r);
void api_auth_password(struct req *r);
void api_tokens_create(struct req *r);
void api_tokens_list(struct req *r);
void api_tokens_delete(struct req *r);

/* users.c */
void api_users_create(struct req *r);
void api_users_list(struct req *r);
void api_users_get(struct req *r);
void api_users_patch(struct req *r);
void api_orgs_create(struct req *r);
void api_orgs_list(struct req *r);
void api_orgs_get(struct req *r);
/* Shared with org_users.c; org is NULL for /users, else the org of
 * /orgs/:orgId/users, whose users get org roles only (any other role is a
 * 400 on "roles"; one the caller does not hold, a 403). */
/* POST: validates the body, creates the user, replies 201 with it. */
void user_create_reply(struct req *r, const struct opsd_uuid *org);
/* PATCH of the user :id {roles?, disabled?, name?}; within org, only its
 * live users exist. Replies 200 with the user. */
void user_patch_reply(struct req *r, const struct opsd_uuid *org);

/* org_users.c: /orgs/:orgId/users */
void api_org_users_list(struct req *r);
void api_org_users_create(struct req *r);
void api_org_users_get(struct req *r);
void api_org_users_patch(struct req *r);
void api_org_users_delete(struct req *r);

/* security.c */
void api_sessions_flush(struct req *r);
void api_blocklist_add(struct req *r);
void api_blocklist_list(struct req *r);
void api_blocklist_delete(struct req *r);

/* rate_limits.c */
void api_rate_limits_get(struct req *r);
void api_rate_limits_put(struct req *r);

/* containment.c */
void api_security_user_disable(struct req *r);
void api_security_user_enable(struct req *r);
void api_security_tokens_revoke(struct req *r);

/* audit.c */
void api_audit_list(struct req *r);
void api_audit_verify(struct req *r);

/* legal.c */
void api_legal_publish(struct req *r);
void api_legal_list(struct req *r);
void api_legal_get(struct req *r);
void api_legal_versions(struct req *r);
void api_legal_version(struct req *r);
void api_legal_diff(struct req *r);
void api_legal_status(struct req *r);
void api_legal_accept(struct req *r);
void api_legal_report(struct req *r);

/* tenant.c */
struct entity;
struct tenant_org;
/* The org id given (path or query), visible to the caller; 404 otherwise. */
bool tenant_org_or_reply(struct req *r, const char *id, struct opsd_uuid *org,
    struct tenant_org *t);

/* The database holding one record of e (core/batch.h: record_db), or NULL
 * after replying 404 or 503. */
struct db *record_db_or_reply(struct req *r, const struct entity *e, const struct opsd_uuid *id);
void api_tenant_list(struct req *r);
void api_tenant_create(struct req *r);
void api_tenant_get(struct req *r);
void api_tenant_patch(struct req *r);
void api_tenant_delete(struct req *r);

/* compliance.c */
void api_compliance_hold(struct req *r);
void api_compliance_strip(struct req *r);
void api_compliance_record(struct req *r);
void api_compliance_archive(struct req *r);

/* subjects.c */
void api_subjects_search(struct req *r);

/* export.c */
void api_compliance_export(struct req *r);
void api_export(struct req *r);

/* migration.c */
void api_migration_start(struct req *r);
void api_migration_status(struct req *r);
void api_migration_finalize(struct req *r);
void api_migration_abort(struct req *r);
void api_migration_history(struct req *r);
void api_migration_list(struct req *r);
void api_org_dedicated_target(struct req *r);

/* email.c */
void api_email_test(struct req *r);
void api_email_outbox(struct req *r);
void api_email_retry(struct req *r);
void api_email_settings(struct req *r);

/* system.c */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_status(struct req *r);
void api_metrics(struct req *r);
void api_test_sleep(struct req *r);
void api_test_echo(struct req *r);
void api_test_db(struct req *r);

/* openapi.c: GET /openapi.json */
void api_openapi(struct req *r);

#endif
