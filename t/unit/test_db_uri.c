/* db_uri_parse and db_uri_redacted: README "Configuration" OPSD_DB_URI forms, and the
 * password never leaking into an error or a redacted URI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "infra/db.h"

#define SECRET "hunter2Secret"

/* A URI that names the same database as another, or not. */
struct sameness {
	const char *uri;
	bool same;
};

/* db_uri_same_database(base, each case) is what the case says. */
static void check_same(const char *base, const struct sameness *cases, size_t n)
{
	struct db_uri a, b;
	char err[256];

	assert_true(db_uri_parse(base, &a, err, sizeof(err)));
	for (size_t i = 0; i < n; i++) {
		assert_true(db_uri_parse(cases[i].uri, &b, err, sizeof(err)));
		if (db_uri_same_database(&a, &b) != cases[i].same)
			fail_msg("%s: want %s", cases[i].uri, cases[i].same ? "same" : "different");
	}
}

/* A URI opsd must refuse, and a word its reason must hold. */
struct refusal {
	const char *uri;
	const char *reason;
};

/* Each refused with its reason, and no reason quotes the password. */
static void check_refused(const struct refusal *bad, size_t n)
{
	struct db_uri u;
	char err[256];

	for (size_t i = 0; i < n; i++) {
		memset(err, 0, sizeof(err));
		if (db_uri_parse(bad[i].uri, &u, err, sizeof(err)))
			fail_msg("accepted %s", bad[i].uri);
		if (!strstr(err, bad[i].reason))
			fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].uri, err, bad[i].reason);
		assert_null(strstr(err, SECRET));
		assert_null(strstr(err, "hunter"));
	}
}

static void test_tcp(void **state)
{
	struct db_uri u;
	char err[256];

	(void)state;
	assert_true(
	    db_uri_parse("mysql://opsd:" SECRET "@db.example.com:3307/opsd", &u, err, sizeof(err)));
	assert_string_equal(u.user, "opsd");
	assert_string_equal(u.pass, SECRET);
	assert_string_equal(u.host, "db.example.com");
	assert_int_equal(u.port, 3307);
	assert_string_equal(u.dbname, "opsd");
	assert_string_equal(u.socket, "");
}

static void test_defaults(void **state)
{
	struct db_uri u;
	char err[256];

	(void)state;
	/* OPSD_DEDICATED_DB_URI has no database name. */
	assert_true(db_uri_parse("mysql://root@10.0.0.5", &u, err, sizeof(err)));
	assert_string_equal(u.user, "root");
	assert_string_equal(u.pass, "");
	assert_string_equal(u.host, "10.0.0.5");
	assert_int_equal(u.port, 0);
	assert_string_equal(u.dbname, "");
	assert_true(db_uri_parse("MYSQL://h/", &u, err, sizeof(err)));
	assert_string_equal(u.user, "");
	assert_string_equal(u.host, "h");
}

static void test_percent_decoding(void **state)
{
	struct db_uri u;
	char err[256];

	(void)state;
	assert_true(
	    db_uri_parse("mysql://us%65r%2Bx:p%40ss%3Aw%2Frd%25@h/my%5Fdb", &u, err, sizeof(err)));
	assert_string_equal(u.user, "user+x");
	assert_string_equal(u.pass, "p@ss:w/rd%");
	assert_string_equal(u.dbname, "my_db");
	/* An unencoded '@' in the password: the last '@' ends the userinfo. */
	assert_true(db_uri_parse("mysql://u:p@ss@h:3306/d", &u, err, sizeof(err)));
	assert_string_equal(u.pass, "p@ss");
	assert_string_equal(u.host, "h");
	/* A ':' in the password after the first one is part of it. */
	assert_true(db_uri_parse("mysql://u:a:b@h/d", &u, err, sizeof(err)));
	assert_string_equal(u.user, "u");
	assert_string_equal(u.pass, "a:b");
}

static void test_ipv6(void **state)
{
	struct db_uri u;
	char err[256], red[512];

	(void)state;
	assert_true(db_uri_parse("mysql://u:" SECRET "@[::1]:3307/opsd", &u, err, sizeof(err)));
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 3307);
	assert_string_equal(u.dbname, "opsd");
	db_uri_redacted(&u, red, sizeof(red));
	assert_string_equal(red, "mysql://u:***@[::1]:3307/opsd");
	assert_true(db_uri_parse("mysql://u@[fe80::1%25eth0]/d", &u, err, sizeof(err)));
	assert_string_equal(u.host, "fe80::1%eth0");
	assert_int_equal(u.port, 0);
}

static void test_socket(void **state)
{
	struct db_uri u;
	char err[256], red[1024];

	(void)state;
	assert_true(db_uri_parse("mysql://opsd:" SECRET
	                         "@localhost/opsd?socket=/srv/var/run/mysqld%20x.sock",
	    &u, err, sizeof(err)));
	assert_string_equal(u.host, "localhost");
	assert_string_equal(u.dbname, "opsd");
	assert_string_equal(u.socket, "/srv/var/run/mysqld x.sock");
	db_uri_redacted(&u, red, sizeof(red));
	assert_string_equal(red,
	    "mysql://opsd:***@localhost/opsd?socket=/srv/var/run/mysqld x.sock");
	assert_true(
	    db_uri_parse("mysql://localhost/opsd?socket=/run/m.sock", &u, err, sizeof(err)));
	assert_string_equal(u.user, "");
	assert_string_equal(u.socket, "/run/m.sock");
}

/* Each of these is refused, and the refusal never quotes the password. */
static void test_refused(void **state)
{
	static const struct refusal bad[] = {
	    {"opsd:" SECRET "@localhost/opsd", "mysql://"},
	    {"postgres://opsd:" SECRET "@localhost/opsd", "mysql://"},
	    {"mysql:/opsd:" SECRET "@localhost/opsd", "mysql://"},
	    {"", "mysql://"},
	    {"mysql://opsd:" SECRET "@/opsd", "empty host"},
	    {"mysql://opsd:" SECRET "@:3306/opsd", "empty host"},
	    {"mysql://", "empty host"},
	    {"mysql://opsd:" SECRET "@h:0/opsd", "port"},
	    {"mysql://opsd:" SECRET "@h:65536/opsd", "port"},
	    {"mysql://opsd:" SECRET "@h:33a/opsd", "port"},
	    {"mysql://opsd:" SECRET "@h:/opsd", "port"},
	    {"mysql://opsd:" SECRET "@h:-1/opsd", "port"},
	    {"mysql://opsd:" SECRET "@::1/opsd", "brackets"},
	    /* An unencoded '/' cuts the password in two: the rest looks like a port. */
	    {"mysql://opsd:" SECRET "/x@h/opsd", "port"},
	    {"mysql://opsd:" SECRET "#x@h/opsd", "fragment"},
	    {"mysql://opsd:" SECRET "%zz@h/opsd", "password"},
	    {"mysql://opsd:" SECRET "%4@h/opsd", "password"},
	    {"mysql://opsd:" SECRET "%00@h/opsd", "password"},
	    {"mysql://op%0sd:" SECRET "@h/opsd", "user"},
	    {"mysql://opsd:" SECRET "@[::1/opsd", "IPv6"},
	    {"mysql://opsd:" SECRET "@[]:3306/opsd", "IPv6"},
	    {"mysql://opsd:" SECRET "@[::1]x/opsd", "IPv6"},
	    {"mysql://opsd:" SECRET "@h/opsd?sock=/x", "parameter"},
	    {"mysql://opsd:" SECRET "@h/opsd?socket=relative.sock", "socket"},
	    {"mysql://opsd:" SECRET "@h/opsd?socket=", "socket"},
	    {"mysql://opsd:" SECRET "@h/a/b", "database"},
	};
	struct db_uri u;
	char err[256];

	(void)state;
	check_refused(bad, sizeof(bad) / sizeof(bad[0]));
	assert_false(db_uri_parse(NULL, &u, err, sizeof(err)));
}

static void test_too_long(void **state)
{
	char uri[1024], err[256];
	struct db_uri u;

	(void)state;
	snprintf(uri, sizeof(uri), "mysql://%0200d:" SECRET "@h/d", 0);
	assert_false(db_uri_parse(uri, &u, err, sizeof(err)));
	assert_non_null(strstr(err, "user"));
	snprintf(uri, sizeof(uri), "mysql://u:%0300d@h/d", 7);
	assert_false(db_uri_parse(uri, &u, err, sizeof(err)));
	assert_null(strstr(err, "0007"));
	/* A tiny err buffer is still NUL-terminated. */
	assert_false(db_uri_parse("nope", &u, err, 4));
	assert_int_equal(strlen(err), 3);
}

static void test_redacted(void **state)
{
	struct db_uri u;
	char err[256], red[1024], small[16];

	(void)state;
	assert_true(db_uri_parse("mysql://opsd:" SECRET "@db:3306/opsd", &u, err, sizeof(err)));
	db_uri_redacted(&u, red, sizeof(red));
	assert_string_equal(red, "mysql://opsd:***@db:3306/opsd");
	assert_null(strstr(red, SECRET));
	db_uri_redacted(&u, small, sizeof(small));
	assert_null(strstr(small, "hunt"));
	assert_true(db_uri_parse("mysql://opsd@db/opsd", &u, err, sizeof(err)));
	db_uri_redacted(&u, red, sizeof(red));
	assert_string_equal(red, "mysql://opsd@db/opsd");
	assert_true(db_uri_parse("mysql://db", &u, err, sizeof(err)));
	db_uri_redacted(&u, red, sizeof(red));
	assert_string_equal(red, "mysql://db/");
}

/* Only the credentials may differ between OPSD_DB_URI and
 * OPSD_DB_URI_PREVIOUS. */
static void test_same_database(void **state)
{
	static const char *const base = "mysql://opsd:a@db.example.com:3307/opsd";
	static const struct sameness cases[] = {
	    {"mysql://opsd:b@db.example.com:3307/opsd", true},
	    {"mysql://other:b@db.example.com:3307/opsd", true},
	    {"mysql://opsd:a@db.example.com/opsd", false},
	    {"mysql://opsd:a@db2.example.com:3307/opsd", false},
	    {"mysql://opsd:a@db.example.com:3307/other", false},
	    {"mysql://opsd:a@localhost/opsd?socket=/run/x.sock", false},
	};
	struct db_uri a, b;
	char err[256];

	(void)state;
	check_same(base, cases, sizeof(cases) / sizeof(cases[0]));
	assert_true(
	    db_uri_parse("mysql://u:p@localhost/opsd?socket=/run/x.sock", &a, err, sizeof(err)));
	assert_true(
	    db_uri_parse("mysql://v:q@localhost/opsd?socket=/run/x.sock", &b, err, sizeof(err)));
	assert_true(db_uri_same_database(&a, &b));
	assert_true(
	    db_uri_parse("mysql://v:q@localhost/opsd?socket=/run/y.sock", &b, err, sizeof(err)));
	assert_false(db_uri_same_database(&a, &b));
}

/* Several hosts: the nodes of one cluster, tried in turn. */
static void test_hosts(void **state)
{
	struct db_uri u;
	char err[256], red[1024], label[300];
	unsigned port;

	(void)state;
	assert_true(db_uri_parse("mysql://opsd:" SECRET "@db1:3307,db2,[::1]:3309/opsd", &u, err,
	    sizeof(err)));
	assert_int_equal(db_uri_nhosts(&u), 3);
	assert_string_equal(u.host, "db1"); /* the first host as before */
	assert_int_equal(u.port, 3307);
	assert_string_equal(db_uri_host(&u, 0, &port), "db1");
	assert_int_equal(port, 3307);
	assert_string_equal(db_uri_host(&u, 1, &port), "db2");
	assert_int_equal(port, 0);
	assert_string_equal(db_uri_host(&u, 2, &port), "::1");
	assert_int_equal(port, 3309);
	assert_string_equal(u.dbname, "opsd");
	assert_string_equal(u.pass, SECRET);
	db_uri_redacted(&u, red, sizeof(red));
	assert_string_equal(red, "mysql://opsd:***@db1:3307,db2,[::1]:3309/opsd");
	db_uri_host_label(&u, 2, label, sizeof(label));
	assert_string_equal(label, "[::1]:3309");
	db_uri_host_label(&u, 1, label, sizeof(label));
	assert_string_equal(label, "db2");
	/* one host: nhosts 1, and a struct not filled by the parser counts as one */
	assert_true(db_uri_parse("mysql://u@h:1/d", &u, err, sizeof(err)));
	assert_int_equal(db_uri_nhosts(&u), 1);
	db_uri_host_label(&u, 0, label, sizeof(label));
	assert_string_equal(label, "h:1");
	{
		struct db_uri zero = {0};
		assert_int_equal(db_uri_nhosts(&zero), 1);
	}
	/* eight hosts is the most */
	assert_true(db_uri_parse("mysql://u:" SECRET "@a,b,c,d,e,f,g,h:8/d", &u, err, sizeof(err)));
	assert_int_equal(db_uri_nhosts(&u), 8);
	assert_string_equal(db_uri_host(&u, 7, &port), "h");
	assert_int_equal(port, 8);
	/* a percent-encoded comma is part of a name, not a separator */
	assert_true(db_uri_parse("mysql://u@a%2Cb/d", &u, err, sizeof(err)));
	assert_int_equal(db_uri_nhosts(&u), 1);
	/* a ',' in the password does not split anything */
	assert_true(db_uri_parse("mysql://u:p,q@a,b/d", &u, err, sizeof(err)));
	assert_string_equal(u.pass, "p,q");
	assert_int_equal(db_uri_nhosts(&u), 2);
}

/* Bad host lists are refused with a reason naming the host, never the
 * password. */
static void test_hosts_refused(void **state)
{
	static const struct refusal bad[] = {
	    {"mysql://opsd:" SECRET "@h1,,h3/opsd", "host 2 of the list: empty host"},
	    {"mysql://opsd:" SECRET "@h1,/opsd", "host 2 of the list: empty host"},
	    {"mysql://opsd:" SECRET "@,h2/opsd", "host 1 of the list: empty host"},
	    {"mysql://opsd:" SECRET "@h1,:3306/opsd", "host 2 of the list: empty host"},
	    {"mysql://opsd:" SECRET "@a,b,c,d,e,f,g,h,i/opsd", "too many hosts (at most 8"},
	    {"mysql://opsd:" SECRET "@h1:3306,h2:99999/opsd", "host 2 of the list: invalid port"},
	    {"mysql://opsd:" SECRET "@h1:3306,h2:x/opsd", "host 2 of the list: invalid port"},
	    {"mysql://opsd:" SECRET "@h1:3306,h2:/opsd", "host 2 of the list: invalid port"},
	    {"mysql://opsd:" SECRET "@h1,[::1/opsd", "host 2 of the list: malformed IPv6"},
	    {"mysql://opsd:" SECRET "@h1,[::1]x/opsd", "host 2 of the list: malformed IPv6"},
	    {"mysql://opsd:" SECRET "@[::1,h2]/opsd", "host 1 of the list: malformed IPv6"},
	    {"mysql://opsd:" SECRET "@h1,::1/opsd",
	        "host 2 of the list: IPv6 hosts go in brackets"},
	    {"mysql://opsd:" SECRET "@h1,[]/opsd", "host 2 of the list: malformed IPv6"},
	    {"mysql://opsd:" SECRET "@localhost,h2/opsd?socket=/run/m.sock", "single host"},
	    {"mysql://opsd:" SECRET "@h1,h2%zz/opsd", "host 2 of the list: malformed"},
	};
	(void)state;
	check_refused(bad, sizeof(bad) / sizeof(bad[0]));
}

/* The same servers in any order; a host more or less is another cluster. */
static void test_same_hosts(void **state)
{
	static const char *const base = "mysql://opsd:a@db1:3307,db2:3307,[::1]/opsd";
	static const struct sameness cases[] = {
	    {"mysql://opsd:b@db1:3307,db2:3307,[::1]/opsd", true},
	    {"mysql://opsd:b@[::1],db2:3307,db1:3307/opsd", true},
	    {"mysql://opsd:b@db1:3307,db2:3307/opsd", false},
	    {"mysql://opsd:b@db1:3307,db2:3307,[::1],db4/opsd", false},
	    {"mysql://opsd:b@db1:3307,db2:3308,[::1]/opsd", false},
	    {"mysql://opsd:b@db1:3307/opsd", false},
	    {"mysql://opsd:b@db1:3307,db2:3307,[::1]/other", false},
	};
	(void)state;
	check_same(base, cases, sizeof(cases) / sizeof(cases[0]));
	assert_null(db_uri_previous_problem(base, "mysql://opsd:b@[::1],db1:3307,db2:3307/opsd"));
	assert_non_null(db_uri_previous_problem(base, "mysql://opsd:b@db1:3307/opsd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_percent_decoding),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_socket),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_redacted),
	    cmocka_unit_test(test_same_database),
	    cmocka_unit_test(test_hosts),
	    cmocka_unit_test(test_hosts_refused),
	    cmocka_unit_test(test_same_hosts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
