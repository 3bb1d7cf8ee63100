#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "api/api.h"
#include "lib/arena.h"
#include "core/audit.h"
#include "core/auth.h"
#include "core/authz.h"
#include "core/blocklist.h"
#include "lib/buf.h"
#include "infra/config.h"
#include "infra/db.h"
#include "server/fcgi.h"
#include "http/http.h"
#include "lib/json.h"
#include "core/legal.h"
#include "lib/log.h"
#include "infra/metrics.h"
#include "infra/ratelimit.h"
#include "http/router.h"
#include "api/routes.h"
#include "infra/scoreboard.h"
#include "core/session.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "server/worker.h"

static volatile sig_atomic_t stopping;

/* SIGQUIT: finish the current request, then leave. fcgi2 only stops its
 * accept loop when told through FCGX_ShutdownPending. */
static void on_quit(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

/* The mask while waiting for a connection: everything open. Outside that
 * wait SIGQUIT stays blocked, so a graceful stop or reload never interrupts
 * a read or write of the request in hand (libfcgi does not retry EINTR). */
static sigset_t wait_mask;

static void install_signals(void)
{
	struct sigaction sa;
	sigset_t quit;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: accept() must return EINTR so the worker can leave. */
	sa.sa_handler = on_quit;
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&wait_mask);
	sigemptyset(&quit);
	sigaddset(&quit, SIGQUIT);
	sigprocmask(SIG_SETMASK, &quit, NULL);
}

/* nginx's $request_id is 32 hex digits; anything odd that arrives over a
 * direct FastCGI connection is replaced rather than echoed into headers. */
static const char *sane_request_id(struct arena *a, const char *rid)
{
	struct opsd_uuid u;
	char buf[UUID_STR_LEN + 1];
	size_t n = 0;

	if (rid) {
		for (; rid[n] && n <= 64; n++) {
			char c = rid[n];

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.'))
				break;
		}
		if (n > 0 && n <= 64 && rid[n] == '\0')
			return rid;
	}
	uuid7_new(&u);
	uuid_format(&u, buf);
	return arena_strdup(a, buf);
}

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
		reply_error(r, 413, "payload_too_large", "the request body exceeds 1 MiB", NULL);
		return;
	case JSON_PARSE_EMPTY:
		reply_error(r, 400, "invalid_json", "a JSON object body is required", NULL);
		return;
	default:
		reply_error(r, 400, "invalid_json", why[0] ? why : "the body is not valid JSON",
		    NULL);
		return;
	}
}

/* Body checks that sit before every handler taking JSON. */
static bool read_json_body(struct req *r)
{
	enum json_parse_err e;
	char why[160] = "";

	if (!is_json_type(r->content_type)) {
		reply_error(r, 415, "unsupported_media_type",
		    "Content-Type must be application/json", NULL);
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
		reply_error(r, 405, "method_not_allowed", "this method is not allowed on this path",
		    d);
		return;
	}
	case ROUTE_BAD_PATH:
		reply_error(r, 400, "bad_path", "the path has a malformed escape", NULL);
		return;
	default:
		reply_error(r, 404, "not_found", "no such endpoint", NULL);
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
		worker_db = db_open(r->cfg->db_uri, err, sizeof(err));
		if (!worker_db) {
			log_msg(LL_WARN, "db_connect_failed", "%s", err);
			return false;
		}
	}
	r->db = worker_db;
	return db_ensure(worker_db) == 0;
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
	struct rl_limit l = {r->cfg->ratelimit_ip_per_min, r->cfg->ratelimit_burst};
	struct rl_verdict v;
	const char *addr = r->remote_addr ? r->remote_addr : "";
	char key[96];
	bool audit;
	uint64_t since;

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
		reply_error(r, 500, "internal_error", "out of memory", NULL);
		return false;
	}
	switch (auth_authenticate(r, p)) {
	case AUTH_OK:
		break;
	case AUTH_DB_ERROR:
		reply_db_error(r);
		return false;
	default:
		if (!auth_failure_limited(r, rt))
			reply_error(r, 401, "unauthenticated",
			    "sign in or present a valid API token", NULL);
		return false;
	}
	r->who = p;
	if (rt->perm != P_NONE && !perms_have(p->perms, rt->perm)) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "permission",
		    json_object_new_string(perm_name(rt->perm)));
		reply_error(r, 403, "forbidden", "you lack the permission this needs", d);
		return false;
	}
	/* SPEC §6: a cookie rides along on cross-site requests; the token does not. */
	if (p->method == AUTH_SESSION && is_unsafe(r->method) &&
	    !session_csrf_ok(r->cfg->session_secret, p->session_id, r->csrf_token)) {
		reply_error(r, 403, "csrf_failed", "missing or wrong X-CSRF-Token", NULL);
		return false;
	}
	return true;
}

/* SPEC §7: with LEGAL_ENFORCE=1 a person who has not accepted every current
 * document can use only the exempt routes. One indexed query on the
 * cached current documents. */
static bool legal_gate_ok(struct req *r)
{
	const struct legal_doc *docs;
	bool pending[64];
	size_t n;
	struct json_object *list, *d;

	if (r->who->service)
		return true;
	if (legal_current(r->db, &docs, &n) != 0 || n > 64 ||
	    legal_pending(r->db, r->arena, r->who->user_id, docs, n, pending, NULL) != 0) {
		reply_db_error(r);
		return false;
	}
	list = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *p;

		if (!pending[i])
			continue;
		p = json_object_new_object();
		json_object_object_add(p, "type", json_object_new_string(docs[i].type));
		json_object_object_add(p, "version", json_object_new_string(docs[i].version));
		json_object_array_add(list, p);
	}
	if (json_object_array_length(list) == 0) {
		json_object_put(list);
		return true;
	}
	d = json_object_new_object();
	json_object_object_add(d, "pending", list);
	reply_error(r, 403, "legal_acceptance_required",
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

/* opsd's second line (SPEC §11): one bucket per signed-in user or API
 * token, or per client IP for anonymous calls, shared by the workers of the
 * host. Every answer that went through it carries RateLimit-*; a refusal is
 * logged, counted and, once a minute per source, audited. */
static bool rate_ok(struct req *r, const struct route *rt)
{
	const struct opsd_config *c = r->cfg;
	struct rl_limit l = {0, c->ratelimit_burst};
	struct rl_verdict v;
	char key[96], n[24];
	const char *kind, *id;
	uint64_t since;
	bool audit;

	if (rt->flags & RF_MONITOR)
		return true;
	if (r->who && r->who->method == AUTH_TOKEN) {
		kind = "token";
		id = r->who->token_id;
		l.per_min = c->ratelimit_token_per_min;
	} else if (r->who) {
		kind = "user";
		id = r->who->user_id;
		l.per_min = c->ratelimit_user_per_min;
	} else {
		kind = "ip";
		id = r->remote_addr ? r->remote_addr : "";
		l.per_min = c->ratelimit_ip_per_min;
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

static void dispatch(struct req *r, enum body_state body, bool test_routes)
{
	char allow[128];
	const struct route *rt = NULL;
	enum route_result rr;
	bool local;

	if (blocklist_blocked(r))
		return;
	r->params = arena_calloc(r->arena, 1, sizeof(*r->params));
	if (!r->params) {
		reply_error(r, 500, "internal_error", "out of memory", NULL);
		return;
	}
	rr = router_match(routes, nroutes, r->method, r->path, test_routes, r->arena, &rt,
	    r->params, allow, sizeof(allow));
	if (rr != ROUTE_FOUND) {
		reply_route_miss(r, rr, allow);
		return;
	}
	r->route = rt;
	r->route_index = (int)(rt - routes);

	if (body == BODY_TOO_BIG) {
		reply_error(r, 413, "payload_too_large", "the request body exceeds 1 MiB", NULL);
		return;
	}
	if (body != BODY_OK) {
		reply_error(r, 400, "bad_request", "the request body is shorter than its length",
		    NULL);
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
	if ((rt->flags & RF_JSON_BODY) && !read_json_body(r))
		return;
	if (r->who && r->cfg->legal_enforce && !(rt->flags & RF_LEGAL_EXEMPT) && !legal_gate_ok(r))
		return;
	rt->handler(r);
	if (!r->replied) {
		log_msg(LL_ERROR, "handler_no_reply", "route %s did not reply", rt->name);
		reply_error(r, 500, "internal_error", "internal error", NULL);
	}
}

static void stream_head(struct req *r)
{
	fcgi_write_head(r->stream_ctx, r, false);
}

static void stream_body(struct req *r, const void *p, size_t n)
{
	FCGX_PutStr(p, (int)n, ((FCGX_Request *)r->stream_ctx)->out);
}

static void log_request(const struct req *r, int64_t dur_us, int slowlog_ms)
{
	bool slow = slowlog_ms > 0 && dur_us >= (int64_t)slowlog_ms * 1000;
	/* nginx's access log has every request; opsd's has the ones an operator
	 * looks for: failed (>= 400) and slow. Successful ones are debug. */
	enum log_level lvl = slow               ? LL_WARN
	                     : r->status >= 500 ? LL_ERROR
	                     : r->status >= 400 ? LL_INFO
	                                        : LL_DEBUG;
	struct logline *l = log_begin(lvl, slow ? "slow_request" : "request");

	log_str(l, "method", r->method);
	log_str(l, "path", r->path);
	log_str(l, "route", r->route ? r->route->name : "unmatched");
	log_int(l, "status", r->status);
	log_dbl(l, "durationMs", (double)dur_us / 1000.0);
	log_str(l, "remoteAddr", r->remote_addr);
	if (r->error_code)
		log_str(l, "errorCode", r->error_code);
	log_end(l);
}

static void handle(FCGX_Request *fr, struct req *r, const struct worker_args *wa)
{
	const struct opsd_config *cfg = wa->cfg;
	enum body_state body;
	bool head;
	int64_t dur;

	r->cfg = cfg;
	r->db = worker_db;
	r->stream_ctx = fr;
	r->stream_head = stream_head;
	r->stream_body = stream_body;
	r->start_us = mono_us();
	r->route_index = -1;
	body = fcgi_read_request(fr, r, JSON_MAX_BODY);
	r->request_id = sane_request_id(r->arena, r->request_id);
	log_set_request_id(r->request_id);
	scoreboard_request_start(wa->sb, wa->slot, r->method, r->path, r->request_id);

	if (body == BODY_BAD_LENGTH)
		reply_error(r, 400, "bad_request", "CONTENT_LENGTH is not a valid length", NULL);
	else
		dispatch(r, body, cfg->env == ENV_TEST);

	head = strcmp(r->method, "HEAD") == 0;
	fcgi_write_reply(fr, r, head);
	dur = mono_us() - r->start_us;
	metrics_request(r->route_index, r->status, dur);
	log_request(r, dur, cfg->slowlog_ms);
	if (cfg->slowlog_ms > 0 && dur >= (int64_t)cfg->slowlog_ms * 1000)
		__atomic_add_fetch(&wa->sb->slow_requests, 1, __ATOMIC_RELAXED);
	scoreboard_request_end(wa->sb, wa->slot, r->status, dur);
	if (r->json)
		json_object_put(r->json);
	log_set_request_id(NULL);
}

int worker_main(const struct worker_args *wa)
{
	FCGX_Request fr;
	struct arena *arena = arena_new(64 * 1024);
	struct buf out;
	char err[256];
	uint64_t served = 0;
	int rc = 0;

	log_set_role("worker");
	buf_init(&out);
	if (!arena) {
		log_msg(LL_ERROR, "worker_start_failed", "out of memory");
		return 1;
	}
	/* The listen socket is not given to libfcgi: fcgi_accept_checked
	 * accepts and vets each connection, then hands it over as ipcFd. */
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, -1, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_msg(LL_ERROR, "worker_start_failed", "FCGX_Init failed");
		return 1;
	}
	/* After FCGX_Init: libfcgi installs its own SIGTERM/SIGUSR1 handlers
	 * that only set shutdownPending, which would leave a worker spinning
	 * instead of stopping. Ours replace them. */
	install_signals();
	legal_attach_generation(&wa->sb->legal_generation);
	worker_db = db_open(wa->cfg->db_uri, err, sizeof(err));
	if (!worker_db)
		log_msg(LL_WARN, "db_connect_failed", "%s", err);
	blocklist_attach(&wa->sb->blocklist_generation, worker_db);

	scoreboard_set_state(wa->sb, wa->slot, SB_IDLE);
	while (!stopping) {
		struct req r;
		int fd = fcgi_accept_checked(wa->listen_fd, wa->cfg->allowed_clients, &wait_mask);

		if (fd < 0)
			continue;
		/* keepConnection makes FCGX_Accept_r read from our fd instead of
		 * closing it; a protocol error it still finds closes the fd and
		 * fails on the invalid listen socket, which is just a refusal. */
		fr.ipcFd = fd;
		fr.keepConnection = 1;
		if (FCGX_Accept_r(&fr) < 0) {
			if (fr.ipcFd >= 0)
				close(fr.ipcFd);
			fr.ipcFd = -1;
			log_msg(LL_WARN, "fcgi_rejected", "libfcgi refused the request");
			continue;
		}
		memset(&r, 0, sizeof(r));
		r.arena = arena;
		r.out = &out;
		handle(&fr, &r, wa);
		FCGX_Finish_r(&fr);
		/* FCGI_KEEP_CONN is not served: one request per connection. */
		if (fr.ipcFd >= 0) {
			close(fr.ipcFd);
			fr.ipcFd = -1;
		}
		arena_reset(arena);
		buf_reset(&out);
		if (out.cap > 4 * 1024 * 1024) {
			buf_free(&out);
			buf_init(&out);
		}
		served++;
		if (wa->cfg->max_requests > 0 && served >= (uint64_t)wa->cfg->max_requests) {
			log_msg(LL_INFO, "worker_recycle", "served %llu requests",
			    (unsigned long long)served);
			break;
		}
	}
	scoreboard_set_state(wa->sb, wa->slot, SB_EXITING);
	FCGX_Free(&fr, 1);
	db_close(worker_db);
	worker_db = NULL;
	buf_free(&out);
	arena_free(arena);
	return rc;
}
