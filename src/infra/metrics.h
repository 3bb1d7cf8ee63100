/* Prometheus metrics (README "Runbook 6"), counted in shared memory so every worker
 * adds to the same series; rendered by GET /metrics in text format 0.0.4.
 * Labels are bounded: route names come from the route table, statuses
 * from a fixed list. */
#ifndef OPSD_METRICS_H
#define OPSD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct scoreboard;

#define METRICS_MAX_ROUTES 160

/* Maps the shared counters; call once in the master before forking. */
int metrics_init(void);
/* route: index in the route table, or -1 for a request no route matched. */
void metrics_request(int route, int status, int64_t duration_us);
/* Email delivery outcomes: opsd_emails_total{outcome}. */
enum email_outcome { EMAIL_SENT, EMAIL_FAILED, EMAIL_RETRY, EMAIL_SUPPRESSED, EMAIL__MAX };
void metrics_email(enum email_outcome o);
/* opsd_migrations_total{status}: status is an index of the migration
 * engine's status table (its names reach metrics_render as labels), and
 * opsd_migration_rows_copied_total. */
void metrics_migration(int status);
void metrics_migration_rows(uint64_t n);
/* opsd_rate_limited_total{layer, route}: route is a route index (-1 or
 * out of range: "unmatched"). */
enum rl_layer { RL_LAYER_NGINX, RL_LAYER_OPSD, RL_LAYER__MAX };
void metrics_rate_limited(enum rl_layer layer, int route);
/* The host's shared cache (README "Caching"): opsd_cache_lookups_total{cache, result}
 * (bypass: the cache was not used, its last poll being too old) and
 * opsd_cache_invalidations_total{origin} (local: a change made on this host; feed: a row of
 * cache_invalidations read by the poll, this host's own included). */
enum metrics_cache { MC_SESSION, MC_TOKEN, MC_LEGAL, MC__MAX };
enum metrics_cache_result { MCR_HIT, MCR_MISS, MCR_BYPASS, MCR__MAX };
enum metrics_cache_origin { MCO_LOCAL, MCO_FEED, MCO__MAX };
void metrics_cache_lookup(enum metrics_cache c, enum metrics_cache_result r);
void metrics_cache_invalidation(enum metrics_cache_origin o);
/* Abnormal exits of the master's children (workers, the jobs process, the nginx process):
 * opsd_worker_exits_total{cause}. crash: a fault signal (SIGSEGV, SIGABRT...); error: a
 * non-zero exit status; killed: any other signal, sent from outside (kill -9, the OOM killer). */
enum worker_exit_cause { WEXIT_CRASH, WEXIT_ERROR, WEXIT_KILLED, WEXIT__MAX };
void metrics_worker_exit(enum worker_exit_cause c);
/* opsd_password_checks_total{outcome}: a password check got a slot at once,
 * after waiting, or was refused (infra/pwgate.h). */
enum pw_check_outcome { PWC_IMMEDIATE, PWC_WAITED, PWC_REFUSED, PWC__MAX };
void metrics_password_check(enum pw_check_outcome o);
/* opsd_password_check_slots: set once by the master. */
void metrics_password_slots(int n);
/* The database connection (infra/db.h): opsd_db_failovers_total (a connection made to another
 * node than the one used last) and opsd_db_tx_retries_total (a transaction run again after a
 * deadlock, a lock wait timeout or a cluster's certification conflict). */
enum metrics_db { MDB_FAILOVER, MDB_TX_RETRY, MDB__MAX };
void metrics_db(enum metrics_db e);
#define METRICS_MAX_LABELS 64

/* The label vocabularies other modules own: metrics counts by index and
 * prints these names. A NULL name is counted but not rendered. */
struct metrics_labels {
	const char *const *routes; /* route table order */
	size_t nroutes;
	const char *const *audit_actions; /* audit action order; NULL: not exported */
	size_t naudit_actions;
	const char *const *migration_statuses;
	size_t nmigration_statuses;
	/* opsd_audit_events_total{action}, by audit action: counted in the
	 * database by every writer (core/audit.c), read at each scrape. NULL
	 * when it could not be read: the family is left out, the rest stays. */
	const uint64_t *audit_counts;
};

/* Renders every series. */
void metrics_render(struct buf *out, const struct metrics_labels *labels,
    const struct scoreboard *sb);

#endif
