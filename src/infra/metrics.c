#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "infra/metrics.h"
#include "infra/scoreboard.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

/* Exact statuses are kept for these; anything else counts as "other". */
static const int status_codes[] = {
    200,
    201,
    202,
    204,
    301,
    302,
    304,
    400,
    401,
    403,
    404,
    405,
    409,
    413,
    414,
    415,
    422,
    429,
    500,
    502,
    503,
    504,
};
#define NSTATUS (countof(status_codes) + 1)

/* Latency buckets in seconds (upper bounds; +Inf is implicit). */
static const double buckets[] = {
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
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

static const char *const rl_layers[RL_LAYER__MAX] = {
    [RL_LAYER_NGINX] = "nginx",
    [RL_LAYER_OPSD] = "opsd",
};

static const char *const worker_exit_causes[WEXIT__MAX] = {
    [WEXIT_CRASH] = "crash",
    [WEXIT_ERROR] = "error",
    [WEXIT_KILLED] = "killed",
};

static const char *const cache_names[MC__MAX] = {
    [MC_SESSION] = "session",
    [MC_TOKEN] = "token",
    [MC_LEGAL] = "legal_acceptance",
};

static const char *const cache_results[MCR__MAX] = {
    [MCR_HIT] = "hit",
    [MCR_MISS] = "miss",
    [MCR_BYPASS] = "bypass",
};

static const char *const cache_origins[MCO__MAX] = {
    [MCO_LOCAL] = "local",
    [MCO_FEED] = "feed",
};

static const char *const pw_check_outcomes[PWC__MAX] = {
    [PWC_IMMEDIATE] = "immediate",
    [PWC_WAITED] = "waited",
    [PWC_REFUSED] = "refused",
};

/* One unlabelled counter each, in the order of enum metrics_db. */
static const struct {
	const char *name;
	const char *help;
} db_counters[MDB__MAX] = {
    [MDB_FAILOVER] = {"opsd_db_failovers_total",
        "Database connections made to another node of OPSD_DB_URI than the one used last."},
    [MDB_TX_RETRY] = {"opsd_db_tx_retries_total",
        "Transactions run again after a deadlock, a lock wait timeout or a certification "
        "conflict."},
};

struct metrics_shm {
	uint64_t db[MDB__MAX];
	uint64_t password_checks[PWC__MAX];
	uint64_t password_slots;
	uint64_t cache_lookups[MC__MAX][MCR__MAX];
	uint64_t cache_invalidations[MCO__MAX];
	uint64_t emails[EMAIL__MAX];
	uint64_t worker_exits[WEXIT__MAX];
	uint64_t migrations[METRICS_MAX_LABELS];
	uint64_t migration_rows;
	struct log_shared log;
	uint64_t rate_limited[RL_LAYER__MAX][NROWS];
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
	void *p =
	    mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	memset(p, 0, sizeof(*shm));
	shm = p;
	log_share(&shm->log);
	return 0;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < countof(status_codes); i++)
		if (status_codes[i] == status)
			return i;
	return NSTATUS - 1;
}

static size_t route_row(int route)
{
	return (route < 0 || route >= METRICS_MAX_ROUTES) ? METRICS_MAX_ROUTES : (size_t)route;
}

static void count(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static unsigned long long load(const uint64_t *c)
{
	return (unsigned long long)__atomic_load_n(c, __ATOMIC_RELAXED);
}

void metrics_request(int route, int status, int64_t duration_us)
{
	size_t row = route_row(route);
	double secs = (double)duration_us / 1e6;
	size_t b = 0;

	if (!shm)
		return;
	while (b < countof(buckets) && secs > buckets[b])
		b++;
	count(&shm->requests[row][status_index(status)], 1);
	count(&shm->hist[row][b], 1);
	count(&shm->sum_us[row], (uint64_t)(duration_us > 0 ? duration_us : 0));
}

void metrics_email(enum email_outcome o)
{
	if (shm && (unsigned)o < EMAIL__MAX)
		count(&shm->emails[o], 1);
}

void metrics_worker_exit(enum worker_exit_cause c)
{
	if (shm && (unsigned)c < WEXIT__MAX)
		count(&shm->worker_exits[c], 1);
}

void metrics_rate_limited(enum rl_layer layer, int route)
{
	if (shm && (unsigned)layer < RL_LAYER__MAX)
		count(&shm->rate_limited[layer][route_row(route)], 1);
}

void metrics_cache_lookup(enum metrics_cache c, enum metrics_cache_result r)
{
	if (shm && (unsigned)c < MC__MAX && (unsigned)r < MCR__MAX)
		count(&shm->cache_lookups[c][r], 1);
}

void metrics_cache_invalidation(enum metrics_cache_origin o)
{
	if (shm && (unsigned)o < MCO__MAX)
		count(&shm->cache_invalidations[o], 1);
}

void metrics_password_check(enum pw_check_outcome o)
{
	if (shm && (unsigned)o < PWC__MAX)
		count(&shm->password_checks[o], 1);
}

void metrics_db(enum metrics_db e)
{
	if (shm && (unsigned)e < MDB__MAX)
		count(&shm->db[e], 1);
}

void metrics_password_slots(int n)
{
	if (shm)
		__atomic_store_n(&shm->password_slots, (uint64_t)(n > 0 ? n : 0), __ATOMIC_RELAXED);
}

/* One counter per label index, for the vocabularies of other modules. */
static void count_label(uint64_t *counters, int i)
{
	if (shm && i >= 0 && i < METRICS_MAX_LABELS)
		count(&counters[i], 1);
}

void metrics_migration(int status)
{
	if (shm)
		count_label(shm->migrations, status);
}

void metrics_migration_rows(uint64_t n)
{
	if (shm)
		count(&shm->migration_rows, n);
}

/* ---- text format 0.0.4 ------------------------------------------------- */

struct label {
	const char *name;
	const char *value;
};

/* "# HELP" and "# TYPE" once per family, before its first sample. */
static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{l1="v1",...} and the separating space; label values escaped as the
 * text format requires (\\, \" and \n). */
static void series(struct buf *out, const char *name, const struct label *l, size_t nl)
{
	buf_puts(out, name);
	for (size_t i = 0; i < nl; i++) {
		buf_printf(out, "%c%s=\"", i == 0 ? '{' : ',', l[i].name);
		for (const char *p = l[i].value; *p; p++) {
			if (*p == '\\' || *p == '"')
				buf_putc(out, '\\');
			if (*p == '\n')
				buf_puts(out, "\\n");
			else
				buf_putc(out, *p);
		}
		buf_putc(out, '"');
		if (i + 1 == nl)
			buf_putc(out, '}');
	}
	buf_putc(out, ' ');
}

static void sample(struct buf *out, const char *name, const struct label *l, size_t nl,
    unsigned long long v)
{
	series(out, name, l, nl);
	buf_printf(out, "%llu\n", v);
}

static const char *row_name(const char *const *names, size_t nroutes, size_t row)
{
	return row < nroutes ? names[row] : "unmatched";
}

/* The rows to render are 0..nroutes: the route table's, then row
 * METRICS_MAX_ROUTES ("unmatched") as the last. */
static size_t row_at(size_t i, size_t nroutes)
{
	return i < nroutes ? i : METRICS_MAX_ROUTES;
}

static void render_requests(struct buf *out, const char *const *names, size_t nroutes)
{
	family(out, "opsd_http_requests_total", "counter",
	    "HTTP requests answered, by route and status.");
	for (size_t i = 0; i <= nroutes; i++) {
		size_t row = row_at(i, nroutes);

		for (size_t s = 0; s < NSTATUS; s++) {
			unsigned long long v = load(&shm->requests[row][s]);
			char code[8];

			if (v == 0)
				continue;
			if (s < countof(status_codes))
				snprintf(code, sizeof(code), "%d", status_codes[s]);
			else
				str_copy(code, "other", sizeof(code));
			sample(out, "opsd_http_requests_total",
			    (struct label[]){{"route", row_name(names, nroutes, row)},
			        {"status", code}},
			    2, v);
		}
	}
}

static void render_latency(struct buf *out, const char *const *names, size_t nroutes)
{
	family(out, "opsd_http_request_duration_seconds", "histogram",
	    "Time from request accepted to reply written, by route.");
	for (size_t i = 0; i <= nroutes; i++) {
		size_t row = row_at(i, nroutes);
		struct label l[2] = {{"route", row_name(names, nroutes, row)}, {"le", NULL}};
		unsigned long long cum = 0;
		char le[32];

		for (size_t b = 0; b < NBUCKETS; b++)
			cum += load(&shm->hist[row][b]);
		if (cum == 0)
			continue;
		cum = 0;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += load(&shm->hist[row][b]);
			if (b < countof(buckets))
				snprintf(le, sizeof(le), "%g", buckets[b]);
			else
				str_copy(le, "+Inf", sizeof(le));
			l[1].value = le;
			sample(out, "opsd_http_request_duration_seconds_bucket", l, 2, cum);
		}
		series(out, "opsd_http_request_duration_seconds_sum", l, 1);
		buf_printf(out, "%.6f\n", (double)load(&shm->sum_us[row]) / 1e6);
		sample(out, "opsd_http_request_duration_seconds_count", l, 1, cum);
	}
}

static void render_emails(struct buf *out)
{
	family(out, "opsd_emails_total", "counter", "Email delivery attempts by outcome.");
	for (int i = 0; i < EMAIL__MAX; i++)
		sample(out, "opsd_emails_total", &(struct label){"outcome", email_outcomes[i]}, 1,
		    load(&shm->emails[i]));
}

/* One sample per name of a vocabulary, zeros included: increase() over a
 * series that appears with its first event would miss that event. */
static void render_labelled(struct buf *out, const char *name, const char *label,
    const char *const *names, size_t n, const uint64_t *counters)
{
	for (size_t i = 0; i < n && i < METRICS_MAX_LABELS; i++)
		if (names[i])
			sample(out, name, &(struct label){label, names[i]}, 1, load(&counters[i]));
}

static void render_worker_exits(struct buf *out)
{
	family(out, "opsd_worker_exits_total", "counter",
	    "Abnormal exits of the master's children, by cause (crash: a fault signal; error: an"
	    " exit status; killed: a signal from outside, such as kill -9 or the OOM killer).");
	render_labelled(out, "opsd_worker_exits_total", "cause", worker_exit_causes, WEXIT__MAX,
	    shm->worker_exits);
}

static void render_migrations(struct buf *out, const struct metrics_labels *l)
{
	family(out, "opsd_migrations_total", "counter", "Tenant migrations entering each status.");
	render_labelled(out, "opsd_migrations_total", "status", l->migration_statuses,
	    l->nmigration_statuses, shm->migrations);
	family(out, "opsd_migration_rows_copied_total", "counter",
	    "Rows copied by tenant migrations (copy and catch-up).");
	sample(out, "opsd_migration_rows_copied_total", NULL, 0, load(&shm->migration_rows));
}

/* Every route's line for both layers, zeros included: a 429 spike alert
 * needs the series to exist before the first 429. */
static void render_rate_limited(struct buf *out, const char *const *names, size_t nroutes)
{
	family(out, "opsd_rate_limited_total", "counter",
	    "Requests refused with 429, by the layer that refused them and the route.");
	for (int l = 0; l < RL_LAYER__MAX; l++)
		for (size_t i = 0; i <= nroutes; i++) {
			size_t row = row_at(i, nroutes);

			sample(out, "opsd_rate_limited_total",
			    (struct label[]){{"layer", rl_layers[l]},
			        {"route", row_name(names, nroutes, row)}},
			    2, load(&shm->rate_limited[l][row]));
		}
}

static void render_cache(struct buf *out)
{
	family(out, "opsd_cache_lookups_total", "counter",
	    "Lookups in this host's cache of sessions, API tokens and legal acceptance states, by"
	    " cache and result (bypass: not used, its last poll of cache_invalidations being too"
	    " old).");
	for (int c = 0; c < MC__MAX; c++)
		for (int r = 0; r < MCR__MAX; r++)
			sample(out, "opsd_cache_lookups_total",
			    (struct label[]){{"cache", cache_names[c]},
			        {"result", cache_results[r]}},
			    2, load(&shm->cache_lookups[c][r]));
	family(out, "opsd_cache_invalidations_total", "counter",
	    "Invalidations applied to this host's cache, by origin (local: a change made here;"
	    " feed: read from cache_invalidations).");
	for (int o = 0; o < MCO__MAX; o++)
		sample(out, "opsd_cache_invalidations_total",
		    &(struct label){"origin", cache_origins[o]}, 1,
		    load(&shm->cache_invalidations[o]));
}

static void render_password_checks(struct buf *out)
{
	family(out, "opsd_password_checks_total", "counter",
	    "Password checks (logins, password changes, new users) by how they got one of this"
	    " host's slots: at once, after waiting, or refused with 503 after waiting.");
	render_labelled(out, "opsd_password_checks_total", "outcome", pw_check_outcomes, PWC__MAX,
	    shm->password_checks);
	family(out, "opsd_password_check_slots", "gauge",
	    "Password checks this host runs at once (OPSD_PASSWORD_SLOTS or sized from memory).");
	sample(out, "opsd_password_check_slots", NULL, 0, load(&shm->password_slots));
}

static void render_db(struct buf *out)
{
	for (size_t i = 0; i < MDB__MAX; i++) {
		family(out, db_counters[i].name, "counter", db_counters[i].help);
		sample(out, db_counters[i].name, NULL, 0, load(&shm->db[i]));
	}
}

static void render_log(struct buf *out)
{
	family(out, "opsd_log_lines_dropped_total", "counter",
	    "Log lines not written whole (a full disk, an I/O error), by every process.");
	sample(out, "opsd_log_lines_dropped_total", NULL, 0, load(&shm->log.dropped));
}

/* Cluster-wide (the same on every host): left out while the database
 * cannot be read, rather than shown as a value that could go backwards. */

static void render_audit_events(struct buf *out, const struct metrics_labels *l)
{
	if (!l->audit_counts)
		return;
	family(out, "opsd_audit_events_total", "counter",
	    "Audit events written by any opsd process or opsctl on any host, by action (legal,"
	    " compliance, security, migration and retention actions).");
	render_labelled(out, "opsd_audit_events_total", "action", l->audit_actions,
	    l->naudit_actions, l->audit_counts);
}

static void render_pool(struct buf *out, const struct scoreboard *sb)
{
	static const char *const states[] = {"idle", "busy", "starting"};
	struct sb_counts c;

	scoreboard_count(sb, sb->generation, &c);
	family(out, "opsd_workers", "gauge", "Worker processes of the pool, by state.");
	for (size_t i = 0; i < countof(states); i++) {
		int n = i == 0 ? c.idle : i == 1 ? c.busy : c.starting;

		sample(out, "opsd_workers", &(struct label){"state", states[i]}, 1,
		    (unsigned long long)(n > 0 ? n : 0));
	}
	family(out, "opsd_workers_max", "gauge", "Configured maximum of worker processes.");
	sample(out, "opsd_workers_max", NULL, 0,
	    (unsigned long long)(sb->workers_max > 0 ? sb->workers_max : 0));
	for (size_t i = 0; i < countof(pool_metrics); i++) {
		const struct pool_metric *m = &pool_metrics[i];

		family(out, m->name, m->type, m->help);
		sample(out, m->name, NULL, 0,
		    load((const uint64_t *)((const char *)sb + m->offset)));
	}
	family(out, "opsd_start_time_seconds", "gauge",
	    "Start time of the opsd master, Unix seconds.");
	series(out, "opsd_start_time_seconds", NULL, 0);
	buf_printf(out, "%.3f\n", (double)sb->start_ms / 1000.0);
}

/* This host's nginx process, one series per include it applies (README "Runbook 4"); absent
 * when OPSD_NGINX_APPLY is off. */
static void render_nginx_apply(struct buf *out, const struct scoreboard *sb)
{
	struct sb_nginx e[SB_NGINX_FILES];
	bool used[SB_NGINX_FILES], any = false;

	for (int i = 0; i < SB_NGINX_FILES; i++)
		any |= used[i] = scoreboard_nginx_read(sb, i, &e[i]);
	if (!any)
		return;
	family(out, "opsd_nginx_apply_failures_total", "counter",
	    "Failed attempts to apply a generated include to this host's nginx (nginx -t refused"
	    " it, or it could not be written or nginx reloaded), by include.");
	for (int i = 0; i < SB_NGINX_FILES; i++)
		if (used[i])
			sample(out, "opsd_nginx_apply_failures_total",
			    &(struct label){"file", e[i].name}, 1, e[i].failures);
	family(out, "opsd_nginx_apply_last_success_timestamp_seconds", "gauge",
	    "When this host's nginx was last found running the current render of the include"
	    " (checked every second), Unix seconds; 0 before the first time.");
	for (int i = 0; i < SB_NGINX_FILES; i++) {
		if (!used[i])
			continue;
		series(out, "opsd_nginx_apply_last_success_timestamp_seconds",
		    &(struct label){"file", e[i].name}, 1);
		buf_printf(out, "%.3f\n", (double)e[i].success_ms / 1000.0);
	}
}

void metrics_render(struct buf *out, const struct metrics_labels *labels,
    const struct scoreboard *sb)
{
	size_t nroutes = labels->nroutes;

	if (nroutes > METRICS_MAX_ROUTES)
		nroutes = METRICS_MAX_ROUTES;
	if (shm) {
		render_requests(out, labels->routes, nroutes);
		render_latency(out, labels->routes, nroutes);
		render_emails(out);
		render_migrations(out, labels);
		render_rate_limited(out, labels->routes, nroutes);
		render_audit_events(out, labels);
		render_cache(out);
		render_worker_exits(out);
		render_password_checks(out);
		render_db(out);
		render_log(out);
	}
	if (sb) {
		render_pool(out, sb);
		render_nginx_apply(out, sb);
	}
}
