/* The materialiser of the public legal documents (README "Runbook 1", doc/architecture.md):
 * a thread of the jobs process that keeps this host's $OPSD_VAR/www-legal in line with the
 * database, so that every host's nginx serves the same files within a second of a publish
 * on any host, and the moment a scheduled version takes effect.
 *
 * A thread, not a job of the jobs process's table: a migration step holds that loop for
 * a second and more. Not a process of its own: it needs nothing the jobs process lacks (the
 * user the workers run as, who owns the directory; a database connection), and it ends with
 * it.
 * Every TICK_MS it reads the database's stamp (one cheap statement) and the directory's
 * fingerprint (a readdir and a stat per file); a sync runs when either moved since the
 * last sync, when a scheduled version is due (it sleeps until that moment), and every
 * FULL_MS regardless (a hand edit of a row, say). */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "core/legal_files.h"
#include "infra/config.h"
#include "infra/db.h"
#include "jobs/jobs.h"
#include "lib/log.h"
#include "lib/util.h"

#define TICK_MS 250
#define FULL_MS 60000
#define DIR_LEN 4096

static struct {
	const struct opsd_config *cfg;
	struct jobs_thread t;
	char dir[DIR_LEN];
} mat;

static bool stamp_equal(const struct legal_files_stamp *a, const struct legal_files_stamp *b)
{
	return a->effective == b->effective && a->ids == b->ids;
}

static void *materialise(void *arg)
{
	struct legal_files_stamp last = {-1, 0, -1}, now;
	uint64_t last_fp = 0;
	int64_t last_full = 0;
	struct db *db = NULL;

	(void)arg;
	while (!jobs_stopping()) {
		int sleep_ms = TICK_MS;

		if (jobs_db_ready(mat.cfg, &db) && legal_files_stamp(db, &now) == 0) {
			uint64_t fp = legal_files_fingerprint(mat.dir);
			bool due = !stamp_equal(&now, &last) || fp != last_fp ||
			           mono_ms() - last_full >= FULL_MS;

			/* The state seen before the sync: a file put there while it ran
			 * (after it listed the directory) differs from it at the next tick,
			 * as do the sync's own writes, whose second sync changes nothing. */
			if (due && legal_files_sync(db, mat.dir, true) >= 0) {
				last = now;
				last_fp = fp;
				last_full = mono_ms();
			}
			/* Awake the moment the next scheduled version takes effect. */
			if (now.next_ms >= 0 && now.next_ms < sleep_ms)
				sleep_ms = (int)now.next_ms + 1;
		}
		poll(NULL, 0, sleep_ms);
	}
	return jobs_thread_end(db);
}

void legal_files_start(const struct opsd_config *cfg)
{
	mat.cfg = cfg;
	if (!legal_files_dir(cfg, mat.dir, sizeof(mat.dir))) {
		log_msg(LL_ERROR, "legal_files_unavailable", "OPSD_VAR is too long");
		return;
	}
	jobs_thread_start(&mat.t, materialise, "legal_files_unavailable");
}

void legal_files_stop(void)
{
	jobs_thread_join(&mat.t);
}
