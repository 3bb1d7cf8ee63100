#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infra/config.h"
#include "lib/util.h"

#define DB "mysql://opsd:pw-SECRETVALUE@localhost/opsd?socket=/tmp/x.sock"
#define SECRET32 "0123456789abcdef0123456789abcdef-SESSIONSECRET"
#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* A fake environment: NULL-terminated name, value pairs. */
static const char *const *env;

static const char *lookup(const char *name, void *ctx)
{
	(void)ctx;
	for (const char *const *p = env; p[0] != NULL; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

struct reports {
	char text[8192];
	int errors, warnings;
};

static void collect(bool is_error, const char *line, void *ctx)
{
	struct reports *r = ctx;
	size_t used = strlen(r->text);
	assert_null(strchr(line, '\n'));
	snprintf(r->text + used, sizeof(r->text) - used, "%s %s\n", is_error ? "E" : "W", line);
	if (is_error)
		r->errors++;
	else
		r->warnings++;
}

static int load(struct opsd_config *c, struct reports *r, const char *const *vars)
{
	memset(r, 0, sizeof(*r));
	env = vars;
	int n = config_load_from(c, lookup, NULL, collect, r);
	assert_int_equal(n, r->errors);
	/* no secret value ever appears in a report */
	static const char *const secrets[] = {"pw-SECRETVALUE", "SESSIONSECRET", "SMTPPW",
	    "KEYKEY"};
	for (size_t i = 0; i < countof(secrets); i++)
		if (strstr(r->text, secrets[i]) != NULL)
			fail_msg("secret in report: %s", r->text);
	return n;
}

static void expect_error(const char *const *vars, const char *line)
{
	struct opsd_config c;
	struct reports r;
	int n = load(&c, &r, vars);
	if (n < 1 || strstr(r.text, line) == NULL)
		fail_msg("want \"%s\", got (%d):\n%s", line, n, r.text);
	config_free(&c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct opsd_config c;
	struct reports r;
	const char *const vars[] = {"OPSD_DB_URI", DB, NULL};
	assert_int_equal(load(&c, &r, vars), 0);
	/* The one warning: no SESSION_SECRET outside production means a
	 * random one for this run. */
	assert_int_equal(r.warnings, 1);
	assert_true(c.session_secret_generated);
	assert_int_equal(strlen(c.session_secret), 64);
	assert_int_equal(c.scrypt_ln, 17);
	assert_int_equal(c.login_max_failures, 5);
	assert_int_equal(c.login_ip_max_failures, 50);
	assert_int_equal(c.password_slots, 0);
	assert_int_equal(c.env, ENV_DEVELOPMENT);
	assert_string_equal(c.var_dir, "./var");
	assert_true(str_has_prefix(c.sql_dir, "/") && strstr(c.sql_dir, "/sql") != NULL);
	assert_string_equal(c.listen, "unix:./var/run/opsd.sock");
	assert_string_equal(c.pid_file, "./var/run/opsd.pid");
	assert_string_equal(c.allowed_clients, "127.0.0.1");
	assert_string_equal(c.user, "www-data");
	assert_int_equal(c.pm, PM_STATIC);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(c.workers, cpus < 1 ? 2 : (cpus > 512 ? 1024 : 2 * cpus));
	assert_int_equal(c.min_spare, 1);
	assert_int_equal(c.max_spare, 3);
	assert_int_equal(c.max_requests, 10000);
	assert_int_equal(c.request_timeout, 30);
	assert_int_equal(c.slowlog_ms, 1000);
	assert_int_equal(c.cache_poll_ms, 250);
	assert_false(c.legal_enforce);
	assert_int_equal(c.session_idle_min, 30);
	assert_int_equal(c.session_absolute_h, 8);
	assert_int_equal(c.smtp_port, 587);
	assert_int_equal(c.smtp_secure, SMTP_STARTTLS);
	assert_true(c.smtp_test_mode);
	assert_int_equal(c.audit_retention_days, 3650);
	assert_string_equal(c.log_target, "stderr");
	assert_string_equal(c.db_uri, DB);
	assert_null(c.dedicated_db_uri);
	assert_null(c.data_key);
	config_free(&c);
	assert_null(c.db_uri);
	assert_null(c.var_dir);
}

static void test_values(void **state)
{
	(void)state;
	struct opsd_config c;
	struct reports r;
	const char *const vars[] = {
	    "OPSD_DB_URI",
	    DB,
	    "OPSD_ENV",
	    "Test",
	    "OPSD_VAR",
	    "/srv/opsd",
	    "OPSD_PM",
	    "dynamic",
	    "OPSD_WORKERS",
	    "8",
	    "OPSD_MIN_SPARE",
	    "2",
	    "OPSD_MAX_SPARE",
	    "8",
	    "OPSD_MAX_REQUESTS",
	    "0",
	    "LEGAL_ENFORCE",
	    "yes",
	    "SMTP_TEST_MODE",
	    "off",
	    "OPSD_LISTEN",
	    "127.0.0.1:9000",
	    "SESSION_SECRET",
	    SECRET32,
	    "OPSD_LOG",
	    "",
	    "OPSD_DATA_KEY",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	    NULL,
	};
	assert_int_equal(load(&c, &r, vars), 0);
	assert_int_equal(c.env, ENV_TEST);
	assert_string_equal(c.pid_file, "/srv/opsd/run/opsd.pid");
	assert_string_equal(c.listen, "127.0.0.1:9000");
	assert_int_equal(c.pm, PM_DYNAMIC);
	assert_int_equal(c.workers, 8);
	assert_int_equal(c.max_requests, 0);
	assert_true(c.legal_enforce);
	assert_false(c.smtp_test_mode);
	assert_string_equal(c.session_secret, SECRET32);
	assert_string_equal(c.log_target, "stderr"); /* empty means unset */
	assert_string_equal(config_env_name(c.env), "test");
	config_free(&c);
}

static void test_bools(void **state)
{
	(void)state;
	static const char *const truths[] = {"1", "true", "TRUE", "yes", "on", "On"};
	static const char *const falses[] = {"0", "false", "no", "off", "OFF"};
	struct opsd_config c;
	struct reports r;
	for (size_t i = 0; i < countof(truths) + countof(falses); i++) {
		bool want = i < countof(truths);
		const char *v = want ? truths[i] : falses[i - countof(truths)];
		const char *const vars[] = {"OPSD_DB_URI", DB, "LEGAL_ENFORCE", v, NULL};
		assert_int_equal(load(&c, &r, vars), 0);
		assert_int_equal(c.legal_enforce, want);
		config_free(&c);
	}
	const char *const bad[] = {"OPSD_DB_URI", DB, "LEGAL_ENFORCE", "2", NULL};
	expect_error(bad, "LEGAL_ENFORCE: must be 1/0, true/false, yes/no or on/off (got \"2\")");
}

static void test_bad_values(void **state)
{
	(void)state;
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", "abc", NULL};
		expect_error(v,
		    "OPSD_WORKERS: must be an integer between 1 and 1024 (got \"abc\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", "0", NULL};
		expect_error(v, "OPSD_WORKERS: must be an integer between 1 and 1024 (got \"0\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", "1025", NULL};
		expect_error(v, "OPSD_WORKERS: must be an integer");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", "4x", NULL};
		expect_error(v, "(got \"4x\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", " 4", NULL};
		expect_error(v, "(got \" 4\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_MAX_REQUESTS",
		    "99999999999999999999999", NULL};
		expect_error(v, "OPSD_MAX_REQUESTS: must be an integer between 0 and 1000000000");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_REQUEST_TIMEOUT", "-1", NULL};
		expect_error(v, "OPSD_REQUEST_TIMEOUT: must be an integer between 0 and 3600");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_AUDIT_RETENTION_DAYS", "0", NULL};
		expect_error(v,
		    "OPSD_AUDIT_RETENTION_DAYS: must be an integer between 1 and 36500");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_ENV", "prod", NULL};
		expect_error(v,
		    "OPSD_ENV: must be one of: development, test, production (got \"prod\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_PM", "ondemand", NULL};
		expect_error(v, "OPSD_PM: must be one of: static, dynamic (got \"ondemand\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "SMTP_SECURE", "tls", NULL};
		expect_error(v, "SMTP_SECURE: must be one of: starttls, none (got \"tls\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_LISTEN", "nowhere", NULL};
		expect_error(v, "OPSD_LISTEN: must be unix:/path or host:port (got \"nowhere\")");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_LISTEN", "host:99999", NULL};
		expect_error(v, "OPSD_LISTEN: must be unix:/path or host:port");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", "a\nb\"c", NULL};
		expect_error(v, "(got \"a?b?c\")"); /* one line, no raw quotes */
	}
	/* OPSD_CLI_ROLES's shape (role names are core/authz.c's to check) */
	static const char *const bad_cli_roles[][2] = {
	    {"root", "each entry must be user:role"},
	    {"root:", "several roles joined with +"},
	    {":superadmin", "each entry must be user:role"},
	    {"-x:superadmin", "each entry must be user:role"},
	    {"root:superadmin+", "several roles joined with +"},
	    {"root:Superadmin", "several roles joined with +"},
	    {"root:superadmin;alice:member", "entries are separated by commas"},
	    {"root:superadmin,", "each entry must be user:role"},
	    {"root:superadmin,root:member", "a user is listed twice"},
	    {"root superadmin", "each entry must be user:role"},
	};
	for (size_t i = 0; i < countof(bad_cli_roles); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_CLI_ROLES", bad_cli_roles[i][0],
		    NULL};
		expect_error(v, bad_cli_roles[i][1]);
	}
}

static void test_cli_roles(void **state)
{
	static const char *const good[] = {"root:superadmin",
	    "root:superadmin, alice:security_admin+compliance ,bob.x-1:member",
	    "www-data:platform_admin", "rootx:member,root:superadmin", "root:nosuchrole"};
	struct opsd_config c;
	struct reports r;

	(void)state;
	for (size_t i = 0; i < countof(good); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_CLI_ROLES", good[i], NULL};

		if (load(&c, &r, v) != 0)
			fail_msg("\"%s\" refused:\n%s", good[i], r.text);
		assert_string_equal(c.cli_roles, good[i]);
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, NULL};

		assert_int_equal(load(&c, &r, v), 0);
		assert_null(c.cli_roles);
		config_free(&c);
	}
}

static void test_cross_rules(void **state)
{
	(void)state;
	{
		const char *const v[] = {NULL};
		expect_error(v, "OPSD_DB_URI: required");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", "postgres://pw-SECRETVALUE@h/db", NULL};
		expect_error(v, "OPSD_DB_URI: must look like mysql://");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", "mysql://u:pw-SECRETVALUE@/db", NULL};
		expect_error(v, "OPSD_DB_URI: must look like mysql://");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", "mysql://u:pw-SECRETVALUE@h:0/db", NULL};
		expect_error(v, "OPSD_DB_URI: must look like mysql://");
	}
	{
		/* the nodes of a cluster; the reason names the host at fault */
		const char *const v[] = {"OPSD_DB_URI",
		    "mysql://u:pw-SECRETVALUE@db1:3306,[::1]:3307,db3/opsd", NULL};
		struct opsd_config c;
		struct reports r;
		assert_int_equal(load(&c, &r, v), 0);
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", "mysql://u:pw-SECRETVALUE@db1,db2:0/db",
		    NULL};
		expect_error(v, "OPSD_DB_URI: must look like mysql://");
		expect_error(v, "host 2 of the list: invalid port");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DEDICATED_DB_URI",
		    "mysql://pw-SECRETVALUE", NULL};
		struct opsd_config c;
		struct reports r;
		assert_int_equal(load(&c, &r, v), 0); /* a host alone is enough */
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_ENV", "production", NULL};
		expect_error(v, "SESSION_SECRET: required in production (>= 32 bytes)");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "SESSION_SECRET", "short-SESSIONSECRET",
		    NULL};
		expect_error(v, "SESSION_SECRET: must be at least 32 bytes");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "SMTP_PORT", "465", NULL};
		expect_error(v,
		    "SMTP_PORT: 465 (implicit TLS) is not supported by libESMTP; use 587 "
		    "with SMTP_SECURE=starttls");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "SMTP_SECURE", "none", "SMTP_SERVER",
		    "smtp.example.com", NULL};
		expect_error(v, "SMTP_SECURE=none is only allowed with a loopback SMTP_SERVER");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_PM", "dynamic", "OPSD_WORKERS",
		    "2", NULL};
		expect_error(v, "OPSD_MAX_SPARE: dynamic pool needs OPSD_MIN_SPARE (1) <= "
		                "OPSD_MAX_SPARE (3) <= OPSD_WORKERS (2)");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_PM", "dynamic", "OPSD_WORKERS",
		    "9", "OPSD_MIN_SPARE", "5", "OPSD_MAX_SPARE", "4", NULL};
		expect_error(v, "OPSD_MAX_SPARE: dynamic pool needs");
	}
	{
		/* the same numbers are fine for a static pool */
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_WORKERS", "2", NULL};
		struct opsd_config c;
		struct reports r;
		assert_int_equal(load(&c, &r, v), 0);
		config_free(&c);
	}
}

/* OPSD_DB_URI_PREVIOUS: the credentials being rotated out, for the same
 * server and database only. */
static void test_db_uri_previous(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "mysql://opsd:old-pw-SECRETVALUE@localhost/opsd?socket=/tmp/x.sock",
	    "mysql://other:old-pw-SECRETVALUE@localhost/opsd?socket=/tmp/x.sock",
	};
	static const char *const elsewhere[] = {
	    "mysql://opsd:old-pw-SECRETVALUE@localhost/other?socket=/tmp/x.sock",
	    "mysql://opsd:old-pw-SECRETVALUE@localhost/opsd?socket=/tmp/y.sock",
	    "mysql://opsd:old-pw-SECRETVALUE@db.example.com/opsd",
	};
	struct opsd_config c;
	struct reports r;
	for (size_t i = 0; i < countof(good); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DB_URI_PREVIOUS", good[i], NULL};
		if (load(&c, &r, v) != 0)
			fail_msg("rejected previous URI #%zu: %s", i, r.text);
		assert_string_equal(c.db_uri_previous, good[i]);
		config_free(&c);
	}
	for (size_t i = 0; i < countof(elsewhere); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DB_URI_PREVIOUS", elsewhere[i],
		    NULL};
		expect_error(v, "OPSD_DB_URI_PREVIOUS: must name the same server and database as "
		                "OPSD_DB_URI (only the user and password may differ)");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DB_URI_PREVIOUS",
		    "postgres://u:pw-SECRETVALUE@h/db", NULL};
		expect_error(v, "OPSD_DB_URI_PREVIOUS: must look like mysql://");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DB_URI_PREVIOUS",
		    "mysql://u:pw-SECRETVALUE@h/db?sock=/x", NULL};
		expect_error(v, "OPSD_DB_URI_PREVIOUS: must look like mysql://");
	}
	assert_true(config_is_secret("OPSD_DB_URI_PREVIOUS"));
}

static void test_data_key(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* bytes 0..31 */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
	};
	static const char *const bad[] = {
	    "KEYKEY",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeKEYKEY",
	    "0011223344556677889900112233445566778899aabbccddeeff00112233445g",
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",     /* 31 bytes */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", /* 34 bytes */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=KEYKEY",
	};
	struct opsd_config c;
	struct reports r;
	for (size_t i = 0; i < countof(good); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DATA_KEY", good[i], NULL};
		if (load(&c, &r, v) != 0)
			fail_msg("rejected key #%zu: %s", i, r.text);
		config_free(&c);
	}
	for (size_t i = 0; i < countof(bad); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DATA_KEY", bad[i], NULL};
		expect_error(v, "OPSD_DATA_KEY: must be 32 bytes as 64 hex characters or base64");
	}
}

/* The key ring: OPSD_DATA_KEY first, then OPSD_DATA_KEY_PREVIOUS in order;
 * production needs the current key. */
static void test_data_key_ring(void **state)
{
	(void)state;
	struct opsd_config c;
	struct reports r;
	uint8_t keys[9][32], want[32];
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_ENV", "production",
		    "SESSION_SECRET", SECRET32, NULL};
		expect_error(v, "OPSD_DATA_KEY: required in production (32 bytes as 64 hex "
		                "characters or base64)");
		assert_int_equal(load(&c, &r, v), 1); /* the one line names it */
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DATA_KEY", KEY_A,
		    "OPSD_DATA_KEY_PREVIOUS",
		    " AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= ,"
		    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100",
		    NULL};
		assert_int_equal(load(&c, &r, v), 0);
		assert_int_equal(config_data_keys(&c, keys, 9), 3);
		assert_int_equal(keys[0][0], 0x00);
		assert_int_equal(keys[0][31], 0xff);
		for (int i = 0; i < 32; i++)
			want[i] = (uint8_t)i;
		assert_memory_equal(keys[1], want, 32);
		assert_int_equal(keys[2][0], 0xff);
		assert_int_equal(config_data_keys(&c, keys, 2), 2); /* at most max */
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, NULL};
		assert_int_equal(load(&c, &r, v), 0);
		assert_int_equal(config_data_keys(&c, keys, 9), 0);
		config_free(&c);
	}
	static const char *const bad[] = {
	    "KEYKEY",
	    KEY_A ",KEYKEY",
	    KEY_A ",," KEY_A,
	    KEY_A "," KEY_A "," KEY_A "," KEY_A "," KEY_A "," KEY_A "," KEY_A "," KEY_A "," KEY_A,
	};
	for (size_t i = 0; i < countof(bad); i++) {
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DATA_KEY", KEY_A,
		    "OPSD_DATA_KEY_PREVIOUS", bad[i], NULL};
		expect_error(v, "OPSD_DATA_KEY_PREVIOUS: must be a comma list of at most 8 keys");
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_DATA_KEY_PREVIOUS", KEY_A, NULL};
		expect_error(v, "OPSD_DATA_KEY_PREVIOUS: set without OPSD_DATA_KEY");
	}
}

static void test_smtp_test_mode(void **state)
{
	(void)state;
	struct opsd_config c;
	struct reports r;
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_ENV", "production",
		    "SESSION_SECRET", SECRET32, "OPSD_DATA_KEY", KEY_A, NULL};
		assert_int_equal(load(&c, &r, v), 0);
		assert_false(c.smtp_test_mode);
		assert_int_equal(r.warnings, 0);
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_ENV", "production",
		    "SESSION_SECRET", SECRET32, "OPSD_DATA_KEY", KEY_A, "SMTP_TEST_MODE", "1",
		    NULL};
		assert_int_equal(load(&c, &r, v), 0);
		assert_true(c.smtp_test_mode);
		assert_int_equal(r.warnings, 1);
		assert_non_null(strstr(r.text, "W SMTP_TEST_MODE: on in production"));
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "OPSD_ENV", "production",
		    "SESSION_SECRET", SECRET32, "OPSD_DATA_KEY", KEY_A, "SMTP_TEST_MODE", "0", "CI",
		    "true", NULL};
		assert_int_equal(load(&c, &r, v), 0);
		assert_true(c.smtp_test_mode); /* forced by CI */
		assert_int_equal(r.warnings, 1);
		config_free(&c);
	}
	{
		const char *const v[] = {"OPSD_DB_URI", DB, "SMTP_TEST_MODE", "0", "CI", "", NULL};
		assert_int_equal(load(&c, &r, v), 0);
		assert_false(c.smtp_test_mode); /* empty CI does not count */
		config_free(&c);
	}
}

static void test_secret_names(void **state)
{
	(void)state;
	static const char *const secrets[] = {"OPSD_DB_URI", "OPSD_DEDICATED_DB_URI",
	    "OPSD_DATA_KEY", "OPSD_DATA_KEY_PREVIOUS", "SESSION_SECRET", "SMTP_PASS"};
	for (size_t i = 0; i < countof(secrets); i++)
		assert_true(config_is_secret(secrets[i]));
	assert_false(config_is_secret("OPSD_WORKERS"));
	assert_false(config_is_secret("SMTP_USER"));
	assert_false(config_is_secret("NOPE"));
	assert_false(config_is_secret(NULL));
	size_t n = 0;
	for (; config_variable_name(n) != NULL; n++)
		assert_true(strlen(config_variable_name(n)) > 2);
	assert_int_equal(n, 58); /* README "Configuration", scrypt cost, login throttling, SMTP
	                            retries, migration throttle and give-up, rate limits, nginx's
	                            zones, API token lifetime, opsctl's roles, previous data keys,
	                            the previous database password, the nginx process's three, the
	                            cache poll, the password check slots */
	assert_string_equal(config_env_name(ENV_PRODUCTION), "production");
	assert_string_equal(config_env_name(ENV_DEVELOPMENT), "development");
}

/* Env files. */
static char dir[] = "/tmp/opsd-test-config-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

struct kv {
	char text[4096];
};

static void pair(const char *key, const char *value, void *ctx)
{
	struct kv *kv = ctx;
	size_t used = strlen(kv->text);
	snprintf(kv->text + used, sizeof(kv->text) - used, "%s=[%s]\n", key, value);
}

static void test_env_file_syntax(void **state)
{
	(void)state;
	struct kv kv = {""};
	char err[256] = "";
	const char *p = write_file("a.env",
	    "# comment\n"
	    "\n"
	    "   \t\n"
	    "A=1\n"
	    "export B=two words  \n"
	    "C=\"quoted # not a comment\"  # comment\n"
	    "D='single $HOME \\n'\n"
	    "E=\"esc \\\" \\\\ \\n end\"\r\n"
	    "F=crlf\r\n"
	    "G=\n"
	    "H=a#b # c\n"
	    "  I=indented\n"
	    "J=x=y",
	    0644);
	assert_int_equal(config_read_env_file(p, pair, &kv, err, sizeof(err)), 10);
	assert_string_equal(kv.text, "A=[1]\nB=[two words]\nC=[quoted # not a comment]\n"
	                             "D=[single $HOME \\n]\nE=[esc \" \\ \n end]\nF=[crlf]\nG=[]\n"
	                             "H=[a#b]\nI=[indented]\nJ=[x=y]\n");
}

static void test_env_file_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "A=1\nnot a pair\n",
	    "A=\"unterminated\n",
	    "A='x' trailing\n",
	    "1A=x\n",
	    "A =x\n",
	    "export\n",
	    "A-B=1\n",
	};
	for (size_t i = 0; i < countof(bad); i++) {
		struct kv kv = {""};
		char err[256] = "";
		const char *p = write_file("bad.env", bad[i], 0600);
		if (config_read_env_file(p, pair, &kv, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err, "expected KEY=VALUE"));
		assert_string_equal(kv.text, ""); /* nothing reported before the error */
	}
	struct kv kv = {""};
	char err[256] = "";
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/missing.env", dir);
	assert_int_equal(config_read_env_file(missing, pair, &kv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing.env"));
	assert_int_equal(config_read_env_file(dir, pair, &kv, err, sizeof(err)), -1);
}

static void test_env_file_permissions(void **state)
{
	(void)state;
	static const mode_t open_modes[] = {0644, 0640, 0604, 0660, 0606};
	char err[256];
	for (size_t i = 0; i < countof(open_modes); i++) {
		struct kv kv = {""};
		const char *p =
		    write_file("s.env", "A=1\nSESSION_SECRET=" SECRET32 "\n", open_modes[i]);
		assert_int_equal(config_read_env_file(p, pair, &kv, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "SESSION_SECRET"));
		assert_null(strstr(err, "SESSIONSECRET"));
		assert_string_equal(kv.text, "");
	}
	struct kv kv = {""};
	const char *p = write_file("s.env", "SESSION_SECRET=" SECRET32 "\n", 0600);
	assert_int_equal(config_read_env_file(p, pair, &kv, err, sizeof(err)), 1);
	/* no secret, any mode; an empty secret is no secret */
	p = write_file("p.env", "OPSD_WORKERS=3\nSMTP_PASS=\n", 0644);
	assert_int_equal(config_read_env_file(p, pair, &kv, err, sizeof(err)), 2);
}

static void test_config_load_file_wins(void **state)
{
	(void)state;
	struct opsd_config c;
	struct reports r = {"", 0, 0};
	const char *p = write_file("opsd.env",
	    "OPSD_DB_URI=" DB "\nOPSD_WORKERS=5\nOPSD_WORKERS=6\nSESSION_SECRET=" SECRET32 "\n",
	    0600);
	setenv("OPSD_ENV_FILE", p, 1);
	setenv("OPSD_WORKERS", "3", 1);
	setenv("OPSD_USER", "nobody", 1);
	unsetenv("OPSD_DB_URI");
	assert_int_equal(config_load(&c, collect, &r), 0);
	assert_int_equal(c.workers, 6); /* file wins, last line wins */
	assert_string_equal(c.user, "nobody");
	assert_string_equal(c.db_uri, DB);
	config_free(&c);

	/* a group-readable file with a secret is refused, and says so */
	chmod(p, 0640);
	memset(&r, 0, sizeof(r));
	assert_true(config_load(&c, collect, &r) >= 1);
	assert_non_null(strstr(r.text, "E OPSD_ENV_FILE: "));
	assert_non_null(strstr(r.text, "chmod 600"));
	assert_null(strstr(r.text, "SESSIONSECRET"));
	config_free(&c);

	char missing[300];
	snprintf(missing, sizeof(missing), "%s/nope.env", dir);
	setenv("OPSD_ENV_FILE", missing, 1);
	setenv("OPSD_DB_URI", DB, 1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(config_load(&c, collect, &r), 1);
	assert_non_null(strstr(r.text, "E OPSD_ENV_FILE: cannot open"));
	assert_int_equal(c.workers, 3); /* the environment still applies */
	config_free(&c);
	unsetenv("OPSD_ENV_FILE");
	unsetenv("OPSD_WORKERS");
	unsetenv("OPSD_USER");
	unsetenv("OPSD_DB_URI");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_cli_roles),
	    cmocka_unit_test(test_cross_rules),
	    cmocka_unit_test(test_db_uri_previous),
	    cmocka_unit_test(test_data_key),
	    cmocka_unit_test(test_smtp_test_mode),
	    cmocka_unit_test(test_data_key_ring),
	    cmocka_unit_test(test_secret_names),
	    cmocka_unit_test(test_env_file_syntax),
	    cmocka_unit_test(test_env_file_errors),
	    cmocka_unit_test(test_env_file_permissions),
	    cmocka_unit_test(test_config_load_file_wins),
	};
	/* config_load reads the real environment: start from a clean one */
	unsetenv("CI");
	for (size_t i = 0; config_variable_name(i) != NULL; i++)
		unsetenv(config_variable_name(i));
	return cmocka_run_group_tests(tests, setup, teardown);
}
