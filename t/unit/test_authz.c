#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/authz.h"
#include "lib/util.h"

#define RS(r) ((roleset)1 << (r))

/* The expected sets, written as README "Identity, sessions and roles" lists them (names, not
 * bits, so the test does not restate the table it checks). */
static const struct {
	enum role role;
	const char *perms;
} expected[] = {
    {ROLE_SUPERADMIN,
        "legal.publish,legal.report,compliance.read,compliance.strip_pii,"
        "compliance.legal_hold,compliance.archive,compliance.export,migration.run,"
        "security.read,security.sessions_flush,security.blocklist,audit.read,audit.verify,"
        "email.send_test,email.outbox,users.read,users.manage,orgs.read,orgs.manage,"
        "tenant.read,tenant.write,system.status,org_users.manage,security.users_disable,"
        "security.tokens_revoke,security.rate_limits"},
    {ROLE_PLATFORM_ADMIN,
        "legal.publish,legal.report,users.read,users.manage,orgs.read,orgs.manage,"
        "email.send_test,email.outbox,system.status,tenant.read,tenant.write,org_users.manage,"
        "audit.read"},
    {ROLE_COMPLIANCE,
        "compliance.read,compliance.strip_pii,compliance.legal_hold,compliance.archive,"
        "compliance.export,legal.report,audit.read,tenant.read,orgs.read,users.read"},
    {ROLE_COMPLIANCE_OFFICER,
        "compliance.read,compliance.strip_pii,compliance.legal_hold,compliance.archive,"
        "compliance.export,legal.report,audit.read,tenant.read,orgs.read,users.read,"
        "audit.verify"},
    {ROLE_SECURITY_ADMIN,
        "security.read,security.sessions_flush,security.blocklist,audit.read,audit.verify,"
        "compliance.read,compliance.strip_pii,compliance.legal_hold,compliance.archive,"
        "compliance.export,users.read,orgs.read,tenant.read,system.status,"
        "security.users_disable,security.tokens_revoke,security.rate_limits"},
    {ROLE_ORG_ADMIN, "tenant.read,tenant.write,orgs.read,users.read,org_users.manage"},
    {ROLE_MEMBER, "tenant.read"},
};

static void test_names(void **state)
{
	(void)state;
	for (int r = 0; r < ROLE__MAX; r++) {
		assert_non_null(role_name(r));
		assert_int_equal(role_from_name(role_name(r)), r);
	}
	for (int p = 0; p < PERM__MAX; p++) {
		const char *n = perm_name(p);
		assert_non_null(n);
		assert_non_null(strchr(n, '.')); /* area.action */
		assert_int_equal(perm_from_name(n), p);
	}
	assert_string_equal(role_name(ROLE_COMPLIANCE_OFFICER), "compliance_officer");
	assert_string_equal(perm_name(P_SECURITY_SESSIONS_FLUSH), "security.sessions_flush");
	assert_null(role_name(ROLE__MAX));
	assert_null(perm_name(PERM__MAX));
	assert_int_equal(role_from_name("Superadmin"), -1);
	assert_int_equal(role_from_name("superadmin "), -1);
	assert_int_equal(role_from_name(""), -1);
	assert_int_equal(role_from_name(NULL), -1);
	assert_int_equal(role_from_name("super"), -1);
	assert_int_equal(perm_from_name("legal"), -1);
	assert_int_equal(perm_from_name("legal.publish.x"), -1);
	assert_int_equal(perm_from_name(NULL), -1);
}

static void test_role_sets(void **state)
{
	(void)state;
	assert_int_equal(countof(expected), ROLE__MAX);
	for (size_t i = 0; i < countof(expected); i++) {
		permset want = 0;
		const char *bad = NULL;
		assert_true(perms_parse_csv(expected[i].perms, &want, &bad));
		if (role_perms(RS(expected[i].role)) != want)
			fail_msg("role %s: wrong permissions", role_name(expected[i].role));
	}
	assert_int_equal(role_perms(0), 0);
	/* several roles: the union */
	assert_int_equal(role_perms(RS(ROLE_COMPLIANCE) | RS(ROLE_ORG_ADMIN)),
	    role_perms(RS(ROLE_COMPLIANCE)) | role_perms(RS(ROLE_ORG_ADMIN)));
	/* unknown role bits grant nothing */
	assert_int_equal(role_perms(RS(ROLE__MAX) | RS(31)), 0);
	char out[64];
	perms_format_csv(role_perms(RS(ROLE_MEMBER)), out, sizeof(out));
	assert_string_equal(out, "tenant.read");
}

static void test_migration_superadmin_only(void **state)
{
	(void)state;
	for (int r = 0; r < ROLE__MAX; r++)
		assert_int_equal(perms_have(role_perms(RS(r)), P_MIGRATION_RUN),
		    r == ROLE_SUPERADMIN);
	/* every other permission is held by some role besides superadmin */
	permset others = role_perms((RS(ROLE__MAX) - 1) & ~RS(ROLE_SUPERADMIN));
	for (int p = 0; p < PERM__MAX; p++)
		assert_int_equal(perms_have(others, p), p != P_MIGRATION_RUN);
}

static void test_perms_have(void **state)
{
	(void)state;
	permset m = role_perms(RS(ROLE_MEMBER));
	assert_true(perms_have(m, P_TENANT_READ));
	assert_false(perms_have(m, P_TENANT_WRITE));
	assert_false(perms_have(~(permset)0, PERM__MAX));
	assert_false(perms_have(~(permset)0, (enum perm) - 1));
	assert_true(perms_have(role_perms(RS(ROLE_COMPLIANCE_OFFICER)), P_AUDIT_VERIFY));
	assert_false(perms_have(role_perms(RS(ROLE_COMPLIANCE)), P_AUDIT_VERIFY));
}

static void test_grantable(void **state)
{
	(void)state;
	permset super = role_perms(RS(ROLE_SUPERADMIN));
	permset pa = role_perms(RS(ROLE_PLATFORM_ADMIN));
	permset member = role_perms(RS(ROLE_MEMBER));
	for (int r = 0; r < ROLE__MAX; r++)
		assert_true(roles_grantable(super, RS(r)));
	assert_true(roles_grantable(super, RS(ROLE__MAX) - 1));

	assert_true(roles_grantable(pa, RS(ROLE_PLATFORM_ADMIN)));
	assert_true(roles_grantable(pa, RS(ROLE_ORG_ADMIN)));
	assert_true(roles_grantable(pa, RS(ROLE_MEMBER)));
	assert_true(roles_grantable(pa, RS(ROLE_ORG_ADMIN) | RS(ROLE_MEMBER)));
	assert_false(roles_grantable(pa, RS(ROLE_COMPLIANCE)));
	assert_false(roles_grantable(pa, RS(ROLE_COMPLIANCE_OFFICER)));
	assert_false(roles_grantable(pa, RS(ROLE_SECURITY_ADMIN)));
	assert_false(roles_grantable(pa, RS(ROLE_SUPERADMIN)));
	/* one role too many spoils the whole request */
	assert_false(roles_grantable(pa, RS(ROLE_MEMBER) | RS(ROLE_SECURITY_ADMIN)));

	for (int r = 0; r < ROLE__MAX; r++)
		assert_int_equal(roles_grantable(member, RS(r)), r == ROLE_MEMBER);
	/* an org_admin grants the org roles and nothing of platform staff */
	permset oa = role_perms(RS(ROLE_ORG_ADMIN));
	for (int r = 0; r < ROLE__MAX; r++)
		assert_int_equal(roles_grantable(oa, RS(r)), (ROLES_ORG & RS(r)) != 0);
	/* compliance_officer holds compliance's set, not the other way round */
	assert_true(roles_grantable(role_perms(RS(ROLE_COMPLIANCE_OFFICER)), RS(ROLE_COMPLIANCE)));
	assert_false(roles_grantable(role_perms(RS(ROLE_COMPLIANCE)), RS(ROLE_COMPLIANCE_OFFICER)));
	/* roles that do not exist cannot be granted, even by superadmin */
	assert_false(roles_grantable(super, RS(ROLE__MAX)));
	assert_false(roles_grantable(0, RS(ROLE_MEMBER)));
}

static void test_roles_csv(void **state)
{
	(void)state;
	roleset rs = 0;
	const char *bad = "unset";
	char out[128];
	assert_true(roles_parse_csv("superadmin", &rs, &bad));
	assert_int_equal(rs, RS(ROLE_SUPERADMIN));
	assert_null(bad);
	assert_true(roles_parse_csv("member,org_admin", &rs, &bad));
	assert_int_equal(rs, RS(ROLE_MEMBER) | RS(ROLE_ORG_ADMIN));
	assert_true(roles_parse_csv("member, org_admin", &rs, NULL));
	assert_int_equal(rs, RS(ROLE_MEMBER) | RS(ROLE_ORG_ADMIN));
	assert_true(roles_parse_csv(" member ,  org_admin ", &rs, NULL));
	assert_int_equal(rs, RS(ROLE_MEMBER) | RS(ROLE_ORG_ADMIN));
	assert_true(roles_parse_csv("member,member", &rs, NULL));
	assert_int_equal(rs, RS(ROLE_MEMBER));

	/* formatting follows enum order, whatever the input order */
	assert_true(roles_parse_csv("member,security_admin,superadmin", &rs, NULL));
	roles_format_csv(rs, out, sizeof(out));
	assert_string_equal(out, "superadmin,security_admin,member");
	roles_format_csv(RS(ROLE__MAX) - 1, out, sizeof(out));
	assert_string_equal(out, "superadmin,platform_admin,compliance,compliance_officer,"
	                         "security_admin,org_admin,member");
	assert_true(roles_parse_csv(out, &rs, NULL));
	assert_int_equal(rs, RS(ROLE__MAX) - 1);
	roles_format_csv(0, out, sizeof(out));
	assert_string_equal(out, "");
	/* too small: nothing rather than a different set */
	roles_format_csv(RS(ROLE_SUPERADMIN) | RS(ROLE_MEMBER), out, 12);
	assert_string_equal(out, "");
}

static void test_roles_csv_errors(void **state)
{
	(void)state;
	static const struct {
		const char *csv, *bad;
	} errs[] = {
	    {"", ""},
	    {" ", ""},
	    {",", ""},
	    {"member,", ""},
	    {",member", ""},
	    {"member,,org_admin", ""},
	    {"member, ,org_admin", ""},
	    {"bogus", "bogus"},
	    {"member,bogus,other", "bogus"},
	    {"Member", "Member"},
	    {"member;org_admin", "member;org_admin"},
	    {"member org_admin", "member org_admin"},
	};
	for (size_t i = 0; i < countof(errs); i++) {
		roleset rs = 12345;
		const char *bad = NULL;
		if (roles_parse_csv(errs[i].csv, &rs, &bad))
			fail_msg("accepted \"%s\"", errs[i].csv);
		assert_int_equal(rs, 12345); /* untouched on error */
		assert_non_null(bad);
		assert_string_equal(bad, errs[i].bad);
	}
	roleset rs;
	assert_false(roles_parse_csv(NULL, &rs, NULL));
	/* an overlong unknown name is reported cut, not overflowing */
	char longname[300];
	const char *bad = NULL;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(roles_parse_csv(longname, &rs, &bad));
	assert_true(strlen(bad) < 64);
}

/* OPSD_CLI_ROLES: opsctl's principals by OS user name. */
static void test_cli_roles(void **state)
{
	const char *spec = "root:superadmin, alice:security_admin+compliance ,bob:member";
	roleset rs = 99;
	const char *bad = "x";

	(void)state;
	/* unset: root only */
	assert_true(cli_roles_of(NULL, "root", &rs, &bad));
	assert_int_equal(rs, RS(ROLE_SUPERADMIN));
	assert_null(bad);
	assert_true(cli_roles_of(NULL, "alice", &rs, &bad));
	assert_int_equal(rs, 0);
	assert_true(cli_roles_of(NULL, NULL, &rs, &bad));
	assert_int_equal(rs, 0);
	/* set: exactly what it says */
	assert_true(cli_roles_of(spec, "root", &rs, &bad));
	assert_int_equal(rs, RS(ROLE_SUPERADMIN));
	assert_true(cli_roles_of(spec, "alice", &rs, &bad));
	assert_int_equal(rs, RS(ROLE_SECURITY_ADMIN) | RS(ROLE_COMPLIANCE));
	assert_true(cli_roles_of(spec, "bob", &rs, &bad));
	assert_int_equal(rs, RS(ROLE_MEMBER));
	assert_true(cli_roles_of(spec, "ali", &rs, &bad));
	assert_int_equal(rs, 0);
	assert_true(cli_roles_of(spec, "alicex", &rs, &bad));
	assert_int_equal(rs, 0);
	assert_true(cli_roles_of("alice:member", "root", &rs, &bad));
	assert_int_equal(rs, 0);
	/* an unknown role is an error whoever runs opsctl */
	assert_false(cli_roles_of("root:superadmin,alice:nosuch+member", "root", &rs, &bad));
	assert_string_equal(bad, "nosuch");
	assert_int_equal(rs, 0);
	assert_false(cli_roles_of("root:superadmin+admin", "alice", &rs, &bad));
	assert_string_equal(bad, "admin");
}

static void test_perms_csv(void **state)
{
	(void)state;
	permset ps = 0;
	const char *bad = NULL;
	char out[512];
	assert_true(perms_parse_csv("audit.read, tenant.read", &ps, &bad));
	assert_int_equal(ps, ((permset)1 << P_AUDIT_READ) | ((permset)1 << P_TENANT_READ));
	perms_format_csv(ps, out, sizeof(out));
	assert_string_equal(out, "audit.read,tenant.read");
	perms_format_csv(role_perms(RS(ROLE_SUPERADMIN)), out, sizeof(out));
	assert_true(perms_parse_csv(out, &ps, NULL));
	assert_int_equal(ps, role_perms(RS(ROLE_SUPERADMIN)));
	assert_false(perms_parse_csv("audit.read,audit.write", &ps, &bad));
	assert_string_equal(bad, "audit.write");
	assert_false(perms_parse_csv("", &ps, &bad));
	assert_false(perms_parse_csv("superadmin", &ps, &bad)); /* a role is not a permission */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_role_sets),
	    cmocka_unit_test(test_migration_superadmin_only),
	    cmocka_unit_test(test_perms_have),
	    cmocka_unit_test(test_grantable),
	    cmocka_unit_test(test_roles_csv),
	    cmocka_unit_test(test_roles_csv_errors),
	    cmocka_unit_test(test_cli_roles),
	    cmocka_unit_test(test_perms_csv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
