#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static char dir[] = "/tmp/opsd-test-log-XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	char err[256];
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/opsd.log", dir);
	return log_open(path, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	char err[256], old[300];
	log_open("stderr", err, sizeof(err));
	unlink(path);
	snprintf(old, sizeof(old), "%s.1", path);
	unlink(old);
	rmdir(dir);
	return 0;
}

/* Truncates the log so each test reads only its own lines. */
static void clear_log(void)
{
	assert_int_equal(truncate(path, 0), 0);
}

static char *slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	static char data[4 << 20];
	size_t n = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[n] = '\0';
	return data;
}

/* Every line must be a JSON object; returns how many lines there were and
 * the last one parsed (caller puts it). */
static int parse_lines(const char *text, struct json_object **last)
{
	int n = 0;
	*last = NULL;
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		json_object_put(*last);
		struct json_tokener *tok = json_tokener_new();
		*last = json_tokener_parse_ex(tok, p, (int)(nl - p));
		if (*last == NULL || json_tokener_get_parse_end(tok) != (size_t)(nl - p))
			fail_msg("not one JSON value: %.*s", (int)(nl - p), p);
		json_tokener_free(tok);
		assert_true(json_object_is_type(*last, json_type_object));
		n++;
		p = nl + 1;
	}
	return n;
}

static const char *field(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_line_shape(void **state)
{
	(void)state;
	struct json_object *o;
	clear_log();
	log_set_role("worker");
	log_set_request_id("req-123");
	struct logline *l = log_begin(LL_INFO, "request");
	log_str(l, "path", "/healthz \"quoted\"\n\x01 \xC0\xAF");
	log_int(l, "status", 200);
	log_dbl(l, "ms", 1.5);
	log_dbl(l, "nan", 0.0 / 0.0);
	log_bool(l, "cached", true);
	log_end(l);
	assert_int_equal(parse_lines(slurp(path), &o), 1);
	assert_string_equal(field(o, "level"), "info");
	assert_string_equal(field(o, "event"), "request");
	assert_string_equal(field(o, "role"), "worker");
	assert_string_equal(field(o, "requestId"), "req-123");
	assert_string_equal(field(o, "status"), "200");
	assert_string_equal(field(o, "cached"), "true");
	assert_string_equal(field(o, "ms"), "1.5");
	struct json_object *nan;
	assert_true(json_object_object_get_ex(o, "nan", &nan));
	assert_null(nan); /* JSON null */
	assert_string_equal(field(o, "path"), "/healthz \"quoted\"\n\x01 \xEF\xBF\xBD\xEF\xBF\xBD");
	int64_t t;
	const char *ts = field(o, "time");
	assert_int_equal(strlen(ts), 24);
	assert_true(parse_rfc3339(ts, &t));
	assert_true(t <= now_ms() && t > now_ms() - 60000);
	struct json_object *pid;
	assert_true(json_object_object_get_ex(o, "pid", &pid));
	assert_int_equal(json_object_get_int(pid), getpid());
	json_object_put(o);

	log_set_request_id(NULL);
	log_set_role(NULL);
	log_msg(LL_ERROR, "boom", "code %d", 7);
	assert_int_equal(parse_lines(slurp(path), &o), 2);
	assert_null(field(o, "requestId"));
	assert_null(field(o, "role"));
	assert_string_equal(field(o, "level"), "error");
	assert_string_equal(field(o, "msg"), "code 7");
	json_object_put(o);
}

static void test_levels(void **state)
{
	(void)state;
	struct json_object *o;
	clear_log();
	log_set_level(LL_WARN);
	assert_null(log_begin(LL_INFO, "dropped"));
	log_str(NULL, "k", "v"); /* a dropped line is a no-op */
	log_end(NULL);
	log_msg(LL_DEBUG, "dropped", "x");
	log_msg(LL_WARN, "kept", "x");
	log_set_level(LL_DEBUG);
	log_msg(LL_DEBUG, "debug", "x");
	log_set_level(LL_INFO);
	assert_int_equal(parse_lines(slurp(path), &o), 2);
	assert_string_equal(field(o, "level"), "debug");
	json_object_put(o);
}

static void test_sensitive_keys(void **state)
{
	(void)state;
	static const char *const yes[] = {
	    "password",
	    "Password",
	    "PASS_WORD",
	    "passwd",
	    "secret",
	    "token",
	    "api_key",
	    "apiKey",
	    "Authorization",
	    "cookie",
	    "Set-Cookie",
	    "session",
	    "csrf",
	    "email",
	    "phone",
	    "name",
	    "first_name",
	    "lastName",
	    "full-name",
	    "address",
	    "street",
	    "city",
	    "postcode",
	    "zip",
	    "ssn",
	    "dob",
	    "birthdate",
	    "notes",
	    "content",
	    "body",
	    "SMTP_PASS",
	    "OPSD_DB_URI",
	    "db_uri",
	    "OPSD_DATA_KEY",
	    "smtpPassword",
	    "session_secret",
	    "csrfToken",
	    "refresh_token",
	    "userEmail",
	    "contact-email",
	    "SESSION_SECRET",
	};
	static const char *const no[] = {
	    "path",
	    "status",
	    "method",
	    "route",
	    "ms",
	    "pid",
	    "event",
	    "email_count_x",
	    "tokens",
	    "passwords_reset",
	    "org_id",
	    "requestId",
	    "",
	    "namespace",
	};
	for (size_t i = 0; i < countof(yes); i++)
		if (!redact_key_is_sensitive(yes[i]))
			fail_msg("not sensitive: %s", yes[i]);
	for (size_t i = 0; i < countof(no); i++)
		if (redact_key_is_sensitive(no[i]))
			fail_msg("sensitive: %s", no[i]);
	assert_false(redact_key_is_sensitive(NULL));
}

static void expect_redact(const char *value, const char *want)
{
	char out[512];
	const char *got = redact_field("msg", value, out, sizeof(out));
	if (strcmp(got, want) != 0)
		fail_msg("redact(\"%s\") = \"%s\", want \"%s\"", value, got, want);
	if (strcmp(value, want) == 0)
		assert_ptr_equal(got, value); /* unchanged values are returned as is */
	else
		assert_ptr_equal(got, out);
}

static void test_redact_values(void **state)
{
	(void)state;
	char out[64];
	assert_string_equal(redact_field("password", "hunter2", out, sizeof(out)), "[redacted]");
	assert_string_equal(redact_field("Set-Cookie", "sid=abc", out, sizeof(out)), "[redacted]");
	assert_null(redact_field("msg", NULL, out, sizeof(out)));
	expect_redact("plain text, nothing here", "plain text, nothing here");
	expect_redact("mail to alice@example.com now", "mail to a***@example.com now");
	expect_redact("to=bob.smith+tag@mail.example.org.", "to=b***@mail.example.org.");
	expect_redact("<x@y.io>,z@w.de", "<x***@y.io>,z***@w.de");
	/* one address with an '@' in its local part: nothing of it is left
	 * that reads as an address (found by t/fuzz/fuzz_audit_payload.c) */
	expect_redact("a@b.example@c.example x", "a***@c.example x");
	expect_redact("user@localhost", "user@localhost"); /* no dot: not an address */
	expect_redact("@example.com", "@example.com");
	expect_redact("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]");
	expect_redact("bearer xyz, next", "Bearer [redacted], next");
	expect_redact("Bearer", "Bearer");
	expect_redact("mysql://opsd:s3cret@localhost/opsd?socket=/x",
	    "mysql://opsd:***@localhost/opsd?socket=/x");
	expect_redact("connect mysql://u:p%40ss@db.example.com:3306/x failed",
	    "connect mysql://u:***@db.example.com:3306/x failed");
	expect_redact("mysql://u@db.example.com/x", "mysql://u@db.example.com/x");
	expect_redact("http://example.com/a@b", "http://example.com/a@b");
	/* truncated output still never shows the secret */
	char tiny[12];
	const char *r = redact_field("msg", "mysql://u:topsecret@h/db", tiny, sizeof(tiny));
	assert_null(strstr(r, "topsecret"));
	assert_null(strstr(r, "tops"));
}

static void test_no_secret_reaches_file(void **state)
{
	(void)state;
	struct json_object *o;
	clear_log();
	log_set_request_id("r1");
	struct logline *l = log_begin(LL_WARN, "login");
	log_str(l, "password", "hunter2-PASSWORD");
	log_str(l, "Authorization", "Bearer tok-AAAA");
	log_str(l, "email", "carol@example.com");
	log_str(l, "header", "Bearer tok-BBBB");
	log_str(l, "msg", "user dave@example.net failed");
	log_str(l, "uri", "mysql://opsd:pw-CCCC@db.example.com/opsd");
	log_int(l, "phone", 5551234);
	log_str(l, "session_id", "sess-DDDD");
	log_end(l);
	log_msg(LL_ERROR, "db",
	    "cannot connect to mysql://root:pw-EEEE@127.0.0.1/x as erin@example.com");
	char *text = slurp(path);
	static const char *const leaks[] = {
	    "hunter2",
	    "tok-AAAA",
	    "carol",
	    "tok-BBBB",
	    "dave",
	    "pw-CCCC",
	    "5551234",
	    "sess-DDDD",
	    "pw-EEEE",
	    "erin",
	};
	for (size_t i = 0; i < countof(leaks); i++)
		if (strstr(text, leaks[i]) != NULL)
			fail_msg("leaked %s in %s", leaks[i], text);
	assert_int_equal(parse_lines(text, &o), 2);
	assert_string_equal(field(o, "msg"),
	    "cannot connect to mysql://root:***@127.0.0.1/x as e***@example.com");
	json_object_put(o);
	log_set_request_id(NULL);
}

static void test_reopen(void **state)
{
	(void)state;
	char old[300];
	clear_log();
	log_msg(LL_INFO, "before", "rotate");
	snprintf(old, sizeof(old), "%s.1", path);
	assert_int_equal(rename(path, old), 0);
	log_msg(LL_INFO, "still-old", "x");
	assert_int_equal(log_reopen(), 0);
	log_msg(LL_INFO, "after", "x");
	assert_non_null(strstr(slurp(old), "still-old"));
	assert_null(strstr(slurp(path), "still-old"));
	assert_non_null(strstr(slurp(path), "\"after\""));
	unlink(old);
}

/* A full disk (/dev/full: every write fails with ENOSPC): lines are dropped and
 * counted, nothing blocks; with room again (a file) they are written. */
static void test_full_disk(void **state)
{
	(void)state;
	char err[256];
	struct log_shared shared = {0, 0};
	log_share(&shared);
	assert_int_equal(log_open("/dev/full", err, sizeof(err)), 0);
	log_msg(LL_INFO, "lost", "one");
	log_msg(LL_ERROR, "lost", "two");
	log_msg(LL_DEBUG, "below-level", "not a line at all");
	assert_int_equal(log_lines_dropped(), 2);
	assert_int_equal(shared.dropped, 2);
	assert_int_equal(log_open(path, err, sizeof(err)), 0);
	clear_log();
	log_msg(LL_INFO, "room-again", "x");
	assert_non_null(strstr(slurp(path), "\"room-again\""));
	assert_int_equal(log_lines_dropped(), 2);
	log_share(NULL);
	assert_int_equal(log_lines_dropped(), 0);
}

static void test_concurrent_writers(void **state)
{
	(void)state;
	struct json_object *o;
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	clear_log();
	pid_t kids[4];
	for (int k = 0; k < 4; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			for (int i = 0; i < 200; i++) {
				struct logline *l = log_begin(LL_INFO, "child");
				log_int(l, "i", i);
				log_str(l, "pad", big);
				log_end(l);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < 4; k++) {
		int st;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(parse_lines(slurp(path), &o), 800);
	json_object_put(o);
}

static void test_open_errors(void **state)
{
	(void)state;
	char err[256] = "";
	assert_int_not_equal(log_open("/nonexistent-dir/x/opsd.log", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "/nonexistent-dir/x/opsd.log"));
	/* the previous target is still in use */
	clear_log();
	log_msg(LL_INFO, "still", "here");
	assert_non_null(strstr(slurp(path), "\"still\""));
	assert_int_equal(log_open("syslog", err, sizeof(err)), 0);
	log_msg(LL_DEBUG, "syslog-test", "dropped by level");
	assert_int_equal(log_reopen(), 0); /* no-op for syslog */
	assert_int_equal(log_open(path, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_shape),
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_sensitive_keys),
	    cmocka_unit_test(test_redact_values),
	    cmocka_unit_test(test_no_secret_reaches_file),
	    cmocka_unit_test(test_reopen),
	    cmocka_unit_test(test_full_disk),
	    cmocka_unit_test(test_concurrent_writers),
	    cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
