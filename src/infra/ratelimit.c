/* Token buckets shared by the workers of a host (see ratelimit.h). */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "infra/ratelimit.h"
#include "lib/crypto.h"
#include "lib/shm.h"
#include "lib/util.h"

void rl_take(struct rl_bucket *b, const struct rl_limit *l, int64_t now_ms, struct rl_verdict *v)
{
	double rate = (double)l->per_min / 60000.0; /* tokens per ms */
	double cap = l->burst > 0 ? l->burst : 1;
	int64_t elapsed = now_ms > b->updated_ms ? now_ms - b->updated_ms : 0;

	memset(v, 0, sizeof(*v));
	v->limit = (long)cap;
	if (l->per_min <= 0) {
		v->allowed = true;
		v->remaining = v->limit;
		return;
	}
	/* fmin also when no time passed: a burst lowered at run time applies at
	 * once to a bucket that holds more */
	if (b->updated_ms == 0)
		b->tokens = cap;
	else
		b->tokens = fmin(cap, b->tokens + (double)elapsed * rate);
	b->updated_ms = now_ms;
	v->allowed = b->tokens >= 1.0;
	if (v->allowed)
		b->tokens -= 1.0;
	v->remaining = (long)floor(b->tokens);
	v->reset_s = (long)ceil((cap - b->tokens) / rate / 1000.0);
	v->retry_after = v->allowed ? 0 : (long)ceil((1.0 - b->tokens) / rate / 1000.0);
	if (!v->allowed && v->retry_after < 1)
		v->retry_after = 1;
}

/* ---- the shared table ---------------------------------------------------- */

#define RL_SLOTS 16384
#define RL_PROBE 16
#define RL_KEY 80

struct rl_slot {
	uint8_t hash[16];
	struct rl_bucket b;
	int64_t last_audit_ms;
	uint64_t refused;
};

struct rl_table {
	pthread_mutex_t lock;
	struct rl_slot slots[RL_SLOTS];
};

static struct rl_table *table;

int ratelimit_init(void)
{
	/* Robust: a worker the master kills in the middle of a check leaves
	 * the lock to the next one instead of to nobody. */
	if (!table)
		table = shm_map_locked(sizeof(*table), offsetof(struct rl_table, lock));
	return table ? 0 : -1;
}

static void lock(void)
{
	shm_lock(&table->lock); /* a bucket half-updated is still a bucket */
}

/* The key's slot: its own, an empty one, or (the probe window full) the one
 * idle longest, whose bucket has most likely refilled anyway. */
static struct rl_slot *slot_for(const uint8_t h[16])
{
	size_t start = ((size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16) % RL_SLOTS;
	struct rl_slot *oldest = NULL;

	for (size_t i = 0; i < RL_PROBE; i++) {
		struct rl_slot *s = &table->slots[(start + i) % RL_SLOTS];

		if (memcmp(s->hash, h, 16) == 0)
			return s;
		if (s->b.updated_ms == 0) {
			memset(s, 0, sizeof(*s));
			memcpy(s->hash, h, 16);
			return s;
		}
		if (!oldest || s->b.updated_ms < oldest->b.updated_ms)
			oldest = s;
	}
	memset(oldest, 0, sizeof(*oldest));
	memcpy(oldest->hash, h, 16);
	return oldest;
}

void ratelimit_check(const char *key, const struct rl_limit *l, struct rl_verdict *v, bool *audit,
    uint64_t *refused_since)
{
	uint8_t h[32];
	int64_t now = now_ms();
	struct rl_slot *s;

	*audit = false;
	*refused_since = 0;
	if (!table || l->per_min <= 0) {
		struct rl_bucket none = {0};

		rl_take(&none, l, now, v);
		return;
	}
	sha256_raw(key, strlen(key), h);
	lock();
	s = slot_for(h);
	rl_take(&s->b, l, now, v);
	if (!v->allowed) {
		s->refused++;
		if (now - s->last_audit_ms >= 60000) {
			*audit = true;
			*refused_since = s->refused;
			s->refused = 0;
			s->last_audit_ms = now;
		}
	}
	pthread_mutex_unlock(&table->lock);
}
