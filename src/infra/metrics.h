/* Prometheus metrics (SPEC §13), counted in shared memory so every worker
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
/* opsd_migrations_total{status} (a status name of migration.h) and
 * opsd_migration_rows_copied_total. */
void metrics_migration(const char *status);
void metrics_migration_rows(uint64_t n);
/* opsd_rate_limited_total{layer, route}: route is a route index (-1 or
 * out of range: "unmatched"). */
enum rl_layer { RL_LAYER_NGINX, RL_LAYER_OPSD, RL_LAYER__MAX };
void metrics_rate_limited(enum rl_layer layer, int route);
/* opsd_audit_events_total{action}: called by audit_append once the event is
 * written; actions outside the fixed list of metrics.c are not counted. */
void metrics_audit_event(const char *action);

/* Renders every series. route_names has nroutes entries. */
void metrics_render(struct buf *out, const char *const *route_names, size_t nroutes,
    const struct scoreboard *sb);

#endif
