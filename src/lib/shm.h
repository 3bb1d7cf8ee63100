/* Tables in shared memory that the master maps before it forks, so every
 * child shares them, each guarded by a robust process-shared mutex: a process
 * killed while it holds the lock hands it on instead of to nobody. */
#ifndef OPSD_LIB_SHM_H
#define OPSD_LIB_SHM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* size bytes of zeroed shared memory with the pthread_mutex_t at
 * lock_offset initialised; NULL on failure. */
void *shm_map_locked(size_t size, size_t lock_offset);
/* Takes the lock: true when its previous holder died holding it (the
 * caller decides what its half-written table is worth). */
bool shm_lock(pthread_mutex_t *lock);

#endif
