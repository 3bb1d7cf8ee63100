#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/audit_query.h"
#include "lib/encoding.h"

/* ---- CIDR → the range of ip_bin values --------------------------------- */

static void check_range(const char *s, const char *lo_hex, const char *hi_hex, bool not_mapped)
{
	uint8_t lo[16], hi[16];
	char l[33], h[33];
	bool nm = !not_mapped;
	const char *why = NULL;

	if (!audit_ip_range(s, lo, hi, &nm, &why))
		fail_msg("audit_ip_range(\"%s\") refused: %s", s, why);
	hex_encode(lo, 16, l);
	hex_encode(hi, 16, h);
	if (strcmp(l, lo_hex) != 0 || strcmp(h, hi_hex) != 0)
		fail_msg("audit_ip_range(\"%s\") = %s..%s, want %s..%s", s, l, h, lo_hex, hi_hex);
	if (nm != not_mapped)
		fail_msg("audit_ip_range(\"%s\"): not_mapped %d, want %d", s, nm, not_mapped);
}

static void check_range_error(const char *s, const char *why_part)
{
	uint8_t lo[16], hi[16];
	bool nm;
	const char *why = NULL;

	if (audit_ip_range(s, lo, hi, &nm, &why))
		fail_msg("audit_ip_range(\"%s\") accepted", s ? s : "(null)");
	if (!why || !strstr(why, why_part))
		fail_msg("audit_ip_range(\"%s\"): \"%s\", want \"%s\" in it", s, why ? why : "",
		    why_part);
}

static void test_ip_range_v4(void **state)
{
	(void)state;
	/* IPv4 as IPv4-mapped, the way ip_bin stores it */
	check_range("203.0.113.0/24", "00000000000000000000ffffcb007100",
	    "00000000000000000000ffffcb0071ff", false);
	check_range("203.0.113.7", "00000000000000000000ffffcb007107",
	    "00000000000000000000ffffcb007107", false);
	check_range("203.0.113.7/32", "00000000000000000000ffffcb007107",
	    "00000000000000000000ffffcb007107", false);
	/* host bits are ignored: the whole /24 */
	check_range("203.0.113.7/24", "00000000000000000000ffffcb007100",
	    "00000000000000000000ffffcb0071ff", false);
	check_range("10.0.0.0/9", "00000000000000000000ffff0a000000",
	    "00000000000000000000ffff0a7fffff", false);
	check_range("0.0.0.0/0", "00000000000000000000ffff00000000",
	    "00000000000000000000ffffffffffff", false);
	/* the mapped spelling is the same search */
	check_range("::ffff:203.0.113.0/120", "00000000000000000000ffffcb007100",
	    "00000000000000000000ffffcb0071ff", false);
}

static void test_ip_range_v6(void **state)
{
	(void)state;
	check_range("2001:db8::/32", "20010db8000000000000000000000000",
	    "20010db8ffffffffffffffffffffffff", false);
	check_range("2001:DB8::5", "20010db8000000000000000000000005",
	    "20010db8000000000000000000000005", false);
	check_range("2001:db8::5/64", "20010db8000000000000000000000000",
	    "20010db800000000ffffffffffffffff", false);
	check_range("fe80::/10", "fe800000000000000000000000000000",
	    "febfffffffffffffffffffffffffffff", false);
	/* ranges that hold ::ffff:0:0/96 leave the IPv4 addresses out */
	check_range("::/0", "00000000000000000000000000000000", "ffffffffffffffffffffffffffffffff",
	    true);
	check_range("::/80", "00000000000000000000000000000000", "00000000000000000000ffffffffffff",
	    true);
	check_range("::/81", "00000000000000000000000000000000", "000000000000000000007fffffffffff",
	    false);
	check_range("::1", "00000000000000000000000000000001", "00000000000000000000000000000001",
	    false);
}

static void test_ip_range_errors(void **state)
{
	(void)state;
	check_range_error("", "IPv4 or IPv6");
	check_range_error(NULL, "IPv4 or IPv6");
	check_range_error("203.0.113.0/33", "prefix length");
	check_range_error("2001:db8::/129", "prefix length");
	check_range_error("203.0.113.0/1234", "prefix length");
	check_range_error("203.0.113.0/", "IPv4 or IPv6");
	check_range_error("203.0.113.0/-1", "IPv4 or IPv6");
	check_range_error("203.0.113.0/24/8", "IPv4 or IPv6");
	check_range_error("203.0.113", "IPv4 or IPv6");
	check_range_error("203.0.113.256", "IPv4 or IPv6");
	check_range_error("010.0.0.1", "IPv4 or IPv6");
	check_range_error("fe80::1%eth0", "IPv4 or IPv6");
	check_range_error("example.com", "IPv4 or IPv6");
	check_range_error(" 203.0.113.1", "IPv4 or IPv6");
}

/* ---- LIKE escaping ----------------------------------------------------- */

static void test_like_escape(void **state)
{
	char out[64], small[5];

	(void)state;
	assert_true(audit_like_escape("compliance.", out, sizeof(out)));
	assert_string_equal(out, "compliance.");
	assert_true(audit_like_escape("auth.login_", out, sizeof(out)));
	assert_string_equal(out, "auth.login!_");
	assert_true(audit_like_escape("100%_!x", out, sizeof(out)));
	assert_string_equal(out, "100!%!_!!x");
	assert_true(audit_like_escape("", out, sizeof(out)));
	assert_string_equal(out, "");
	/* "a_b" escapes to 4 characters: 5 bytes fit, 4 do not */
	assert_true(audit_like_escape("a_b", small, 5));
	assert_string_equal(small, "a!_b");
	assert_false(audit_like_escape("a_b", small, 4));
	assert_false(audit_like_escape("abcde", small, sizeof(small)));
}

/* ---- filters ----------------------------------------------------------- */

static bool set(struct audit_query *q, enum audit_filter f, const char *v)
{
	char why[200];

	return audit_query_set(q, f, v, why, sizeof(why));
}

static void refused(enum audit_filter f, const char *v, const char *why_part)
{
	struct audit_query q;
	char why[200] = "";

	audit_query_init(&q);
	if (audit_query_set(&q, f, v, why, sizeof(why)))
		fail_msg("%s=\"%s\" accepted", audit_filter_names[f], v);
	if (!strstr(why, why_part))
		fail_msg("%s=\"%s\": \"%s\", want \"%s\" in it", audit_filter_names[f], v, why,
		    why_part);
	if (q.set[f])
		fail_msg("%s=\"%s\" refused but marked set", audit_filter_names[f], v);
}

static void test_filter_names(void **state)
{
	(void)state;
	assert_int_equal(audit_filter_find("action"), AF_ACTION);
	assert_int_equal(audit_filter_find("targetType"), AF_TARGET_TYPE);
	assert_int_equal(audit_filter_find("requestId"), AF_REQUEST_ID);
	assert_int_equal(audit_filter_find("actorid"), AF__MAX);
	assert_int_equal(audit_filter_find("limit"), AF__MAX);
	assert_int_equal(audit_filter_find(NULL), AF__MAX);
	for (int f = 0; f < AF__MAX; f++)
		assert_non_null(audit_filter_names[f]);
}

static void test_action(void **state)
{
	struct audit_query q;
	char a64[65], a65[66], p65[66];

	(void)state;
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, "compliance.pii_stripped"));
	assert_false(q.action_prefix);
	assert_string_equal(q.action, "compliance.pii_stripped");

	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, "compliance.*"));
	assert_true(q.action_prefix);
	assert_string_equal(q.action, "compliance.");
	assert_string_equal(q.action_like, "compliance.%");

	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, "auth.login_*"));
	assert_string_equal(q.action_like, "auth.login!_%");

	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, "a*"));
	assert_string_equal(q.action_like, "a%");

	memset(a64, 'a', 64);
	a64[64] = '\0';
	memset(a65, 'a', 65);
	a65[65] = '\0';
	memcpy(p65, a64, 64);
	p65[64] = '*';
	p65[65] = '\0';
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, a64));
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, p65));
	assert_string_equal(q.action, a64);
	refused(AF_ACTION, a65, "at most 64");

	refused(AF_ACTION, "", "single *");
	refused(AF_ACTION, "*", "single *");
	refused(AF_ACTION, "compliance.**", "single *");
	refused(AF_ACTION, "*.exported", "single *");
	refused(AF_ACTION, "compliance.*.x", "single *");
	refused(AF_ACTION, "compliance.%", "single *");
	refused(AF_ACTION, "compliance.\\*", "single *");
	refused(AF_ACTION, "Compliance.exported", "single *");
	refused(AF_ACTION, "compliance exported", "single *");
	refused(AF_ACTION, "compliance.?", "single *");
}

static void test_actor(void **state)
{
	struct audit_query q;
	static const uint8_t id[16] = {0x01, 0x8f, 0x2b, 0x3c, 0x4d, 0x5e, 0x7f, 0x00, 0x81, 0x92,
	    0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8};

	(void)state;
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTOR, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8"));
	assert_true(q.actor_is_id);
	assert_memory_equal(q.actor_id, id, 16);
	assert_string_equal(q.actor_label, "");

	audit_query_init(&q);
	assert_true(set(&q, AF_ACTOR, "cli:root"));
	assert_false(q.actor_is_id);
	assert_string_equal(q.actor_label, "cli:root");

	audit_query_init(&q);
	assert_true(set(&q, AF_ACTOR_ID, "018F2B3C-4D5E-7F00-8192-A3B4C5D6E7F8"));
	assert_true(q.actor_is_id);
	/* one actor id only, whichever spelling */
	assert_false(set(&q, AF_ACTOR, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8"));
	assert_false(set(&q, AF_ACTOR, "system"));
	/* and in the other order: a label first, then an id */
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTOR, "cli:root"));
	assert_false(set(&q, AF_ACTOR_ID, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8"));

	refused(AF_ACTOR_ID, "cli:root", "UUID");
	refused(AF_ACTOR_ID, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f", "UUID");
	refused(AF_ACTOR, "", "actor label");
	refused(AF_ACTOR, "cli: root", "actor label");
	refused(AF_ACTOR, "cli:r\xc3\xb6ot", "actor label");
	refused(AF_ORG_ID, "not-a-uuid", "UUID");
	refused(AF_ORG_ID, "", "UUID");
}

static void test_text_filters(void **state)
{
	struct audit_query q;
	char t33[34], t65[66];

	(void)state;
	memset(t33, 'x', 33);
	t33[33] = '\0';
	memset(t65, 'x', 65);
	t65[65] = '\0';
	audit_query_init(&q);
	assert_true(set(&q, AF_TARGET_TYPE, "user"));
	assert_true(set(&q, AF_TARGET_ID, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8"));
	assert_true(set(&q, AF_REQUEST_ID, "0123456789abcdef0123456789abcdef"));
	assert_string_equal(q.target_type, "user");
	assert_string_equal(q.request_id, "0123456789abcdef0123456789abcdef");
	refused(AF_TARGET_TYPE, t33, "1 to 32");
	refused(AF_TARGET_TYPE, "", "1 to 32");
	refused(AF_TARGET_ID, t65, "1 to 64");
	refused(AF_TARGET_ID, "a b", "1 to 64");
	refused(AF_REQUEST_ID, t65, "X-Request-Id");
	refused(AF_REQUEST_ID, "\tabc", "X-Request-Id");
	refused(AF_IP, "203.0.113.0/33", "prefix length");
	refused(AF_IP, "not-an-ip", "IPv4 or IPv6");
}

static void test_times(void **state)
{
	struct audit_query q;
	enum audit_filter bad = AF__MAX;
	const char *why = NULL;

	(void)state;
	audit_query_init(&q);
	assert_true(set(&q, AF_SINCE, "2026-11-24T10:00:00Z"));
	assert_true(set(&q, AF_UNTIL, "2026-11-24T12:00:00+02:00"));
	assert_string_equal(q.since, "2026-11-24 10:00:00.000");
	assert_string_equal(q.until, "2026-11-24 10:00:00.000");
	/* until = since is an empty range, not an error */
	assert_true(audit_query_check(&q, &bad, &why));

	audit_query_init(&q);
	assert_true(set(&q, AF_SINCE, "2026-11-24T10:00:00.001Z"));
	assert_true(set(&q, AF_UNTIL, "2026-11-24T10:00:00Z"));
	assert_false(audit_query_check(&q, &bad, &why));
	assert_int_equal(bad, AF_UNTIL);
	assert_non_null(strstr(why, "since"));

	/* before 1970 and before the year 1000: the same instant for MariaDB
	 * (a DATETIME with four digits of year, not rounded towards 1970) */
	audit_query_init(&q);
	assert_true(set(&q, AF_SINCE, "1969-12-31T23:59:59.999Z"));
	assert_true(set(&q, AF_UNTIL, "0999-06-15T12:00:00Z"));
	assert_string_equal(q.since, "1969-12-31 23:59:59.999");
	assert_string_equal(q.until, "0999-06-15 12:00:00.000");

	refused(AF_SINCE, "yesterday", "RFC 3339");
	refused(AF_UNTIL, "2026-11-24", "RFC 3339");
	refused(AF_SINCE, "2026-13-01T00:00:00Z", "RFC 3339");

	/* the same filter twice */
	audit_query_init(&q);
	assert_true(set(&q, AF_IP, "203.0.113.1"));
	assert_false(set(&q, AF_IP, "203.0.113.2"));
}

static void test_paging(void **state)
{
	struct audit_query q;
	const char *bad = NULL, *why = NULL;
	char cur[128];

	(void)state;
	audit_query_init(&q);
	assert_true(audit_query_paging(&q, false, NULL, NULL, &bad, &why));
	assert_int_equal(q.limit, 50);
	assert_int_equal(q.before_seq, 0);
	assert_true(audit_query_paging(&q, true, NULL, NULL, &bad, &why));
	assert_int_equal(q.limit, 0);
	assert_true(audit_query_paging(&q, false, "500", NULL, &bad, &why));
	assert_false(audit_query_paging(&q, false, "501", NULL, &bad, &why));
	assert_string_equal(bad, "limit");
	assert_true(audit_query_paging(&q, true, "1000000", NULL, &bad, &why));
	assert_false(audit_query_paging(&q, true, "1000001", NULL, &bad, &why));
	assert_false(audit_query_paging(&q, false, "0", NULL, &bad, &why));
	assert_false(audit_query_paging(&q, false, "ten", NULL, &bad, &why));

	audit_cursor_make("1234", cur, sizeof(cur));
	assert_true(audit_query_paging(&q, false, NULL, cur, &bad, &why));
	assert_int_equal(q.before_seq, 1234);
	assert_false(audit_query_paging(&q, false, NULL, "not-a-cursor!", &bad, &why));
	assert_string_equal(bad, "cursor");
	/* another list's cursor, or a seq that is not one */
	cursor_encode("blocklist", "1234", cur, sizeof(cur));
	assert_false(audit_query_paging(&q, false, NULL, cur, &bad, &why));
	audit_cursor_make("0", cur, sizeof(cur));
	assert_false(audit_query_paging(&q, false, NULL, cur, &bad, &why));
	audit_cursor_make("12x", cur, sizeof(cur));
	assert_false(audit_query_paging(&q, false, NULL, cur, &bad, &why));
}

/* ---- the statement ----------------------------------------------------- */

static const char *const select_head =
    "SELECT " AUDIT_EVENT_COLUMNS " FROM audit_events WHERE 1 = 1";

static void test_sql_none(void **state)
{
	struct audit_query q;
	struct db_param p[AUDIT_QUERY_MAX_PARAMS];
	char sql[AUDIT_QUERY_SQL_MAX], want[AUDIT_QUERY_SQL_MAX];

	(void)state;
	audit_query_init(&q);
	assert_int_equal(audit_query_sql(&q, sql, sizeof(sql), p), 1);
	snprintf(want, sizeof(want), "%s ORDER BY seq DESC LIMIT ?", select_head);
	assert_string_equal(sql, want);
	assert_int_equal(p[0].type, DB_I64);
	assert_int_equal(p[0].i, 50);
	/* too small a buffer builds nothing */
	assert_int_equal(audit_query_sql(&q, sql, 40, p), 0);
	/* a window that reaches now keeps the primary key's order */
	assert_true(set(&q, AF_SINCE, "2026-01-01T00:00:00Z"));
	assert_int_equal(audit_query_sql(&q, sql, sizeof(sql), p), 2);
	snprintf(want, sizeof(want), "%s AND occurred_at >= ? ORDER BY seq DESC LIMIT ?",
	    select_head);
	assert_string_equal(sql, want);
	/* so does one open at its start, and a wide address range */
	audit_query_init(&q);
	assert_true(set(&q, AF_UNTIL, "2026-01-01T00:00:00Z"));
	audit_query_sql(&q, sql, sizeof(sql), p);
	assert_null(strstr(sql, "IGNORE INDEX"));
	audit_query_init(&q);
	assert_true(set(&q, AF_IP, "10.0.0.0/8"));
	audit_query_sql(&q, sql, sizeof(sql), p);
	assert_null(strstr(sql, "IGNORE INDEX"));
	/* a bounded window, or a /16, reads its index */
	audit_query_init(&q);
	assert_true(set(&q, AF_IP, "10.1.0.0/16"));
	audit_query_sql(&q, sql, sizeof(sql), p);
	assert_non_null(strstr(sql, "IGNORE INDEX FOR ORDER BY (PRIMARY)"));
	audit_query_init(&q);
	assert_true(set(&q, AF_SINCE, "2026-01-01T00:00:00Z"));
	assert_true(set(&q, AF_UNTIL, "2026-01-02T00:00:00Z"));
	audit_query_sql(&q, sql, sizeof(sql), p);
	assert_non_null(strstr(sql, "IGNORE INDEX FOR ORDER BY (PRIMARY)"));
}

static void test_sql_all(void **state)
{
	struct audit_query q;
	struct db_param p[AUDIT_QUERY_MAX_PARAMS];
	char sql[AUDIT_QUERY_SQL_MAX], want[AUDIT_QUERY_SQL_MAX];
	size_t np;

	(void)state;
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, "compliance.*"));
	assert_true(set(&q, AF_ACTOR, "cli:root"));
	assert_true(set(&q, AF_ORG_ID, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8"));
	assert_true(set(&q, AF_TARGET_TYPE, "contacts"));
	assert_true(set(&q, AF_TARGET_ID, "x1"));
	assert_true(set(&q, AF_IP, "::/0"));
	assert_true(set(&q, AF_REQUEST_ID, "r1"));
	assert_true(set(&q, AF_SINCE, "2026-01-01T00:00:00Z"));
	assert_true(set(&q, AF_UNTIL, "2026-02-01T00:00:00Z"));
	q.before_seq = 99;
	q.limit = 11;
	np = audit_query_sql(&q, sql, sizeof(sql), p);
	snprintf(want, sizeof(want),
	    "SELECT " AUDIT_EVENT_COLUMNS " FROM audit_events IGNORE INDEX FOR ORDER BY (PRIMARY)"
	    " WHERE 1 = 1 AND action LIKE ? ESCAPE '!' AND actor_label = ? AND org_id = ?"
	    " AND target_type = ? AND target_id = ? AND ip_bin BETWEEN ? AND ?"
	    " AND ip_bin NOT BETWEEN ? AND ? AND request_id = ? AND occurred_at >= ?"
	    " AND occurred_at < ? AND seq < ? ORDER BY seq DESC LIMIT ?");
	assert_string_equal(sql, want);
	assert_int_equal(np, 14);
	assert_string_equal(p[0].ptr, "compliance.%");
	assert_string_equal(p[1].ptr, "cli:root");
	assert_int_equal(p[2].type, DB_BLOB);
	assert_int_equal(p[2].len, 16);
	assert_string_equal(p[3].ptr, "contacts");
	assert_string_equal(p[4].ptr, "x1");
	assert_int_equal(p[5].type, DB_BLOB);
	assert_int_equal(p[6].type, DB_BLOB);
	assert_int_equal(((const uint8_t *)p[6].ptr)[0], 0xff);
	assert_int_equal(((const uint8_t *)p[7].ptr)[10], 0xff); /* ::ffff:0:0 */
	assert_int_equal(((const uint8_t *)p[8].ptr)[15], 0xff); /* ::ffff:255.255.255.255 */
	assert_string_equal(p[9].ptr, "r1");
	assert_string_equal(p[10].ptr, "2026-01-01 00:00:00.000");
	assert_string_equal(p[11].ptr, "2026-02-01 00:00:00.000");
	assert_int_equal(p[12].i, 99);
	assert_int_equal(p[13].i, 11);
	/* no value of the filters is in the SQL text */
	assert_null(strstr(sql, "compliance"));
	assert_null(strstr(sql, "cli:root"));
}

static void test_sql_exact(void **state)
{
	struct audit_query q;
	struct db_param p[AUDIT_QUERY_MAX_PARAMS];
	char sql[AUDIT_QUERY_SQL_MAX], want[AUDIT_QUERY_SQL_MAX];

	(void)state;
	audit_query_init(&q);
	assert_true(set(&q, AF_ACTION, "user.created"));
	assert_true(set(&q, AF_ACTOR_ID, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8"));
	assert_true(set(&q, AF_IP, "203.0.113.0/24"));
	assert_int_equal(audit_query_sql(&q, sql, sizeof(sql), p), 5);
	snprintf(want, sizeof(want),
	    "SELECT " AUDIT_EVENT_COLUMNS " FROM audit_events IGNORE INDEX FOR ORDER BY (PRIMARY)"
	    " WHERE 1 = 1 AND action = ? AND actor_id = ? AND ip_bin BETWEEN ? AND ?"
	    " ORDER BY seq DESC LIMIT ?");
	assert_string_equal(sql, want);
	assert_string_equal(p[0].ptr, "user.created");
	assert_int_equal(p[1].type, DB_BLOB);
}

/* about: the target, or an id a batch event names in its payload */
static void test_sql_about(void **state)
{
	struct audit_query q;
	struct db_param p[AUDIT_QUERY_MAX_PARAMS];
	char sql[AUDIT_QUERY_SQL_MAX], want[AUDIT_QUERY_SQL_MAX];

	(void)state;
	audit_query_init(&q);
	refused(AF_ABOUT, "not-a-uuid", "UUID");
	refused(AF_ABOUT, "%", "UUID");
	assert_true(set(&q, AF_ACTION, "compliance.*"));
	assert_true(set(&q, AF_ABOUT, "018F2B3C-4D5E-7F00-8192-A3B4C5D6E7F8"));
	assert_string_equal(q.about, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8");
	assert_int_equal(audit_query_sql(&q, sql, sizeof(sql), p), 4);
	snprintf(want, sizeof(want),
	    "%s AND action LIKE ? ESCAPE '!' AND (target_id = ? OR payload LIKE ?)"
	    " ORDER BY seq DESC LIMIT ?",
	    select_head);
	assert_string_equal(sql, want);
	assert_string_equal(p[1].ptr, "018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8");
	assert_string_equal(p[2].ptr, "%018f2b3c-4d5e-7f00-8192-a3b4c5d6e7f8%");
	assert_null(strstr(sql, "018f2b3c"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ip_range_v4),
	    cmocka_unit_test(test_ip_range_v6),
	    cmocka_unit_test(test_ip_range_errors),
	    cmocka_unit_test(test_like_escape),
	    cmocka_unit_test(test_filter_names),
	    cmocka_unit_test(test_action),
	    cmocka_unit_test(test_actor),
	    cmocka_unit_test(test_text_filters),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_paging),
	    cmocka_unit_test(test_sql_none),
	    cmocka_unit_test(test_sql_all),
	    cmocka_unit_test(test_sql_exact),
	    cmocka_unit_test(test_sql_about),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
