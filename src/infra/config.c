/* README "Configuration": every variable is one row of vars[]; parsing, defaults, range
 * checks, secrecy and the list of names all read that table. */
#include "infra/config.h"

#include "infra/db.h"
#include "lib/encoding.h"
#include "lib/secret.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef OPSD_DATADIR
#define OPSD_DATADIR "/usr/local/share/opsd"
#endif

enum kind { K_STRING, K_INT, K_BOOL, K_ENUM };

struct var {
	const char *name;
	enum kind kind;
	size_t off;
	const char *dflt; /* NULL: none, or computed in config_load_from */
	long long min, max;
	const char *const *choices; /* K_ENUM, in the order of the C enum */
	bool secret;
};

static const char *const env_choices[] = {"development", "test", "production", NULL};
static const char *const pm_choices[] = {"static", "dynamic", NULL};
static const char *const secure_choices[] = {"starttls", "none", NULL};

#define OFF(field) offsetof(struct opsd_config, field)
#define STR(n, f, d)                                                                               \
	{                                                                                          \
		n, K_STRING, OFF(f), d, 0, 0, NULL, false                                          \
	}
#define SECRET(n, f)                                                                               \
	{                                                                                          \
		n, K_STRING, OFF(f), NULL, 0, 0, NULL, true                                        \
	}
#define INT(n, f, d, lo, hi)                                                                       \
	{                                                                                          \
		n, K_INT, OFF(f), d, lo, hi, NULL, false                                           \
	}
#define BOOL(n, f, d)                                                                              \
	{                                                                                          \
		n, K_BOOL, OFF(f), d, 0, 0, NULL, false                                            \
	}
#define ENUM(n, f, d, c)                                                                           \
	{                                                                                          \
		n, K_ENUM, OFF(f), d, 0, 0, c, false                                               \
	}

static const struct var vars[] = {
    ENUM("OPSD_ENV", env, "development", env_choices),
    STR("OPSD_VAR", var_dir, "./var"),
    STR("OPSD_SQL_DIR", sql_dir, OPSD_DATADIR "/sql"),
    SECRET("OPSD_DB_URI", db_uri),
    SECRET("OPSD_DB_URI_PREVIOUS", db_uri_previous),
    SECRET("OPSD_DEDICATED_DB_URI", dedicated_db_uri),
    SECRET("OPSD_DATA_KEY", data_key),
    SECRET("OPSD_DATA_KEY_PREVIOUS", data_key_previous),
    STR("OPSD_LISTEN", listen, NULL),
    STR("OPSD_ALLOWED_CLIENTS", allowed_clients, "127.0.0.1"),
    STR("OPSD_PID_FILE", pid_file, NULL),
    STR("OPSD_USER", user, "www-data"),
    ENUM("OPSD_PM", pm, "static", pm_choices),
    INT("OPSD_WORKERS", workers, NULL, 1, 1024),
    INT("OPSD_MIN_SPARE", min_spare, "1", 0, 1024),
    INT("OPSD_MAX_SPARE", max_spare, "3", 1, 1024),
    INT("OPSD_MAX_REQUESTS", max_requests, "10000", 0, 1000000000),
    INT("OPSD_REQUEST_TIMEOUT", request_timeout, "30", 0, 3600),
    INT("OPSD_SLOWLOG_MS", slowlog_ms, "1000", 0, 3600000),
    BOOL("LEGAL_ENFORCE", legal_enforce, "0"),
    SECRET("SESSION_SECRET", session_secret),
    INT("SESSION_IDLE_MIN", session_idle_min, "30", 1, 1440),
    INT("SESSION_ABSOLUTE_H", session_absolute_h, "8", 1, 720),
    INT("OPSD_TOKEN_MAX_DAYS", token_max_days, "90", 1, 3650),
    INT("OPSD_CACHE_POLL_MS", cache_poll_ms, "250", 0, 1000),
    STR("SMTP_SERVER", smtp_server, NULL),
    INT("SMTP_PORT", smtp_port, "587", 1, 65535),
    STR("SMTP_USER", smtp_user, NULL),
    SECRET("SMTP_PASS", smtp_pass),
    STR("SMTP_FROM", smtp_from, NULL),
    ENUM("SMTP_SECURE", smtp_secure, "starttls", secure_choices),
    BOOL("SMTP_TEST_MODE", smtp_test_mode, NULL),
    STR("TEST_EMAIL_ALLOWLIST", test_email_allowlist, NULL),
    STR("SMTP_CA_FILE", smtp_ca_file, NULL),
    INT("OPSD_AUDIT_RETENTION_DAYS", audit_retention_days, "3650", 1, 36500),
    STR("OPSD_LOG", log_target, "stderr"),
    INT("OPSD_SCRYPT_LN", scrypt_ln, "17", 10, 22),
    INT("OPSD_LOGIN_MAX_FAILURES", login_max_failures, "5", 1, 1000),
    INT("OPSD_LOGIN_IP_MAX_FAILURES", login_ip_max_failures, "50", 1, 100000),
    INT("OPSD_PASSWORD_SLOTS", password_slots, "0", 0, 1024),
    INT("OPSD_SMTP_RETRY_BASE_S", smtp_retry_base_s, "30", 1, 3600),
    INT("OPSD_SMTP_MAX_ATTEMPTS", smtp_max_attempts, "8", 1, 100),
    INT("OPSD_MIGRATION_MAX_THREADS_RUNNING", migration_max_threads_running, "32", 0, 100000),
    INT("OPSD_MIGRATION_FAIL_AFTER_S", migration_fail_after_s, "900", 1, 604800),
    INT("OPSD_RATELIMIT_USER_PER_MIN", ratelimit_user_per_min, "1200", 0, 10000000),
    INT("OPSD_RATELIMIT_TOKEN_PER_MIN", ratelimit_token_per_min, "1200", 0, 10000000),
    INT("OPSD_RATELIMIT_IP_PER_MIN", ratelimit_ip_per_min, "600", 0, 10000000),
    INT("OPSD_RATELIMIT_BURST", ratelimit_burst, "100", 1, 1000000),
    /* defaults by OPSD_ENV in finish(), as script/render-nginx's */
    STR("OPSD_NGINX_API_RATE", nginx_api_rate, NULL),
    INT("OPSD_NGINX_API_BURST", nginx_api_burst, NULL, 1, 1000000), /* nginx refuses 0 */
    STR("OPSD_NGINX_LOGIN_RATE", nginx_login_rate, NULL),
    INT("OPSD_NGINX_LOGIN_BURST", nginx_login_burst, NULL, 1, 1000000),
    INT("OPSD_NGINX_CONN_LIMIT", nginx_conn_limit, NULL, 1, 65535),
    STR("OPSD_NGINX_ACCESS_LOG", nginx_access_log, NULL),
    BOOL("OPSD_NGINX_APPLY", nginx_apply, "1"),
    STR("OPSD_NGINX_CONF", nginx_conf, NULL),
    STR("OPSD_NGINX_PID_FILE", nginx_pid_file, NULL),
    STR("OPSD_CLI_ROLES", cli_roles, NULL),
};

#define NVARS countof(vars)
_Static_assert(NVARS <= CONFIG_MAX_VARS, "raise CONFIG_MAX_VARS");

const char *config_variable_name(size_t i)
{
	return i < NVARS ? vars[i].name : NULL;
}

static const struct var *var_find(const char *name)
{
	for (size_t i = 0; i < NVARS; i++)
		if (strcmp(vars[i].name, name) == 0)
			return &vars[i];
	return NULL;
}

bool config_is_secret(const char *name)
{
	const struct var *v = name != NULL ? var_find(name) : NULL;
	return v != NULL && v->secret;
}

const char *config_env_name(enum opsd_env e)
{
	return (unsigned)e < countof(env_choices) - 1 ? env_choices[e] : "unknown";
}

enum config_source config_source(const struct opsd_config *c, const char *name)
{
	const struct var *v = name != NULL ? var_find(name) : NULL;
	return v != NULL ? (enum config_source)c->source[v - vars] : CONFIG_DEFAULT;
}

const char *config_source_name(enum config_source s)
{
	static const char *const names[] = {"default", "environment", "env_file"};
	return (unsigned)s < countof(names) ? names[s] : "default";
}

bool config_value_text(const struct opsd_config *c, const char *name, char *out, size_t len)
{
	const struct var *v = name != NULL ? var_find(name) : NULL;
	const char *field;

	if (v == NULL || v->secret || len == 0)
		return false;
	field = (const char *)c + v->off;
	switch (v->kind) {
	case K_STRING: {
		const char *s = *(char *const *)(const void *)field;
		if (s == NULL)
			return false;
		snprintf(out, len, "%s", s);
		return true;
	}
	case K_INT:
		snprintf(out, len, "%d", *(const int *)(const void *)field);
		return true;
	case K_BOOL:
		snprintf(out, len, "%d", *(const bool *)(const void *)field ? 1 : 0);
		return true;
	case K_ENUM:
		snprintf(out, len, "%s", v->choices[*(const int *)(const void *)field]);
		return true;
	}
	return false;
}

bool config_int_range(const char *name, long long *min, long long *max)
{
	const struct var *v = name != NULL ? var_find(name) : NULL;
	if (v == NULL || v->kind != K_INT)
		return false;
	*min = v->min;
	*max = v->max;
	return true;
}

bool nginx_rate_parse(const char *s, long long *n, char *per)
{
	size_t digits = s != NULL ? strspn(s, "0123456789") : 0;
	char num[8];
	long long v;

	if (digits == 0 || digits >= sizeof(num) || s[0] == '0' || s[digits] != 'r' ||
	    s[digits + 1] != '/' || (s[digits + 2] != 's' && s[digits + 2] != 'm') ||
	    s[digits + 3] != '\0')
		return false;
	memcpy(num, s, digits);
	num[digits] = '\0';
	if (!parse_ll_range(num, 1, NGINX_RATE_MAX, &v))
		return false;
	if (n != NULL)
		*n = v;
	if (per != NULL)
		*per = s[digits + 2];
	return true;
}

/* Reporting: errors are counted, lines never carry a secret's value. */
struct loader {
	config_report_fn report;
	void *ctx;
	int errors;
};

static void report(struct loader *ld, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct loader *ld, bool is_error, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ld->errors += is_error;
	if (ld->report != NULL)
		ld->report(is_error, line, ld->ctx);
}

static void report_bad(struct loader *ld, const struct var *v, const char *reason, const char *raw)
{
	char shown[80];
	size_t n = 0;
	if (v->secret || raw == NULL) {
		report(ld, true, "%s: %s", v->name, reason);
		return;
	}
	/* keep the report one printable line */
	for (; raw[n] != '\0' && n < sizeof(shown) - 4; n++)
		shown[n] = iscntrl((unsigned char)raw[n]) || raw[n] == '"' ? '?' : raw[n];
	str_copy(shown + n, raw[n] != '\0' ? "..." : "", sizeof(shown) - n);
	report(ld, true, "%s: %s (got \"%s\")", v->name, reason, shown);
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const truths[] = {"1", "true", "yes", "on"};
	static const char *const falses[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < countof(truths); i++) {
		if (strcasecmp(s, truths[i]) == 0 || strcasecmp(s, falses[i]) == 0) {
			*out = strcasecmp(s, truths[i]) == 0;
			return true;
		}
	}
	return false;
}

static int parse_enum(const char *s, const char *const *choices)
{
	for (int i = 0; choices[i] != NULL; i++)
		if (strcasecmp(s, choices[i]) == 0)
			return i;
	return -1;
}

/* Stores raw (never NULL) into c; false with the reason when it does not parse. */
static bool store(struct opsd_config *c, const struct var *v, const char *raw, char *reason,
    size_t len)
{
	char *field = (char *)c + v->off;
	long long n;
	bool b;
	int e;
	switch (v->kind) {
	case K_STRING: {
		char *copy = strdup(raw);
		if (copy == NULL) {
			snprintf(reason, len, "out of memory");
			return false;
		}
		secret_free_str(*(char **)(void *)field);
		*(char **)(void *)field = copy;
		return true;
	}
	case K_INT:
		if (!parse_ll_range(raw, v->min, v->max, &n)) {
			snprintf(reason, len, "must be an integer between %lld and %lld", v->min,
			    v->max);
			return false;
		}
		*(int *)(void *)field = (int)n;
		return true;
	case K_BOOL:
		if (!parse_bool(raw, &b)) {
			snprintf(reason, len, "must be 1/0, true/false, yes/no or on/off");
			return false;
		}
		*(bool *)(void *)field = b;
		return true;
	case K_ENUM:
		if ((e = parse_enum(raw, v->choices)) < 0) {
			size_t off = (size_t)snprintf(reason, len, "must be one of: ");
			for (int i = 0; v->choices[i] != NULL && off < len; i++)
				off += (size_t)snprintf(reason + off, len - off, "%s%s",
				    i ? ", " : "", v->choices[i]);
			return false;
		}
		/* the C enums behind K_ENUM fields are int-sized, starting at 0 */
		*(int *)(void *)field = e;
		return true;
	}
	return false;
}

/* mysql://[user[:pass]@]host[:port][,host[:port]...][/db][?socket=/p], parsed as
 * db.c will at connect time; reason (never the password) when it does not. */
static bool db_uri_plausible(const char *uri, char *reason, size_t len)
{
	struct db_uri u;
	bool ok = db_uri_parse(uri, &u, reason, len);

	explicit_bzero(&u, sizeof(u));
	return ok;
}

static bool data_key_decode(const char *s, unsigned char key[32])
{
	uint8_t raw[33];
	size_t n = 0;

	if (strlen(s) == 64)
		return hex_decode(s, key, 32);
	if (!b64_decode(B64_LENIENT, s, strlen(s), raw, sizeof(raw), &n) || n != 32)
		return false;
	memcpy(key, raw, 32);
	secret_wipe(raw, sizeof(raw));
	return true;
}

static bool data_key_valid(const char *s)
{
	unsigned char key[32];
	bool ok = data_key_decode(s, key);
	secret_wipe(key, sizeof(key));
	return ok;
}

bool config_data_key(const struct opsd_config *c, uint8_t out[32])
{
	if (c->data_key != NULL && data_key_decode(c->data_key, out))
		return true;
	memset(out, 0, 32);
	return false;
}

/* Each comma-separated entry of OPSD_DATA_KEY_PREVIOUS (blanks around it
 * ignored) into out[n], up to max; a bad or surplus entry makes it -1. */
static int data_keys_previous(const char *list, uint8_t (*out)[32], size_t max)
{
	size_t n = 0;

	for (const char *s = list; s && *s;) {
		char one[128];
		size_t len = strcspn(s, ","), lead = strspn(s, " \t");

		while (len > lead && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len <= lead || len - lead >= sizeof(one) || n >= max)
			return -1;
		memcpy(one, s + lead, len - lead);
		one[len - lead] = '\0';
		bool ok = data_key_decode(one, out[n]);
		secret_wipe(one, sizeof(one));
		if (!ok)
			return -1;
		n++;
		s += strcspn(s, ",");
		s += *s == ',';
	}
	return (int)n;
}

size_t config_data_keys(const struct opsd_config *c, uint8_t (*out)[32], size_t max)
{
	uint8_t prev[DATA_KEYS_PREVIOUS_MAX][32];
	int n;

	if (max == 0 || !config_data_key(c, out[0]))
		return 0;
	n = c->data_key_previous ? data_keys_previous(c->data_key_previous, prev, countof(prev))
	                         : 0;
	if (n < 0)
		n = 0;
	if ((size_t)n > max - 1)
		n = (int)(max - 1);
	memcpy(out + 1, prev, (size_t)n * 32);
	secret_wipe(prev, sizeof(prev));
	return 1 + (size_t)n;
}

/* OPSD_DATA_KEY_PREVIOUS is well formed: NULL, else what is wrong. */
static const char *data_key_previous_bad(const struct opsd_config *c)
{
	uint8_t keys[DATA_KEYS_PREVIOUS_MAX + 1][32];
	int n = data_keys_previous(c->data_key_previous, keys, countof(keys));

	secret_wipe(keys, sizeof(keys));
	if (n < 0 || n > DATA_KEYS_PREVIOUS_MAX)
		return "must be a comma list of at most 8 keys, each 32 bytes as 64 hex characters or "
		       "base64";
	if (!c->data_key)
		return "set without OPSD_DATA_KEY (the current key)";
	return NULL;
}

static bool listen_valid(const char *s)
{
	long long port;
	if (str_has_prefix(s, "unix:"))
		return s[5] == '/' || s[5] == '.' || (s[5] != '\0' && s[5] != ':');
	const char *colon = strrchr(s, ':');
	return colon != NULL && colon != s && parse_ll_range(colon + 1, 1, 65535, &port);
}

/* OPSD_CLI_ROLES's shape: "user:role[+role]" entries separated by commas
 * (blanks around an entry allowed), each user once; user names as useradd
 * takes them, role names lower-case words (core/authz.c knows which exist).
 * NULL when it is well formed, else what is wrong. */
static const char *cli_roles_malformed(const char *s)
{
	const char *seen[64];
	size_t nseen = 0;

	for (;;) {
		size_t user, roles, blank;

		s += strspn(s, " \t");
		user =
		    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
		if (user == 0 || user > 32 || s[0] == '-' || s[user] != ':')
			return "each entry must be user:role (user: letters, digits, . _ -)";
		for (size_t i = 0; i < nseen; i++)
			if (strncmp(seen[i], s, user + 1) == 0)
				return "a user is listed twice (join its roles with +)";
		if (nseen < countof(seen))
			seen[nseen++] = s;
		s += user + 1;
		for (;;) {
			roles = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
			if (roles == 0)
				return "each entry must be user:role, several roles joined with +";
			s += roles;
			if (*s != '+')
				break;
			s++;
		}
		blank = strspn(s, " \t");
		if (s[blank] == '\0')
			return NULL;
		if (s[blank] != ',')
			return "entries are separated by commas";
		s += blank + 1;
	}
}

static int cpu_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > 512 ? 1024 : (int)(2 * n);
}

static char *join(const char *a, const char *b, const char *c)
{
	size_t len = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(len);
	if (s != NULL)
		snprintf(s, len, "%s%s%s", a, b, c);
	return s;
}

/* Outside production a missing secret is replaced by a random one for this
 * process (the master keeps it across reloads): sessions end at restart. */
static void generate_session_secret(struct opsd_config *c, struct loader *ld)
{
	uint8_t raw[32];
	char *hex = malloc(sizeof(raw) * 2 + 1);

	if (!hex || !random_bytes(raw, sizeof(raw))) {
		free(hex);
		report(ld, true, "SESSION_SECRET: unset and no random secret could be made");
		return;
	}
	hex_encode(raw, sizeof(raw), hex);
	secret_wipe(raw, sizeof(raw));
	c->session_secret = hex;
	c->session_secret_generated = true;
	report(ld, false, "SESSION_SECRET: unset; using a random secret, sessions end at restart");
}

/* nginx's zones: script/render-nginx's defaults (production: limits for real
 * traffic; development and test stacks, where every client shares 127.0.0.1:
 * limits that load tests never reach) and the rate syntax. */
static void finish_nginx(struct opsd_config *c, const bool *set, struct loader *ld)
{
	static const struct {
		const char *name, *production, *other;
	} defaults[] = {
	    {"OPSD_NGINX_API_RATE", "50r/s", "10000r/s"},
	    {"OPSD_NGINX_API_BURST", "100", "20000"},
	    {"OPSD_NGINX_LOGIN_RATE", "5r/m", "100r/s"},
	    {"OPSD_NGINX_LOGIN_BURST", "10", "200"},
	    {"OPSD_NGINX_CONN_LIMIT", "100", "10000"},
	};
	char reason[256];

	for (size_t i = 0; i < countof(defaults); i++) {
		const struct var *v = var_find(defaults[i].name);
		const char *d =
		    c->env == ENV_PRODUCTION ? defaults[i].production : defaults[i].other;

		if (v == NULL || set[v - vars])
			continue;
		if (!store(c, v, d, reason, sizeof(reason)))
			report(ld, true, "%s: %s", v->name, reason);
	}
	if (c->nginx_api_rate != NULL && !nginx_rate_parse(c->nginx_api_rate, NULL, NULL))
		report_bad(ld, var_find("OPSD_NGINX_API_RATE"),
		    "must be <n>r/s or <n>r/m (n from 1 to 1000000)", c->nginx_api_rate);
	if (c->nginx_login_rate != NULL && !nginx_rate_parse(c->nginx_login_rate, NULL, NULL))
		report_bad(ld, var_find("OPSD_NGINX_LOGIN_RATE"),
		    "must be <n>r/s or <n>r/m (n from 1 to 1000000)", c->nginx_login_rate);
}

/* Cross-variable rules: computed defaults, production, SMTP and the pool. */
static void finish(struct opsd_config *c, const bool *set, config_lookup_fn lookup, void *lctx,
    struct loader *ld)
{
	const char *ci = lookup("CI", lctx);
	char why[256];
	if (c->listen == NULL && (c->listen = join("unix:", c->var_dir, "/run/opsd.sock")) == NULL)
		report(ld, true, "OPSD_LISTEN: out of memory");
	if (c->pid_file == NULL && (c->pid_file = join(c->var_dir, "/run/opsd.pid", "")) == NULL)
		report(ld, true, "OPSD_PID_FILE: out of memory");
	if (c->workers == 0)
		c->workers = cpu_workers();
	if (!set[var_find("SMTP_TEST_MODE") - vars])
		c->smtp_test_mode = c->env != ENV_PRODUCTION;
	if (ci != NULL && *ci != '\0')
		c->smtp_test_mode = true;

	if (c->db_uri == NULL)
		report(ld, true, "OPSD_DB_URI: required");
	else if (!db_uri_plausible(c->db_uri, why, sizeof(why)))
		report(ld, true,
		    "OPSD_DB_URI: must look like mysql://user:pass@host[:port][,host[:port]...]/db "
		    "(%s)",
		    why);
	if (c->db_uri_previous != NULL && db_uri_previous_problem(c->db_uri, c->db_uri_previous))
		report(ld, true, "OPSD_DB_URI_PREVIOUS: %s",
		    db_uri_previous_problem(c->db_uri, c->db_uri_previous));
	if (c->dedicated_db_uri != NULL && !db_uri_plausible(c->dedicated_db_uri, why, sizeof(why)))
		report(ld, true,
		    "OPSD_DEDICATED_DB_URI: must look like mysql://user:pass@host[:port][,host[:port]...] "
		    "(%s)",
		    why);
	if (c->data_key != NULL && !data_key_valid(c->data_key))
		report(ld, true, "OPSD_DATA_KEY: must be 32 bytes as 64 hex characters or base64");
	else if (c->data_key == NULL && c->env == ENV_PRODUCTION)
		report(ld, true,
		    "OPSD_DATA_KEY: required in production (32 bytes as 64 hex characters or base64)");
	if (c->data_key_previous != NULL && data_key_previous_bad(c) != NULL)
		report(ld, true, "OPSD_DATA_KEY_PREVIOUS: %s", data_key_previous_bad(c));
	if (c->session_secret != NULL && strlen(c->session_secret) < 32)
		report(ld, true, "SESSION_SECRET: must be at least 32 bytes");
	else if (c->session_secret == NULL && c->env == ENV_PRODUCTION)
		report(ld, true, "SESSION_SECRET: required in production (>= 32 bytes)");
	else if (c->session_secret == NULL)
		generate_session_secret(c, ld);
	if (c->env == ENV_PRODUCTION && c->scrypt_ln < 17)
		report(ld, false,
		    "OPSD_SCRYPT_LN: %d is below the OWASP minimum of 17 in production",
		    c->scrypt_ln);
	if (c->listen != NULL && !listen_valid(c->listen))
		report_bad(ld, var_find("OPSD_LISTEN"), "must be unix:/path or host:port",
		    c->listen);
	if (c->pm == PM_DYNAMIC && (c->min_spare > c->max_spare || c->max_spare > c->workers))
		report(ld, true,
		    "OPSD_MAX_SPARE: dynamic pool needs OPSD_MIN_SPARE (%d) <= OPSD_MAX_SPARE "
		    "(%d) <= OPSD_WORKERS (%d)",
		    c->min_spare, c->max_spare, c->workers);
	if (c->smtp_port == 465)
		report(ld, true,
		    "SMTP_PORT: 465 (implicit TLS) is not supported by libESMTP; use "
		    "587 with SMTP_SECURE=starttls");
	/* README "Configuration": plain SMTP only to a relay on this host */
	if (c->smtp_secure == SMTP_NONE && c->smtp_server != NULL &&
	    strcmp(c->smtp_server, "localhost") != 0 && !addr_is_loopback(c->smtp_server))
		report_bad(ld, var_find("SMTP_SERVER"),
		    "SMTP_SECURE=none is only allowed with a loopback SMTP_SERVER", c->smtp_server);
	if (c->smtp_server != NULL && c->smtp_from == NULL)
		report(ld, true, "SMTP_FROM: required when SMTP_SERVER is set");
	if ((c->smtp_user != NULL) != (c->smtp_pass != NULL))
		report(ld, true, "SMTP_USER and SMTP_PASS: set both or neither");
	if (c->cli_roles != NULL && cli_roles_malformed(c->cli_roles) != NULL)
		report_bad(ld, var_find("OPSD_CLI_ROLES"), cli_roles_malformed(c->cli_roles),
		    c->cli_roles);
	finish_nginx(c, set, ld);
	if (c->env == ENV_PRODUCTION && c->smtp_test_mode)
		report(ld, false,
		    "SMTP_TEST_MODE: on in production: only allowlisted recipients get mail%s",
		    ci != NULL && *ci != '\0' ? " (forced on because CI is set)" : "");
}

int config_load_from(struct opsd_config *c, config_lookup_fn lookup, void *lookup_ctx,
    config_report_fn report_fn, void *ctx)
{
	struct loader ld = {report_fn, ctx, 0};
	bool set[NVARS] = {false};
	char reason[256];
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		const char *raw = lookup(v->name, lookup_ctx);
		/* an empty variable means unset, as in most shells' ${X:-default} */
		if (raw != NULL && *raw != '\0') {
			set[i] = store(c, v, raw, reason, sizeof(reason));
			c->source[i] = set[i] ? CONFIG_ENVIRONMENT : CONFIG_DEFAULT;
			if (set[i])
				continue;
			report_bad(&ld, v, reason, raw);
		}
		if (v->dflt != NULL && !store(c, v, v->dflt, reason, sizeof(reason)))
			report(&ld, true, "%s: %s", v->name, reason);
	}
	finish(c, set, lookup, lookup_ctx, &ld);
	c->smtp_since_ms = now_ms();
	return ld.errors;
}

void config_free(struct opsd_config *c)
{
	for (size_t i = 0; i < NVARS; i++) {
		if (vars[i].kind != K_STRING)
			continue;
		char **field = (char **)(void *)((char *)c + vars[i].off);
		secret_free_str(*field);
		*field = NULL;
	}
}

void config_forget_secrets(struct opsd_config *c, const char *const *keep)
{
	for (size_t i = 0; i < NVARS; i++) {
		if (vars[i].kind != K_STRING || !vars[i].secret)
			continue;
		bool kept = false;
		for (const char *const *k = keep; *k != NULL; k++)
			kept = kept || strcmp(*k, vars[i].name) == 0;
		char **field = (char **)(void *)((char *)c + vars[i].off);
		if (kept || *field == NULL)
			continue;
		secret_free_str(*field);
		*field = NULL;
	}
}

/* The env file's pairs, looked up before the environment (the file wins). */
void pairs_add(const char *key, const char *value, void *ctx)
{
	struct pairs *p = ctx;
	if (p->n + 2 > p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 32;
		char **kv = realloc(p->kv, cap * sizeof(*kv));
		if (kv == NULL)
			return;
		p->kv = kv;
		p->cap = cap;
	}
	char *k = strdup(key), *v = strdup(value);
	if (k == NULL || v == NULL) {
		free(k);
		secret_free_str(v);
		return;
	}
	p->kv[p->n++] = k;
	p->kv[p->n++] = v;
}

void pairs_free(struct pairs *p)
{
	for (size_t i = 0; i < p->n; i++)
		secret_free_str(p->kv[i]);
	free(p->kv);
}

static const char *file_then_env(const char *name, void *ctx)
{
	const struct pairs *p = ctx;
	for (size_t i = p->n; i >= 2; i -= 2)
		if (strcmp(p->kv[i - 2], name) == 0)
			return p->kv[i - 1];
	return getenv(name);
}

int config_load(struct opsd_config *c, config_report_fn report_fn, void *ctx)
{
	struct pairs p = {NULL, 0, 0};
	char err[512];
	int errors = 0;
	const char *path = getenv("OPSD_ENV_FILE");
	if (path != NULL && *path != '\0' &&
	    config_read_env_file(path, pairs_add, &p, err, sizeof(err)) < 0) {
		char line[600];
		snprintf(line, sizeof(line), "OPSD_ENV_FILE: %s", err);
		if (report_fn != NULL)
			report_fn(true, line, ctx);
		errors++;
	}
	errors += config_load_from(c, file_then_env, &p, report_fn, ctx);
	/* a value read through file_then_env came from the file when the file has it */
	for (size_t i = 0; i < NVARS; i++) {
		for (size_t k = p.n; c->source[i] == CONFIG_ENVIRONMENT && k >= 2; k -= 2)
			if (strcmp(p.kv[k - 2], vars[i].name) == 0) {
				if (p.kv[k - 1][0] != '\0')
					c->source[i] = CONFIG_ENV_FILE;
				break;
			}
	}
	pairs_free(&p);
	return errors;
}
