/* The host's cache of principals and legal acceptance states (see principal_cache.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/principal_cache.h"
#include "infra/db.h"
#include "infra/metrics.h"
#include "infra/shmcache.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* Entries are used only while the last successful poll (every OPSD_CACHE_POLL_MS) began
 * within FRESH_MS: another host's change is seen within a second. */
#define FRESH_MS 1000
/* Rows created in the last REREAD_S are read again at each poll: an id handed out earlier may
 * commit after a later one. Longer than any transaction that writes the feed is expected to
 * last (InnoDB's default lock wait is 50 s); a host whose previous successful poll is older
 * than that may have missed rows for good and forgets everything. */
#define REREAD_S 60
/* Whatever the feed says, an entry is asked of the database again once it is this old: a
 * change the feed missed (a transaction open longer than REREAD_S, rows deleted by hand)
 * lasts at most that long. */
#define ENTRY_MAX_AGE_MS 30000
#define POLL_ROWS 1000 /* the LIMIT below: past it, the whole cache goes */
/* A failing poll is logged once per LOG_EVERY_MS per worker, with the count since. */
#define LOG_EVERY_MS 10000
/* With OPSD_CACHE_POLL_MS=0, how long a request waits for another worker's poll. */
#define WAIT_POLL_MS 1000

static const char *const inv_kinds[] = {
    [PCACHE_INV_ALL] = "all",
    [PCACHE_INV_USER] = "user",
    [PCACHE_INV_ORG] = "org",
    [PCACHE_INV_SESSION] = "session",
    [PCACHE_INV_TOKEN] = "token",
};

/* The cache scope of each kind, and the length of its subject in the feed. */
static const struct {
	enum shmc_scope scope;
	size_t len;
} inv_scope[] = {
    [PCACHE_INV_ALL] = {SHMC_ALL, 0},
    [PCACHE_INV_USER] = {SHMC_USER, 16},
    [PCACHE_INV_ORG] = {SHMC_ORG, 16},
    [PCACHE_INV_SESSION] = {SHMC_KEY, 32},
    [PCACHE_INV_TOKEN] = {SHMC_KEY, 32},
};

static void evict(enum pcache_inv kind, const uint8_t *subject, enum metrics_cache_origin o)
{
	uint8_t key[32];

	if (kind == PCACHE_INV_SESSION || kind == PCACHE_INV_TOKEN) {
		pcache_key(kind == PCACHE_INV_SESSION ? PCACHE_SESSION : PCACHE_TOKEN, subject,
		    key);
		subject = key;
	}
	shmcache_evict(inv_scope[kind].scope, subject);
	metrics_cache_invalidation(o);
}

/* ---- the feed ------------------------------------------------------------ */

/* The feed's lowest and highest ids (0, 0: empty) and the rows to apply, in one statement so
 * that they agree: *max becomes the last id applied. */
static int poll_rows(struct db *d, struct arena *a, uint64_t last, bool whole, uint64_t *max)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64((long long)last), DBP_I64(REREAD_S)};
	uint64_t lo, hi;
	size_t n;

	if (db_query(d, a,
	        "SELECT b.lo, b.hi, i.id, i.kind, i.subject FROM (SELECT COALESCE(MIN(id), 0) AS lo,"
	        " COALESCE(MAX(id), 0) AS hi FROM cache_invalidations) b LEFT JOIN"
	        " (SELECT id, kind, subject FROM cache_invalidations WHERE id > ?"
	        " OR created_at > NOW(3) - INTERVAL ? SECOND ORDER BY id LIMIT 1000) i ON 1",
	        p, countof(p), &rows) != 0)
		return -1;
	if (rows.nrows == 0 || !rows.val[0][0] || !rows.val[0][1])
		return -1;
	lo = strtoull(rows.val[0][0], NULL, 10);
	hi = strtoull(rows.val[0][1], NULL, 10);
	n = rows.val[0][2] ? rows.nrows : 0;
	*max = last;
	/* Too many to go through (a mass flush, or this host's first poll), ids reset (the highest
	 * is below the last applied), or rows after the last applied deleted unseen (the lowest is
	 * past it): forget everything and go on from the newest row. An empty feed says nothing. */
	if (n >= POLL_ROWS || (hi != 0 && (hi < last || lo > last + 1)))
		whole = true;
	if (whole) {
		evict(PCACHE_INV_ALL, NULL, MCO_FEED);
		*max = hi ? hi : last;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t id = strtoull(rows.val[i][2], NULL, 10);

		if (id > *max && !whole)
			*max = id;
		if (!shmcache_first_sight(id) || whole)
			continue;
		for (size_t k = 0; k < countof(inv_kinds); k++)
			if (strcmp(rows.val[i][3], inv_kinds[k]) == 0 &&
			    (k == PCACHE_INV_ALL ||
			        (rows.val[i][4] && rows.len[i][4] == inv_scope[k].len)))
				evict((enum pcache_inv)k, (const uint8_t *)rows.val[i][4],
				    MCO_FEED);
	}
	return 0;
}

static void poll_failed(struct db *d)
{
	static int64_t logged_ms;
	static unsigned long failures;
	int64_t now = mono_ms();

	failures++;
	if (logged_ms && now - logged_ms < LOG_EVERY_MS)
		return;
	log_msg(LL_WARN, "cache_poll_failed", "%lu failed since the last report: %s", failures,
	    db_error(d));
	logged_ms = now;
	failures = 0;
}

static bool poll_once(struct db *d, int every_ms)
{
	int64_t began = mono_ms(), ok_mono = 0;
	uint64_t last = 0, max = 0;
	struct arena *a;
	int rc = -1;

	if (!shmcache_poll_claim(began, every_ms, &last, &ok_mono))
		return false;
	a = arena_new(16 * 1024);
	/* the previous successful poll too long ago: rows may have been missed */
	if (a)
		rc =
		    poll_rows(d, a, last, ok_mono == 0 || began - ok_mono >= REREAD_S * 1000, &max);
	arena_free(a);
	if (rc != 0)
		poll_failed(d);
	shmcache_poll_done(rc == 0, began, max);
	return true;
}

/* Every 0: this request found no successful poll that began after it came
 * in (this worker's failed, another's took too long), so it asks the
 * database instead of the cache. */
static bool unconfirmed;

void pcache_poll(struct db *d, int every_ms)
{
	int64_t asked = mono_ms();
	struct timespec nap = {0, 1000 * 1000};

	unconfirmed = false;
	if (!shmcache_ready())
		return;
	/* 0: a poll that began after the request came in, this worker's or another's */
	while (!poll_once(d, every_ms) && every_ms == 0 && !shmcache_polled_since(asked) &&
	       mono_ms() - asked < WAIT_POLL_MS)
		nanosleep(&nap, NULL);
	unconfirmed = every_ms == 0 && !shmcache_polled_since(asked);
}

/* The host's own evictions, applied once the change is committed. */
static struct {
	enum pcache_inv kind;
	uint8_t subject[32];
} local_evictions[16];
static size_t npending;
static bool pending_overflow;

void pcache_invalidate(enum pcache_inv kind, const void *subject)
{
	uint8_t s[32] = {0};
	struct opsd_uuid u;

	if (npending == countof(local_evictions) || (kind != PCACHE_INV_ALL && !subject)) {
		pending_overflow = true;
		return;
	}
	if (kind == PCACHE_INV_USER || kind == PCACHE_INV_ORG) {
		if (!uuid_parse(subject, &u)) {
			pending_overflow = true;
			return;
		}
		memcpy(s, u.b, 16);
	} else if (kind != PCACHE_INV_ALL) {
		memcpy(s, subject, 32);
	}
	local_evictions[npending].kind = kind;
	memcpy(local_evictions[npending].subject, s, sizeof(s));
	npending++;
}

void pcache_apply_pending(void)
{
	if (pending_overflow)
		evict(PCACHE_INV_ALL, NULL, MCO_LOCAL);
	else
		for (size_t i = 0; i < npending; i++)
			evict(local_evictions[i].kind, local_evictions[i].subject, MCO_LOCAL);
	npending = 0;
	pending_overflow = false;
}

int pcache_feed_expire(struct db *d)
{
	return db_exec(d,
	    "DELETE FROM cache_invalidations WHERE created_at < NOW(3) - INTERVAL 1 HOUR LIMIT 5000",
	    NULL, 0, NULL);
}

/* ---- principals ---------------------------------------------------------- */

void pcache_key(enum pcache_kind k, const uint8_t hash[32], uint8_t key[32])
{
	uint8_t msg[1 + 32];

	msg[0] = k == PCACHE_SESSION ? 's' : 't';
	memcpy(msg + 1, hash, 32);
	sha256_raw(msg, sizeof(msg), key);
}

static bool usable(enum metrics_cache c)
{
	if (!unconfirmed && shmcache_ready() && shmcache_fresh(mono_ms(), FRESH_MS))
		return true;
	metrics_cache_lookup(c, MCR_BYPASS);
	return false;
}

bool pcache_get(const uint8_t key[32], enum pcache_kind k, struct pcache_principal *out)
{
	enum metrics_cache c = k == PCACHE_SESSION ? MC_SESSION : MC_TOKEN;
	bool hit;

	if (!usable(c))
		return false;
	hit = shmcache_get(key, out, sizeof(*out), ENTRY_MAX_AGE_MS) == (int)sizeof(*out);
	metrics_cache_lookup(c, hit ? MCR_HIT : MCR_MISS);
	return hit;
}

uint64_t pcache_epoch(void)
{
	return shmcache_epoch();
}

void pcache_put(const uint8_t key[32], const struct pcache_principal *v, uint64_t epoch)
{
	struct opsd_uuid user, org;

	if (!uuid_parse(v->user_id, &user))
		return;
	shmcache_put(key, user.b, uuid_parse(v->org_id, &org) ? org.b : NULL, v, sizeof(*v), epoch);
}

void pcache_touched(const uint8_t key[32], int64_t seen_ms)
{
	shmcache_patch(key, PCACHE_SEEN_OFFSET, &seen_ms, sizeof(seen_ms));
}

void pcache_drop(const uint8_t key[32])
{
	shmcache_evict(SHMC_KEY, key);
}

/* ---- legal acceptance ---------------------------------------------------- */

#define LEGAL_MAX_DOCS 8

struct legal_state {
	uint32_t n;
	bool pending[LEGAL_MAX_DOCS];
	char accepted_at[LEGAL_MAX_DOCS][32];
};

/* One key per user and set of current documents: a new version makes a new key. */
static bool legal_key(const char *user_id, const uint8_t (*doc_ids)[16], size_t n, uint8_t user[16],
    uint8_t key[32])
{
	uint8_t msg[1 + 16 + LEGAL_MAX_DOCS * 16];
	struct opsd_uuid u;

	if (n > LEGAL_MAX_DOCS || !uuid_parse(user_id, &u))
		return false;
	memcpy(user, u.b, 16);
	msg[0] = 'l';
	memcpy(msg + 1, u.b, 16);
	for (size_t i = 0; i < n; i++)
		memcpy(msg + 17 + i * 16, doc_ids[i], 16);
	sha256_raw(msg, 17 + n * 16, key);
	return true;
}

bool pcache_legal_get(const char *user_id, const uint8_t (*doc_ids)[16], size_t n, bool *pending,
    char (*accepted_at)[32])
{
	struct legal_state st;
	uint8_t user[16], key[32];
	bool hit;

	if (!legal_key(user_id, doc_ids, n, user, key) || !usable(MC_LEGAL))
		return false;
	hit = shmcache_get(key, &st, sizeof(st), ENTRY_MAX_AGE_MS) == (int)sizeof(st) && st.n == n;
	metrics_cache_lookup(MC_LEGAL, hit ? MCR_HIT : MCR_MISS);
	if (!hit)
		return false;
	for (size_t i = 0; i < n; i++) {
		pending[i] = st.pending[i];
		if (accepted_at)
			memcpy(accepted_at[i], st.accepted_at[i], 32);
	}
	return true;
}

void pcache_legal_put(const char *user_id, const uint8_t (*doc_ids)[16], size_t n,
    const bool *pending, char (*accepted_at)[32], uint64_t epoch)
{
	struct legal_state st;
	uint8_t user[16], key[32];

	/* without the times, the status route could not be answered from it */
	if (!accepted_at || !legal_key(user_id, doc_ids, n, user, key))
		return;
	memset(&st, 0, sizeof(st));
	st.n = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		st.pending[i] = pending[i];
		memcpy(st.accepted_at[i], accepted_at[i], 32);
	}
	shmcache_put(key, user, NULL, &st, sizeof(st), epoch);
}
