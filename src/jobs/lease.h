/* Leases of the cluster-wide jobs (README "Running on several hosts"): of all the
 * jobs processes sharing a database, the one holding a job's lease runs it, and
 * every transaction the job commits is fenced by the lease. Table job_leases
 * (sql/control/0020_job_leases.sql). */
#ifndef OPSD_JOBS_LEASE_H
#define OPSD_JOBS_LEASE_H

#include <stdbool.h>
#include <stdint.h>

struct db;

struct job_lease {
	const char *name;
	uint64_t epoch; /* of the holding this process has, 0 when it holds none */
};

/* Holds the lease for ttl_ms more, taking it when it is free, expired, or held by
 * a gone process of this host: true when this process holds it now. Logs
 * job_lease_taken / job_lease_lost when that changes. */
bool job_lease_hold(struct db *d, struct job_lease *l, int ttl_ms);
/* Fences every transaction of d (db_tx) with l until job_lease_unfence: one
 * that commits also finds the lease still held with the same epoch, or fails. */
void job_lease_fence(struct db *d, struct job_lease *l);
void job_lease_unfence(struct db *d);
/* Gives the lease up (a stopping jobs process): another host need not wait for
 * it to expire. */
void job_lease_release(struct db *d, struct job_lease *l);

#endif
