/* The host's bound on concurrent password checks (see pwgate.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infra/metrics.h"
#include "infra/pwgate.h"
#include "lib/log.h"
#include "lib/shm.h"
#include "lib/util.h"

uint64_t pwgate_cost(int ln, int r)
{
	return (uint64_t)128 * (uint64_t)r << ln;
}

int pwgate_slots_for(uint64_t avail, uint64_t reserve, uint64_t cost, int workers)
{
	uint64_t n = avail > reserve && cost > 0 ? (avail - reserve) / cost : 0;
	/* Checks running and waiting together leave at least one worker for
	 * every other route: a login flood cannot hold the whole pool. */
	int room = workers - pwgate_waiters_for(workers) - 1;
	uint64_t max = room < 1 ? 1 : room > PWGATE_MAX_SLOTS ? PWGATE_MAX_SLOTS : (uint64_t)room;

	return (int)(n < 1 ? 1 : n > max ? max : n);
}

int pwgate_waiters_for(int workers)
{
	int n = workers / 2;

	return n < 1 ? 1 : n > PWGATE_MAX_SLOTS ? PWGATE_MAX_SLOTS : n;
}

uint64_t pwgate_meminfo_available(const char *meminfo)
{
	unsigned long long kb;

	for (const char *p = meminfo; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (sscanf(p, "MemAvailable: %llu kB", &kb) == 1)
			return (uint64_t)kb * 1024;
	return 0;
}

uint64_t pwgate_cgroup_room(const char *max, const char *current)
{
	unsigned long long lim, used;

	if (!max || !current || strncmp(max, "max", 3) == 0 || sscanf(max, "%llu", &lim) != 1 ||
	    sscanf(current, "%llu", &used) != 1)
		return UINT64_MAX;
	return lim > used ? (uint64_t)(lim - used) : 0;
}

/* ---- reading the host --------------------------------------------------- */

static bool read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n > 0;
}

bool pwgate_cgroup_path(const char *cgroup, const char *controller, char *out, size_t cap)
{
	size_t clen = strlen(controller);

	for (const char *p = cgroup; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *c = strchr(p, ':'), *end = strchr(p, '\n');
		size_t n;

		if (!c || (end && c > end) || strncmp(c + 1, controller, clen) != 0 ||
		    c[1 + clen] != ':')
			continue;
		c += 2 + clen;
		n = end ? (size_t)(end - c) : strlen(c);
		if (n == 0 || n >= cap || c[0] != '/')
			return false;
		memcpy(out, c, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

/* The room under the limit in dir (limit and usage file names): its own
 * path first, then the mount's root, which is the process's own cgroup in a
 * container that has a cgroup namespace or mounts its cgroup alone. */
static uint64_t cgroup_room(const char *mount, const char *path, const char *limit,
    const char *usage)
{
	const char *dirs[] = {path, ""};
	char f[640], max[64], cur[64];

	for (size_t i = 0; i < countof(dirs); i++) {
		if (!dirs[i])
			continue;
		snprintf(f, sizeof(f), "%s%s/%s", mount, strcmp(dirs[i], "/") ? dirs[i] : "",
		    limit);
		if (!read_text(f, max, sizeof(max)))
			continue;
		snprintf(f, sizeof(f), "%s%s/%s", mount, strcmp(dirs[i], "/") ? dirs[i] : "",
		    usage);
		if (read_text(f, cur, sizeof(cur)))
			return pwgate_cgroup_room(max, cur);
	}
	return UINT64_MAX;
}

/* The memory this process may still use: MemAvailable, lowered to the room
 * under its cgroup's limit (a container, or a unit's MemoryMax=): v2, else
 * v1's memory controller. */
static uint64_t available_memory(void)
{
	static char meminfo[8192], cg[4096];
	char path[512];
	uint64_t avail = 0, room = UINT64_MAX;

	if (read_text("/proc/meminfo", meminfo, sizeof(meminfo)))
		avail = pwgate_meminfo_available(meminfo);
	if (read_text("/proc/self/cgroup", cg, sizeof(cg))) {
		bool v2 = pwgate_cgroup_path(cg, "", path, sizeof(path));

		room =
		    cgroup_room("/sys/fs/cgroup", v2 ? path : NULL, "memory.max", "memory.current");
		if (room == UINT64_MAX) {
			bool v1 = pwgate_cgroup_path(cg, "memory", path, sizeof(path));

			room = cgroup_room("/sys/fs/cgroup/memory", v1 ? path : NULL,
			    "memory.limit_in_bytes", "memory.usage_in_bytes");
		}
	}
	return avail < room ? avail : room;
}

/* ---- the shared table --------------------------------------------------- */

/* A slot, or a place in the queue before the slots: a robust mutex, held
 * by the process that took it. */
struct pwgate_place {
	pthread_mutex_t lock;
	pid_t holder; /* for the log when a holder died */
};

struct pwgate_table {
	pthread_mutex_t unused; /* shm_map_locked's lock: each place has its own */
	int nslots, nwaiters;
	struct pwgate_place slots[PWGATE_MAX_SLOTS];
	struct pwgate_place waiters[PWGATE_MAX_SLOTS];
};

static struct pwgate_table *table;
static int held = -1; /* this process's slot */
static int depth;     /* nested pwgate_enter calls */

static bool init_places(struct pwgate_place *p, int n)
{
	pthread_mutexattr_t at;
	bool ok = pthread_mutexattr_init(&at) == 0 &&
	          pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED) == 0 &&
	          pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST) == 0;

	for (int i = 0; ok && i < n; i++)
		ok = pthread_mutex_init(&p[i].lock, &at) == 0;
	pthread_mutexattr_destroy(&at);
	return ok;
}

int pwgate_init(int configured, int workers, int scrypt_ln)
{
	uint64_t cost = pwgate_cost(scrypt_ln, 8), avail = available_memory();

	if (table)
		return 0;
	table = shm_map_locked(sizeof(*table), offsetof(struct pwgate_table, unused));
	if (!table || !init_places(table->slots, PWGATE_MAX_SLOTS) ||
	    !init_places(table->waiters, PWGATE_MAX_SLOTS))
		return -1;
	table->nslots = configured > 0
	                    ? (configured < PWGATE_MAX_SLOTS ? configured : PWGATE_MAX_SLOTS)
	                    : pwgate_slots_for(avail, PWGATE_RESERVE_BYTES, cost, workers);
	table->nwaiters = pwgate_waiters_for(workers);
	metrics_password_slots(table->nslots);
	log_msg(LL_INFO, "password_slots",
	    "%d concurrent password checks of %" PRIu64 " MiB, %d more waiting at most (%s%" PRIu64
	    " MiB available)",
	    table->nslots, cost >> 20, table->nwaiters,
	    configured > 0 ? "set by OPSD_PASSWORD_SLOTS; " : "", avail >> 20);
	return 0;
}

int pwgate_slots(void)
{
	return table ? table->nslots : 0;
}

int pwgate_waiting(void)
{
	int n = 0;

	for (int i = 0; table && i < table->nwaiters; i++)
		n += __atomic_load_n(&table->waiters[i].holder, __ATOMIC_RELAXED) != 0;
	return n;
}

/* One pass over n places: the index taken, or -1. */
static int take(struct pwgate_place *places, int n)
{
	for (int i = 0; i < n; i++) {
		struct pwgate_place *p = &places[i];
		int rc = pthread_mutex_trylock(&p->lock);

		if (rc == EOWNERDEAD) {
			log_msg(LL_WARN, "password_slot_recovered",
			    "%s %d: its holder (pid %d) died during a password check",
			    places == table->slots ? "slot" : "queue place", i, (int)p->holder);
			pthread_mutex_consistent(&p->lock);
			rc = 0;
		}
		if (rc == 0) {
			__atomic_store_n(&p->holder, getpid(), __ATOMIC_RELAXED);
			return i;
		}
	}
	return -1;
}

static void give_back(struct pwgate_place *p)
{
	__atomic_store_n(&p->holder, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->lock);
}

static bool refuse(const char *why)
{
	metrics_password_check(PWC_REFUSED);
	log_msg(LL_WARN, "password_check_refused", "all %d password check slots busy: %s",
	    table->nslots, why);
	return false;
}

/* Waits for a slot in a place of the queue, up to PWGATE_WAIT_MS. Polled,
 * not signalled: a process-shared condition variable would not survive a
 * waiter or a holder killed in the middle. */
static bool wait_for_slot(void)
{
	int64_t end = mono_ms() + PWGATE_WAIT_MS, left;
	long pause_ms = 2;
	int place = take(table->waiters, table->nwaiters);

	if (place < 0)
		return refuse("the queue is full");
	while ((held = take(table->slots, table->nslots)) < 0 && (left = end - mono_ms()) > 0) {
		nanosleep(&(struct timespec){0, (pause_ms < left ? pause_ms : left) * 1000000L},
		    NULL);
		if (pause_ms < 20)
			pause_ms *= 2;
	}
	give_back(&table->waiters[place]);
	if (held < 0)
		return refuse("none freed within the wait");
	metrics_password_check(PWC_WAITED);
	return true;
}

bool pwgate_enter(void)
{
	if (!table || depth > 0) {
		depth++;
		return true;
	}
	held = take(table->slots, table->nslots);
	if (held >= 0)
		metrics_password_check(PWC_IMMEDIATE);
	else if (!wait_for_slot())
		return false;
	depth = 1;
	return true;
}

void pwgate_leave(void)
{
	if (depth == 0 || --depth > 0)
		return;
	if (table && held >= 0)
		give_back(&table->slots[held]);
	held = -1;
}
