/* The route table: every endpoint of opsd, one line each (README, "API").
 * The request pipeline (api/pipeline.c), /metrics, `opsctl routes`, the API
 * document (api/openapi.c, GET /openapi.json) and the route x role test
 * (t/61-authz-matrix.t) all read it. */
#include "api/routes.h"

#include "api/api.h"
#include "api/specs.h"
#include "core/entity.h"
#include "lib/util.h"

#define SYS (RF_PUBLIC | RF_LEGAL_EXEMPT)
#define AUTH RF_LEGAL_EXEMPT /* signed-in, but reachable while documents are pending */
#define JSON RF_JSON_BODY
#define JSON_OPT (RF_JSON_BODY | RF_JSON_OPTIONAL) /* a JSON body, or none at all */
#define MONITOR (RF_MONITOR | RF_LEGAL_EXEMPT)
/* containment and the audit log: reachable while documents are pending, for
 * whoever holds the route's permission (router.h) */
#define CONTAIN RF_LEGAL_CONTAIN
#define TEST (SYS | RF_TEST_ONLY)

/* What the API document says of a route, after its metric name:
 * RESP(status, schema)  its success status and body (a schema of
 *                       api/openapi_schemas.c; NULL: no body)
 * BODY(spec)            the field table its handler validates the body with
 * QUERY(spec)           the query parameters it reads (api/specs.h)
 * ERRORS("404 409")     statuses its handler refuses with beyond those the
 *                       pipeline gives every route of its kind (api/openapi.c)
 * ETAG                  it answers 304 to a matching If-None-Match
 * ALSO(status, schema)  a second success answer (a dry run's report) */
#define RESP(st, sch) .status = (st), .schema = (sch)
#define BODY(spec) .body = (spec)
#define QUERY(spec) .query = (spec)
#define ERRORS(list) .errors = (list)
#define ETAG .etag = true
#define ALSO(st, sch) .alt_status = (st), .alt_schema = (sch)

/* clang-format off */
#define ROUTE(method, pattern, handler, perm, flags, name, ...) \
	{method, pattern, handler, perm, flags, name, NULL, __VA_ARGS__}
/* Tenant records: one block per entity served under /orgs/:orgId/. Their
 * bodies come from the entity; "@record" and "@page" are its schemas. */
#define TENANT(e, kind) \
	{"GET",    "/orgs/:orgId/" e,          api_tenant_list,   P_TENANT_READ,  0,    e "_list",   &entities[kind], QUERY(page_query), RESP(200, "@page")}, \
	{"POST",   "/orgs/:orgId/" e,          api_tenant_create, P_TENANT_WRITE, JSON, e "_create", &entities[kind], RESP(201, "@record")}, \
	{"GET",    "/orgs/:orgId/" e "/:id",   api_tenant_get,    P_TENANT_READ,  0,    e "_get",    &entities[kind], RESP(200, "@record")}, \
	{"PATCH",  "/orgs/:orgId/" e "/:id",   api_tenant_patch,  P_TENANT_WRITE, JSON, e "_patch",  &entities[kind], RESP(200, "@record"), ERRORS("409")}, \
	{"DELETE", "/orgs/:orgId/" e "/:id",   api_tenant_delete, P_TENANT_WRITE, 0,    e "_delete", &entities[kind], RESP(200, "Deleted"), ERRORS("409")}

/* method, pattern, handler, permission (P_NONE: any signed-in caller, or
 * anyone with RF_PUBLIC), flags, metric name, then what the document says;
 * tenant record routes also carry their entity. */
const struct route routes[] = {
	ROUTE("GET",    "/healthz",                        api_healthz,            P_NONE,                    SYS | RF_NO_DB | RF_MONITOR, "healthz", RESP(200, "Health")),
	ROUTE("GET",    "/readyz",                         api_readyz,             P_NONE,                    SYS | RF_MONITOR,            "readyz", RESP(200, "Ready")),
	/* Loopback without credentials, or anyone holding system.status. */
	ROUTE("GET",    "/status",                         api_status,             P_SYSTEM_STATUS,           MONITOR | RF_LOOPBACK,       "status", QUERY(status_query), RESP(200, "PoolStatus")),
	ROUTE("GET",    "/metrics",                        api_metrics,            P_SYSTEM_STATUS,           MONITOR | RF_LOOPBACK,       "metrics", RESP(200, "MetricsText")),
	ROUTE("GET",    "/openapi.json",                   api_openapi,            P_NONE,                    SYS | RF_NO_DB,              "openapi", RESP(200, "OpenApiDocument"), ETAG),

	ROUTE("POST",   "/auth/login",                     api_auth_login,         P_NONE,                    SYS | JSON,                  "auth_login", BODY(auth_login_spec), RESP(200, "Login"), ERRORS("401")),
	ROUTE("POST",   "/auth/logout",                    api_auth_logout,        P_NONE,                    AUTH,                        "auth_logout", RESP(200, "LoggedOut")),
	ROUTE("GET",    "/auth/me",                        api_auth_me,            P_NONE,                    AUTH,                        "auth_me", RESP(200, "Me")),
	ROUTE("POST",   "/auth/password",                  api_auth_password,      P_NONE,                    AUTH | JSON,                 "auth_password", BODY(auth_password_spec), RESP(200, "CsrfToken")),
	ROUTE("POST",   "/auth/tokens",                    api_tokens_create,      P_NONE,                    AUTH | JSON,                 "tokens_create", BODY(token_create_spec), RESP(201, "NewToken")),
	ROUTE("GET",    "/auth/tokens",                    api_tokens_list,        P_NONE,                    AUTH,                        "tokens_list", QUERY(page_query), RESP(200, "TokenPage")),
	ROUTE("DELETE", "/auth/tokens/:id",                api_tokens_delete,      P_NONE,                    AUTH,                        "tokens_delete", RESP(200, "TokenRevoked")),

	/* Runbook 1: the legal routes stay reachable while documents are pending. */
	ROUTE("POST",   "/legal",                          api_legal_publish,      P_LEGAL_PUBLISH,           AUTH | JSON,                 "legal_publish", BODY(legal_publish_spec), RESP(201, "LegalPublished"), ERRORS("409")),
	ROUTE("GET",    "/legal",                          api_legal_list,         P_NONE,                    SYS,                         "legal_list", RESP(200, "LegalTypePage")),
	ROUTE("GET",    "/legal/:type",                    api_legal_get,          P_NONE,                    SYS,                         "legal_get", RESP(200, "LegalDocument"), ETAG),
	ROUTE("GET",    "/legal/:type/versions",           api_legal_versions,     P_NONE,                    SYS,                         "legal_versions", QUERY(page_query), RESP(200, "LegalVersionPage")),
	ROUTE("GET",    "/legal/:type/versions/:version",  api_legal_version,      P_NONE,                    SYS,                         "legal_version", RESP(200, "LegalDocument")),
	ROUTE("GET",    "/legal/:type/diff",               api_legal_diff,         P_NONE,                    SYS,                         "legal_diff", QUERY(legal_diff_query), RESP(200, "LegalDiff")),
	ROUTE("GET",    "/legal/acceptance/status",        api_legal_status,       P_NONE,                    AUTH,                        "legal_status", RESP(200, "LegalStatus")),
	ROUTE("POST",   "/legal/acceptance",               api_legal_accept,       P_NONE,                    AUTH | JSON,                 "legal_accept", BODY(legal_accept_spec), RESP(200, "LegalAcceptance"), ERRORS("404 409")),
	ROUTE("GET",    "/legal/acceptance/report",        api_legal_report,       P_LEGAL_REPORT,            AUTH,                        "legal_report", QUERY(legal_report_query), RESP(200, "LegalReport"), ERRORS("404")),

	ROUTE("POST",   "/users",                          api_users_create,       P_USERS_MANAGE,            JSON,                        "users_create", BODY(user_create_spec), RESP(201, "User"), ERRORS("409")),
	ROUTE("GET",    "/users",                          api_users_list,         P_USERS_READ,              0,                           "users_list", QUERY(page_query), RESP(200, "UserPage")),
	ROUTE("GET",    "/users/:id",                      api_users_get,          P_USERS_READ,              0,                           "users_get", RESP(200, "User")),
	ROUTE("PATCH",  "/users/:id",                      api_users_patch,        P_USERS_MANAGE,            JSON,                        "users_patch", BODY(user_patch_spec), RESP(200, "User"), ERRORS("409")),
	ROUTE("POST",   "/orgs",                           api_orgs_create,        P_ORGS_MANAGE,             JSON,                        "orgs_create", BODY(org_create_spec), RESP(201, "Org"), ERRORS("409")),
	ROUTE("GET",    "/orgs",                           api_orgs_list,          P_ORGS_READ,               0,                           "orgs_list", QUERY(page_query), RESP(200, "OrgPage")),
	ROUTE("GET",    "/orgs/:id",                       api_orgs_get,           P_ORGS_READ,               0,                           "orgs_get", RESP(200, "Org")),
	/* A dedicated org's database credentials: superadmin only, as migrations. */
	ROUTE("PUT",    "/orgs/:id/dedicated-target",      api_org_dedicated_target, P_MIGRATION_RUN,         JSON,                        "org_dedicated_target", BODY(dedicated_target_spec), RESP(200, "DedicatedTarget"), ERRORS("404 409")),

	TENANT("contacts", ENTITY_CONTACTS),
	TENANT("projects", ENTITY_PROJECTS),
	TENANT("offices", ENTITY_OFFICES),
	/* An org's people: read with users.read, managed with org_users.manage. */
	ROUTE("GET",    "/orgs/:orgId/users",              api_org_users_list,     P_USERS_READ,              0,                           "org_users_list", QUERY(page_query), RESP(200, "UserPage")),
	ROUTE("POST",   "/orgs/:orgId/users",              api_org_users_create,   P_ORG_USERS_MANAGE,        JSON,                        "org_users_create", BODY(org_user_create_spec), RESP(201, "User"), ERRORS("409")),
	ROUTE("GET",    "/orgs/:orgId/users/:id",          api_org_users_get,      P_USERS_READ,              0,                           "org_users_get", RESP(200, "User")),
	ROUTE("PATCH",  "/orgs/:orgId/users/:id",          api_org_users_patch,    P_ORG_USERS_MANAGE,        JSON,                        "org_users_patch", BODY(user_patch_spec), RESP(200, "User"), ERRORS("409")),
	ROUTE("DELETE", "/orgs/:orgId/users/:id",          api_org_users_delete,   P_ORG_USERS_MANAGE,        0,                           "org_users_delete", RESP(204, NULL), ERRORS("409")),

	/* Runbook 2. */
	ROUTE("POST",   "/compliance/legal-hold",          api_compliance_hold,    P_COMPLIANCE_LEGAL_HOLD,   CONTAIN | JSON,              "compliance_hold", BODY(compliance_hold_spec), RESP(200, "BatchResult")),
	ROUTE("POST",   "/compliance/strip-pii",           api_compliance_strip,   P_COMPLIANCE_STRIP_PII,    JSON,                        "compliance_strip", BODY(compliance_strip_spec), RESP(200, "BatchResult")),
	ROUTE("GET",    "/compliance/records/:entity/:id", api_compliance_record,  P_COMPLIANCE_READ,         0,                           "compliance_record", RESP(200, "ComplianceRecord")),
	ROUTE("POST",   "/compliance/batch-archive",       api_compliance_archive, P_COMPLIANCE_ARCHIVE,      JSON,                        "compliance_archive", BODY(compliance_archive_spec), RESP(200, "ArchiveResult")),
	ROUTE("GET",    "/compliance/export",              api_compliance_export,  P_COMPLIANCE_EXPORT,       0,                           "compliance_export", QUERY(export_subject_query), RESP(200, "SubjectExport"), ERRORS("404")),
	ROUTE("GET",    "/export/:entity",                 api_export,             P_COMPLIANCE_EXPORT,       0,                           "export", QUERY(export_org_query), RESP(200, "OrgExport")),
	ROUTE("POST",   "/compliance/subjects/search",     api_subjects_search,    P_COMPLIANCE_READ,         JSON,                        "compliance_subjects_search", BODY(compliance_subjects_search_spec), RESP(200, "SubjectSearchResult")),

	/* Runbook 3: only superadmin holds migration.run. */
	ROUTE("POST",   "/migration/start",                api_migration_start,    P_MIGRATION_RUN,           JSON,                        "migration_start", BODY(migration_start_spec), RESP(202, "Migration"), ERRORS("404 409")),
	ROUTE("GET",    "/migration/status/:orgId",        api_migration_status,   P_MIGRATION_RUN,           0,                           "migration_status", RESP(200, "Migration")),
	ROUTE("POST",   "/migration/finalize",             api_migration_finalize, P_MIGRATION_RUN,           JSON,                        "migration_finalize", BODY(migration_finalize_spec), RESP(202, "Migration"), ERRORS("404 409"), ALSO(200, "MigrationRehearsal")),
	ROUTE("POST",   "/migration/abort",                api_migration_abort,    P_MIGRATION_RUN,           JSON,                        "migration_abort", BODY(migration_abort_spec), RESP(202, "Migration"), ERRORS("404 409")),
	ROUTE("GET",    "/migration/history",              api_migration_history,  P_MIGRATION_RUN,           0,                           "migration_history", QUERY(migration_history_query), RESP(200, "MigrationPage"), ERRORS("404")),
	ROUTE("GET",    "/migration",                      api_migration_list,     P_MIGRATION_RUN,           0,                           "migration_list", QUERY(migration_list_query), RESP(200, "MigrationPage")),

	/* Runbook 4: containment stays reachable while legal documents are pending. */
	ROUTE("POST",   "/security/sessions/flush",        api_sessions_flush,     P_SECURITY_SESSIONS_FLUSH, CONTAIN | JSON,              "sessions_flush", BODY(sessions_flush_spec), RESP(200, "SessionsFlushed")),
	ROUTE("POST",   "/security/blocklist",             api_blocklist_add,      P_SECURITY_BLOCKLIST,      CONTAIN | JSON,              "blocklist_add", BODY(blocklist_add_spec), RESP(201, "BlocklistEntry"), ERRORS("409")),
	ROUTE("GET",    "/security/blocklist",             api_blocklist_list,     P_SECURITY_BLOCKLIST,      CONTAIN,                     "blocklist_list", QUERY(blocklist_list_query), RESP(200, "BlocklistEntryPage")),
	ROUTE("DELETE", "/security/blocklist/:id",         api_blocklist_delete,   P_SECURITY_BLOCKLIST,      CONTAIN | JSON_OPT,          "blocklist_delete", BODY(blocklist_remove_spec), RESP(200, "BlocklistRemoved")),
	ROUTE("POST",   "/security/users/:id/disable",     api_security_user_disable, P_SECURITY_USERS_DISABLE, CONTAIN | JSON,            "security_user_disable", BODY(security_user_contain_spec), RESP(200, "ContainedUser"), ERRORS("409")),
	ROUTE("POST",   "/security/users/:id/enable",      api_security_user_enable, P_SECURITY_USERS_DISABLE, CONTAIN | JSON,             "security_user_enable", BODY(security_user_contain_spec), RESP(200, "ContainedUser"), ERRORS("409")),
	ROUTE("POST",   "/security/tokens/revoke",         api_security_tokens_revoke, P_SECURITY_TOKENS_REVOKE, CONTAIN | JSON,           "security_tokens_revoke", BODY(security_tokens_revoke_spec), RESP(200, "TokensRevoked"), ERRORS("404")),
	ROUTE("GET",    "/security/rate-limits",           api_rate_limits_get,    P_SECURITY_READ,           CONTAIN,                     "rate_limits_get", RESP(200, "RateLimits")),
	ROUTE("PUT",    "/security/rate-limits",           api_rate_limits_put,    P_SECURITY_RATE_LIMITS,    CONTAIN | JSON,              "rate_limits_put", BODY(rate_limits_put_spec), RESP(200, "RateLimitsChanged")),

	/* Runbook 5. */
	ROUTE("POST",   "/email/test",                     api_email_test,         P_EMAIL_SEND_TEST,         JSON,                        "email_test", BODY(email_test_spec), RESP(202, "EmailQueued")),
	ROUTE("GET",    "/email/outbox",                   api_email_outbox,       P_EMAIL_OUTBOX,            0,                           "email_outbox", QUERY(email_outbox_query), RESP(200, "OutboxMessagePage")),
	ROUTE("POST",   "/email/outbox/:id/retry",         api_email_retry,        P_EMAIL_OUTBOX,            0,                           "email_retry", RESP(200, "OutboxMessage"), ERRORS("409")),
	ROUTE("GET",    "/email/settings",                 api_email_settings,     P_EMAIL_OUTBOX,            0,                           "email_settings", RESP(200, "EmailSettings")),

	ROUTE("GET",    "/audit",                          api_audit_list,         P_AUDIT_READ,              CONTAIN,                     "audit_list", QUERY(audit_list_query), RESP(200, "AuditEventPage")),
	ROUTE("GET",    "/audit/verify",                   api_audit_verify,       P_AUDIT_VERIFY,            CONTAIN,                     "audit_verify", QUERY(audit_verify_query), RESP(200, "AuditVerify")),

	/* Test-only routes (OPSD_ENV=test): a stuck request for the master's
	 * timeout, a validated echo for the body pipeline, a DB round trip. */
	ROUTE("GET",    "/__test/sleep",                   api_test_sleep,         P_NONE,                    TEST | RF_NO_DB,             "test_sleep", RESP(200, NULL)),
	ROUTE("POST",   "/__test/echo",                    api_test_echo,          P_NONE,                    TEST | RF_NO_DB | JSON,      "test_echo", BODY(test_echo_spec), RESP(200, NULL)),
	ROUTE("GET",    "/__test/db",                      api_test_db,            P_NONE,                    TEST,                        "test_db", RESP(200, NULL)),
};
/* clang-format on */

const size_t nroutes = countof(routes);

const char *const *routes_names(void)
{
	static const char *names[countof(routes)];

	if (!names[0])
		for (size_t i = 0; i < countof(routes); i++)
			names[i] = routes[i].name;
	return names;
}
