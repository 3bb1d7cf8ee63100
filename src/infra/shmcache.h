/* A host's cache in shared memory (README "Caching"): mapped by the master before the first
 * fork, so every worker of the host sees the same entries, across reloads and worker
 * recycling. Entries are opaque values under 32-byte keys (hashes: never a raw credential),
 * tagged with the user and org they describe so that a change can drop them by subject. One
 * robust mutex guards it: a worker killed while holding it leaves it to the next one, which
 * empties the table (a half-written entry is never read).
 *
 * Filling races with invalidation: read shmcache_epoch() before the database lookup and hand
 * it to shmcache_put, which stores nothing when an invalidation came in between. */
#ifndef OPSD_SHMCACHE_H
#define OPSD_SHMCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHMC_KEY_LEN 32
#define SHMC_VALUE_MAX 320

/* Maps the table; call once in the master before forking. 0 or -1. */
int shmcache_init(void);
bool shmcache_ready(void);

/* Copies the value of key into out (cap bytes at most); its length, or -1 on a miss. An entry
 * stored max_age_ms or more ago is dropped and is a miss (0: no limit). */
int shmcache_get(const uint8_t key[SHMC_KEY_LEN], void *out, size_t cap, int64_t max_age_ms);
uint64_t shmcache_epoch(void);
/* Stores (or replaces) the entry unless an eviction happened since epoch was read. user and
 * org: 16 bytes each, NULL for none. */
bool shmcache_put(const uint8_t key[SHMC_KEY_LEN], const uint8_t *user, const uint8_t *org,
    const void *v, size_t n, uint64_t epoch);
/* Overwrites n bytes at off of the entry's value, if the entry is still there. */
void shmcache_patch(const uint8_t key[SHMC_KEY_LEN], size_t off, const void *v, size_t n);

enum shmc_scope { SHMC_ALL, SHMC_USER, SHMC_ORG, SHMC_KEY, SHMC__MAX };
/* Bumps the epoch and drops the entries of the scope (subject: 16 bytes for user and org,
 * SHMC_KEY_LEN for a key, NULL for all); how many went. */
unsigned shmcache_evict(enum shmc_scope s, const uint8_t *subject);

/* The poll of the host's invalidation feed, shared by the workers: poll_claim answers true
 * to one worker at a time once every_ms passed since the last poll began (a claim older than
 * 5 s is taken over: its worker died), with the last id applied and when the last successful
 * poll began (0: never); poll_done records the outcome with the time the claimed poll began
 * and, on success, the new last id (lower after a reset). fresh: the last successful poll
 * began within max_age_ms; polled_since: it began after since_mono. */
bool shmcache_poll_claim(int64_t now_mono, int64_t every_ms, uint64_t *last_id,
    int64_t *last_ok_mono);
void shmcache_poll_done(bool ok, int64_t began_mono, uint64_t last_id);
bool shmcache_fresh(int64_t now_mono, int64_t max_age_ms);
bool shmcache_polled_since(int64_t since_mono);
/* true the first time id is seen (remembers the last few hundred ids). */
bool shmcache_first_sight(uint64_t id);

#endif
