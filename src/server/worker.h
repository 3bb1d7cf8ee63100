/* A worker: accepts one FastCGI request at a time and dispatches it through
 * through the request pipeline (api/pipeline.h), then writes the reply. */
#ifndef OPSD_WORKER_H
#define OPSD_WORKER_H

#include "http/http.h"

struct opsd_config;
struct scoreboard;

struct worker_args {
	const struct opsd_config *cfg;
	int listen_fd;
	struct scoreboard *sb;
	int slot;
	struct server_info server; /* what GET /status shows of the pool */
};

/* Runs until SIGQUIT (after the current request), SIGTERM, or
 * OPSD_MAX_REQUESTS requests. Returns the process exit status. */
int worker_main(const struct worker_args *args);

#endif
