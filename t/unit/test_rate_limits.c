#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/specs.h"
#include "core/rate_limits.h"
#include "infra/config.h"
#include "lib/buf.h"
#include "lib/util.h"

/* A fake environment for config_load_from: name, value pairs. */
static const char *const *env;

static const char *lookup(const char *name, void *ctx)
{
	(void)ctx;
	for (const char *const *p = env; p[0] != NULL; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static void load(struct opsd_config *c, const char *const *vars)
{
	env = vars;
	assert_int_equal(config_load_from(c, lookup, NULL, NULL, NULL), 0);
}

#define BASE                                                                                       \
	"OPSD_DB_URI", "mysql://u:p@localhost/opsd", "SESSION_SECRET",                             \
	    "0123456789abcdef0123456789abcdef"

static void accepts(enum limit_id id, const char *text, const char *norm, long long n)
{
	struct limit_value v;
	char why[160] = "";

	if (!limit_parse(id, text, &v, why, sizeof(why)))
		fail_msg("%s \"%s\" refused: %s", limit_defs[id].name, text, why);
	assert_string_equal(v.text, norm);
	assert_int_equal(v.n, n);
}

static void refuses(enum limit_id id, const char *text, const char *reason)
{
	struct limit_value v;
	char why[160] = "";

	if (limit_parse(id, text, &v, why, sizeof(why)))
		fail_msg("%s \"%s\" accepted", limit_defs[id].name, text ? text : "(null)");
	if (!strstr(why, reason))
		fail_msg("%s \"%s\": \"%s\" does not say \"%s\"", limit_defs[id].name, text, why,
		    reason);
}

/* Counts within their variable's range; rates as nginx takes them. */
static void test_parse(void **state)
{
	(void)state;
	accepts(LIM_USER_PER_MIN, "60", "60", 60);
	accepts(LIM_USER_PER_MIN, "0", "0", 0);
	accepts(LIM_USER_PER_MIN, "10000000", "10000000", 10000000);
	refuses(LIM_USER_PER_MIN, "10000001", "between 0 and 10000000");
	refuses(LIM_USER_PER_MIN, "-1", "between 0 and 10000000");
	refuses(LIM_USER_PER_MIN, "1.5", "integer");
	refuses(LIM_USER_PER_MIN, "", "integer");
	refuses(LIM_USER_PER_MIN, NULL, "integer");
	accepts(LIM_BURST, "1", "1", 1);
	refuses(LIM_BURST, "0", "between 1 and 1000000");
	accepts(LIM_NGINX_API_BURST, "1", "1", 1);
	refuses(LIM_NGINX_API_BURST, "0", "between 1 and 1000000"); /* nginx -t refuses burst=0 */
	refuses(LIM_NGINX_CONN_LIMIT, "0", "between 1 and 65535");
	refuses(LIM_NGINX_CONN_LIMIT, "65536", "between 1 and 65535");
	accepts(LIM_NGINX_API_RATE, "10r/s", "10r/s", 10);
	accepts(LIM_NGINX_LOGIN_RATE, "5r/m", "5r/m", 5);
	accepts(LIM_NGINX_LOGIN_RATE, "1000000r/m", "1000000r/m", 1000000);
	static const char *const bad_rates[] = {"0r/s", "010r/s", "10r/h", "10 r/s", "10r/s ",
	    "r/s", "10", "10r/", "1000001r/s", "-1r/s", "10R/S", "10r/s;", ""};
	for (size_t i = 0; i < countof(bad_rates); i++)
		refuses(LIM_NGINX_API_RATE, bad_rates[i], "<n>r/s or <n>r/m");
	refuses(LIM_NGINX_API_RATE, NULL, "<n>r/s");
}

static void test_from_json(void **state)
{
	(void)state;
	struct limit_value v;
	char why[160];
	struct json_object *i = json_object_new_int(60), *s = json_object_new_string("60"),
	                   *d = json_object_new_double(1.5), *r = json_object_new_string("10r/s");

	assert_true(limit_from_json(LIM_USER_PER_MIN, i, &v, why, sizeof(why)));
	assert_int_equal(v.n, 60);
	assert_false(limit_from_json(LIM_USER_PER_MIN, s, &v, why, sizeof(why)));
	assert_string_equal(why, "must be an integer");
	assert_false(limit_from_json(LIM_USER_PER_MIN, d, &v, why, sizeof(why)));
	assert_true(limit_from_json(LIM_NGINX_API_RATE, r, &v, why, sizeof(why)));
	assert_string_equal(v.text, "10r/s");
	assert_false(limit_from_json(LIM_NGINX_API_RATE, i, &v, why, sizeof(why)));
	assert_non_null(strstr(why, "must be a string"));
	json_object_put(i);
	json_object_put(s);
	json_object_put(d);
	json_object_put(r);
}

/* The table's names and variables are unique, each variable is the
 * configuration's, and PUT's field table takes each limit with the range of
 * its variable. */
static void test_table_and_spec(void **state)
{
	(void)state;
	for (int i = 0; i < LIM__MAX; i++) {
		const struct limit_def *d = &limit_defs[i];
		const struct field_spec *f = NULL;
		long long min, max;
		bool known = false;

		for (size_t k = 0; config_variable_name(k); k++)
			known |= strcmp(config_variable_name(k), d->variable) == 0;
		assert_true(known);
		assert_int_equal(limit_from_name(d->name), i);
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(limit_defs[j].name, d->name);
			assert_string_not_equal(limit_defs[j].option, d->option);
		}
		for (const struct field_spec *s = rate_limits_put_spec; s->name; s++)
			if (strcmp(s->name, d->name) == 0)
				f = s;
		if (!f)
			fail_msg("PUT's field table has no %s", d->name);
		if (d->kind == LK_COUNT) {
			assert_true(config_int_range(d->variable, &min, &max));
			assert_int_equal(f->type, FT_INT);
			if (f->min != min || f->max != max)
				fail_msg("%s: PUT takes %lld..%lld, %s %lld..%lld", d->name, f->min,
				    f->max, d->variable, min, max);
		} else {
			assert_int_equal(f->type, FT_STRING);
		}
	}
	assert_int_equal(limit_from_name("nope"), -1);
	assert_int_equal(limit_from_name(NULL), -1);
}

/* Values and sources from the configuration; nginx's defaults follow
 * OPSD_ENV as script/render-nginx's do. */
static void test_from_config(void **state)
{
	(void)state;
	struct opsd_config c;
	struct rate_limits rl;
	static const char *const test_env[] = {BASE, "OPSD_ENV", "test",
	    "OPSD_RATELIMIT_USER_PER_MIN", "60", "OPSD_NGINX_LOGIN_RATE", "30r/m", NULL};
	static const char *const prod_env[] = {BASE, "OPSD_ENV", "production", "OPSD_DATA_KEY",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL};

	load(&c, test_env);
	rate_limits_from_config(&c, &rl);
	assert_string_equal(rl.l[LIM_USER_PER_MIN].value.text, "60");
	assert_int_equal(rl.l[LIM_USER_PER_MIN].source, LS_ENVIRONMENT);
	assert_int_equal(rl.l[LIM_USER_PER_MIN].env_source, LS_ENVIRONMENT);
	assert_string_equal(rl.l[LIM_BURST].value.text, "100");
	assert_int_equal(rl.l[LIM_BURST].source, LS_DEFAULT);
	assert_string_equal(rl.l[LIM_NGINX_LOGIN_RATE].value.text, "30r/m");
	assert_string_equal(rl.l[LIM_NGINX_API_RATE].value.text, "10000r/s");
	assert_int_equal(rl.l[LIM_NGINX_API_RATE].source, LS_DEFAULT);
	assert_true(rate_limits_nginx_applied_now(&rl));
	config_free(&c);

	load(&c, prod_env);
	rate_limits_from_config(&c, &rl);
	assert_string_equal(rl.l[LIM_NGINX_API_RATE].value.text, "50r/s");
	assert_string_equal(rl.l[LIM_NGINX_API_BURST].value.text, "100");
	assert_string_equal(rl.l[LIM_NGINX_LOGIN_RATE].value.text, "5r/m");
	assert_string_equal(rl.l[LIM_NGINX_LOGIN_BURST].value.text, "10");
	assert_string_equal(rl.l[LIM_NGINX_CONN_LIMIT].value.text, "100");
	config_free(&c);
}

static void set(struct rate_limits *rl, enum limit_id id, const char *text)
{
	char why[160];

	assert_true(limit_parse(id, text, &rl->l[id].value, why, sizeof(why)));
	rl->l[id].source = LS_RUNTIME;
}

/* nginx's include: the template's directives with the values in force. */
static void test_nginx_conf(void **state)
{
	(void)state;
	struct opsd_config c;
	struct rate_limits rl;
	struct buf b;
	static const char *const e[] = {BASE, "OPSD_ENV", "production", "OPSD_DATA_KEY",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL};
	const char *t;

	load(&c, e);
	rate_limits_from_config(&c, &rl);
	config_free(&c);
	set(&rl, LIM_NGINX_API_RATE, "1r/s");
	set(&rl, LIM_NGINX_API_BURST, "3");
	set(&rl, LIM_NGINX_LOGIN_RATE, "2r/m");
	set(&rl, LIM_NGINX_CONN_LIMIT, "7");
	rl.nginx_generation = 42;
	buf_init(&b);
	assert_true(rate_limits_nginx_conf(&rl, &b));
	t = buf_cstr(&b);
	assert_non_null(strstr(t, "GENERATED by opsd"));
	assert_non_null(strstr(t, "nginx generation 42 "));
	assert_non_null(
	    strstr(t, "\nlimit_req_zone $binary_remote_addr zone=opsd_api:10m rate=1r/s;\n"));
	assert_non_null(strstr(t, "\tdefault \"\";\n\t/auth/login $binary_remote_addr;\n}\n"));
	assert_non_null(
	    strstr(t, "\nlimit_req_zone $opsd_login_key zone=opsd_login:10m rate=2r/m;\n"));
	assert_non_null(strstr(t, "\nlimit_req zone=opsd_login burst=10 nodelay;\n"));
	assert_non_null(strstr(t, "\nlimit_req zone=opsd_api burst=3 nodelay;\n"));
	assert_non_null(strstr(t, "\nlimit_conn opsd_conn 7;\n"));
	assert_non_null(strstr(t, "\nlimit_req_status 429;\nlimit_conn_status 429;\n"));
	/* every line is a comment, a directive ending in ; or a block's line */
	for (const char *l = t; *l; l = strchr(l, '\n') + 1) {
		size_t n = strcspn(l, "\n");

		assert_true(l[n] == '\n');
		if (l[0] != '#' && l[n - 1] != ';' && l[n - 1] != '{' && l[n - 1] != '}')
			fail_msg("line \"%.*s\"", (int)n, l);
	}
	buf_free(&b);

	/* a value that does not parse writes nothing */
	str_copy(rl.l[LIM_NGINX_LOGIN_RATE].value.text, "5r/s; deny all", LIMIT_TEXT_LEN);
	buf_init(&b);
	assert_false(rate_limits_nginx_conf(&rl, &b));
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static struct json_object *item(struct json_object *o, const char *name)
{
	struct json_object *items = json_object_object_get(o, "limits");

	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *it = json_object_array_get_idx(items, i);

		if (strcmp(json_object_get_string(json_object_object_get(it, "name")), name) == 0)
			return it;
	}
	fail_msg("no %s", name);
	return NULL;
}

static const char *str(struct json_object *o, const char *k)
{
	struct json_object *v = json_object_object_get(o, k);
	return v ? json_object_get_string(v) : NULL;
}

/* GET's answer: every limit, typed values, who set one at run time, and
 * whether nginx runs nginx's values. */
static void test_json(void **state)
{
	(void)state;
	struct opsd_config c;
	struct rate_limits rl;
	struct json_object *o, *u, *r;
	static const char *const e[] = {BASE, "OPSD_ENV", "test", NULL};

	load(&c, e);
	rate_limits_from_config(&c, &rl);
	config_free(&c);
	set(&rl, LIM_USER_PER_MIN, "60");
	rl.l[LIM_USER_PER_MIN].set_by_label = "security_admin";
	rl.l[LIM_USER_PER_MIN].set_at = "2026-11-24T10:00:00.000Z";
	rl.l[LIM_USER_PER_MIN].reason = "INC-42";
	rl.l[LIM_BURST].reason = "not shown: not set at run time";
	rl.nginx_generation = 2;
	rl.nginx_applied_generation = 1;
	o = rate_limits_json(&rl);
	assert_int_equal(json_object_array_length(json_object_object_get(o, "limits")), LIM__MAX);
	u = item(o, "userPerMin");
	assert_int_equal(json_object_get_int(json_object_object_get(u, "value")), 60);
	assert_true(json_object_is_type(json_object_object_get(u, "value"), json_type_int));
	assert_string_equal(str(u, "source"), "runtime");
	assert_int_equal(json_object_get_int(json_object_object_get(u, "envValue")), 1200);
	assert_string_equal(str(u, "envSource"), "default");
	assert_string_equal(str(u, "layer"), "opsd");
	assert_string_equal(str(u, "variable"), "OPSD_RATELIMIT_USER_PER_MIN");
	assert_string_equal(str(u, "setByLabel"), "security_admin");
	assert_string_equal(str(u, "reason"), "INC-42");
	assert_null(str(u, "setBy"));
	assert_null(str(item(o, "burst"), "reason"));
	r = item(o, "nginxApiRate");
	assert_string_equal(str(r, "value"), "10000r/s");
	assert_string_equal(str(r, "layer"), "nginx");
	assert_false(json_object_get_boolean(json_object_object_get(o, "nginxApplied")));
	json_object_put(o);
	rl.nginx_applied_generation = 2;
	o = rate_limits_json(&rl);
	assert_true(json_object_get_boolean(json_object_object_get(o, "nginxApplied")));
	json_object_put(o);
}

/* Where a variable's value came from: default, environment or env file. */
static void test_config_source(void **state)
{
	(void)state;
	struct opsd_config c;
	char text[32];
	static const char *const e[] = {BASE, "OPSD_RATELIMIT_BURST", "7", NULL};

	load(&c, e);
	assert_int_equal(config_source(&c, "OPSD_RATELIMIT_BURST"), CONFIG_ENVIRONMENT);
	assert_int_equal(config_source(&c, "OPSD_RATELIMIT_IP_PER_MIN"), CONFIG_DEFAULT);
	assert_int_equal(config_source(&c, "NOPE"), CONFIG_DEFAULT);
	assert_string_equal(config_source_name(CONFIG_ENV_FILE), "env_file");
	assert_true(config_value_text(&c, "OPSD_RATELIMIT_BURST", text, sizeof(text)));
	assert_string_equal(text, "7");
	assert_true(config_value_text(&c, "OPSD_ENV", text, sizeof(text)));
	assert_string_equal(text, "development");
	assert_false(config_value_text(&c, "SESSION_SECRET", text, sizeof(text)));
	assert_false(config_value_text(&c, "SMTP_SERVER", text, sizeof(text)));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_from_json),
	    cmocka_unit_test(test_table_and_spec),
	    cmocka_unit_test(test_from_config),
	    cmocka_unit_test(test_nginx_conf),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_config_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
