/* The route table: every endpoint of opsd, one line each (README, "API").
 * The request pipeline (api/pipeline.c), /metrics, `opsctl routes` and the
 * route x role test (t/61-authz-matrix.t) all read it. */
#include "api/routes.h"

#include "api/api.h"
#include "core/entity.h"
#include "lib/util.h"

#define SYS (RF_PUBLIC | RF_LEGAL_EXEMPT)
#define AUTH RF_LEGAL_EXEMPT /* signed-in, but reachable while documents are pending */
#define JSON RF_JSON_BODY
#define MONITOR (RF_MONITOR | RF_LEGAL_EXEMPT)
/* containment and the audit log: reachable while documents are pending, for
 * whoever holds the route's permission (router.h) */
#define CONTAIN RF_LEGAL_CONTAIN
#define TEST (SYS | RF_TEST_ONLY)

/* clang-format off */
#define ROUTE(method, pattern, handler, perm, flags, name) \
	{method, pattern, handler, perm, flags, name, NULL}
/* Tenant records: one block per entity served under /orgs/:orgId/. */
#define TENANT(e, kind) \
	{"GET",    "/orgs/:orgId/" e,          api_tenant_list,   P_TENANT_READ,  0,    e "_list",   &entities[kind]}, \
	{"POST",   "/orgs/:orgId/" e,          api_tenant_create, P_TENANT_WRITE, JSON, e "_create", &entities[kind]}, \
	{"GET",    "/orgs/:orgId/" e "/:id",   api_tenant_get,    P_TENANT_READ,  0,    e "_get",    &entities[kind]}, \
	{"PATCH",  "/orgs/:orgId/" e "/:id",   api_tenant_patch,  P_TENANT_WRITE, JSON, e "_patch",  &entities[kind]}, \
	{"DELETE", "/orgs/:orgId/" e "/:id",   api_tenant_delete, P_TENANT_WRITE, 0,    e "_delete", &entities[kind]}

/* method, pattern, handler, permission (P_NONE: any signed-in caller, or
 * anyone with RF_PUBLIC), flags, metric name; tenant record routes also
 * carry their entity. */
const struct route routes[] = {
	ROUTE("GET",    "/healthz",                        api_healthz,            P_NONE,                    SYS | RF_NO_DB | RF_MONITOR, "healthz"),
	ROUTE("GET",    "/readyz",                         api_readyz,             P_NONE,                    SYS | RF_MONITOR,            "readyz"),
	/* Loopback without credentials, or anyone holding system.status. */
	ROUTE("GET",    "/status",                         api_status,             P_SYSTEM_STATUS,           MONITOR | RF_LOOPBACK,       "status"),
	ROUTE("GET",    "/metrics",                        api_metrics,            P_SYSTEM_STATUS,           MONITOR | RF_LOOPBACK,       "metrics"),

	ROUTE("POST",   "/auth/login",                     api_auth_login,         P_NONE,                    SYS | JSON,                  "auth_login"),
	ROUTE("POST",   "/auth/logout",                    api_auth_logout,        P_NONE,                    AUTH,                        "auth_logout"),
	ROUTE("GET",    "/auth/me",                        api_auth_me,            P_NONE,                    AUTH,                        "auth_me"),
	ROUTE("POST",   "/auth/password",                  api_auth_password,      P_NONE,                    AUTH | JSON,                 "auth_password"),
	ROUTE("POST",   "/auth/tokens",                    api_tokens_create,      P_NONE,                    AUTH | JSON,                 "tokens_create"),
	ROUTE("GET",    "/auth/tokens",                    api_tokens_list,        P_NONE,                    AUTH,                        "tokens_list"),
	ROUTE("DELETE", "/auth/tokens/:id",                api_tokens_delete,      P_NONE,                    AUTH,                        "tokens_delete"),

	/* Runbook 1: the legal routes stay reachable while documents are pending. */
	ROUTE("POST",   "/legal",                          api_legal_publish,      P_LEGAL_PUBLISH,           AUTH | JSON,                 "legal_publish"),
	ROUTE("GET",    "/legal",                          api_legal_list,         P_NONE,                    SYS,                         "legal_list"),
	ROUTE("GET",    "/legal/:type",                    api_legal_get,          P_NONE,                    SYS,                         "legal_get"),
	ROUTE("GET",    "/legal/:type/versions",           api_legal_versions,     P_NONE,                    SYS,                         "legal_versions"),
	ROUTE("GET",    "/legal/:type/versions/:version",  api_legal_version,      P_NONE,                    SYS,                         "legal_version"),
	ROUTE("GET",    "/legal/:type/diff",               api_legal_diff,         P_NONE,                    SYS,                         "legal_diff"),
	ROUTE("GET",    "/legal/acceptance/status",        api_legal_status,       P_NONE,                    AUTH,                        "legal_status"),
	ROUTE("POST",   "/legal/acceptance",               api_legal_accept,       P_NONE,                    AUTH | JSON,                 "legal_accept"),
	ROUTE("GET",    "/legal/acceptance/report",        api_legal_report,       P_LEGAL_REPORT,            AUTH,                        "legal_report"),

	ROUTE("POST",   "/users",                          api_users_create,       P_USERS_MANAGE,            JSON,                        "users_create"),
	ROUTE("GET",    "/users",                          api_users_list,         P_USERS_READ,              0,                           "users_list"),
	ROUTE("GET",    "/users/:id",                      api_users_get,          P_USERS_READ,              0,                           "users_get"),
	ROUTE("PATCH",  "/users/:id",                      api_users_patch,        P_USERS_MANAGE,            JSON,                        "users_patch"),
	ROUTE("POST",   "/orgs",                           api_orgs_create,        P_ORGS_MANAGE,             JSON,                        "orgs_create"),
	ROUTE("GET",    "/orgs",                           api_orgs_list,          P_ORGS_READ,               0,                           "orgs_list"),
	ROUTE("GET",    "/orgs/:id",                       api_orgs_get,           P_ORGS_READ,               0,                           "orgs_get"),

	TENANT("contacts", ENTITY_CONTACTS),
	TENANT("projects", ENTITY_PROJECTS),
	TENANT("offices", ENTITY_OFFICES),
	/* An org's people: read with users.read, managed with org_users.manage. */
	ROUTE("GET",    "/orgs/:orgId/users",              api_org_users_list,     P_USERS_READ,              0,                           "org_users_list"),
	ROUTE("POST",   "/orgs/:orgId/users",              api_org_users_create,   P_ORG_USERS_MANAGE,        JSON,                        "org_users_create"),
	ROUTE("GET",    "/orgs/:orgId/users/:id",          api_org_users_get,      P_USERS_READ,              0,                           "org_users_get"),
	ROUTE("PATCH",  "/orgs/:orgId/users/:id",          api_org_users_patch,    P_ORG_USERS_MANAGE,        JSON,                        "org_users_patch"),
	ROUTE("DELETE", "/orgs/:orgId/users/:id",          api_org_users_delete,   P_ORG_USERS_MANAGE,        0,                           "org_users_delete"),

	/* Runbook 2. */
	ROUTE("POST",   "/compliance/legal-hold",          api_compliance_hold,    P_COMPLIANCE_LEGAL_HOLD,   CONTAIN | JSON,              "compliance_hold"),
	ROUTE("POST",   "/compliance/strip-pii",           api_compliance_strip,   P_COMPLIANCE_STRIP_PII,    JSON,                        "compliance_strip"),
	ROUTE("GET",    "/compliance/records/:entity/:id", api_compliance_record,  P_COMPLIANCE_READ,         0,                           "compliance_record"),
	ROUTE("POST",   "/compliance/batch-archive",       api_compliance_archive, P_COMPLIANCE_ARCHIVE,      JSON,                        "compliance_archive"),
	ROUTE("GET",    "/compliance/export",              api_compliance_export,  P_COMPLIANCE_EXPORT,       0,                           "compliance_export"),
	ROUTE("GET",    "/export/:entity",                 api_export,             P_COMPLIANCE_EXPORT,       0,                           "export"),
	ROUTE("POST",   "/compliance/subjects/search",     api_subjects_search,    P_COMPLIANCE_READ,         JSON,                        "compliance_subjects_search"),

	/* Runbook 3: only superadmin holds migration.run. */
	ROUTE("POST",   "/migration/start",                api_migration_start,    P_MIGRATION_RUN,           JSON,                        "migration_start"),
	ROUTE("GET",    "/migration/status/:orgId",        api_migration_status,   P_MIGRATION_RUN,           0,                           "migration_status"),
	ROUTE("POST",   "/migration/finalize",             api_migration_finalize, P_MIGRATION_RUN,           JSON,                        "migration_finalize"),
	ROUTE("POST",   "/migration/abort",                api_migration_abort,    P_MIGRATION_RUN,           JSON,                        "migration_abort"),
	ROUTE("GET",    "/migration/history",              api_migration_history,  P_MIGRATION_RUN,           0,                           "migration_history"),
	ROUTE("GET",    "/migration",                      api_migration_list,     P_MIGRATION_RUN,           0,                           "migration_list"),

	/* Runbook 4: containment stays reachable while legal documents are pending. */
	ROUTE("POST",   "/security/sessions/flush",        api_sessions_flush,     P_SECURITY_SESSIONS_FLUSH, CONTAIN | JSON,              "sessions_flush"),
	ROUTE("POST",   "/security/blocklist",             api_blocklist_add,      P_SECURITY_BLOCKLIST,      CONTAIN | JSON,              "blocklist_add"),
	ROUTE("GET",    "/security/blocklist",             api_blocklist_list,     P_SECURITY_BLOCKLIST,      CONTAIN,                     "blocklist_list"),
	ROUTE("DELETE", "/security/blocklist/:id",         api_blocklist_delete,   P_SECURITY_BLOCKLIST,      CONTAIN,                     "blocklist_delete"),
	ROUTE("POST",   "/security/users/:id/disable",     api_security_user_disable, P_SECURITY_USERS_DISABLE, CONTAIN | JSON,            "security_user_disable"),
	ROUTE("POST",   "/security/users/:id/enable",      api_security_user_enable, P_SECURITY_USERS_DISABLE, CONTAIN | JSON,             "security_user_enable"),
	ROUTE("POST",   "/security/tokens/revoke",         api_security_tokens_revoke, P_SECURITY_TOKENS_REVOKE, CONTAIN | JSON,           "security_tokens_revoke"),

	/* Runbook 5. */
	ROUTE("POST",   "/email/test",                     api_email_test,         P_EMAIL_SEND_TEST,         JSON,                        "email_test"),
	ROUTE("GET",    "/email/outbox",                   api_email_outbox,       P_EMAIL_OUTBOX,            0,                           "email_outbox"),
	ROUTE("POST",   "/email/outbox/:id/retry",         api_email_retry,        P_EMAIL_OUTBOX,            0,                           "email_retry"),
	ROUTE("GET",    "/email/settings",                 api_email_settings,     P_EMAIL_OUTBOX,            0,                           "email_settings"),

	ROUTE("GET",    "/audit",                          api_audit_list,         P_AUDIT_READ,              CONTAIN,                     "audit_list"),
	ROUTE("GET",    "/audit/verify",                   api_audit_verify,       P_AUDIT_VERIFY,            CONTAIN,                     "audit_verify"),

	/* Test-only routes (OPSD_ENV=test): a stuck request for the master's
	 * timeout, a validated echo for the body pipeline, a DB round trip. */
	ROUTE("GET",    "/__test/sleep",                   api_test_sleep,         P_NONE,                    TEST | RF_NO_DB,             "test_sleep"),
	ROUTE("POST",   "/__test/echo",                    api_test_echo,          P_NONE,                    TEST | RF_NO_DB | JSON,      "test_echo"),
	ROUTE("GET",    "/__test/db",                      api_test_db,            P_NONE,                    TEST,                        "test_db"),
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
