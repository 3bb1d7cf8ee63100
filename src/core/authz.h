/* Roles and permissions (README "Identity, sessions and roles"): seven roles grant permissions
 * named "area.action". Both are tables; routes name the permission they need. */
#ifndef OPSD_AUTHZ_H
#define OPSD_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infra/config.h"

enum role {
	ROLE_SUPERADMIN,
	ROLE_PLATFORM_ADMIN,
	ROLE_COMPLIANCE,
	ROLE_COMPLIANCE_OFFICER,
	ROLE_SECURITY_ADMIN,
	ROLE_ORG_ADMIN,
	ROLE_MEMBER,
	ROLE__MAX
};

enum perm {
	P_NONE = -1, /* a route any signed-in caller may use (or anyone, with RF_PUBLIC) */
	P_LEGAL_PUBLISH,
	P_LEGAL_REPORT,
	P_COMPLIANCE_READ,
	P_COMPLIANCE_STRIP_PII,
	P_COMPLIANCE_LEGAL_HOLD,
	P_COMPLIANCE_ARCHIVE,
	P_COMPLIANCE_EXPORT,
	P_MIGRATION_RUN,
	P_SECURITY_READ,
	P_SECURITY_SESSIONS_FLUSH,
	P_SECURITY_BLOCKLIST,
	P_AUDIT_READ,
	P_AUDIT_VERIFY,
	P_EMAIL_SEND_TEST,
	P_EMAIL_OUTBOX,
	P_USERS_READ,
	P_USERS_MANAGE,
	P_ORGS_READ,
	P_ORGS_MANAGE,
	P_TENANT_READ,
	P_TENANT_WRITE,
	P_SYSTEM_STATUS,
	P_ORG_USERS_MANAGE,
	P_SECURITY_USERS_DISABLE,
	P_SECURITY_TOKENS_REVOKE,
	P_SECURITY_RATE_LIMITS,
	PERM__MAX
};

typedef uint32_t roleset; /* bit (1 << enum role) */
typedef uint64_t permset; /* bit (1 << enum perm) */

#define ROLES_ALL (((roleset)1 << ROLE__MAX) - 1)
/* The roles of users that belong to an org; the others are platform staff. */
#define ROLES_ORG ((roleset)1 << ROLE_ORG_ADMIN | (roleset)1 << ROLE_MEMBER)

const char *role_name(enum role r);
int role_from_name(const char *name); /* -1 if unknown */
const char *perm_name(enum perm p);   /* "legal.publish"; NULL for P_NONE */
int perm_from_name(const char *name); /* -1 if unknown */

permset role_perms(roleset roles);
bool perms_have(permset have, enum perm p);
/* A granter may give a role only if that role's permissions are a subset of
 * its own ("you can only grant what you hold"). */
bool roles_grantable(permset granter, roleset wanted);

/* "a,b" (or the same with spaces) → roleset. False on an unknown or empty
 * name; *bad gets the first unknown name (pointer into a static buffer). */
bool roles_parse_csv(const char *csv, roleset *out, const char **bad);
/* "superadmin,platform_admin" in role order into out. */
void roles_format_csv(roleset roles, char *out, size_t out_len);
/* Same for permissions (token scopes). */
bool perms_parse_csv(const char *csv, permset *out, const char **bad);
void perms_format_csv(permset perms, char *out, size_t out_len);

/* opsctl's principals (OPSD_CLI_ROLES, "user:role[+role],...", its shape
 * checked by infra/config.c): the roles of the OS user named user. NULL
 * spec: root is superadmin, any other user has no role; a user the list
 * does not name has none. False with *bad (a static buffer) when a role
 * name is unknown, whoever it belongs to. */
bool cli_roles_of(const char *spec, const char *user, roleset *out, const char **bad);
/* Reports an unknown role of OPSD_CLI_ROLES as a configuration error (the
 * names are this layer's, so config_load cannot). Returns the errors. */
int cli_roles_check(const struct opsd_config *c, config_report_fn report, void *ctx);

#endif
