/* Shared tables with a robust lock (lib/shm.h): ratelimit.c and shmcache.c. */
#include "lib/shm.h"

#include <errno.h>
#include <sys/mman.h>

void *shm_map_locked(size_t size, size_t lock_offset)
{
	pthread_mutexattr_t at;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	bool ok;

	if (p == MAP_FAILED)
		return NULL;
	ok = pthread_mutexattr_init(&at) == 0 &&
	     pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED) == 0 &&
	     pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST) == 0 &&
	     pthread_mutex_init((pthread_mutex_t *)((char *)p + lock_offset), &at) == 0;
	pthread_mutexattr_destroy(&at);
	if (!ok) {
		munmap(p, size);
		return NULL;
	}
	return p;
}

bool shm_lock(pthread_mutex_t *lock)
{
	if (pthread_mutex_lock(lock) != EOWNERDEAD)
		return false;
	pthread_mutex_consistent(lock);
	return true;
}
