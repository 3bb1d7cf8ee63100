/* opsd's second line of rate limiting (README "Runbook 4"): token buckets in shared
 * memory, one per source (a user, an API token, an anonymous client IP),
 * shared by every worker of a host. nginx limits per IP in front of it. */
#ifndef OPSD_RATELIMIT_H
#define OPSD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The pure bucket (unit-tested): capacity `burst`, refilled at `per_min`
 * tokens a minute. */
struct rl_bucket {
	double tokens;
	int64_t updated_ms;
};
struct rl_limit {
	int per_min; /* 0: unlimited */
	int burst;
};
struct rl_verdict {
	bool allowed;
	long limit;       /* RateLimit-Limit: the burst */
	long remaining;   /* RateLimit-Remaining */
	long reset_s;     /* RateLimit-Reset: seconds until the bucket is full */
	long retry_after; /* Retry-After when refused: seconds until one token */
};
/* Takes one token at now_ms (a new bucket has updated_ms 0 and starts full). */
void rl_take(struct rl_bucket *b, const struct rl_limit *l, int64_t now_ms, struct rl_verdict *v);

/* ---- the shared table ---------------------------------------------------- */

/* Maps the table (anonymous shared memory, before the first fork). 0 or -1. */
int ratelimit_init(void);
/* One request of source key ("u:<id>", "t:<id>", "ip:<addr>") under limit.
 * When refused, *audit is true at most once a minute per source (the
 * caller writes security.rate_limited with *refused_since, the refusals
 * counted since the last such event). */
void ratelimit_check(const char *key, const struct rl_limit *l, struct rl_verdict *v, bool *audit,
    uint64_t *refused_since);

#endif
