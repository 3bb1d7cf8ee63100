#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "buf.h"
#include "metrics.h"
#include "migration.h"
#include "scoreboard.h"
#include "util.h"

/* Exact statuses are kept for these; anything else counts as "other". */
static const int status_codes[] = {
	200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 413, 414,
	415, 422, 429, 500, 502, 503, 504,
};
#define NSTATUS (countof(status_codes) + 1)

/* Latency buckets in seconds (upper bounds; +Inf is implicit). */
static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBUCKETS (countof(buckets) + 1)

/* Row METRICS_MAX_ROUTES collects requests that matched no route. */
#define NROWS (METRICS_MAX_ROUTES + 1)

static const char *const email_outcomes[EMAIL__MAX] = {
	[EMAIL_SENT] = "sent",
	[EMAIL_FAILED] = "failed",
	[EMAIL_RETRY] = "retry",
	[EMAIL_SUPPRESSED] = "suppressed",
};

struct metrics_shm {
	uint64_t emails[EMAIL__MAX];
	uint64_t migrations[MIG__MAX];
	uint64_t migration_rows;
	uint64_t requests[NROWS][NSTATUS];
	uint64_t hist[NROWS][NBUCKETS];
	uint64_t sum_us[NROWS];
};

static struct metrics_shm *shm;

/* Pool series read straight off the scoreboard: one line per entry. */
static const struct pool_metric {
	const char *name;
	const char *type;
	const char *help;
	size_t offset;
} pool_metrics[] = {
	{"opsd_accepted_requests_total", "counter", "Requests accepted by the pool since start.",
	    offsetof(struct scoreboard, accepted_conn)},
	{"opsd_slow_requests_total", "counter", "Requests slower than OPSD_SLOWLOG_MS.",
	    offsetof(struct scoreboard, slow_requests)},
	{"opsd_request_timeouts_total", "counter",
	    "Requests whose worker the master killed at OPSD_REQUEST_TIMEOUT.",
	    offsetof(struct scoreboard, timeouts)},
	{"opsd_max_children_reached_total", "counter",
	    "Times the pool had no idle worker and could not grow.",
	    offsetof(struct scoreboard, max_children_reached)},
	{"opsd_worker_restarts_total", "counter", "Workers that exited abnormally and were replaced.",
	    offsetof(struct scoreboard, worker_restarts)},
};

int metrics_init(void)
{
	void *p = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);

	if (p == MAP_FAILED)
		return -1;
	memset(p, 0, sizeof(*shm));
	shm = p;
	return 0;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < countof(status_codes); i++)
		if (status_codes[i] == status)
			return i;
	return NSTATUS - 1;
}

void metrics_request(int route, int status, int64_t duration_us)
{
	size_t row = (route < 0 || route >= METRICS_MAX_ROUTES) ? METRICS_MAX_ROUTES : (size_t)route;
	double secs = (double)duration_us / 1e6;
	size_t b = 0;

	if (!shm)
		return;
	while (b < countof(buckets) && secs > buckets[b])
		b++;
	__atomic_add_fetch(&shm->requests[row][status_index(status)], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&shm->hist[row][b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&shm->sum_us[row], (uint64_t)(duration_us > 0 ? duration_us : 0),
	    __ATOMIC_RELAXED);
}

void metrics_email(enum email_outcome o)
{
	if (shm && (unsigned)o < EMAIL__MAX)
		__atomic_add_fetch(&shm->emails[o], 1, __ATOMIC_RELAXED);
}

void metrics_migration(const char *status)
{
	int i = mig_status_from_name(status);

	if (shm && i >= 0)
		__atomic_add_fetch(&shm->migrations[i], 1, __ATOMIC_RELAXED);
}

void metrics_migration_rows(uint64_t n)
{
	if (shm)
		__atomic_add_fetch(&shm->migration_rows, n, __ATOMIC_RELAXED);
}

static void render_migrations(struct buf *out)
{
	buf_puts(out, "# HELP opsd_migrations_total Tenant migrations entering each status.\n"
		      "# TYPE opsd_migrations_total counter\n");
	for (int i = 0; i < MIG__MAX; i++)
		buf_printf(out, "opsd_migrations_total{status=\"%s\"} %llu\n", mig_status_name(i),
		    (unsigned long long)__atomic_load_n(&shm->migrations[i], __ATOMIC_RELAXED));
	buf_printf(out,
	    "# HELP opsd_migration_rows_copied_total Rows copied by tenant migrations (copy and"
	    " catch-up).\n# TYPE opsd_migration_rows_copied_total counter\n"
	    "opsd_migration_rows_copied_total %llu\n",
	    (unsigned long long)__atomic_load_n(&shm->migration_rows, __ATOMIC_RELAXED));
}

static void render_emails(struct buf *out)
{
	buf_puts(out, "# HELP opsd_emails_total Email delivery attempts by outcome.\n"
		      "# TYPE opsd_emails_total counter\n");
	for (int i = 0; i < EMAIL__MAX; i++)
		buf_printf(out, "opsd_emails_total{outcome=\"%s\"} %llu\n", email_outcomes[i],
		    (unsigned long long)__atomic_load_n(&shm->emails[i], __ATOMIC_RELAXED));
}

static const char *row_name(const char *const *names, size_t nroutes, size_t row)
{
	return row < nroutes ? names[row] : "unmatched";
}

static void render_requests(struct buf *out, const char *const *names, size_t nroutes)
{
	buf_puts(out, "# HELP opsd_http_requests_total HTTP requests answered, by route and status.\n"
		      "# TYPE opsd_http_requests_total counter\n");
	for (size_t row = 0; row < NROWS; row++) {
		if (row >= nroutes && row != METRICS_MAX_ROUTES)
			continue;
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t v = __atomic_load_n(&shm->requests[row][s], __ATOMIC_RELAXED);
			char code[8];

			if (v == 0)
				continue;
			if (s < countof(status_codes))
				snprintf(code, sizeof(code), "%d", status_codes[s]);
			else
				str_copy(code, "other", sizeof(code));
			buf_printf(out, "opsd_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
			    row_name(names, nroutes, row), code, (unsigned long long)v);
		}
	}
}

static void render_latency(struct buf *out, const char *const *names, size_t nroutes)
{
	buf_puts(out, "# HELP opsd_http_request_duration_seconds Time from request accepted to reply "
		      "written, by route.\n"
		      "# TYPE opsd_http_request_duration_seconds histogram\n");
	for (size_t row = 0; row < NROWS; row++) {
		uint64_t cum = 0;
		const char *name = row_name(names, nroutes, row);

		if (row >= nroutes && row != METRICS_MAX_ROUTES)
			continue;
		for (size_t b = 0; b < NBUCKETS; b++)
			cum += __atomic_load_n(&shm->hist[row][b], __ATOMIC_RELAXED);
		if (cum == 0)
			continue;
		cum = 0;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += __atomic_load_n(&shm->hist[row][b], __ATOMIC_RELAXED);
			if (b < countof(buckets))
				buf_printf(out,
				    "opsd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				    name, buckets[b], (unsigned long long)cum);
			else
				buf_printf(out,
				    "opsd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
				    name, (unsigned long long)cum);
		}
		buf_printf(out, "opsd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
		    (double)__atomic_load_n(&shm->sum_us[row], __ATOMIC_RELAXED) / 1e6);
		buf_printf(out, "opsd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", name,
		    (unsigned long long)cum);
	}
}

static void render_pool(struct buf *out, const struct scoreboard *sb)
{
	struct sb_counts c;

	scoreboard_count(sb, sb->generation, &c);
	buf_puts(out, "# HELP opsd_workers Worker processes of the pool, by state.\n"
		      "# TYPE opsd_workers gauge\n");
	buf_printf(out, "opsd_workers{state=\"idle\"} %d\n", c.idle);
	buf_printf(out, "opsd_workers{state=\"busy\"} %d\n", c.busy);
	buf_printf(out, "opsd_workers{state=\"starting\"} %d\n", c.starting);
	buf_puts(out, "# HELP opsd_workers_max Configured maximum of worker processes.\n"
		      "# TYPE opsd_workers_max gauge\n");
	buf_printf(out, "opsd_workers_max %d\n", sb->workers_max);
	for (size_t i = 0; i < countof(pool_metrics); i++) {
		const struct pool_metric *m = &pool_metrics[i];
		const uint64_t *v = (const uint64_t *)((const char *)sb + m->offset);

		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m->name, m->help, m->name,
		    m->type, m->name, (unsigned long long)__atomic_load_n(v, __ATOMIC_RELAXED));
	}
	buf_puts(out, "# HELP opsd_start_time_seconds Start time of the opsd master, Unix seconds.\n"
		      "# TYPE opsd_start_time_seconds gauge\n");
	buf_printf(out, "opsd_start_time_seconds %.3f\n", (double)sb->start_ms / 1000.0);
}

void metrics_render(struct buf *out, const char *const *route_names, size_t nroutes,
    const struct scoreboard *sb)
{
	if (nroutes > METRICS_MAX_ROUTES)
		nroutes = METRICS_MAX_ROUTES;
	if (shm) {
		render_requests(out, route_names, nroutes);
		render_latency(out, route_names, nroutes);
		render_emails(out);
		render_migrations(out);
	}
	if (sb)
		render_pool(out, sb);
}
