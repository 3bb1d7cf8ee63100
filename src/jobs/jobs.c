#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "core/audit.h"
#include "core/auth.h"
#include "core/blocklist.h"
#include "core/legal.h"
#include "core/mail.h"
#include "core/session_secret.h"
#include "core/tenant_db.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/scoreboard.h"
#include "jobs/jobs.h"
#include "jobs/lease.h"
#include "lib/holder.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migration/migration.h"

/* One entry per kind of background work. Each runs at most every
 * interval_ms and must return promptly (work in bounded batches): -1 on
 * failure, 0 done for now, 1 more to do at once. A cluster-wide job runs in
 * the jobs process holding its lease (jobs/lease.h), with its transactions
 * fenced by it; the others run on every host (README "Running on several
 * hosts" says why each is which). The outbox is not here: its SMTP sessions
 * wait on the relay, so they run on a thread of their own (jobs/outbox.c). */
struct job {
	const char *name;
	int interval_ms;
	int (*run)(struct db *db, const struct opsd_config *cfg);
	bool cluster;
};

static const struct job jobs[] = {
    {"legal_notify", 1000, legal_notify_batch, true},
    {"sessions_expire", 60 * 1000, sessions_expire, true},
    /* Audits a SESSION_SECRET other than the last one seen, once per jobs process. */
    {"session_secret", 1000, session_secret_job, false},
    {"audit_retention", 60 * 1000, audit_retention_job, true},
    /* Expired entries already stop blocking in the workers; this deletes them. */
    {"blocklist_expiry", 10 * 1000, blocklist_expire_job, true},
    /* This host's nginx log. */
    {"nginx_limits", 1000, nginx_limits_job, false},
    /* Tenant migrations: each migration has a lease of its own. Returns 1 while it has
     * more to do at once. */
    {"migrations", 0, mig_job, false},
};

/* A lease outlives two runs, so its holder keeps it; a host that died hands it on
 * after at most this long. */
static int lease_ttl_ms(const struct job *j)
{
	return 2 * j->interval_ms + 10 * 1000;
}

/* Runs job i unless it is cluster-wide and another host holds it: its result, or 0. */
static int run_job(size_t i, struct db *db, const struct opsd_config *cfg, struct job_lease *lease)
{
	const struct job *j = &jobs[i];
	int rc;

	if (!j->cluster)
		return j->run(db, cfg);
	if (!job_lease_hold(db, lease, lease_ttl_ms(j)))
		return 0;
	job_lease_fence(db, lease);
	rc = j->run(db, cfg);
	job_lease_unfence(db);
	return rc;
}

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

bool jobs_stopping(void)
{
	return stopping;
}

bool jobs_db_ready(const struct opsd_config *cfg, struct db **db)
{
	char err[256];

	if (!*db &&
	    !(*db = db_open_rotating(cfg->db_uri, cfg->db_uri_previous, err, sizeof(err)))) {
		log_msg(LL_WARN, "db_connect_failed", "%s", err);
		return false;
	}
	return db_ensure(*db) == 0;
}

void jobs_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&sa.sa_mask);
	sigprocmask(SIG_SETMASK, &sa.sa_mask, NULL);
}

void jobs_thread_start(struct jobs_thread *t, void *(*fn)(void *), const char *event)
{
	/* the signals jobs_install_signals handles or ignores */
	static const int main_loop_signals[] = {SIGQUIT, SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGUSR1,
	    SIGCHLD};
	sigset_t mask, old;

	t->started = false;
	if (db_library_init() != 0) {
		log_msg(LL_ERROR, event, "cannot set up the MariaDB client");
		return;
	}
	sigemptyset(&mask);
	for (size_t i = 0; i < countof(main_loop_signals); i++)
		sigaddset(&mask, main_loop_signals[i]);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	t->started = pthread_create(&t->thread, NULL, fn, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!t->started)
		log_msg(LL_ERROR, event, "cannot start the thread");
}

void jobs_thread_join(struct jobs_thread *t)
{
	if (t->started)
		pthread_join(t->thread, NULL);
	t->started = false;
}

void *jobs_thread_end(struct db *db)
{
	db_close(db);
	db_thread_end();
	log_thread_done();
	return NULL;
}

int jobs_main(const struct opsd_config *cfg, struct scoreboard *sb, int slot)
{
	int64_t last_run[countof(jobs)];
	struct job_lease leases[countof(jobs)];
	struct db *db = NULL;

	jobs_install_signals();
	mail_attach_stop_flag(&stopping);
	log_set_role("jobs");
	blocklist_attach(&sb->blocklist_generation, NULL);
	memset(last_run, 0, sizeof(last_run));
	for (size_t i = 0; i < countof(jobs); i++)
		leases[i] = (struct job_lease){jobs[i].name, 0};
	holder_self(); /* made once, before the threads that read it start */
	legal_files_start(cfg);
	outbox_start(cfg);
	scoreboard_set_state(sb, slot, SB_IDLE);
	log_msg(LL_INFO, "jobs_started", "jobs process ready");
	while (!stopping) {
		int64_t now = mono_ms();
		bool busy = false;
		int rc;

		for (size_t i = 0; i < countof(jobs) && !stopping; i++) {
			const struct job *j = &jobs[i];

			if (!j->run || now - last_run[i] < j->interval_ms)
				continue;
			last_run[i] = now;
			if (!jobs_db_ready(cfg, &db))
				break;
			scoreboard_set_state(sb, slot, SB_BUSY);
			rc = run_job(i, db, cfg, &leases[i]);
			if (rc < 0)
				log_msg(LL_ERROR, "job_failed", "%s", j->name);
			busy |= rc > 0;
			scoreboard_set_state(sb, slot, SB_IDLE);
		}
		/* Sleeps are interrupted by the stop signals (no SA_RESTART); a job
		 * with more work to do now skips the sleep. */
		poll(NULL, 0, busy ? 0 : 500);
	}
	outbox_stop();
	legal_files_stop();
	for (size_t i = 0; i < countof(jobs); i++)
		job_lease_release(db, &leases[i]);
	db_close(db);
	tenant_db_close_all();
	return 0;
}
