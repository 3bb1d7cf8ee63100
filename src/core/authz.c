/* Roles and permissions: three tables (role names, permission names, role →
 * permissions); everything else reads them. */
#include "core/authz.h"

#include "lib/util.h"

#include <stdio.h>
#include <string.h>

#define PS(p) ((permset)1 << (p))

static const char *const role_names[] = {
    [ROLE_SUPERADMIN] = "superadmin",
    [ROLE_PLATFORM_ADMIN] = "platform_admin",
    [ROLE_COMPLIANCE] = "compliance",
    [ROLE_COMPLIANCE_OFFICER] = "compliance_officer",
    [ROLE_SECURITY_ADMIN] = "security_admin",
    [ROLE_ORG_ADMIN] = "org_admin",
    [ROLE_MEMBER] = "member",
};

static const char *const perm_names[] = {
    [P_LEGAL_PUBLISH] = "legal.publish",
    [P_LEGAL_REPORT] = "legal.report",
    [P_COMPLIANCE_READ] = "compliance.read",
    [P_COMPLIANCE_STRIP_PII] = "compliance.strip_pii",
    [P_COMPLIANCE_LEGAL_HOLD] = "compliance.legal_hold",
    [P_COMPLIANCE_ARCHIVE] = "compliance.archive",
    [P_COMPLIANCE_EXPORT] = "compliance.export",
    [P_MIGRATION_RUN] = "migration.run",
    [P_SECURITY_READ] = "security.read",
    [P_SECURITY_SESSIONS_FLUSH] = "security.sessions_flush",
    [P_SECURITY_BLOCKLIST] = "security.blocklist",
    [P_AUDIT_READ] = "audit.read",
    [P_AUDIT_VERIFY] = "audit.verify",
    [P_EMAIL_SEND_TEST] = "email.send_test",
    [P_EMAIL_OUTBOX] = "email.outbox",
    [P_USERS_READ] = "users.read",
    [P_USERS_MANAGE] = "users.manage",
    [P_ORGS_READ] = "orgs.read",
    [P_ORGS_MANAGE] = "orgs.manage",
    [P_TENANT_READ] = "tenant.read",
    [P_TENANT_WRITE] = "tenant.write",
    [P_SYSTEM_STATUS] = "system.status",
    [P_ORG_USERS_MANAGE] = "org_users.manage",
    [P_SECURITY_USERS_DISABLE] = "security.users_disable",
    [P_SECURITY_TOKENS_REVOKE] = "security.tokens_revoke",
    [P_SECURITY_RATE_LIMITS] = "security.rate_limits",
};

_Static_assert(countof(role_names) == ROLE__MAX, "role_names out of step with enum role");
_Static_assert(countof(perm_names) == PERM__MAX, "perm_names out of step with enum perm");
_Static_assert(ROLE__MAX <= 32, "roleset is 32 bits");
_Static_assert(PERM__MAX <= 64, "permset is 64 bits");

#define ALL_PERMS (PERM__MAX == 64 ? ~(permset)0 : PS(PERM__MAX) - 1)

/* compliance_officer is compliance plus verifying the audit chain. orgs.read
 * and users.read: a data-subject request starts by finding the subject's
 * records (runbook 2 step 1), an org's users among them. */
#define COMPLIANCE_PERMS                                                                           \
	(PS(P_COMPLIANCE_READ) | PS(P_COMPLIANCE_STRIP_PII) | PS(P_COMPLIANCE_LEGAL_HOLD) |        \
	    PS(P_COMPLIANCE_ARCHIVE) | PS(P_COMPLIANCE_EXPORT) | PS(P_LEGAL_REPORT) |              \
	    PS(P_AUDIT_READ) | PS(P_TENANT_READ) | PS(P_ORGS_READ) | PS(P_USERS_READ))

/* README "Identity, sessions and roles" (which says why each role holds what
 * it holds). Only superadmin holds migration.run. platform_admin reads the
 * audit log to check its publishes (runbook 1); security_admin contains
 * accounts: disables them and revokes their API tokens, and tightens the rate
 * limits (runbook 4). */
static const permset role_table[] = {
    [ROLE_SUPERADMIN] = ALL_PERMS,
    [ROLE_PLATFORM_ADMIN] = PS(P_LEGAL_PUBLISH) | PS(P_LEGAL_REPORT) | PS(P_USERS_READ) |
                            PS(P_USERS_MANAGE) | PS(P_ORGS_READ) | PS(P_ORGS_MANAGE) |
                            PS(P_EMAIL_SEND_TEST) | PS(P_EMAIL_OUTBOX) | PS(P_SYSTEM_STATUS) |
                            PS(P_TENANT_READ) | PS(P_TENANT_WRITE) | PS(P_ORG_USERS_MANAGE) |
                            PS(P_AUDIT_READ),
    [ROLE_COMPLIANCE] = COMPLIANCE_PERMS,
    [ROLE_COMPLIANCE_OFFICER] = COMPLIANCE_PERMS | PS(P_AUDIT_VERIFY),
    [ROLE_SECURITY_ADMIN] =
        PS(P_SECURITY_READ) | PS(P_SECURITY_SESSIONS_FLUSH) | PS(P_SECURITY_BLOCKLIST) |
        PS(P_AUDIT_READ) | PS(P_AUDIT_VERIFY) | PS(P_COMPLIANCE_READ) | PS(P_COMPLIANCE_STRIP_PII) |
        PS(P_COMPLIANCE_LEGAL_HOLD) | PS(P_COMPLIANCE_ARCHIVE) | PS(P_COMPLIANCE_EXPORT) |
        PS(P_USERS_READ) | PS(P_ORGS_READ) | PS(P_TENANT_READ) | PS(P_SYSTEM_STATUS) |
        PS(P_SECURITY_USERS_DISABLE) | PS(P_SECURITY_TOKENS_REVOKE) | PS(P_SECURITY_RATE_LIMITS),
    /* org_users.manage: an org_admin manages the users of its own org
     * (/orgs/:orgId/users), never /users, which reaches every org. */
    [ROLE_ORG_ADMIN] = PS(P_TENANT_READ) | PS(P_TENANT_WRITE) | PS(P_ORGS_READ) | PS(P_USERS_READ) |
                       PS(P_ORG_USERS_MANAGE),
    [ROLE_MEMBER] = PS(P_TENANT_READ),
};
_Static_assert(countof(role_table) == ROLE__MAX, "role_table out of step with enum role");

const char *role_name(enum role r)
{
	return (unsigned)r < ROLE__MAX ? role_names[r] : NULL;
}

const char *perm_name(enum perm p)
{
	return (unsigned)p < PERM__MAX ? perm_names[p] : NULL;
}

static int name_index(const char *const *names, size_t count, const char *name, size_t len)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return (int)i;
	return -1;
}

int role_from_name(const char *name)
{
	return name == NULL ? -1 : name_index(role_names, ROLE__MAX, name, strlen(name));
}

int perm_from_name(const char *name)
{
	return name == NULL ? -1 : name_index(perm_names, PERM__MAX, name, strlen(name));
}

permset role_perms(roleset roles)
{
	permset p = 0;
	for (int r = 0; r < ROLE__MAX; r++)
		if (roles & (roleset)1 << r)
			p |= role_table[r];
	return p;
}

bool perms_have(permset have, enum perm p)
{
	return (unsigned)p < PERM__MAX && (have & PS(p)) != 0;
}

bool roles_grantable(permset granter, roleset wanted)
{
	if (ROLE__MAX < 32 && wanted >> ROLE__MAX != 0)
		return false;
	for (int r = 0; r < ROLE__MAX; r++)
		if ((wanted & (roleset)1 << r) && (role_table[r] & ~granter) != 0)
			return false;
	return true;
}

/* "a,b" or "a, b" against a name table. Names may carry spaces around them;
 * an empty name or list is an error. */
static bool parse_csv(const char *const *names, size_t count, const char *csv, uint64_t *out,
    const char **bad)
{
	static char bad_name[64];
	uint64_t set = 0;
	const char *s = csv;
	bad_name[0] = '\0';
	if (bad != NULL)
		*bad = NULL;
	if (csv == NULL)
		goto fail;
	for (;;) {
		size_t n = strcspn(s, ",");
		const char *b = s, *e = s + n;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		int i = name_index(names, count, b, (size_t)(e - b));
		if (i < 0) {
			snprintf(bad_name, sizeof(bad_name), "%.*s", (int)(e - b), b);
			goto fail;
		}
		set |= (uint64_t)1 << i;
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	*out = set;
	return true;
fail:
	if (bad != NULL)
		*bad = bad_name;
	return false;
}

/* Names of the set bits in table order, ','-joined; "" if out is too small
 * (a cut list would name a different set). */
static void format_csv(const char *const *names, size_t count, uint64_t set, char *out,
    size_t out_len)
{
	size_t len = 0;
	if (out_len == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		if (!(set & (uint64_t)1 << i))
			continue;
		int n = snprintf(out + len, out_len - len, "%s%s", len > 0 ? "," : "", names[i]);
		if (n < 0 || (size_t)n >= out_len - len) {
			out[0] = '\0';
			return;
		}
		len += (size_t)n;
	}
}

bool roles_parse_csv(const char *csv, roleset *out, const char **bad)
{
	uint64_t set = 0;
	if (!parse_csv(role_names, ROLE__MAX, csv, &set, bad))
		return false;
	*out = (roleset)set;
	return true;
}

void roles_format_csv(roleset roles, char *out, size_t out_len)
{
	format_csv(role_names, ROLE__MAX, roles, out, out_len);
}

bool perms_parse_csv(const char *csv, permset *out, const char **bad)
{
	return parse_csv(perm_names, PERM__MAX, csv, out, bad);
}

void perms_format_csv(permset perms, char *out, size_t out_len)
{
	format_csv(perm_names, PERM__MAX, perms, out, out_len);
}

/* One "user:role[+role]" entry of OPSD_CLI_ROLES at s: its user's name
 * length, its roles, and where the next entry starts (NULL after the last).
 * False on an unknown role (*bad names it). */
static bool cli_entry(const char **s, size_t *user_len, const char **user, roleset *roles,
    const char **bad)
{
	static char bad_name[64];
	const char *p = *s + strspn(*s, " \t"), *end;

	*user = p;
	*user_len = strcspn(p, ":,");
	*roles = 0;
	p += *user_len + (p[*user_len] == ':');
	end = p + strcspn(p, ",");
	while (p < end) {
		size_t n = strcspn(p, "+, \t");
		int r = name_index(role_names, ROLE__MAX, p, n);

		if (r < 0) {
			snprintf(bad_name, sizeof(bad_name), "%.*s", (int)n, p);
			*bad = bad_name;
			return false;
		}
		*roles |= (roleset)1 << r;
		p += n;
		p += strspn(p, "+ \t");
	}
	*s = *end ? end + 1 : NULL;
	return true;
}

bool cli_roles_of(const char *spec, const char *user, roleset *out, const char **bad)
{
	*out = 0;
	*bad = NULL;
	if (!spec) {
		if (user && strcmp(user, "root") == 0)
			*out = (roleset)1 << ROLE_SUPERADMIN;
		return true;
	}
	for (const char *s = spec; s;) {
		const char *name;
		size_t len;
		roleset roles;

		if (!cli_entry(&s, &len, &name, &roles, bad)) {
			*out = 0;
			return false;
		}
		if (user && strlen(user) == len && memcmp(user, name, len) == 0)
			*out = roles;
	}
	return true;
}

int cli_roles_check(const struct opsd_config *c, config_report_fn report, void *ctx)
{
	roleset roles;
	const char *bad;
	char line[160];

	if (cli_roles_of(c->cli_roles, NULL, &roles, &bad))
		return 0;
	snprintf(line, sizeof(line),
	    "OPSD_CLI_ROLES: unknown role \"%s\" (opsctl roles lists them)", bad);
	if (report)
		report(true, line, ctx);
	return 1;
}
