#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/blocklist.h"
#include "core/blocklist_nginx.h"
#include "lib/buf.h"

/* Parses s and checks the error and, when it parsed, the normalised text. */
static void check(const char *s, enum cidr_err want, const char *norm)
{
	struct cidr c;
	char out[CIDR_STR_LEN];
	enum cidr_err e = cidr_parse(s, &c);

	if (e != want)
		fail_msg("cidr_parse(\"%s\") = %d, want %d", s ? s : "(null)", (int)e, (int)want);
	if (norm) {
		cidr_format(&c, out);
		if (strcmp(out, norm) != 0)
			fail_msg("cidr_parse(\"%s\") → \"%s\", want \"%s\"", s, out, norm);
	}
}

static void test_parse_ipv4(void **state)
{
	(void)state;
	check("203.0.113.0/24", CIDR_OK, "203.0.113.0/24");
	check("203.0.113.7", CIDR_OK, "203.0.113.7/32");
	check("203.0.113.7/32", CIDR_OK, "203.0.113.7/32");
	check("0.0.0.0/0", CIDR_OK, "0.0.0.0/0");
	check("10.0.0.0/8", CIDR_OK, "10.0.0.0/8");
	check("10.128.0.0/9", CIDR_OK, "10.128.0.0/9");
	check("127.0.0.2/32", CIDR_OK, "127.0.0.2/32");
	check("255.255.255.255/32", CIDR_OK, "255.255.255.255/32");
}

static void test_parse_ipv6(void **state)
{
	(void)state;
	check("2001:db8::/32", CIDR_OK, "2001:db8::/32");
	check("2001:DB8:0:0::/32", CIDR_OK, "2001:db8::/32");
	check("2001:db8::1", CIDR_OK, "2001:db8::1/128");
	check("::/0", CIDR_OK, "::/0");
	check("::1/128", CIDR_OK, "::1/128");
	check("fe80::/10", CIDR_OK, "fe80::/10");
	/* IPv4-mapped ranges become their IPv4 form. */
	check("::ffff:10.0.0.0/104", CIDR_OK, "10.0.0.0/8");
	check("::ffff:192.0.2.1", CIDR_OK, "192.0.2.1/32");
	check("::ffff:0:0/96", CIDR_OK, "0.0.0.0/0");
}

static void test_parse_errors(void **state)
{
	(void)state;
	check("", CIDR_MALFORMED, NULL);
	check(NULL, CIDR_MALFORMED, NULL);
	check("banana", CIDR_MALFORMED, NULL);
	check("1.2.3", CIDR_MALFORMED, NULL);
	check("1.2.3.4.5", CIDR_MALFORMED, NULL);
	check("256.1.1.1", CIDR_MALFORMED, NULL);
	check("01.2.3.4", CIDR_MALFORMED, NULL);
	check(" 1.2.3.4", CIDR_MALFORMED, NULL);
	check("1.2.3.4 ", CIDR_MALFORMED, NULL);
	check("1.2.3.4/", CIDR_MALFORMED, NULL);
	check("/24", CIDR_MALFORMED, NULL);
	check("1.2.3.0/24/1", CIDR_MALFORMED, NULL);
	check("1.2.3.0/-1", CIDR_MALFORMED, NULL);
	check("1.2.3.0/+8", CIDR_MALFORMED, NULL);
	check("1.2.3.0/2x", CIDR_MALFORMED, NULL);
	check("1.2.3.0/ 24", CIDR_MALFORMED, NULL);
	check("2001:db8:::/32", CIDR_MALFORMED, NULL);
	check("fe80::1%eth0", CIDR_MALFORMED, NULL);
	check("1.2.3.4;deny all", CIDR_MALFORMED, NULL);
	check("1.2.3.4\n", CIDR_MALFORMED, NULL);
	check("0123456789012345678901234567890123456789012345678901234567890123456789",
	    CIDR_MALFORMED, NULL);
	check("1.2.3.0/33", CIDR_PREFIX_RANGE, NULL);
	check("1.2.3.0/999", CIDR_PREFIX_RANGE, NULL);
	check("1.2.3.0/99999999999999999999", CIDR_PREFIX_RANGE, NULL);
	check("2001:db8::/129", CIDR_PREFIX_RANGE, NULL);
	/* Host bits are refused; out holds the network to suggest. */
	check("10.0.0.5/8", CIDR_HOST_BITS, "10.0.0.0/8");
	check("203.0.113.7/24", CIDR_HOST_BITS, "203.0.113.0/24");
	check("2001:db8::1/32", CIDR_HOST_BITS, "2001:db8::/32");
	check("10.0.0.1/31", CIDR_HOST_BITS, "10.0.0.0/31");
}

static bool contains(const char *cidr, const char *addr)
{
	struct cidr c;
	uint8_t a[16];

	assert_int_equal(cidr_parse(cidr, &c), CIDR_OK);
	assert_true(addr_parse16(addr, a));
	return cidr_contains(&c, a);
}

static void test_contains(void **state)
{
	uint8_t a[16];

	(void)state;
	assert_true(contains("203.0.113.0/24", "203.0.113.0"));
	assert_true(contains("203.0.113.0/24", "203.0.113.255"));
	assert_false(contains("203.0.113.0/24", "203.0.114.0"));
	assert_false(contains("203.0.113.0/24", "203.0.112.255"));
	assert_true(contains("127.0.0.2/32", "127.0.0.2"));
	assert_false(contains("127.0.0.2/32", "127.0.0.1"));
	assert_true(contains("10.128.0.0/9", "10.200.1.1"));
	assert_false(contains("10.128.0.0/9", "10.127.255.255"));
	assert_true(contains("0.0.0.0/0", "198.51.100.1"));
	/* An IPv6 socket's IPv4 client matches IPv4 entries. */
	assert_true(contains("198.51.100.0/24", "::ffff:198.51.100.9"));
	assert_false(contains("198.51.100.0/24", "::ffff:198.51.101.9"));
	/* …but IPv4 entries never match real IPv6 clients, nor the reverse. */
	assert_false(contains("0.0.0.0/0", "2001:db8::1"));
	assert_false(contains("2001:db8::/32", "192.0.2.1"));
	assert_false(contains("::/0", "192.0.2.1")); /* as nginx: v4 clients meet v4 rules */
	assert_false(contains("::/0", "::ffff:192.0.2.1"));
	assert_true(contains("::/0", "::1"));
	assert_true(contains("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(contains("2001:db8::/32", "2001:db9::1"));
	assert_true(contains("2001:db8::1/128", "2001:db8::1"));
	assert_false(contains("2001:db8::1/128", "2001:db8::2"));
	assert_true(contains("fe80::/10", "febf::1"));
	assert_false(contains("fe80::/10", "fec0::1"));

	assert_false(addr_parse16(NULL, a));
	assert_false(addr_parse16("", a));
	assert_false(addr_parse16("unix:", a));
	assert_false(addr_parse16("1.2.3.4/32", a));
}

static void test_comment(void **state)
{
	char out[64], small[8];

	(void)state;
	blocklist_comment("credential stuffing, ticket INC-42", out, sizeof(out));
	assert_string_equal(out, "credential stuffing, ticket INC-42");
	blocklist_comment("a;\n}deny all;\r\n# \"x\" 'y' $z `w` \\", out, sizeof(out));
	assert_string_equal(out, "a deny all x y z w");
	assert_null(strpbrk(out, ";#{}'\"$`\\\n\r"));
	blocklist_comment("  \t lots   of\tspace  ", out, sizeof(out));
	assert_string_equal(out, "lots of space");
	blocklist_comment("K\xc3\xb6ln \xe2\x80\x94 bots", out, sizeof(out));
	assert_string_equal(out, "K?ln ? bots");
	blocklist_comment(";;;", out, sizeof(out));
	assert_string_equal(out, "");
	blocklist_comment(NULL, out, sizeof(out));
	assert_string_equal(out, "");
	blocklist_comment("abcdefghijkl", small, sizeof(small));
	assert_string_equal(small, "abcdefg");
}

static void test_nginx_line(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_true(blocklist_nginx_line(&b, "203.0.113.0/24", "bots;\n}", NULL));
	assert_true(blocklist_nginx_line(&b, "2001:db8::/32", "", "2030-01-01T00:00:00.000Z"));
	assert_false(blocklist_nginx_line(&b, "1.2.3.4; allow all", "x", NULL));
	assert_string_equal(buf_cstr(&b), "deny 203.0.113.0/24;  # bots\n"
	                                  "deny 2001:db8::/32;  # (no reason) (until "
	                                  "2030-01-01T00:00:00.000Z)\n");
	buf_free(&b);
}

/* The firewall formats of GET /security/blocklist?format=: only valid ranges get out,
 * normalised, each family where its tool wants it. */
static const char *const fw_list[] = {"203.0.113.0/24", "2001:db8::/32", "10.0.0.0/8",
    "1.2.3.4; accept", "::ffff:198.51.100.0/120"};
#define FW_NOW "2026-12-01T00:00:00.000Z"

static const char *fw(enum blocklist_format f, const char *const *list, size_t n, struct buf *b)
{
	buf_reset(b);
	blocklist_firewall_render(f, list, n, FW_NOW, b);
	return buf_cstr(b);
}

static void test_firewall_formats(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_string_equal(fw(BF_PLAIN, fw_list, 5, &b),
	    "203.0.113.0/24\n2001:db8::/32\n10.0.0.0/8\n198.51.100.0/24\n");
	assert_string_equal(fw(BF_PLAIN, fw_list, 0, &b), "");
	assert_string_equal(fw(BF_IPTABLES, fw_list, 5, &b),
	    "# opsd blocklist: 3 IPv4 ranges, generated at " FW_NOW "\n"
	    "# (GET /security/blocklist?format=iptables). Load with: iptables-restore --noflush < "
	    "FILE\n"
	    "# It refills the chain OPSD-BLOCKLIST; send traffic through it once with:\n"
	    "#   iptables -I INPUT -j OPSD-BLOCKLIST\n"
	    "*filter\n"
	    ":OPSD-BLOCKLIST - [0:0]\n"
	    "-A OPSD-BLOCKLIST -s 203.0.113.0/24 -j DROP\n"
	    "-A OPSD-BLOCKLIST -s 10.0.0.0/8 -j DROP\n"
	    "-A OPSD-BLOCKLIST -s 198.51.100.0/24 -j DROP\n"
	    "COMMIT\n");
	assert_non_null(strstr(fw(BF_IP6TABLES, fw_list, 5, &b),
	    ":OPSD-BLOCKLIST - [0:0]\n-A OPSD-BLOCKLIST -s 2001:db8::/32 -j DROP\nCOMMIT\n"));
	assert_non_null(strstr(buf_cstr(&b), "ip6tables-restore --noflush"));
	assert_string_equal(fw(BF_NFT, fw_list, 5, &b),
	    "# opsd blocklist: 3 IPv4 and 1 IPv6 ranges, generated at " FW_NOW "\n"
	    "# (GET /security/blocklist?format=nft). Load with: nft -f FILE\n"
	    "# It replaces the table inet opsd_blocklist, whose input chain drops these sources.\n"
	    "table inet opsd_blocklist\n"
	    "delete table inet opsd_blocklist\n"
	    "table inet opsd_blocklist {\n"
	    "\tset v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n"
	    "\t\telements = { 203.0.113.0/24, 10.0.0.0/8, 198.51.100.0/24 }\n\t}\n"
	    "\tset v6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\tauto-merge\n"
	    "\t\telements = { 2001:db8::/32 }\n\t}\n"
	    "\tchain input {\n"
	    "\t\ttype filter hook input priority filter - 10; policy accept;\n"
	    "\t\tip saddr @v4 drop\n\t\tip6 saddr @v6 drop\n\t}\n"
	    "}\n");
	/* an empty set has no elements line: nft refuses "elements = { }" */
	assert_null(strstr(fw(BF_NFT, fw_list, 1, &b), "elements = { }"));
	assert_null(strstr(buf_cstr(&b), "2001:db8"));
	assert_non_null(strstr(buf_cstr(&b), "1 IPv4 and 0 IPv6 ranges"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ipv4),
	    cmocka_unit_test(test_parse_ipv6),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_contains),
	    cmocka_unit_test(test_comment),
	    cmocka_unit_test(test_nginx_line),
	    cmocka_unit_test(test_firewall_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
