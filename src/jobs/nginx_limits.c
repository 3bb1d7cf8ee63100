/* nginx's first-line 429s, seen from opsd (README "Runbook 4", "Runbook 6"): nginx refuses
 * them before they reach the pool, so the jobs process reads nginx's JSON
 * access log as it grows, counts each nginx 429 in
 * opsd_rate_limited_total{layer="nginx",route} and writes one
 * security.rate_limited audit event per client address and minute. A 429
 * that opsd itself answered has an upstream status and is not counted
 * twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "api/routes.h"
#include "core/audit.h"
#include "http/router.h"
#include "infra/config.h"
#include "infra/metrics.h"
#include "jobs/jobs.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"

#define READ_MAX (4 << 20) /* per pass: a flood is counted over several seconds */
#define SOURCES 256
#define AUDITS_PER_MIN 60

static int64_t minute_start;
static int minute_audits;

static struct {
	FILE *f;
	ino_t ino;
	long offset;
	bool positioned;
} tail;

/* Addresses audited in the last minute (a small ring: a flood from many
 * addresses audits each of them at most once a minute while it lasts). */
static struct source {
	char addr[64];
	int64_t audited_ms;
	uint64_t refused;
} sources[SOURCES];

static struct source *source_for(const char *addr)
{
	struct source *oldest = &sources[0];

	for (size_t i = 0; i < SOURCES; i++) {
		if (strcmp(sources[i].addr, addr) == 0)
			return &sources[i];
		if (sources[i].audited_ms < oldest->audited_ms)
			oldest = &sources[i];
	}
	memset(oldest, 0, sizeof(*oldest));
	str_copy(oldest->addr, addr, sizeof(oldest->addr));
	return oldest;
}

static const char *access_log_path(const struct opsd_config *cfg, char *buf, size_t len)
{
	if (cfg->nginx_access_log && cfg->nginx_access_log[0])
		return cfg->nginx_access_log;
	snprintf(buf, len, "%s/log/nginx-access.log", cfg->var_dir ? cfg->var_dir : ".");
	return buf;
}

/* Opens the log, or reopens it after a rotation (another inode, or a file
 * shorter than what was read). The first open starts at the end: what
 * happened before this process is not news. */
static bool tail_open(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return false;
	if (tail.f && (st.st_ino != tail.ino || st.st_size < tail.offset)) {
		fclose(tail.f);
		tail.f = NULL;
		tail.offset = 0;
	}
	if (!tail.f) {
		if (!(tail.f = fopen(path, "re")))
			return false;
		tail.ino = st.st_ino;
		if (!tail.positioned) {
			fseek(tail.f, 0, SEEK_END);
			tail.offset = ftell(tail.f);
			tail.positioned = true;
		}
	}
	return fseek(tail.f, tail.offset, SEEK_SET) == 0;
}

static int route_of(struct arena *a, const char *method, const char *uri)
{
	char path[1024];
	const struct route *rt = NULL;
	struct route_params params;
	char allow[128];

	enum route_result rr;

	str_copy(path, uri, sizeof(path));
	path[strcspn(path, "?")] = '\0';
	rr = router_match(routes, nroutes, method, path, true, a, &rt, &params, allow,
	    sizeof(allow));
	/* nginx logs the error page's method (GET) for a request it refused:
	 * a path that takes another method is counted under the first one. */
	if (rr == ROUTE_BAD_METHOD) {
		char m[16];

		str_copy(m, allow, sizeof(m));
		m[strcspn(m, ", ")] = '\0';
		rr = router_match(routes, nroutes, m, path, true, a, &rt, &params, allow,
		    sizeof(allow));
	}
	return rr == ROUTE_FOUND && rt ? (int)(rt - routes) : -1;
}

static void refused(struct db *d, struct arena *a, struct json_object *line)
{
	const char *method = json_object_get_string(json_object_object_get(line, "method"));
	const char *uri = json_object_get_string(json_object_object_get(line, "uri"));
	const char *addr = json_object_get_string(json_object_object_get(line, "remote_addr"));
	const char *rid = json_object_get_string(json_object_object_get(line, "request_id"));
	int route = method && uri ? route_of(a, method, uri) : -1;
	struct source *s;
	int64_t now = now_ms();

	metrics_rate_limited(RL_LAYER_NGINX, route);
	if (!addr)
		return;
	s = source_for(addr);
	s->refused++;
	if (now - s->audited_ms < 60000)
		return;
	/* A flood from more addresses than the ring holds must not turn into
	 * one audit event per 429: at most AUDITS_PER_MIN a minute in all. */
	if (now - minute_start >= 60000) {
		minute_start = now;
		minute_audits = 0;
	}
	if (minute_audits >= AUDITS_PER_MIN)
		return;
	minute_audits++;
	{
		struct audit_actor actor = {NULL, "anonymous", addr, rid};
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "layer", json_object_new_string("nginx"));
		json_object_object_add(p, "route",
		    json_object_new_string(route >= 0 ? routes[route].name : "unmatched"));
		json_object_object_add(p, "source", json_object_new_string("ip"));
		json_object_object_add(p, "refusedSinceLastEvent",
		    json_object_new_int64((int64_t)s->refused));
		if (audit_append_tx(d, &actor, AA_SECURITY_RATE_LIMITED, NULL, "ip", addr, p) != 0)
			log_msg(LL_ERROR, "audit_failed", "security.rate_limited (nginx)");
	}
	s->audited_ms = now;
	s->refused = 0;
}

int nginx_limits_job(struct db *d, const struct opsd_config *cfg)
{
	char pathbuf[1024], *line = NULL;
	size_t cap = 0;
	ssize_t got;
	const char *path = access_log_path(cfg, pathbuf, sizeof(pathbuf));
	struct arena *a;
	long read = 0;

	if (!tail_open(path))
		return 0;
	if (!(a = arena_new(4096)))
		return -1;
	/* getline: a line of any length (an 8 KB user agent) is read whole */
	while (read < READ_MAX && (got = getline(&line, &cap, tail.f)) > 0) {
		size_t n = (size_t)got;
		struct json_object *o;
		const char *up;

		if (line[n - 1] != '\n')
			break; /* a line nginx is still writing: next pass */
		read += (long)n;
		tail.offset += (long)n;
		/* only the 429s nginx answered itself (no upstream status) */
		if (!strstr(line, "\"status\":429"))
			continue;
		if (!(o = json_tokener_parse(line)))
			continue;
		up = json_object_get_string(json_object_object_get(o, "upstream_status"));
		if (!up || !up[0] || strcmp(up, "-") == 0) {
			arena_reset(a);
			refused(d, a, o);
		}
		json_object_put(o);
	}
	clearerr(tail.f);
	free(line);
	arena_free(a);
	return read >= READ_MAX ? 1 : 0;
}
