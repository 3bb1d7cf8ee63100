/* The jobs process: background work claimed from MariaDB (outbox, tenant
 * migrations, retention, blocklist expiry) so that several hosts can run it
 * at once. Started and replaced by the master. */
#ifndef OPSD_JOBS_H
#define OPSD_JOBS_H

struct opsd_config;
struct scoreboard;

int jobs_main(const struct opsd_config *cfg, struct scoreboard *sb, int slot);

#endif
