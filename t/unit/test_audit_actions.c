/* The audit action table: every action has one well-formed, unique name,
 * and opsd_audit_events_total exports exactly the legal, compliance,
 * security, migration, retention and account-containment actions that
 * conf/prometheus/alerts.yml and the README (runbook 6) name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "core/audit.h"

static bool well_formed(const char *s)
{
	const char *dot = strchr(s, '.');

	if (!dot || dot == s || !dot[1] || strchr(dot + 1, '.'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_' || *s == '.'))
			return false;
	return true;
}

static void test_names(void **state)
{
	(void)state;
	for (int i = 0; i < AA__MAX; i++) {
		assert_non_null(audit_actions[i].name);
		assert_true(well_formed(audit_actions[i].name));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(audit_actions[i].name, audit_actions[j].name);
	}
}

static void test_counted(void **state)
{
	static const char *const counted[] = {
	    "legal.updated",
	    "legal.accepted",
	    "compliance.pii_stripped",
	    "compliance.legal_hold_set",
	    "compliance.legal_hold_released",
	    "compliance.archived",
	    "compliance.exported",
	    "security.sessions_flushed",
	    "security.rate_limited",
	    "security.blocklist_added",
	    "security.blocklist_removed",
	    "security.tokens_revoked",
	    "security.rate_limits_changed",
	    "auth.login_failed",
	    "auth.login_throttled",
	    "migration.started",
	    "migration.legal_hold_override",
	    "migration.cutover_refused",
	    "migration.finalized",
	    "migration.aborted",
	    "migration.failed",
	    "audit.purged",
	    "user.disabled",
	    "user.enabled",
	};
	size_t next = 0;

	(void)state;
	/* the exported ones, in table order */
	for (int i = 0; i < AA__MAX; i++) {
		if (!audit_actions[i].counted)
			continue;
		assert_true(next < sizeof(counted) / sizeof(counted[0]));
		assert_string_equal(audit_actions[i].name, counted[next]);
		next++;
	}
	assert_int_equal(next, sizeof(counted) / sizeof(counted[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
