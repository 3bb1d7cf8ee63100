/* The host's shared cache (see shmcache.h). */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "infra/shmcache.h"
#include "lib/shm.h"
#include "lib/util.h"

#define SHMC_SLOTS 8192
#define SHMC_PROBE 8
#define SHMC_SEEN 1024 /* at least the poll's LIMIT */

struct shmc_slot {
	uint8_t key[SHMC_KEY_LEN];
	uint8_t user[16];
	uint8_t org[16];
	int64_t stored_mono; /* 0: empty */
	uint32_t len;
	uint8_t value[SHMC_VALUE_MAX];
};

struct shmc_table {
	pthread_mutex_t lock;
	uint64_t epoch;
	int64_t poll_ok_mono;    /* when the last successful poll began */
	int64_t poll_began_mono; /* when the last poll began */
	int64_t poll_claimed_mono;
	bool polling;
	uint64_t last_id;
	uint64_t seen[SHMC_SEEN];
	unsigned seen_next;
	struct shmc_slot slots[SHMC_SLOTS];
};

static struct shmc_table *table;

int shmcache_init(void)
{
	if (!table)
		table = shm_map_locked(sizeof(*table), offsetof(struct shmc_table, lock));
	return table ? 0 : -1;
}

bool shmcache_ready(void)
{
	return table != NULL;
}

static void clear_slots(void)
{
	for (size_t i = 0; i < SHMC_SLOTS; i++)
		table->slots[i].stored_mono = 0;
}

/* A holder that died may have left an entry half written: forget them all. */
static void lock(void)
{
	if (shm_lock(&table->lock)) {
		table->epoch++;
		clear_slots();
	}
}

static void unlock(void)
{
	pthread_mutex_unlock(&table->lock);
}

static size_t home(const uint8_t key[SHMC_KEY_LEN])
{
	return ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16) % SHMC_SLOTS;
}

static struct shmc_slot *find(const uint8_t key[SHMC_KEY_LEN])
{
	size_t h = home(key);

	for (size_t i = 0; i < SHMC_PROBE; i++) {
		struct shmc_slot *s = &table->slots[(h + i) % SHMC_SLOTS];

		if (s->stored_mono && memcmp(s->key, key, SHMC_KEY_LEN) == 0)
			return s;
	}
	return NULL;
}

int shmcache_get(const uint8_t key[SHMC_KEY_LEN], void *out, size_t cap, int64_t max_age_ms)
{
	int64_t now = mono_ms();
	struct shmc_slot *s;
	int n = -1;

	if (!table)
		return -1;
	lock();
	s = find(key);
	if (s && max_age_ms > 0 && now - s->stored_mono >= max_age_ms) {
		s->stored_mono = 0;
		s = NULL;
	}
	if (s && s->len <= cap) {
		memcpy(out, s->value, s->len);
		n = (int)s->len;
	}
	unlock();
	return n;
}

uint64_t shmcache_epoch(void)
{
	return table ? __atomic_load_n(&table->epoch, __ATOMIC_ACQUIRE) : 0;
}

/* The key's own slot, else an empty one, else the oldest of its probe window. */
static struct shmc_slot *slot_for(const uint8_t key[SHMC_KEY_LEN])
{
	struct shmc_slot *s = find(key), *oldest = NULL;
	size_t h = home(key);

	for (size_t i = 0; !s && i < SHMC_PROBE; i++) {
		struct shmc_slot *c = &table->slots[(h + i) % SHMC_SLOTS];

		if (!c->stored_mono)
			s = c;
		else if (!oldest || c->stored_mono < oldest->stored_mono)
			oldest = c;
	}
	return s ? s : oldest;
}

bool shmcache_put(const uint8_t key[SHMC_KEY_LEN], const uint8_t *user, const uint8_t *org,
    const void *v, size_t n, uint64_t epoch)
{
	struct shmc_slot *s;
	bool stored = false;

	if (!table || n > SHMC_VALUE_MAX)
		return false;
	lock();
	if (table->epoch == epoch) {
		s = slot_for(key);
		memcpy(s->key, key, SHMC_KEY_LEN);
		if (user)
			memcpy(s->user, user, 16);
		else
			memset(s->user, 0, 16);
		if (org)
			memcpy(s->org, org, 16);
		else
			memset(s->org, 0, 16);
		memcpy(s->value, v, n);
		s->len = (uint32_t)n;
		s->stored_mono = mono_ms() | 1; /* never 0 */
		stored = true;
	}
	unlock();
	return stored;
}

void shmcache_patch(const uint8_t key[SHMC_KEY_LEN], size_t off, const void *v, size_t n)
{
	struct shmc_slot *s;

	if (!table)
		return;
	lock();
	s = find(key);
	if (s && off + n <= s->len)
		memcpy(s->value + off, v, n);
	unlock();
}

static bool matches(const struct shmc_slot *s, enum shmc_scope scope, const uint8_t *subject)
{
	switch (scope) {
	case SHMC_USER:
		return memcmp(s->user, subject, 16) == 0;
	case SHMC_ORG:
		return memcmp(s->org, subject, 16) == 0;
	case SHMC_KEY:
		return memcmp(s->key, subject, SHMC_KEY_LEN) == 0;
	default:
		return true;
	}
}

unsigned shmcache_evict(enum shmc_scope scope, const uint8_t *subject)
{
	unsigned n = 0;

	if (!table || (scope != SHMC_ALL && !subject))
		return 0;
	lock();
	__atomic_add_fetch(&table->epoch, 1, __ATOMIC_RELEASE);
	for (size_t i = 0; i < SHMC_SLOTS; i++) {
		struct shmc_slot *s = &table->slots[i];

		if (s->stored_mono && matches(s, scope, subject)) {
			s->stored_mono = 0;
			n++;
		}
	}
	unlock();
	return n;
}

bool shmcache_poll_claim(int64_t now_mono, int64_t every_ms, uint64_t *last_id,
    int64_t *last_ok_mono)
{
	bool mine = false;

	if (!table)
		return false;
	lock();
	if (now_mono - table->poll_began_mono >= every_ms &&
	    (!table->polling || now_mono - table->poll_claimed_mono >= 5000)) {
		table->polling = true;
		table->poll_claimed_mono = now_mono;
		table->poll_began_mono = now_mono;
		*last_id = table->last_id;
		*last_ok_mono = table->poll_ok_mono;
		mine = true;
	}
	unlock();
	return mine;
}

void shmcache_poll_done(bool ok, int64_t began_mono, uint64_t last_id)
{
	if (!table)
		return;
	lock();
	if (table->polling && table->poll_claimed_mono == began_mono) {
		table->polling = false;
		if (ok) {
			table->last_id = last_id; /* lower after a reset of the feed's ids */
			__atomic_store_n(&table->poll_ok_mono, began_mono, __ATOMIC_RELEASE);
		}
	}
	unlock();
}

bool shmcache_fresh(int64_t now_mono, int64_t max_age_ms)
{
	int64_t ok = table ? __atomic_load_n(&table->poll_ok_mono, __ATOMIC_ACQUIRE) : 0;

	return ok > 0 && now_mono - ok < max_age_ms;
}

bool shmcache_polled_since(int64_t since_mono)
{
	return table && __atomic_load_n(&table->poll_ok_mono, __ATOMIC_ACQUIRE) > since_mono;
}

bool shmcache_first_sight(uint64_t id)
{
	bool first = true;

	if (!table)
		return true;
	lock();
	for (size_t i = 0; i < SHMC_SEEN && first; i++)
		first = table->seen[i] != id;
	if (first) {
		table->seen[table->seen_next] = id;
		table->seen_next = (table->seen_next + 1) % SHMC_SEEN;
	}
	unlock();
	return first;
}
