/* The host's bound on concurrent password checks (README "Security"). One
 * scrypt check needs 128 * r * N bytes (128 MiB at OPSD_SCRYPT_LN 17), so
 * every worker checking a password at once would need that many times it:
 * a burst of logins could exhaust the host's memory. The master maps a table
 * of slots before it forks, each a robust process-shared mutex; a check holds
 * one while scrypt runs, and the slot of a worker killed in the middle of a
 * check goes to the next taker instead of being lost. */
#ifndef OPSD_PWGATE_H
#define OPSD_PWGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PWGATE_MAX_SLOTS 1024
/* Left to everything else on the host when sizing from memory: the
 * workers' own pages, MariaDB's client buffers, nginx, the OS. */
#define PWGATE_RESERVE_BYTES ((uint64_t)256 << 20)
/* How long a check waits for a slot before its request is refused, and the
 * Retry-After of the refusal: a check at the default cost takes well under
 * a second, so a slot frees within it unless the host is saturated. */
#define PWGATE_WAIT_MS 1500
#define PWGATE_RETRY_AFTER_S 1

/* ---- pure (unit-tested) ------------------------------------------------- */

/* Bytes of one scrypt check of log2 N ln and block size r: 128 * r * 2^ln. */
uint64_t pwgate_cost(int ln, int r);
/* Slots for avail bytes of free memory: (avail - reserve) / cost, clamped to
 * [1, workers - pwgate_waiters_for(workers) - 1] (a worker runs one check at
 * a time; checks and their waiters leave a worker for the other routes; one
 * slot always, so logins never stop altogether). */
int pwgate_slots_for(uint64_t avail, uint64_t reserve, uint64_t cost, int workers);
/* Checks that may wait for a slot at once: half the workers (at least one),
 * so that waiting checks never hold the whole pool and other routes keep
 * being answered; a check that finds the queue full is refused at once. */
int pwgate_waiters_for(int workers);
/* MemAvailable of /proc/meminfo's text in bytes; 0 when absent. */
uint64_t pwgate_meminfo_available(const char *meminfo);
/* The path of the process's cgroup for controller ("" for cgroup v2's
 * "0::/path" line, "memory" for v1's) from /proc/self/cgroup's text, into out
 * (cap bytes); false when there is no such line. */
bool pwgate_cgroup_path(const char *cgroup, const char *controller, char *out, size_t cap);
/* Room left under a cgroup limit: the limit file's text (v2 memory.max, v1
 * memory.limit_in_bytes) minus the usage's; UINT64_MAX when there is no
 * limit ("max") or either cannot be read. */
uint64_t pwgate_cgroup_room(const char *max, const char *current);

/* ---- the shared table --------------------------------------------------- */

/* In the master before the first fork: maps the table with `configured`
 * slots, or (0) as many as the memory available now allows. 0 or -1. */
int pwgate_init(int configured, int workers, int scrypt_ln);
/* The slot count; 0 when no table is mapped (opsctl, which checks one
 * password in a process of its own). */
int pwgate_slots(void);
/* Places of the queue taken now (for tests). */
int pwgate_waiting(void);

/* Takes a slot for a password check, waiting up to PWGATE_WAIT_MS in the
 * queue: true with a slot (or no table), false when none freed in time or
 * the queue was full (counted and logged). A process that holds a slot takes no second one:
 * verifying and then rehashing within one enter/leave costs one slot. */
bool pwgate_enter(void);
/* Gives back what pwgate_enter took. */
void pwgate_leave(void);

#endif
