/* Signed-in requests without a database round trip (README "Caching"): the host's shared
 * cache (infra/shmcache.h) of session and API token → principal, and of each user's
 * acceptance state of the current legal documents, with the feed that keeps every host's
 * copy in step: cache_invalidations, written in the transaction of each change, applied on
 * the host that made it before it answers and polled by every host a few times a second. An
 * entry is used only while the host's last successful poll began less than a second ago, and
 * for 30 s at most after it was read from the database. */
#ifndef OPSD_PRINCIPAL_CACHE_H
#define OPSD_PRINCIPAL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/authz.h"
#include "lib/uuid.h"

struct db;

/* A principal as cached: what auth_authenticate fills, without the session id, and the
 * credential's clocks in realtime ms (0: none). */
struct pcache_principal {
	int64_t expires_ms; /* absolute expiry of the session or token */
	int64_t seen_ms;    /* last_seen_at / last_used_at as stored */
	roleset roles;
	permset perms;
	bool service;
	char user_id[UUID_STR_LEN + 1];
	char org_id[UUID_STR_LEN + 1];
	char token_id[UUID_STR_LEN + 1];
};
#define PCACHE_SEEN_OFFSET offsetof(struct pcache_principal, seen_ms)

enum pcache_kind { PCACHE_SESSION, PCACHE_TOKEN };

/* Polls the feed when every_ms passed since the last poll began (one query, by one worker of
 * the host at a time; 0: at every call, waiting, 1 s at most, for a poll that began after the
 * call when another worker holds the poll). */
void pcache_poll(struct db *d, int every_ms);

/* The cache key of a credential's database hash (sessions.id_hash, api_tokens.token_hash). */
void pcache_key(enum pcache_kind k, const uint8_t hash[32], uint8_t key[32]);
/* true and *out on a usable hit. */
bool pcache_get(const uint8_t key[32], enum pcache_kind k, struct pcache_principal *out);
/* Stores what the database said; epoch: shmcache_epoch() read before the lookup. */
void pcache_put(const uint8_t key[32], const struct pcache_principal *v, uint64_t epoch);
uint64_t pcache_epoch(void);
void pcache_touched(const uint8_t key[32], int64_t seen_ms);
void pcache_drop(const uint8_t key[32]);

/* The legal acceptance state of user for the current documents (their ids, n of them):
 * pending[i] and accepted_at[i] as legal_pending gives them. */
bool pcache_legal_get(const char *user_id, const uint8_t (*doc_ids)[16], size_t n, bool *pending,
    char (*accepted_at)[32]);
void pcache_legal_put(const char *user_id, const uint8_t (*doc_ids)[16], size_t n,
    const bool *pending, char (*accepted_at)[32], uint64_t epoch);

/* What a change invalidates on this host, once it is committed: pcache_apply_pending runs
 * after the handler (the request pipeline calls it before the answer leaves). Other hosts
 * learn it from cache_invalidations, which the database's triggers write in the change's
 * transaction. subject: a user or org id (text), a session's id hash or a token's hash (32
 * bytes); NULL for PCACHE_INV_ALL. */
enum pcache_inv {
	PCACHE_INV_ALL,
	PCACHE_INV_USER,
	PCACHE_INV_ORG,
	PCACHE_INV_SESSION,
	PCACHE_INV_TOKEN
};
void pcache_invalidate(enum pcache_inv kind, const void *subject);
void pcache_apply_pending(void);

/* Housekeeping for the jobs process: feed rows older than an hour. */
int pcache_feed_expire(struct db *d);

#endif
