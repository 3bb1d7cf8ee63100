/* Configuration (README "Configuration"): one table of variables, read from the
 * environment and, when OPSD_ENV_FILE is set, from that KEY=VALUE file.
 * Values in the env file win over the inherited environment, so that editing
 * the file and sending SIGHUP changes a running opsd. */
#ifndef OPSD_CONFIG_H
#define OPSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opsd_env { ENV_DEVELOPMENT, ENV_TEST, ENV_PRODUCTION };
enum opsd_pm { PM_STATIC, PM_DYNAMIC };
enum smtp_secure { SMTP_STARTTLS, SMTP_NONE };
/* Where a variable's value came from: its default, the inherited environment or
 * OPSD_ENV_FILE (which wins over the environment). */
enum config_source { CONFIG_DEFAULT, CONFIG_ENVIRONMENT, CONFIG_ENV_FILE };
#define CONFIG_MAX_VARS 96 /* rows the configuration table may have */

struct opsd_config {
	enum opsd_env env;
	char *var_dir;                 /* OPSD_VAR, default ./var */
	char *sql_dir;                 /* OPSD_SQL_DIR, default the installed/source sql/ */
	char *db_uri;                  /* OPSD_DB_URI (secret: holds a password) */
	char *db_uri_previous;         /* OPSD_DB_URI_PREVIOUS (secret): tried when refused */
	char *dedicated_db_uri;        /* OPSD_DEDICATED_DB_URI (secret) */
	char *data_key;                /* OPSD_DATA_KEY (secret), 32 bytes hex/base64 */
	char *data_key_previous;       /* OPSD_DATA_KEY_PREVIOUS (secret): older keys, comma list */
	char *listen;                  /* OPSD_LISTEN, default unix:$OPSD_VAR/run/opsd.sock */
	char *allowed_clients;         /* OPSD_ALLOWED_CLIENTS, default 127.0.0.1 */
	char *pid_file;                /* OPSD_PID_FILE, default $OPSD_VAR/run/opsd.pid */
	char *user;                    /* OPSD_USER: drop to it when root, default www-data */
	enum opsd_pm pm;               /* OPSD_PM */
	int workers;                   /* OPSD_WORKERS: static size / dynamic maximum; 2 x cores */
	int min_spare;                 /* OPSD_MIN_SPARE */
	int max_spare;                 /* OPSD_MAX_SPARE */
	int max_requests;              /* OPSD_MAX_REQUESTS, 10000; 0 = never recycle */
	int request_timeout;           /* OPSD_REQUEST_TIMEOUT seconds, 30; 0 = off */
	int slowlog_ms;                /* OPSD_SLOWLOG_MS, 1000; 0 = off */
	bool legal_enforce;            /* LEGAL_ENFORCE */
	char *session_secret;          /* SESSION_SECRET (secret), >= 32 bytes */
	bool session_secret_generated; /* unset outside production: random per run */
	int session_idle_min;          /* SESSION_IDLE_MIN, 30 */
	int session_absolute_h;        /* SESSION_ABSOLUTE_H, 8 */
	int token_max_days; /* OPSD_TOKEN_MAX_DAYS: an API token's longest lifetime, 90 */
	int cache_poll_ms; /* OPSD_CACHE_POLL_MS: how often a host reads cache_invalidations, 250 */
	char *smtp_server;
	int smtp_port; /* 587 */
	char *smtp_user;
	char *smtp_pass; /* secret */
	char *smtp_from;
	enum smtp_secure smtp_secure;
	bool smtp_test_mode; /* on unless production; forced on by CI */
	char *test_email_allowlist;
	char *smtp_ca_file;
	int audit_retention_days;          /* 3650 */
	int migration_max_threads_running; /* the copy waits while the source has more (32) */
	int migration_fail_after_s; /* steps failing this long end a migration failed (900) */
	/* opsd's token buckets (README "Runbook 4"): requests a minute per signed-in user,
	 * per API token and per anonymous client IP (0: off), and the burst */
	int ratelimit_user_per_min;
	int ratelimit_token_per_min;
	int ratelimit_ip_per_min;
	int ratelimit_burst;
	/* nginx's zones (README "Runbook 4") as script/render-nginx renders them from the same
	 * variables; opsd reads them only to show them (GET /security/rate-limits) and to
	 * render the limits include from values set at run time */
	char *nginx_api_rate; /* "50r/s" (nginx_rate_parse) */
	int nginx_api_burst;
	char *nginx_login_rate;
	int nginx_login_burst;
	int nginx_conn_limit;
	char *nginx_access_log; /* nginx's JSON access log (429s it answered);
	                           $OPSD_VAR/log/nginx-access.log */
	/* This host's nginx (README "Runbook 4"): the nginx process applies the generated
	 * includes (the blocklist) to it when OPSD_NGINX_APPLY is on (default); nginx.conf (the
	 * includes are written beside it) and its master's pid file, NULL for the defaults
	 * under OPSD_VAR (nginx_target_from_config). */
	bool nginx_apply;
	char *nginx_conf;
	char *nginx_pid_file;
	char *log_target;          /* OPSD_LOG: stderr | syslog | path */
	int scrypt_ln;             /* OPSD_SCRYPT_LN: log2 of scrypt's N, 17 */
	int password_slots;        /* OPSD_PASSWORD_SLOTS: concurrent checks; 0: from memory */
	int login_max_failures;    /* OPSD_LOGIN_MAX_FAILURES per account / 15 min, 5 */
	int login_ip_max_failures; /* OPSD_LOGIN_IP_MAX_FAILURES per IP / 15 min, 50 */
	int smtp_retry_base_s;     /* OPSD_SMTP_RETRY_BASE_S: first retry delay, doubling, 30 */
	int smtp_max_attempts; /* OPSD_SMTP_MAX_ATTEMPTS before a retryable failure is final, 8 */
	/* OPSD_CLI_ROLES: opsctl's principals, "user:role[+role],..." (the OS
	 * user running opsctl); NULL: root is superadmin, nobody else has a role.
	 * config.c checks the shape, core/authz.c the role names. */
	char *cli_roles;
	/* where each variable's value came from (enum config_source), by its row in
	 * the configuration table: see config_source */
	unsigned char source[CONFIG_MAX_VARS];
	/* Not variables: since when this configuration's SMTP server and credentials
	 * (SMTP_SERVER, SMTP_PORT, SMTP_USER, SMTP_PASS) have been in force (ms since the epoch:
	 * when config_load read them; the master carries it across reloads that keep them). A
	 * reload that changes them sets smtp_replaced_since_ms to the replaced ones' value, so the
	 * new jobs process retries what failed at AUTH under them; 0 otherwise. */
	int64_t smtp_since_ms;
	int64_t smtp_replaced_since_ms;
};

/* Called once per problem or warning with one clear line, for example
 * "OPSD_WORKERS: must be an integer between 1 and 1024 (got \"abc\")". */
typedef void (*config_report_fn)(bool is_error, const char *line, void *ctx);

/* Fills c from the environment (and OPSD_ENV_FILE). Returns the number of
 * errors; warnings (SMTP_TEST_MODE on in production) are reported but not
 * counted. On errors c is still fully initialised and must be freed. */
int config_load(struct opsd_config *c, config_report_fn report, void *ctx);
void config_free(struct opsd_config *c);
/* Wipes and frees every secret of c but those named in keep (variable names,
 * NULL-terminated): for a process that needs only some of them. */
void config_forget_secrets(struct opsd_config *c, const char *const *keep);

/* The same, with an explicit lookup instead of getenv (used by the unit
 * tests and by config_load itself). */
typedef const char *(*config_lookup_fn)(const char *name, void *ctx);
int config_load_from(struct opsd_config *c, config_lookup_fn lookup, void *lookup_ctx,
    config_report_fn report, void *ctx);

/* The env file's pairs, kept in the order read (config.c; env_file.c reads them). */
struct pairs {
	char **kv; /* key, value, key, value, ... */
	size_t n, cap;
};

/* Adds a copy of key and value (an env_pair_fn; on no memory, nothing). */
void pairs_add(const char *key, const char *value, void *ctx);
/* Wipes and frees every pair. */
void pairs_free(struct pairs *p);

/* Reads KEY=VALUE lines (blank lines and # comments ignored, optional
 * "double" or 'single' quotes, `export ` prefix allowed). Calls fn for each
 * pair. Refuses (returns -1 with err) a file readable by group or others
 * when it holds a secret variable. Returns the number of pairs. */
typedef void (*env_pair_fn)(const char *key, const char *value, void *ctx);
int config_read_env_file(const char *path, env_pair_fn fn, void *ctx, char *err, size_t err_len);
/* The same for the file's text, NUL-terminated and parsed in place (name
 * only labels the errors; private_file: no group or other access, so it may
 * hold secrets). */
int config_parse_env_text(char *data, const char *name, bool private_file, env_pair_fn fn,
    void *ctx, char *err, size_t err_len);

/* True for the variables whose values must never be logged or echoed. */
bool config_is_secret(const char *name);
/* OPSD_DATA_KEY as its 32 bytes; false (out zeroed) when unset. */
bool config_data_key(const struct opsd_config *c, uint8_t out[32]);
/* The key ring (README "Runbook 7"): OPSD_DATA_KEY first, then each key of
 * OPSD_DATA_KEY_PREVIOUS in its order, at most max. The number of keys: 0
 * when OPSD_DATA_KEY is unset (previous keys alone open nothing). */
#define DATA_KEYS_PREVIOUS_MAX 8
size_t config_data_keys(const struct opsd_config *c, uint8_t (*out)[32], size_t max);
/* The name of the i-th variable of the configuration table (README
 * "Configuration"), NULL past the last one. */
const char *config_variable_name(size_t i);
const char *config_env_name(enum opsd_env e);

/* Where the value of variable name came from (CONFIG_DEFAULT for an unknown name). */
enum config_source config_source(const struct opsd_config *c, const char *name);
const char *config_source_name(enum config_source s); /* "default", "environment", "env_file" */
/* The value of a variable that is not secret, as text ("1200", "50r/s"); false
 * for a secret, an unknown or an unset variable. */
bool config_value_text(const struct opsd_config *c, const char *name, char *out, size_t len);
/* The range of an integer variable; false when name is not one. */
bool config_int_range(const char *name, long long *min, long long *max);
/* An nginx rate as limit_req_zone takes it: "<n>r/s" or "<n>r/m", n from 1 to
 * NGINX_RATE_MAX without leading zeros. *n and *per ('s' or 'm') may be NULL. */
#define NGINX_RATE_MAX 1000000
bool nginx_rate_parse(const char *s, long long *n, char *per);

#endif
