/* A worker: accepts one FastCGI request at a time and dispatches it through
 * the route table (parse → route → body → database → handler → reply). */
#ifndef OPSD_WORKER_H
#define OPSD_WORKER_H

struct opsd_config;
struct scoreboard;

struct worker_args {
	const struct opsd_config *cfg;
	int listen_fd;
	struct scoreboard *sb;
	int slot;
};

/* Runs until SIGQUIT (after the current request), SIGTERM, or
 * OPSD_MAX_REQUESTS requests. Returns the process exit status. */
int worker_main(const struct worker_args *args);

#endif
