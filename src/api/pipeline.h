/* The request pipeline (README "API"): for every request, in this order,
 *   the body's length is sane (400) → the blocklist (403 blocked, before
 *   anything about the route is said; monitoring routes stay reachable
 *   from loopback) → the route (404, 405 with Allow, 400 for a malformed
 *   escape) → the body's size (413, 400) → the database (503) →
 *   authentication (401; failures limited per address, 429), the route's
 *   permission (403) and CSRF for cookie sessions (403) → opsd's rate
 *   limit (429) → the JSON body (415, 400, 413) → the legal gate (403
 *   legal_acceptance_required) → the handler. */
#ifndef OPSD_PIPELINE_H
#define OPSD_PIPELINE_H

#include <stdbool.h>

struct opsd_config;
struct req;
struct scoreboard;

/* Once per worker: its connection to MariaDB and the shared change
 * counters of the legal documents and the blocklist. */
void pipeline_start(const struct opsd_config *cfg, struct scoreboard *sb);
void pipeline_stop(void);
/* Answers r (every path replies). test_routes: OPSD_ENV=test. */
void pipeline_run(struct req *r, bool test_routes);

#endif
