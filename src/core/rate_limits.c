/* Rate limits set at run time over the configuration's (see rate_limits.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/rate_limits.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* ---- the table of limits ------------------------------------------------ */

/* clang-format off */
const struct limit_def limit_defs[LIM__MAX] = {
    [LIM_USER_PER_MIN] = {"userPerMin", "OPSD_RATELIMIT_USER_PER_MIN", "--user-per-min", LAYER_OPSD, LK_COUNT,
        "requests a minute per signed-in user (0: no limit)"},
    [LIM_TOKEN_PER_MIN] = {"tokenPerMin", "OPSD_RATELIMIT_TOKEN_PER_MIN", "--token-per-min", LAYER_OPSD, LK_COUNT,
        "requests a minute per API token (0: no limit)"},
    [LIM_IP_PER_MIN] = {"ipPerMin", "OPSD_RATELIMIT_IP_PER_MIN", "--ip-per-min", LAYER_OPSD, LK_COUNT,
        "requests a minute per anonymous client address, and failed authentications per address (0: no limit)"},
    [LIM_BURST] = {"burst", "OPSD_RATELIMIT_BURST", "--burst", LAYER_OPSD, LK_COUNT,
        "the capacity of each of opsd's buckets: requests let through at once"},
    [LIM_NGINX_API_RATE] = {"nginxApiRate", "OPSD_NGINX_API_RATE", "--nginx-api-rate", LAYER_NGINX, LK_RATE,
        "every path, per client address (<n>r/s or <n>r/m)"},
    [LIM_NGINX_API_BURST] = {"nginxApiBurst", "OPSD_NGINX_API_BURST", "--nginx-api-burst", LAYER_NGINX, LK_COUNT,
        "requests over the API rate let through at once, per client address"},
    [LIM_NGINX_LOGIN_RATE] = {"nginxLoginRate", "OPSD_NGINX_LOGIN_RATE", "--nginx-login-rate", LAYER_NGINX, LK_RATE,
        "/auth/login, per client address (<n>r/s or <n>r/m)"},
    [LIM_NGINX_LOGIN_BURST] = {"nginxLoginBurst", "OPSD_NGINX_LOGIN_BURST", "--nginx-login-burst", LAYER_NGINX, LK_COUNT,
        "logins over the login rate let through at once, per client address"},
    [LIM_NGINX_CONN_LIMIT] = {"nginxConnLimit", "OPSD_NGINX_CONN_LIMIT", "--nginx-conn-limit", LAYER_NGINX, LK_COUNT,
        "requests in progress at once per client address"},
};
/* clang-format on */

const char *limit_layer_name(enum limit_layer l)
{
	return l == LAYER_NGINX ? "nginx" : "opsd";
}

int limit_from_name(const char *name)
{
	for (int i = 0; name && i < LIM__MAX; i++)
		if (strcmp(limit_defs[i].name, name) == 0)
			return i;
	return -1;
}

const char *limit_source_name(enum limit_source s)
{
	static const char *const names[] = {"default", "environment", "env_file", "runtime"};

	return (unsigned)s < countof(names) ? names[s] : "default";
}

bool limit_parse(enum limit_id id, const char *text, struct limit_value *out, char *why,
    size_t why_len)
{
	const struct limit_def *d = &limit_defs[id];
	long long min = 0, max = 0, n = 0;

	memset(out, 0, sizeof(*out));
	if (d->kind == LK_RATE) {
		if (!nginx_rate_parse(text, &n, NULL)) {
			snprintf(why, why_len, "must be <n>r/s or <n>r/m with n from 1 to %d",
			    NGINX_RATE_MAX);
			return false;
		}
		str_copy(out->text, text, sizeof(out->text));
	} else {
		if (!config_int_range(d->variable, &min, &max) || !text ||
		    !parse_ll_range(text, min, max, &n)) {
			snprintf(why, why_len, "must be an integer between %lld and %lld", min,
			    max);
			return false;
		}
		snprintf(out->text, sizeof(out->text), "%lld", n);
	}
	out->n = n;
	return true;
}

bool limit_from_json(enum limit_id id, struct json_object *v, struct limit_value *out, char *why,
    size_t why_len)
{
	char text[32];

	if (limit_defs[id].kind == LK_RATE) {
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) >= (int)sizeof(text)) {
			snprintf(why, why_len, "must be a string: <n>r/s or <n>r/m");
			return false;
		}
		str_copy(text, json_object_get_string(v), sizeof(text));
	} else {
		if (!json_object_is_type(v, json_type_int)) {
			snprintf(why, why_len, "must be an integer");
			return false;
		}
		snprintf(text, sizeof(text), "%lld", (long long)json_object_get_int64(v));
	}
	return limit_parse(id, text, out, why, why_len);
}

struct json_object *limit_to_json(enum limit_id id, const struct limit_value *v)
{
	if (!v->text[0])
		return NULL;
	return limit_defs[id].kind == LK_RATE ? json_object_new_string(v->text)
	                                      : json_object_new_int64(v->n);
}

/* ---- in force ---------------------------------------------------------- */

static enum limit_source from_config_source(enum config_source s)
{
	return s == CONFIG_ENV_FILE      ? LS_ENV_FILE
	       : s == CONFIG_ENVIRONMENT ? LS_ENVIRONMENT
	                                 : LS_DEFAULT;
}

void rate_limits_from_config(const struct opsd_config *cfg, struct rate_limits *rl)
{
	memset(rl, 0, sizeof(*rl));
	for (int i = 0; i < LIM__MAX; i++) {
		struct limit_state *s = &rl->l[i];
		char text[64], why[128];

		/* the configuration was checked when it was loaded: a value that
		 * does not parse cannot happen, and stays empty */
		if (config_value_text(cfg, limit_defs[i].variable, text, sizeof(text)))
			(void)limit_parse((enum limit_id)i, text, &s->env, why, sizeof(why));
		s->env_source = from_config_source(config_source(cfg, limit_defs[i].variable));
		s->value = s->env;
		s->source = s->env_source;
	}
}

bool rate_limits_nginx_applied_now(const struct rate_limits *rl)
{
	return rl->nginx_applied_generation >= rl->nginx_generation;
}

/* ---- nginx's include ---------------------------------------------------- */

bool rate_limits_nginx_conf(const struct rate_limits *rl, struct buf *out)
{
	struct limit_value v[LIM__MAX];
	char why[128];

	for (int i = 0; i < LIM__MAX; i++)
		if (limit_defs[i].layer == LAYER_NGINX &&
		    !limit_parse((enum limit_id)i, rl->l[i].value.text, &v[i], why, sizeof(why)))
			return false;
	buf_printf(out,
	    "# opsd — first-line rate limits (included at http level by nginx.conf).\n"
	    "#\n"
	    "# GENERATED by opsd from the rate limits in force (nginx generation %llu of\n"
	    "# GET /security/rate-limits): do not edit. Change them with\n"
	    "# PUT /security/rate-limits or `opsctl ratelimit set`; the commented\n"
	    "# template is conf/nginx/opsd-limits.conf (README \"Runbook 4\").\n"
	    "#\n",
	    (unsigned long long)rl->nginx_generation);
	/* The directives of conf/nginx/opsd-limits.conf, in its order. */
	buf_printf(out,
	    "limit_req_zone $binary_remote_addr zone=opsd_api:10m rate=%s;\n"
	    "map $uri $opsd_login_key {\n"
	    "\tdefault \"\";\n"
	    "\t/auth/login $binary_remote_addr;\n"
	    "}\n"
	    "limit_req_zone $opsd_login_key zone=opsd_login:10m rate=%s;\n"
	    "limit_conn_zone $binary_remote_addr zone=opsd_conn:10m;\n"
	    "limit_req zone=opsd_login burst=%lld nodelay;\n"
	    "limit_req zone=opsd_api burst=%lld nodelay;\n"
	    "limit_conn opsd_conn %lld;\n"
	    "limit_req_status 429;\n"
	    "limit_conn_status 429;\n"
	    "limit_req_log_level warn;\n"
	    "limit_conn_log_level warn;\n",
	    v[LIM_NGINX_API_RATE].text, v[LIM_NGINX_LOGIN_RATE].text, v[LIM_NGINX_LOGIN_BURST].n,
	    v[LIM_NGINX_API_BURST].n, v[LIM_NGINX_CONN_LIMIT].n);
	return true;
}

/* ---- JSON --------------------------------------------------------------- */

static struct json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

struct json_object *rate_limits_json(const struct rate_limits *rl)
{
	struct json_object *o = json_object_new_object(), *items = json_object_new_array();

	for (int i = 0; i < LIM__MAX; i++) {
		const struct limit_def *d = &limit_defs[i];
		const struct limit_state *s = &rl->l[i];
		struct json_object *it = json_object_new_object();
		bool rt = s->source == LS_RUNTIME;

		json_object_object_add(it, "name", json_object_new_string(d->name));
		json_object_object_add(it, "layer",
		    json_object_new_string(limit_layer_name(d->layer)));
		json_object_object_add(it, "variable", json_object_new_string(d->variable));
		json_object_object_add(it, "description", json_object_new_string(d->what));
		json_object_object_add(it, "value", limit_to_json((enum limit_id)i, &s->value));
		json_object_object_add(it, "source",
		    json_object_new_string(limit_source_name(s->source)));
		json_object_object_add(it, "envValue", limit_to_json((enum limit_id)i, &s->env));
		json_object_object_add(it, "envSource",
		    json_object_new_string(limit_source_name(s->env_source)));
		json_object_object_add(it, "setBy", str_or_null(rt ? s->set_by : NULL));
		json_object_object_add(it, "setByLabel", str_or_null(rt ? s->set_by_label : NULL));
		json_object_object_add(it, "setAt", str_or_null(rt ? s->set_at : NULL));
		json_object_object_add(it, "reason", str_or_null(rt ? s->reason : NULL));
		json_object_array_add(items, it);
	}
	json_object_object_add(o, "limits", items);
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)rl->generation));
	json_object_object_add(o, "nginxGeneration",
	    json_object_new_int64((int64_t)rl->nginx_generation));
	json_object_object_add(o, "nginxAppliedGeneration",
	    json_object_new_int64((int64_t)rl->nginx_applied_generation));
	json_object_object_add(o, "nginxAppliedAt", str_or_null(rl->nginx_applied_at));
	json_object_object_add(o, "nginxApplied",
	    json_object_new_boolean(rate_limits_nginx_applied_now(rl)));
	return o;
}

/* ---- the database -------------------------------------------------------- */

#define STATE_COLUMNS "generation, nginx_generation, nginx_applied_generation, nginx_applied_at"
#define LIMIT_COLUMNS "name, value, reason, set_by, set_by_label, set_at"

static uint64_t col_u64(const char *v)
{
	return v ? strtoull(v, NULL, 10) : 0;
}

/* A row of LIMIT_COLUMNS over the configuration's value; false (logged) for a
 * row of a limit opsd does not know or whose value does not parse. */
static bool apply_row(struct rate_limits *rl, struct arena *a, const struct db_rows *rows, size_t i)
{
	char *const *v = rows->val[i];
	int id = limit_from_name(v[0]);
	struct limit_state *s;
	struct limit_value val;
	char why[128], *by, *at;

	if (id < 0 || !limit_parse((enum limit_id)id, v[1], &val, why, sizeof(why))) {
		log_msg(LL_WARN, "rate_limit_ignored", "rate_limits row %s: %s", v[0] ? v[0] : "?",
		    id < 0 ? "no such limit" : why);
		return false;
	}
	s = &rl->l[id];
	s->value = val;
	s->source = LS_RUNTIME;
	s->reason = v[2];
	s->set_by_label = v[4];
	s->set_by = NULL;
	if (v[3] && (by = arena_alloc(a, UUID_STR_LEN + 1)) && dbv_uuid(v[3], rows->len[i][3], by))
		s->set_by = by;
	s->set_at = NULL;
	if ((at = arena_alloc(a, DBV_RFC3339_LEN + 1)) && dbv_rfc3339(v[5], at))
		s->set_at = at;
	return true;
}

int rate_limits_load(struct db *d, const struct opsd_config *cfg, struct arena *a,
    struct rate_limits *rl)
{
	struct db_rows st, rows;
	char *at;

	rate_limits_from_config(cfg, rl);
	if (db_query(d, a, "SELECT " STATE_COLUMNS " FROM rate_limits_state WHERE id = 1", NULL, 0,
	        &st) != 0 ||
	    db_query(d, a, "SELECT " LIMIT_COLUMNS " FROM rate_limits ORDER BY name", NULL, 0,
	        &rows) != 0)
		return -1;
	if (st.nrows == 1) {
		rl->generation = col_u64(st.val[0][0]);
		rl->nginx_generation = col_u64(st.val[0][1]);
		rl->nginx_applied_generation = col_u64(st.val[0][2]);
		if ((at = arena_alloc(a, DBV_RFC3339_LEN + 1)) && dbv_rfc3339(st.val[0][3], at))
			rl->nginx_applied_at = at;
	}
	for (size_t i = 0; i < rows.nrows; i++)
		(void)apply_row(rl, a, &rows, i);
	return 0;
}

struct set_tx {
	const struct opsd_config *cfg;
	const struct audit_actor *actor;
	const struct limit_change *ch;
	size_t n;
	const char *reason;
	struct arena *a;
	unsigned changed;
};

/* {old, new, oldSource, newSource} of one change. */
static struct json_object *change_json(enum limit_id id, const struct limit_state *before,
    const struct limit_value *after, enum limit_source after_source)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "old", limit_to_json(id, &before->value));
	json_object_object_add(o, "new", limit_to_json(id, after));
	json_object_object_add(o, "oldSource",
	    json_object_new_string(limit_source_name(before->source)));
	json_object_object_add(o, "newSource",
	    json_object_new_string(limit_source_name(after_source)));
	return o;
}

/* Writes one change (its row) and adds it to changes; *nginx when it is one
 * of nginx's. A change that changes nothing writes nothing. */
static int write_change(struct db *d, struct set_tx *x, const struct rate_limits *now,
    const struct limit_change *c, struct json_object *changes, bool *nginx)
{
	const struct limit_state *s = &now->l[c->id];
	const char *name = limit_defs[c->id].name;
	struct opsd_uuid by;
	bool has_by = x->actor->user_id && uuid_parse(x->actor->user_id, &by);

	if (c->clear) {
		struct db_param p[] = {DBP_STR(name)};

		if (s->source != LS_RUNTIME)
			return 0;
		if (db_exec(d, "DELETE FROM rate_limits WHERE name = ?", p, 1, NULL) != 0)
			return -1;
		json_object_object_add(changes, name,
		    change_json(c->id, s, &s->env, s->env_source));
	} else {
		struct db_param p[] = {
		    DBP_STR(name),
		    DBP_STR(c->value.text),
		    DBP_STR(x->reason),
		    has_by ? DBP_BLOB(by.b, 16) : DBP_NULL,
		    DBP_STR(x->actor->label ? x->actor->label : "system"),
		};

		if (s->source == LS_RUNTIME && strcmp(s->value.text, c->value.text) == 0)
			return 0;
		if (db_exec(d,
		        "INSERT INTO rate_limits (name, value, reason, set_by, set_by_label, set_at)"
		        " VALUES (?, ?, ?, ?, ?, NOW(3)) ON DUPLICATE KEY UPDATE value = VALUES(value),"
		        " reason = VALUES(reason), set_by = VALUES(set_by),"
		        " set_by_label = VALUES(set_by_label), set_at = VALUES(set_at)",
		        p, countof(p), NULL) != 0)
			return -1;
		json_object_object_add(changes, name, change_json(c->id, s, &c->value, LS_RUNTIME));
	}
	if (limit_defs[c->id].layer == LAYER_NGINX)
		*nginx = true;
	x->changed++;
	return 0;
}

static int set_fn(struct db *d, void *arg)
{
	struct set_tx *x = arg;
	struct rate_limits now;
	struct db_rows lock;
	struct json_object *changes = json_object_new_object(), *payload;
	bool nginx = false;

	x->changed = 0;
	arena_reset(x->a);
	/* the state row serialises changes: each one sees the one before */
	if (db_query(d, x->a, "SELECT generation FROM rate_limits_state WHERE id = 1 FOR UPDATE",
	        NULL, 0, &lock) != 0 ||
	    lock.nrows != 1 || rate_limits_load(d, x->cfg, x->a, &now) != 0)
		goto fail;
	for (size_t i = 0; i < x->n; i++)
		if (write_change(d, x, &now, &x->ch[i], changes, &nginx) != 0)
			goto fail;
	if (x->changed == 0) {
		json_object_put(changes);
		return 0;
	}
	{
		struct db_param p[] = {DBP_I64(nginx ? 1 : 0)};

		if (db_exec(d,
		        "UPDATE rate_limits_state SET generation = generation + 1,"
		        " nginx_generation = nginx_generation + ? WHERE id = 1",
		        p, 1, NULL) != 0)
			goto fail;
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "changes", changes);
	json_object_object_add(payload, "reason", json_object_new_string(x->reason));
	return audit_append(d, x->actor, AA_SECURITY_RATE_LIMITS_CHANGED, NULL, "rate_limits", NULL,
	    payload);
fail:
	json_object_put(changes);
	return -1;
}

int rate_limits_set(struct db *d, const struct opsd_config *cfg, const struct audit_actor *actor,
    const struct limit_change *ch, size_t n, const char *reason, unsigned *changed)
{
	struct set_tx x = {.cfg = cfg, .actor = actor, .ch = ch, .n = n, .reason = reason};
	int rc;

	*changed = 0;
	if (!(x.a = arena_new(16 * 1024)))
		return -1;
	rc = db_tx(d, set_fn, &x);
	arena_free(x.a);
	if (rc != 0)
		return -1;
	*changed = x.changed;
	if (x.changed)
		rate_limits_changed();
	return 0;
}

int rate_limits_nginx_applied(struct db *d, uint64_t nginx_generation)
{
	struct db_param p[] = {DBP_I64(nginx_generation)};

	/* never beyond what was asked, never backwards */
	return db_exec(d,
	    "UPDATE rate_limits_state SET nginx_applied_generation ="
	    " GREATEST(nginx_applied_generation, LEAST(?, nginx_generation)),"
	    " nginx_applied_at = NOW(3) WHERE id = 1",
	    p, 1, NULL);
}

/* ---- each worker's copy of opsd's values -------------------------------- */

/* Changes from other hosts and opsctl are seen after at most this long; a
 * failed read is retried no sooner (MariaDB down: one attempt a second per
 * worker, and the last values stay in force). */
#define CACHE_TTL_MS 1000

static const enum limit_id bucket_ids[] = {LIM_USER_PER_MIN, LIM_TOKEN_PER_MIN, LIM_IP_PER_MIN,
    LIM_BURST};

static struct {
	uint64_t *shared;     /* change counter in shared memory */
	uint64_t shared_seen; /* its value at the last read */
	uint64_t generation;  /* rate_limits_state's at the last load */
	bool loaded;          /* the values below hold a load's */
	bool tried;           /* a read was attempted at tried_mono */
	int64_t tried_mono;
	bool failing; /* the last read failed (logged once) */
	bool set[countof(bucket_ids)];
	int value[countof(bucket_ids)];
} cache;

void rate_limits_changed(void)
{
	if (cache.shared)
		__atomic_add_fetch(cache.shared, 1, __ATOMIC_RELEASE);
	cache.tried = false;
}

static int cache_load(struct db *d, uint64_t generation)
{
	struct arena *a = arena_new(8 * 1024);
	struct db_rows rows;

	if (!a || db_query(d, a, "SELECT name, value FROM rate_limits", NULL, 0, &rows) != 0) {
		arena_free(a);
		return -1;
	}
	memset(cache.set, 0, sizeof(cache.set));
	for (size_t i = 0; i < rows.nrows; i++) {
		int id = limit_from_name(rows.val[i][0]);
		struct limit_value v;
		char why[128];

		for (size_t k = 0; k < countof(bucket_ids); k++)
			if (id == (int)bucket_ids[k] &&
			    limit_parse(bucket_ids[k], rows.val[i][1], &v, why, sizeof(why))) {
				cache.set[k] = true;
				cache.value[k] = (int)v.n;
			}
	}
	arena_free(a);
	cache.generation = generation;
	cache.loaded = true;
	return 0;
}

/* One primary-key read a second (or at once after a change on this host);
 * the rows only when the generation moved. */
static int cache_read(struct db *d)
{
	struct arena *a = arena_new(1024);
	struct db_rows rows;
	uint64_t gen;
	int rc = -1;

	if (a &&
	    db_query(d, a, "SELECT generation FROM rate_limits_state WHERE id = 1", NULL, 0,
	        &rows) == 0 &&
	    rows.nrows == 1) {
		gen = col_u64(rows.val[0][0]);
		rc = cache.loaded && gen == cache.generation ? 0 : cache_load(d, gen);
	}
	arena_free(a);
	return rc;
}

static void cache_refresh(struct db *d)
{
	int64_t now = mono_ms();
	uint64_t shared = cache.shared ? __atomic_load_n(cache.shared, __ATOMIC_ACQUIRE) : 0;

	if (cache.tried && now - cache.tried_mono < CACHE_TTL_MS &&
	    (cache.failing || shared == cache.shared_seen))
		return;
	cache.tried = true;
	cache.tried_mono = now;
	/* read before the query: a change committed meanwhile bumps it again */
	cache.shared_seen = shared;
	if (!d || cache_read(d) != 0) {
		if (!cache.failing)
			log_msg(LL_WARN, "rate_limits_load_failed",
			    "keeping the rate limits last loaded: %s",
			    d ? db_error(d) : "no database connection");
		cache.failing = true;
		return;
	}
	if (cache.failing)
		log_msg(LL_INFO, "rate_limits_loaded", "generation %llu",
		    (unsigned long long)cache.generation);
	cache.failing = false;
}

void rate_limits_attach(uint64_t *shared, struct db *d)
{
	cache.shared = shared;
	if (d)
		cache_refresh(d);
}

void rate_limits_buckets(struct db *d, const struct opsd_config *cfg, struct bucket_limits *out)
{
	int *field[] = {&out->user_per_min, &out->token_per_min, &out->ip_per_min, &out->burst};

	cache_refresh(d);
	out->user_per_min = cfg->ratelimit_user_per_min;
	out->token_per_min = cfg->ratelimit_token_per_min;
	out->ip_per_min = cfg->ratelimit_ip_per_min;
	out->burst = cfg->ratelimit_burst;
	for (size_t k = 0; k < countof(bucket_ids); k++)
		if (cache.set[k])
			*field[k] = cache.value[k];
}
