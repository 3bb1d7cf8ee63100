/* The master: owns the listen socket, forks and supervises the workers and
 * the jobs process like php-fpm does, and never serves a request itself. */
#ifndef OPSD_MASTER_H
#define OPSD_MASTER_H

struct opsd_config;

/* Runs until a stop signal. cfg is owned by the master from now on (it is
 * replaced on SIGHUP). Returns the process exit status. */
int master_run(struct opsd_config *cfg);

#endif
