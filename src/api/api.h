/* Handlers, one file per runbook area. They see a validated struct req and
 * answer through the reply_* helpers of core/http.h. */
#ifndef OPSD_API_H
#define OPSD_API_H

#include "http.h"

struct scoreboard;

/* What a worker knows about its pool; set once per worker before serving. */
struct api_env {
	struct scoreboard *sb;
	int listen_fd;
	const char *listen;      /* OPSD_LISTEN as configured */
	const char *pm_name;     /* "static" | "dynamic" */
};
extern struct api_env api_env;

/* system.c */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_status(struct req *r);
void api_metrics(struct req *r);
void api_test_sleep(struct req *r);
void api_test_echo(struct req *r);
void api_test_db(struct req *r);

#endif
