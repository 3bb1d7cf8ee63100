/* The request pipeline: opsd's policy for every request, in the order
 * README "API" describes. Nothing here knows FastCGI; src/server/ fills
 * struct req, calls pipeline_run and writes the reply. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/pipeline.h"
#include "api/routes.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/authz.h"
#include "core/blocklist.h"
#include "core/legal.h"
#include "core/principal_cache.h"
#include "core/rate_limits.h"
#include "core/session.h"
#include "http/http.h"
#include "http/router.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/metrics.h"
#include "infra/ratelimit.h"
#include "infra/scoreboard.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static bool is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct || strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ')
		ct++;
	/* RFC 8259 §8.1: UTF-8 only; a charset parameter may say so. */
	if (*ct == '\0')
		return true;
	if (*ct != ';')
		return false;
	ct++;
	while (*ct == ' ')
		ct++;
	return strcasecmp(ct, "charset=utf-8") == 0;
}

static void reply_parse_error(struct req *r, enum json_parse_err e, const char *why)
{
	switch (e) {
	case JSON_PARSE_TOO_BIG:
		reply_error(r, E_PAYLOAD_TOO_LARGE, "the request body exceeds 1 MiB", NULL);
		return;
	case JSON_PARSE_EMPTY:
		reply_error(r, E_INVALID_JSON, "a JSON object body is required", NULL);
		return;
	default:
		reply_error(r, E_INVALID_JSON, why[0] ? why : "the body is not valid JSON", NULL);
		return;
	}
}

/* Body checks that sit before every handler taking JSON. */
static bool read_json_body(struct req *r)
{
	enum json_parse_err e;
	char why[160] = "";

	if (!is_json_type(r->content_type)) {
		reply_error(r, E_UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json",
		    NULL);
		return false;
	}
	e = json_parse_body(r->body, r->body_len, &r->json, why, sizeof(why));
	if (e != JSON_PARSE_OK) {
		reply_parse_error(r, e, why);
		return false;
	}
	return true;
}

static void reply_route_miss(struct req *r, enum route_result rr, const char *allow)
{
	switch (rr) {
	case ROUTE_BAD_METHOD: {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "allow", json_object_new_string(allow));
		reply_header(r, "Allow", allow);
		reply_error(r, E_METHOD_NOT_ALLOWED, "this method is not allowed on this path", d);
		return;
	}
	case ROUTE_BAD_PATH:
		reply_error(r, E_BAD_PATH, "the path has a malformed escape", NULL);
		return;
	default:
		reply_error(r, E_NOT_FOUND, "no such endpoint", NULL);
		return;
	}
}

/* The worker's one connection, opened lazily and reconnected by db_ensure:
 * a MariaDB that is down gives 503s, never a dead worker. */
static struct db *worker_db;

static bool db_ready(struct req *r)
{
	char err[256];

	if (!worker_db) {
		worker_db =
		    db_open_rotating(r->cfg->db_uri, r->cfg->db_uri_previous, err, sizeof(err));
		if (!worker_db) {
			log_msg(LL_WARN, "db_connect_failed", "%s", err);
			return false;
		}
	}
	r->db = worker_db;
	return db_ensure(worker_db) == 0;
}

void pipeline_start(const struct opsd_config *cfg, struct scoreboard *sb)
{
	char err[256];

	legal_attach_generation(&sb->legal_generation);
	worker_db = db_open_rotating(cfg->db_uri, cfg->db_uri_previous, err, sizeof(err));
	if (!worker_db)
		log_msg(LL_WARN, "db_connect_failed", "%s", err);
	blocklist_attach(&sb->blocklist_generation, worker_db);
	rate_limits_attach(&sb->rate_limits_generation, worker_db);
}

void pipeline_stop(void)
{
	db_close(worker_db);
	worker_db = NULL;
}

static bool is_unsafe(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	       strcmp(method, "OPTIONS") != 0;
}

/* Authentication, permission and CSRF, before any body is parsed: an
 * anonymous caller learns nothing about a route's input. */
static void refused(struct req *r, const struct route *rt, const struct rl_limit *l,
    const struct rl_verdict *v, const char *kind, const char *id, bool audit, uint64_t since);

/* Failed authentications are limited per address too (the per-user and
 * per-token buckets cannot see them): past the burst, a failure is
 * answered 429 instead of 401. Valid credentials are never held back, so
 * a stranger's failures behind the same address lock nobody out. true
 * when it replied 429. */
static bool auth_failure_limited(struct req *r, const struct route *rt)
{
	struct bucket_limits b;
	struct rl_limit l;
	struct rl_verdict v;
	const char *addr = r->remote_addr ? r->remote_addr : "";
	char key[96];
	bool audit;
	uint64_t since;

	rate_limits_buckets(r->db, r->cfg, &b);
	l = (struct rl_limit){b.ip_per_min, b.burst};
	if (l.per_min <= 0)
		return false;
	snprintf(key, sizeof(key), "authfail:%s", addr);
	ratelimit_check(key, &l, &v, &audit, &since);
	if (v.allowed)
		return false;
	refused(r, rt, &l, &v, "ip-authfail", addr, audit, since);
	return true;
}

static bool authorize_or_reply(struct req *r, const struct route *rt)
{
	struct principal *p = arena_calloc(r->arena, 1, sizeof(*p));

	if (!p) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return false;
	}
	struct auth_input in = {r->db, r->arena, r->cfg, r->authorization, r->cookie};

	if (r->authorization || r->cookie)
		pcache_poll(r->db, r->cfg->cache_poll_ms);
	switch (auth_authenticate(&in, p)) {
	case AUTH_OK:
		break;
	case AUTH_DB_ERROR:
		reply_db_error(r);
		return false;
	default:
		if (!auth_failure_limited(r, rt))
			reply_error(r, E_UNAUTHENTICATED, "sign in or present a valid API token",
			    NULL);
		return false;
	}
	r->who = p;
	if (rt->perm != P_NONE && !perm_or_reply(r, rt->perm))
		return false;
	/* README "Identity, sessions and roles": a cookie rides along on cross-site requests; the
	 * token does not. */
	if (p->method == AUTH_SESSION && is_unsafe(r->method) &&
	    !session_csrf_ok(r->cfg->session_secret, p->session_id, r->csrf_token)) {
		reply_error(r, E_CSRF_FAILED, "missing or wrong X-CSRF-Token", NULL);
		return false;
	}
	return true;
}

/* README "Runbook 1": with LEGAL_ENFORCE=1 a person who has not accepted every current
 * document can use only the exempt routes, and the containment routes
 * (RF_LEGAL_CONTAIN), whose answer then lists what is pending in
 * Legal-Pending ("privacy=2026-11, terms=7"). One indexed query on the
 * cached current documents. */
static bool legal_gate_ok(struct req *r, const struct route *rt)
{
	const struct legal_doc *docs;
	bool pending[64];
	size_t n;
	struct json_object *list, *d;
	struct buf header;

	if (r->who->service)
		return true;
	if (legal_current(r->db, &docs, &n) != 0 || n > 64 ||
	    legal_pending(r->db, r->arena, r->who->user_id, docs, n, pending, NULL) != 0) {
		reply_db_error(r);
		return false;
	}
	list = json_object_new_array();
	buf_init(&header);
	for (size_t i = 0; i < n; i++) {
		struct json_object *p;

		if (!pending[i])
			continue;
		p = json_object_new_object();
		json_object_object_add(p, "type", json_object_new_string(docs[i].type));
		json_object_object_add(p, "version", json_object_new_string(docs[i].version));
		json_object_array_add(list, p);
		buf_printf(&header, "%s%s=%s", header.len ? ", " : "", docs[i].type,
		    docs[i].version);
	}
	if (json_object_array_length(list) == 0 || (rt->flags & RF_LEGAL_CONTAIN)) {
		if (header.len && !buf_failed(&header))
			reply_header(r, "Legal-Pending", buf_cstr(&header));
		buf_free(&header);
		json_object_put(list);
		return true;
	}
	buf_free(&header);
	d = json_object_new_object();
	json_object_object_add(d, "pending", list);
	reply_error(r, E_LEGAL_ACCEPTANCE_REQUIRED,
	    "accept the current legal documents first (POST /legal/acceptance)", d);
	return false;
}

/* A 429 of opsd's limiter: logged, counted, audited at most once a minute
 * per source (audit says so), answered with Retry-After and RateLimit-*. */
static void refused(struct req *r, const struct route *rt, const struct rl_limit *l,
    const struct rl_verdict *v, const char *kind, const char *id, bool audit, uint64_t since)
{
	metrics_rate_limited(RL_LAYER_OPSD, r->route_index);
	{
		struct logline *ll = log_begin(LL_WARN, "rate_limited");

		log_str(ll, "layer", "opsd");
		log_str(ll, "route", rt->name);
		log_str(ll, "source", kind);
		log_str(ll, "sourceId", id);
		log_int(ll, "retryAfter", v->retry_after);
		log_end(ll);
	}
	if (audit) {
		struct audit_actor a;
		struct json_object *p = json_object_new_object();

		req_actor(r, &a);
		json_object_object_add(p, "layer", json_object_new_string("opsd"));
		json_object_object_add(p, "route", json_object_new_string(rt->name));
		json_object_object_add(p, "source", json_object_new_string(kind));
		json_object_object_add(p, "refusedSinceLastEvent",
		    json_object_new_int64((int64_t)since));
		json_object_object_add(p, "limitPerMin", json_object_new_int(l->per_min));
		if (audit_append_tx(r->db, &a, AA_SECURITY_RATE_LIMITED,
		        r->who && r->who->org_id[0] ? r->who->org_id : NULL, kind, id, p) != 0)
			log_msg(LL_ERROR, "audit_failed", "security.rate_limited: %s",
			    db_error(r->db));
	}
	reply_rate_limited(r, v->retry_after, v->limit);
}

/* opsd's second line (README "Runbook 4"): one bucket per signed-in user or API
 * token, or per client IP for anonymous calls, shared by the workers of the
 * host, with the limits in force (the configuration's, or those set at run
 * time). Every answer that went through it carries RateLimit-*; a refusal is
 * logged, counted and, once a minute per source, audited. */
static bool rate_ok(struct req *r, const struct route *rt)
{
	struct bucket_limits c;
	struct rl_limit l;
	struct rl_verdict v;
	char key[96], n[24];
	const char *kind, *id;
	uint64_t since;
	bool audit;

	if (rt->flags & RF_MONITOR)
		return true;
	rate_limits_buckets(r->db, r->cfg, &c);
	l = (struct rl_limit){0, c.burst};
	if (r->who && r->who->method == AUTH_TOKEN) {
		kind = "token";
		id = r->who->token_id;
		l.per_min = c.token_per_min;
	} else if (r->who) {
		kind = "user";
		id = r->who->user_id;
		l.per_min = c.user_per_min;
	} else {
		kind = "ip";
		id = r->remote_addr ? r->remote_addr : "";
		l.per_min = c.ip_per_min;
	}
	if (l.per_min <= 0)
		return true;
	snprintf(key, sizeof(key), "%s:%s", kind, id);
	ratelimit_check(key, &l, &v, &audit, &since);
	if (v.allowed) {
		snprintf(n, sizeof(n), "%ld", v.limit);
		reply_header(r, "RateLimit-Limit", n);
		snprintf(n, sizeof(n), "%ld", v.remaining);
		reply_header(r, "RateLimit-Remaining", n);
		snprintf(n, sizeof(n), "%ld", v.reset_s);
		reply_header(r, "RateLimit-Reset", n);
		return true;
	}
	refused(r, rt, &l, &v, kind, id, audit, since);
	return false;
}

/* Monitoring on the host (Prometheus, script/server's readiness probe)
 * reaches the RF_MONITOR routes whatever the blocklist says, so an operator
 * who blocks 127.0.0.1 or ::/0 does not blind it. */
static bool blocked(struct req *r, const struct route *rt)
{
	if (!blocklist_match(r->db, r->remote_addr))
		return false;
	if (rt && (rt->flags & RF_MONITOR) && addr_is_loopback(r->remote_addr))
		return false;
	reply_error(r, E_BLOCKED, "requests from this address are blocked", NULL);
	return true;
}

void pipeline_run(struct req *r, bool test_routes)
{
	char allow[128];
	const struct route *rt = NULL;
	enum route_result rr;
	bool local;

	r->db = worker_db;
	if (r->body_state == BODY_BAD_LENGTH) {
		reply_error(r, E_BAD_REQUEST, "CONTENT_LENGTH is not a valid length", NULL);
		return;
	}
	r->params = arena_calloc(r->arena, 1, sizeof(*r->params));
	if (!r->params) {
		reply_error(r, E_INTERNAL, "out of memory", NULL);
		return;
	}
	/* Matching is pure: the blocklist, which answers first, needs to know
	 * whether this is a monitoring route. */
	rr = router_match(routes, nroutes, r->method, r->path, test_routes, r->arena, &rt,
	    r->params, allow, sizeof(allow));
	if (blocked(r, rr == ROUTE_FOUND ? rt : NULL))
		return;
	if (rr != ROUTE_FOUND) {
		reply_route_miss(r, rr, allow);
		return;
	}
	r->route = rt;
	r->route_index = (int)(rt - routes);

	if (r->body_state == BODY_TOO_BIG) {
		reply_error(r, E_PAYLOAD_TOO_LARGE, "the request body exceeds 1 MiB", NULL);
		return;
	}
	if (r->body_state != BODY_OK) {
		reply_error(r, E_BAD_REQUEST, "the request body is shorter than its length", NULL);
		return;
	}
	/* Loopback monitoring (Prometheus on the host) needs no credentials. */
	local = (rt->flags & RF_LOOPBACK) && addr_is_loopback(r->remote_addr);
	if (!local && !(rt->flags & RF_NO_DB) && !db_ready(r)) {
		reply_db_error(r);
		return;
	}
	if (!local && !(rt->flags & RF_PUBLIC) && !authorize_or_reply(r, rt))
		return;
	if (!local && !rate_ok(r, rt))
		return;
	if ((rt->flags & RF_JSON_BODY) && !((rt->flags & RF_JSON_OPTIONAL) && r->body_len == 0) &&
	    !read_json_body(r))
		return;
	if (r->who && r->cfg->legal_enforce && !(rt->flags & RF_LEGAL_EXEMPT) &&
	    !legal_gate_ok(r, rt))
		return;
	rt->handler(r);
	/* what the handler changed leaves this host's cache before the answer does */
	pcache_apply_pending();
	if (!r->replied) {
		log_msg(LL_ERROR, "handler_no_reply", "route %s did not reply", rt->name);
		reply_error(r, E_INTERNAL, "internal error", NULL);
	}
}
