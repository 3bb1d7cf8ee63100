/* The rate limits in force (README "Runbook 4"): opsd's token buckets and nginx's
 * zones, each with the value of its configuration variable and, when one was set
 * at run time (PUT /security/rate-limits, opsctl ratelimit set), that value
 * instead, stored in rate_limits; the change, audited; each worker's copy of
 * opsd's values; and nginx's limits include rendered from nginx's values. */
#ifndef OPSD_RATE_LIMITS_H
#define OPSD_RATE_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct audit_actor;
struct buf;
struct db;
struct json_object;
struct opsd_config;

/* ---- the table of limits (pure) ---------------------------------------- */

enum limit_id {
	LIM_USER_PER_MIN,
	LIM_TOKEN_PER_MIN,
	LIM_IP_PER_MIN,
	LIM_BURST,
	LIM_NGINX_API_RATE,
	LIM_NGINX_API_BURST,
	LIM_NGINX_LOGIN_RATE,
	LIM_NGINX_LOGIN_BURST,
	LIM_NGINX_CONN_LIMIT,
	LIM__MAX
};
enum limit_layer { LAYER_OPSD, LAYER_NGINX };
enum limit_kind {
	LK_COUNT, /* an integer within its variable's range (infra/config.c) */
	LK_RATE,  /* an nginx rate: "<n>r/s" or "<n>r/m" */
};

struct limit_def {
	const char *name;     /* the API's field and the audit payload's key: "userPerMin" */
	const char *variable; /* the configuration variable it overrides */
	const char *option;   /* opsctl ratelimit set's option: "--user-per-min" */
	enum limit_layer layer;
	enum limit_kind kind;
	const char *what; /* one line for people */
};
extern const struct limit_def limit_defs[LIM__MAX];
const char *limit_layer_name(enum limit_layer l); /* "opsd", "nginx" */
/* The limit named name ("userPerMin"), or -1. */
int limit_from_name(const char *name);

#define LIMIT_TEXT_LEN 16
struct limit_value {
	char text[LIMIT_TEXT_LEN]; /* as the API shows it: "60", "10r/s" */
	long long n;               /* the count, or a rate's number of requests */
};

/* text as limit id takes it: a count within its variable's range, or an nginx
 * rate. false with the reason in why ("must be an integer between 0 and
 * 10000000"). */
bool limit_parse(enum limit_id id, const char *text, struct limit_value *out, char *why,
    size_t why_len);
/* The same from a JSON value: an integer for a count, a string for a rate. */
bool limit_from_json(enum limit_id id, struct json_object *v, struct limit_value *out, char *why,
    size_t why_len);
/* An integer for a count, a string for a rate. */
struct json_object *limit_to_json(enum limit_id id, const struct limit_value *v);

enum limit_source { LS_DEFAULT, LS_ENVIRONMENT, LS_ENV_FILE, LS_RUNTIME };
const char *limit_source_name(enum limit_source s); /* "default" … "runtime" */

struct limit_state {
	struct limit_value value; /* in force: the value set at run time, else env */
	enum limit_source source;
	struct limit_value env; /* the configuration's, which clearing returns to */
	enum limit_source env_source;
	/* with source LS_RUNTIME: who set it (user id, NULL from opsctl; the
	 * audit actor label), when (RFC 3339) and why; strings of the arena */
	const char *set_by;
	const char *set_by_label;
	const char *set_at;
	const char *reason;
};

struct rate_limits {
	struct limit_state l[LIM__MAX];
	uint64_t generation;               /* moves with every change */
	uint64_t nginx_generation;         /* moves with every change of nginx's values */
	uint64_t nginx_applied_generation; /* the nginx_generation nginx runs */
	const char *nginx_applied_at;      /* RFC 3339, NULL before the first */
};

/* rl from the configuration alone: every limit at its variable's value. */
void rate_limits_from_config(const struct opsd_config *cfg, struct rate_limits *rl);
/* True while nginx runs the nginx values of rl (nothing set since applied). */
bool rate_limits_nginx_applied_now(const struct rate_limits *rl);

/* nginx's limits include for the nginx values in force in rl: the directives of
 * conf/nginx/opsd-limits.conf (zones, the login key, limit_req and limit_conn
 * at http level, 429 statuses) under a header naming rl->nginx_generation.
 * The file nginx.conf includes at http level: $OPSD_VAR/nginx/opsd-limits.conf.
 * Every value is parsed again first, so only valid directives are written:
 * false (out untouched) when one does not parse. */
bool rate_limits_nginx_conf(const struct rate_limits *rl, struct buf *out);

/* GET /security/rate-limits: {limits: [{name, layer, variable, description,
 * value, source, envValue, envSource, setBy, setByLabel, setAt, reason}],
 * generation, nginxGeneration, nginxAppliedGeneration, nginxAppliedAt,
 * nginxApplied}. */
struct json_object *rate_limits_json(const struct rate_limits *rl);

/* ---- the database ------------------------------------------------------ */

/* The limits in force: the configuration, the rows of rate_limits over it (a
 * row whose value no longer parses is ignored and logged) and the
 * generations. Strings go to a. 0 or -1. */
int rate_limits_load(struct db *d, const struct opsd_config *cfg, struct arena *a,
    struct rate_limits *rl);

/* One change: set value at run time, or clear (back to the configuration). */
struct limit_change {
	enum limit_id id;
	bool clear;
	struct limit_value value;
};
/* Applies the changes in one transaction with their audit event,
 * security.rate_limits_changed {changes: {name: {old, new, oldSource,
 * newSource}}, reason}; a change that changes nothing (the same value set
 * again, a clear of a limit not set) is left out, and with none left nothing
 * is written. *changed gets the number applied. Every worker of this host
 * applies them on its next request, other hosts' within a second. 0 or -1. */
int rate_limits_set(struct db *d, const struct opsd_config *cfg, const struct audit_actor *actor,
    const struct limit_change *ch, size_t n, const char *reason, unsigned *changed);
/* For whoever applies nginx's values (rate_limits_nginx_conf, nginx -t, reload):
 * records that nginx runs the include rendered for nginx_generation. 0 or -1. */
int rate_limits_nginx_applied(struct db *d, uint64_t nginx_generation);

/* ---- enforcement (workers) --------------------------------------------- */

/* As the blocklist's: workers share a change counter (the scoreboard's); a
 * change made on this host is applied by every worker on its next request,
 * one made elsewhere (another host, opsctl) within a second, when each worker
 * reads rate_limits_state's generation again. With d the values are loaded at
 * once. */
void rate_limits_attach(uint64_t *shared, struct db *d);
void rate_limits_changed(void);

/* opsd's buckets in force for this worker (d may be NULL or down: the last
 * values loaded stay in force). */
struct bucket_limits {
	int user_per_min;
	int token_per_min;
	int ip_per_min;
	int burst;
};
void rate_limits_buckets(struct db *d, const struct opsd_config *cfg, struct bucket_limits *out);

#endif
