/* The outbox's sender (README "Runbook 5"): a thread of the jobs process that delivers the
 * due messages, so that a relay that stalls holds only this thread and never the loop that
 * runs the other jobs (legal notices, session expiry, retention, the blocklist, migrations).
 *
 * One thread sends: libESMTP keeps global state and is not thread-aware. Each SMTP step
 * waits at most the step timeout (infra/smtp.c), so a relay that accepts and never answers
 * costs this thread that long per message; a batch's claim lease (core/mail.c) outlasts
 * every message of it. At a stop or a reload the message in hand is finished (an answer, or
 * the step timeout) and the rest of the batch goes back to the queue for the successor. */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/mail.h"
#include "infra/config.h"
#include "infra/db.h"
#include "jobs/jobs.h"
#include "lib/log.h"
#include "lib/util.h"

/* How often the queue is read when the last pass found nothing more to do; the stop is
 * noticed within one tick. */
#define TICK_MS 250
#define PASS_MS 1000

static struct {
	const struct opsd_config *cfg;
	struct jobs_thread t;
} snd;

static void *deliver(void *arg)
{
	struct db *db = NULL;
	int64_t last = 0;

	(void)arg;
	while (!jobs_stopping()) {
		int64_t now = mono_ms();

		if (now - last >= PASS_MS) {
			int rc = 0;

			last = now;
			if (jobs_db_ready(snd.cfg, &db))
				rc = mail_deliver_due(db, snd.cfg);
			if (rc < 0)
				log_msg(LL_ERROR, "job_failed", "email_outbox");
			if (rc > 0)
				last = 0; /* more to do at once */
		}
		poll(NULL, 0, last == 0 ? 0 : TICK_MS);
	}
	return jobs_thread_end(db);
}

void outbox_start(const struct opsd_config *cfg)
{
	snd.cfg = cfg;
	/* A stop cannot cut an SMTP session short (which could record a message the relay
	 * took as a retry). */
	jobs_thread_start(&snd.t, deliver, "outbox_unavailable");
}

void outbox_stop(void)
{
	jobs_thread_join(&snd.t);
}
