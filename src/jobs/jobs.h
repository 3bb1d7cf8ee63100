/* The jobs process: background work claimed from MariaDB (outbox, tenant
 * migrations, retention, blocklist expiry) so that several hosts can run it
 * at once. Started and replaced by the master. */
#ifndef OPSD_JOBS_H
#define OPSD_JOBS_H

struct opsd_config;
struct scoreboard;

struct db;

int jobs_main(const struct opsd_config *cfg, struct scoreboard *sb, int slot);
/* nginx_limits.c: counts and audits the 429s nginx answered itself. */
int nginx_limits_job(struct db *d, const struct opsd_config *cfg);

#endif
