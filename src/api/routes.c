#include "api/api.h"
#include "api/routes.h"
#include "lib/util.h"

#define SYS (RF_PUBLIC | RF_LEGAL_EXEMPT)
#define AUTH RF_LEGAL_EXEMPT /* signed-in, but reachable while documents are pending */
#define JSON RF_JSON_BODY

/* method, pattern, handler, permission ("area.action"; NULL = any signed-in
 * caller unless RF_PUBLIC), flags, metric name. Every later endpoint is one
 * line here; the authorization test walks this table. */
const struct route routes[] = {
    {"GET", "/healthz", api_healthz, NULL, SYS | RF_NO_DB | RF_NO_LIMIT, "healthz"},
    {"GET", "/readyz", api_readyz, NULL, SYS | RF_NO_LIMIT, "readyz"},
    /* Loopback without credentials, or anyone holding system.status. */
    {"GET", "/status", api_status, "system.status", RF_LEGAL_EXEMPT | RF_LOOPBACK | RF_NO_LIMIT,
        "status"},
    {"GET", "/metrics", api_metrics, "system.status", RF_LEGAL_EXEMPT | RF_LOOPBACK | RF_NO_LIMIT,
        "metrics"},

    {"POST", "/auth/login", api_auth_login, NULL, SYS | JSON, "auth_login"},
    {"POST", "/auth/logout", api_auth_logout, NULL, AUTH, "auth_logout"},
    {"GET", "/auth/me", api_auth_me, NULL, AUTH, "auth_me"},
    {"POST", "/auth/password", api_auth_password, NULL, AUTH | JSON, "auth_password"},
    {"POST", "/auth/tokens", api_tokens_create, NULL, AUTH | JSON, "tokens_create"},
    {"GET", "/auth/tokens", api_tokens_list, NULL, AUTH, "tokens_list"},
    {"DELETE", "/auth/tokens/:id", api_tokens_delete, NULL, AUTH, "tokens_delete"},

    /* Runbook 1: the legal routes stay reachable while documents are pending. */
    {"POST", "/legal", api_legal_publish, "legal.publish", AUTH | JSON, "legal_publish"},
    {"GET", "/legal/:type", api_legal_get, NULL, SYS, "legal_get"},
    {"GET", "/legal/:type/versions", api_legal_versions, NULL, SYS, "legal_versions"},
    {"GET", "/legal/:type/versions/:version", api_legal_version, NULL, SYS, "legal_version"},
    {"GET", "/legal/:type/diff", api_legal_diff, NULL, SYS, "legal_diff"},
    {"GET", "/legal/acceptance/status", api_legal_status, NULL, AUTH, "legal_status"},
    {"POST", "/legal/acceptance", api_legal_accept, NULL, AUTH | JSON, "legal_accept"},
    {"GET", "/legal/acceptance/report", api_legal_report, "legal.report", AUTH, "legal_report"},

    {"POST", "/users", api_users_create, "users.manage", JSON, "users_create"},
    {"GET", "/users", api_users_list, "users.read", 0, "users_list"},
    {"GET", "/users/:id", api_users_get, "users.read", 0, "users_get"},
    {"PATCH", "/users/:id", api_users_patch, "users.manage", JSON, "users_patch"},
    {"POST", "/orgs", api_orgs_create, "orgs.manage", JSON, "orgs_create"},
    {"GET", "/orgs", api_orgs_list, "orgs.read", 0, "orgs_list"},
    {"GET", "/orgs/:id", api_orgs_get, "orgs.read", 0, "orgs_get"},

/* Tenant records: one block per entity of the entity table. */
#define TENANT(e)                                                                                  \
	{"GET", "/orgs/:orgId/" e, api_tenant_list, "tenant.read", 0, e "_list"},                  \
	    {"POST", "/orgs/:orgId/" e, api_tenant_create, "tenant.write", JSON, e "_create"},     \
	    {"GET", "/orgs/:orgId/" e "/:id", api_tenant_get, "tenant.read", 0, e "_get"},         \
	    {"PATCH", "/orgs/:orgId/" e "/:id", api_tenant_patch, "tenant.write", JSON,            \
	        e "_patch"},                                                                       \
	{                                                                                          \
		"DELETE", "/orgs/:orgId/" e "/:id", api_tenant_delete, "tenant.write", 0,          \
		    e "_delete"                                                                    \
	}
    TENANT("contacts"),
    TENANT("projects"),
    TENANT("offices"),
    /* An org's people: read with users.read, managed with org_users.manage. */
    {"GET", "/orgs/:orgId/users", api_org_users_list, "users.read", 0, "org_users_list"},
    {"POST", "/orgs/:orgId/users", api_org_users_create, "org_users.manage", JSON,
        "org_users_create"},
    {"GET", "/orgs/:orgId/users/:id", api_org_users_get, "users.read", 0, "org_users_get"},
    {"PATCH", "/orgs/:orgId/users/:id", api_org_users_patch, "org_users.manage", JSON,
        "org_users_patch"},
    {"DELETE", "/orgs/:orgId/users/:id", api_org_users_delete, "org_users.manage", 0,
        "org_users_delete"},

    /* Runbook 2. */
    {"POST", "/compliance/legal-hold", api_compliance_hold, "compliance.legal_hold", JSON,
        "compliance_hold"},
    {"POST", "/compliance/strip-pii", api_compliance_strip, "compliance.strip_pii", JSON,
        "compliance_strip"},
    {"GET", "/compliance/records/:entity/:id", api_compliance_record, "compliance.read", 0,
        "compliance_record"},
    {"POST", "/compliance/batch-archive", api_compliance_archive, "compliance.archive", JSON,
        "compliance_archive"},
    {"GET", "/compliance/export", api_compliance_export, "compliance.export", 0,
        "compliance_export"},
    {"GET", "/export/:entity", api_export, "compliance.export", 0, "export"},

    /* Runbook 3: only superadmin holds migration.run. */
    {"POST", "/migration/start", api_migration_start, "migration.run", JSON, "migration_start"},
    {"GET", "/migration/status/:orgId", api_migration_status, "migration.run", 0,
        "migration_status"},
    {"POST", "/migration/finalize", api_migration_finalize, "migration.run", JSON,
        "migration_finalize"},
    {"POST", "/migration/abort", api_migration_abort, "migration.run", JSON, "migration_abort"},
    {"GET", "/migration/history", api_migration_history, "migration.run", 0, "migration_history"},

    {"POST", "/security/sessions/flush", api_sessions_flush, "security.sessions_flush", AUTH | JSON,
        "sessions_flush"},
    /* Containment stays reachable while legal documents are pending. */
    {"POST", "/security/blocklist", api_blocklist_add, "security.blocklist", AUTH | JSON,
        "blocklist_add"},
    {"GET", "/security/blocklist", api_blocklist_list, "security.blocklist", AUTH,
        "blocklist_list"},
    {"DELETE", "/security/blocklist/:id", api_blocklist_delete, "security.blocklist", AUTH,
        "blocklist_delete"},
    {"POST", "/email/test", api_email_test, "email.send_test", JSON, "email_test"},
    {"GET", "/email/outbox", api_email_outbox, "email.outbox", 0, "email_outbox"},
    {"POST", "/email/outbox/:id/retry", api_email_retry, "email.outbox", 0, "email_retry"},
    {"GET", "/audit", api_audit_list, "audit.read", 0, "audit_list"},
    {"GET", "/audit/verify", api_audit_verify, "audit.verify", 0, "audit_verify"},

    /* Test-only routes (OPSD_ENV=test): a stuck request for the master's
     * timeout, a validated echo for the body pipeline, a DB round trip. */
    {"GET", "/__test/sleep", api_test_sleep, NULL, SYS | RF_TEST_ONLY | RF_NO_DB, "test_sleep"},
    {"POST", "/__test/echo", api_test_echo, NULL, SYS | RF_TEST_ONLY | RF_NO_DB | RF_JSON_BODY,
        "test_echo"},
    {"GET", "/__test/db", api_test_db, NULL, SYS | RF_TEST_ONLY, "test_db"},
};

const size_t nroutes = countof(routes);

const char *const *routes_names(void)
{
	static const char *names[countof(routes)];

	if (!names[0])
		for (size_t i = 0; i < countof(routes); i++)
			names[i] = routes[i].name;
	return names;
}
