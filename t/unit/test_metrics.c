/* metrics.c's text format: label values escaped, label vocabularies given by the caller,
 * one HELP/TYPE pair per family, zeros rendered for fixed label sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "infra/metrics.h"
#include "lib/buf.h"

/* An audit vocabulary of three actions, the second counted but not exported. */
static const char *const actions[] = {"legal.updated", NULL, "compliance.legal_hold_released"};
static const char *const statuses[] = {"pending", "completed"};

/* The audit counts read from the database for the next render (NULL: it
 * could not be read). */
static const uint64_t *audit_counts;

static const char *render(struct buf *b, const char *const *names, size_t n)
{
	struct metrics_labels l = {names, n, actions, 3, statuses, 2, audit_counts};

	buf_reset(b);
	metrics_render(b, &l, NULL);
	assert_false(buf_failed(b));
	return buf_cstr(b);
}

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static int setup(void **state)
{
	(void)state;
	return metrics_init();
}

/* Text format 0.0.4: \\, \" and \n are the only escapes of a label value. */
static void test_label_escaping(void **state)
{
	static const char *const names[] = {"plain", "quo\"te", "back\\slash", "new\nline"};
	struct buf b;
	const char *out;

	(void)state;
	buf_init(&b);
	metrics_request(1, 200, 10);
	metrics_request(2, 404, 10);
	metrics_request(3, 500, 10);
	out = render(&b, names, 4);
	assert_non_null(
	    strstr(out, "opsd_http_requests_total{route=\"quo\\\"te\",status=\"200\"} 1\n"));
	assert_non_null(
	    strstr(out, "opsd_http_requests_total{route=\"back\\\\slash\",status=\"404\"} 1\n"));
	assert_non_null(
	    strstr(out, "opsd_http_requests_total{route=\"new\\nline\",status=\"500\"} 1\n"));
	assert_non_null(
	    strstr(out, "opsd_http_request_duration_seconds_count{route=\"new\\nline\"} 1\n"));
	/* no raw newline inside a sample: every line starts with a name or # */
	for (const char *p = out; *p; p = strchr(p, '\n') + 1)
		assert_true(*p == '#' || strncmp(p, "opsd_", 5) == 0);
	buf_free(&b);
}

static void test_audit_events(void **state)
{
	static const uint64_t none[3], some[3] = {2, 7, 1};
	struct buf b;
	const char *out;

	(void)state;
	buf_init(&b);
	audit_counts = none;
	out = render(&b, NULL, 0);
	/* every exported action is there before its first event */
	assert_non_null(strstr(out, "opsd_audit_events_total{action=\"legal.updated\"} 0\n"));
	assert_non_null(
	    strstr(out, "opsd_audit_events_total{action=\"compliance.legal_hold_released\"} 0\n"));
	audit_counts = some; /* the second is counted, not exported */
	metrics_migration(1);
	out = render(&b, NULL, 0);
	assert_non_null(strstr(out, "opsd_audit_events_total{action=\"legal.updated\"} 2\n"));
	assert_non_null(
	    strstr(out, "opsd_audit_events_total{action=\"compliance.legal_hold_released\"} 1\n"));
	assert_int_equal(occurrences(out, "opsd_audit_events_total{"), 2);
	/* the database cannot be read: that family is left out, the rest stays */
	audit_counts = NULL;
	out = render(&b, NULL, 0);
	assert_null(strstr(out, "opsd_audit_events_total"));
	assert_non_null(strstr(out, "opsd_migrations_total{status=\"completed\"} 1\n"));
	audit_counts = none;
	out = render(&b, NULL, 0);
	assert_non_null(strstr(out, "opsd_migrations_total{status=\"pending\"} 0\n"));
	assert_non_null(strstr(out, "opsd_migrations_total{status=\"completed\"} 1\n"));
	buf_free(&b);
}

/* One HELP and one TYPE per family, whatever was counted. */
static void test_families_once(void **state)
{
	static const char *const names[] = {"a", "b"};
	static const char *const families[] = {
	    "opsd_http_requests_total",
	    "opsd_http_request_duration_seconds",
	    "opsd_emails_total",
	    "opsd_migrations_total",
	    "opsd_migration_rows_copied_total",
	    "opsd_rate_limited_total",
	    "opsd_audit_events_total",
	    "opsd_worker_exits_total",
	    "opsd_db_failovers_total",
	    "opsd_db_tx_retries_total",
	};
	static const uint64_t zeros[3];
	struct buf b;
	const char *out;
	char line[128];

	(void)state;
	audit_counts = zeros;
	buf_init(&b);
	metrics_rate_limited(RL_LAYER_NGINX, 1);
	metrics_rate_limited(RL_LAYER_OPSD, -1);
	metrics_email(EMAIL_FAILED);
	metrics_worker_exit(WEXIT_KILLED);
	metrics_worker_exit(WEXIT__MAX); /* out of range: ignored */
	metrics_db(MDB_TX_RETRY);
	metrics_db(MDB_TX_RETRY);
	metrics_db(MDB__MAX); /* out of range: ignored */
	out = render(&b, names, 2);
	assert_non_null(strstr(out, "\nopsd_db_failovers_total 0\n"));
	assert_non_null(strstr(out, "\nopsd_db_tx_retries_total 2\n"));
	/* every cause, zeros included */
	assert_non_null(strstr(out, "opsd_worker_exits_total{cause=\"crash\"} 0\n"));
	assert_non_null(strstr(out, "opsd_worker_exits_total{cause=\"error\"} 0\n"));
	assert_non_null(strstr(out, "opsd_worker_exits_total{cause=\"killed\"} 1\n"));
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "# HELP %s ", families[i]);
		assert_int_equal(occurrences(out, line), 1);
		snprintf(line, sizeof(line), "# TYPE %s ", families[i]);
		assert_int_equal(occurrences(out, line), 1);
	}
	assert_non_null(strstr(out, "opsd_rate_limited_total{layer=\"nginx\",route=\"b\"} 1\n"));
	assert_non_null(
	    strstr(out, "opsd_rate_limited_total{layer=\"opsd\",route=\"unmatched\"} 1\n"));
	assert_non_null(strstr(out, "opsd_rate_limited_total{layer=\"opsd\",route=\"a\"} 0\n"));
	assert_non_null(strstr(out, "opsd_emails_total{outcome=\"failed\"} 1\n"));
	assert_non_null(strstr(out, "opsd_emails_total{outcome=\"sent\"} 0\n"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_escaping),
	    cmocka_unit_test(test_audit_events),
	    cmocka_unit_test(test_families_once),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
