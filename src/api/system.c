/* Health, readiness, pool status and metrics (README "Runbook 6"), and the routes that
 * exist only under OPSD_ENV=test. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/routes.h"
#include "api/specs.h"
#include "core/audit.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/metrics.h"
#include "infra/schema.h"
#include "infra/scoreboard.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/util.h"
#include "migration/migration.h"

void api_healthz(struct req *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	reply_json(r, 200, o);
}

/* The schema check reads sql/ and schema_migrations: cache a good answer
 * for a few seconds per worker; a bad one is re-checked every time. */
#define SCHEMA_CACHE_MS 5000

/* 1 when the schema is current, 0 when behind, -1 when MariaDB cannot be
 * asked. A current schema is remembered for SCHEMA_CACHE_MS; that MariaDB
 * answers is asked every time (a statement, not the once-a-second ping), so
 * that every worker says 503 as soon as it is down. */
static int schema_state(struct req *r)
{
	static int64_t current_until;
	int current;

	if (db_ensure(r->db) != 0 || schema_probe(r->db) != 0)
		return -1;
	if (mono_ms() < current_until)
		return 1;
	current = schema_is_current(r->db, r->cfg->sql_dir);
	if (current == 1)
		current_until = mono_ms() + SCHEMA_CACHE_MS;
	return current;
}

void api_readyz(struct req *r)
{
	struct json_object *o = json_object_new_object();
	int current = schema_state(r);

	if (current < 0) {
		json_object_put(o);
		reply_db_error(r);
		return;
	}
	json_object_object_add(o, "status",
	    json_object_new_string(current ? "ready" : "not_ready"));
	json_object_object_add(o, "db", json_object_new_string("ok"));
	json_object_object_add(o, "schema", json_object_new_string(current ? "current" : "behind"));
	if (!current) {
		reply_header(r, "Retry-After", "10");
		reply_error(r, E_UNAVAILABLE,
		    "the database schema is behind: run opsctl db migrate", o);
		return;
	}
	reply_json(r, 200, o);
}

/* Current and maximum accept queue of the listen socket, like php-fpm's
 * "listen queue": TCP_INFO for TCP, sock_diag for unix sockets. */
static int unix_listen_queue(int fd, long *cur, long *max)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} q;
	char resp[8192];
	struct stat st;
	ssize_t n;
	int nl, rc = -1;

	if (fstat(fd, &st) != 0)
		return -1;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	memset(&q, 0, sizeof(q));
	q.nlh.nlmsg_len = sizeof(q);
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST;
	q.req.sdiag_family = AF_UNIX;
	q.req.udiag_states = 1u << 10; /* TCP_LISTEN */
	q.req.udiag_ino = (unsigned)st.st_ino;
	q.req.udiag_show = UDIAG_SHOW_RQLEN;
	q.req.udiag_cookie[0] = q.req.udiag_cookie[1] = ~0u;
	if (send(nl, &q, sizeof(q), 0) != (ssize_t)sizeof(q))
		goto done;
	n = recv(nl, resp, sizeof(resp), 0);
	for (struct nlmsghdr *h = (struct nlmsghdr *)resp; n > 0 && NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		struct unix_diag_msg *msg = NLMSG_DATA(h);
		struct rtattr *a = (struct rtattr *)(msg + 1);
		long len = (long)h->nlmsg_len - (long)NLMSG_LENGTH(sizeof(*msg));

		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			break;
		for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			if (a->rta_type == UNIX_DIAG_RQLEN) {
				struct unix_diag_rqlen *q2 = RTA_DATA(a);

				*cur = q2->udiag_rqueue;
				*max = q2->udiag_wqueue;
				rc = 0;
			}
		}
	}
done:
	close(nl);
	return rc;
}

static int listen_queue(const struct server_info *s, long *cur, long *max)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (s->listen_fd < 0)
		return -1;
	if (s->listen && str_has_prefix(s->listen, "unix:"))
		return unix_listen_queue(s->listen_fd, cur, max);
	if (getsockopt(s->listen_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return -1;
	/* For a listening socket the kernel reports the accept queue here. */
	*cur = ti.tcpi_unacked;
	*max = ti.tcpi_sacked;
	return 0;
}

static struct json_object *time_json(int64_t ms)
{
	char t[32];

	format_rfc3339(ms, t);
	return json_object_new_string(t);
}

static struct json_object *ms_json(int64_t us)
{
	char t[32];

	snprintf(t, sizeof(t), "%.3f", (double)us / 1000.0);
	return json_object_new_double_s((double)us / 1000.0, t);
}

static struct json_object *worker_json(const struct sb_slot *s, int state)
{
	struct json_object *w = json_object_new_object();
	bool busy = state == SB_BUSY;

	json_object_object_add(w, "pid", json_object_new_int(s->pid));
	json_object_object_add(w, "state", json_object_new_string(scoreboard_state_name(state)));
	json_object_object_add(w, "startTime", time_json(s->started_ms));
	json_object_object_add(w, "requests", json_object_new_int64((int64_t)s->requests));
	json_object_object_add(w, "generation", json_object_new_int((int)s->generation));
	if (busy) {
		json_object_object_add(w, "requestMethod", json_object_new_string(s->method));
		json_object_object_add(w, "requestUri", json_object_new_string(s->uri));
		json_object_object_add(w, "requestId", json_object_new_string(s->request_id));
		json_object_object_add(w, "requestDurationMs",
		    json_object_new_int64(mono_ms() - s->req_start_mono));
	} else if (s->requests > 0) {
		json_object_object_add(w, "lastRequestMethod", json_object_new_string(s->method));
		json_object_object_add(w, "lastRequestUri", json_object_new_string(s->uri));
		json_object_object_add(w, "lastRequestStatus", json_object_new_int(s->last_status));
		json_object_object_add(w, "lastRequestDurationMs", ms_json(s->last_duration_us));
	}
	return w;
}

/* This host's nginx process (README "Runbook 4"): one entry per include it applies, none
 * when OPSD_NGINX_APPLY is off. */
static struct json_object *nginx_apply_json(const struct scoreboard *sb)
{
	struct json_object *list = json_object_new_array();
	struct sb_nginx e;

	for (int i = 0; i < SB_NGINX_FILES; i++) {
		struct json_object *o;

		if (!scoreboard_nginx_read(sb, i, &e))
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "file", json_object_new_string(e.name));
		json_object_object_add(o, "state",
		    json_object_new_string(scoreboard_nginx_state_name(e.state)));
		json_object_object_add(o, "lastCheckAt",
		    e.checked_ms ? time_json(e.checked_ms) : NULL);
		json_object_object_add(o, "lastSuccessAt",
		    e.success_ms ? time_json(e.success_ms) : NULL);
		json_object_object_add(o, "lastReloadAt",
		    e.reload_ms ? time_json(e.reload_ms) : NULL);
		json_object_object_add(o, "failures", json_object_new_int64((int64_t)e.failures));
		json_object_object_add(o, "lastError",
		    e.error[0] ? json_object_new_string(e.error) : NULL);
		json_object_object_add(o, "lastErrorAt", e.error_ms ? time_json(e.error_ms) : NULL);
		json_object_array_add(list, o);
	}
	return list;
}

const struct field_spec status_query[] = {
    {"full", FT_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_status(struct req *r)
{
	const struct scoreboard *sb = r->server->sb;
	struct json_object *o = json_object_new_object();
	struct sb_counts c;
	long qcur = 0, qmax = 0;
	bool have_queue = listen_queue(r->server, &qcur, &qmax) == 0;

	scoreboard_count(sb, sb->generation, &c);
	json_object_object_add(o, "pool", json_object_new_string("opsd"));
	json_object_object_add(o, "processManager", json_object_new_string(r->server->pm_name));
	json_object_object_add(o, "startTime", time_json(sb->start_ms));
	json_object_object_add(o, "startSince",
	    json_object_new_int64((now_ms() - sb->start_ms) / 1000));
	json_object_object_add(o, "acceptedConn",
	    json_object_new_int64((int64_t)sb->accepted_conn));
	json_object_object_add(o, "listenQueue", have_queue ? json_object_new_int64(qcur) : NULL);
	json_object_object_add(o, "listenQueueLen",
	    have_queue ? json_object_new_int64(qmax) : NULL);
	json_object_object_add(o, "idleProcesses", json_object_new_int(c.idle));
	json_object_object_add(o, "activeProcesses", json_object_new_int(c.busy));
	json_object_object_add(o, "totalProcesses", json_object_new_int(c.total));
	json_object_object_add(o, "maxActiveProcesses", json_object_new_int(sb->max_active));
	json_object_object_add(o, "maxChildren", json_object_new_int(sb->workers_max));
	json_object_object_add(o, "maxChildrenReached",
	    json_object_new_int64((int64_t)sb->max_children_reached));
	json_object_object_add(o, "slowRequests",
	    json_object_new_int64((int64_t)sb->slow_requests));
	json_object_object_add(o, "requestTimeouts", json_object_new_int64((int64_t)sb->timeouts));
	json_object_object_add(o, "workerRestarts",
	    json_object_new_int64((int64_t)sb->worker_restarts));
	json_object_object_add(o, "nginxApply", nginx_apply_json(sb));
	if (req_query_has(r, "full")) {
		struct json_object *list = json_object_new_array();

		for (int i = 0; i < SB_MAX_SLOTS; i++) {
			const struct sb_slot *s = &sb->slots[i];
			int st = scoreboard_state(sb, i);

			if (st == SB_FREE || s->pid <= 0 || s->kind != SB_WORKER)
				continue;
			json_object_array_add(list, worker_json(s, st));
		}
		json_object_object_add(o, "processes", list);
	}
	reply_json(r, 200, o);
}

_Static_assert(AA__MAX <= METRICS_MAX_LABELS && MIG__MAX <= METRICS_MAX_LABELS,
    "metrics keeps a counter per audit action and per migration status");

/* The label vocabularies /metrics prints: the route table's names, the
 * audit actions it counts, the migration statuses. Built once per worker. */
static const struct metrics_labels *metric_labels(void)
{
	static const char *audit[AA__MAX], *mig[MIG__MAX];
	static struct metrics_labels l;

	if (!l.routes) {
		for (size_t i = 0; i < AA__MAX; i++)
			audit[i] = audit_actions[i].counted ? audit_actions[i].name : NULL;
		for (int i = 0; i < MIG__MAX; i++)
			mig[i] = mig_status_name((enum mig_status)i);
		l = (struct metrics_labels){routes_names(), nroutes, audit, AA__MAX, mig, MIG__MAX,
		    NULL};
	}
	return &l;
}

void api_metrics(struct req *r)
{
	struct metrics_labels l = *metric_labels();
	uint64_t counts[AA__MAX];
	/* What /readyz would say, for alerting without a separate probe: a
	 * loopback scrape works while MariaDB is down. */
	int ready = schema_state(r);

	/* The audit counts live in the database (every writer counts there);
	 * while it cannot be read that one family is left out. */
	if (ready >= 0 && audit_action_counts(r->db, counts) == 0)
		l.audit_counts = counts;
	metrics_render(r->out, &l, r->server->sb);
	buf_printf(r->out,
	    "# HELP opsd_ready 1 when MariaDB answers and the schema is current (as /readyz), else 0.\n"
	    "# TYPE opsd_ready gauge\nopsd_ready %d\n",
	    ready == 1);
	/* metrics_render wrote straight into the reply buffer. */
	r->replied = true;
	r->status = 200;
	r->content_type_out = "text/plain; version=0.0.4; charset=utf-8";
}

void api_test_sleep(struct req *r)
{
	const char *ms_s = req_query(r, "ms");
	long ms = ms_s ? strtol(ms_s, NULL, 10) : 0;
	int64_t until;
	struct json_object *o;

	if (ms < 0 || ms > 600000) {
		reply_error(r, E_VALIDATION_FAILED, "ms must be between 0 and 600000", NULL);
		return;
	}
	until = mono_ms() + ms;
	/* Sleep through signals: only the master's SIGKILL may cut it short. */
	for (int64_t left; (left = until - mono_ms()) > 0;) {
		struct timespec ts = {left / 1000, (left % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	o = json_object_new_object();
	json_object_object_add(o, "sleptMs", json_object_new_int64(ms));
	reply_json(r, 200, o);
}

const struct field_spec test_echo_spec[] = {
    {"message", FT_STRING, FIELD_REQUIRED, 1, 200, NULL},
    {"count", FT_INT, 0, 0, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void api_test_echo(struct req *r)
{
	if (!req_validate_or_reply(r, test_echo_spec))
		return;
	reply_json(r, 200, json_object_get(r->json));
}

void api_test_db(struct req *r)
{
	struct db_rows rows;
	struct json_object *o;

	if (db_query(r->db, r->arena, "SELECT 1", NULL, 0, &rows) != 0) {
		reply_db_error(r);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "db", json_object_new_string("ok"));
	reply_json(r, 200, o);
}
