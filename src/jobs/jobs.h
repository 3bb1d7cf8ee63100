/* The jobs process: background work claimed from MariaDB (outbox, tenant
 * migrations, retention, blocklist expiry) so that several hosts can run it
 * at once. Started and replaced by the master. */
#ifndef OPSD_JOBS_H
#define OPSD_JOBS_H

#include <pthread.h>
#include <stdbool.h>

struct opsd_config;
struct scoreboard;

struct db;

int jobs_main(const struct opsd_config *cfg, struct scoreboard *sb, int slot);
/* The nginx process (nginx_sync.c): keeps this host's nginx running the generated includes. */
int nginx_sync_main(const struct opsd_config *cfg, struct scoreboard *sb, int slot);

/* Both background processes stop on SIGQUIT, SIGTERM or SIGINT (their sleeps are interrupted)
 * and ignore SIGHUP, SIGUSR1 and SIGPIPE (the master reloads by replacing them). */
void jobs_install_signals(void);
bool jobs_stopping(void);
/* A background process's (or thread's) own connection, opened on first use and checked before
 * each pass: false, with db_connect_failed logged when it could not be opened, when the
 * database cannot be reached now. */
struct db;
bool jobs_db_ready(const struct opsd_config *cfg, struct db **db);
/* A thread of the jobs process (the outbox's sender, the legal-files materialiser). */
struct jobs_thread {
	pthread_t thread;
	bool started;
};
/* Sets up the MariaDB client library (before the thread's first connection: two threads must
 * not do it at once) and starts fn with the process-directed signals the main loop handles
 * blocked, so they stay with the main thread (a stop cannot cut the thread's work short);
 * faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) stay unblocked, so a crash in the thread
 * is reported where it happened, ASan's report included. A failure is logged as event. */
void jobs_thread_start(struct jobs_thread *t, void *(*fn)(void *), const char *event);
/* Waits for the thread to end (it watches jobs_stopping()). */
void jobs_thread_join(struct jobs_thread *t);
/* What the thread does last: its connection closed, its client library and log state freed. */
void *jobs_thread_end(struct db *db);
/* legal_files.c: the thread of the jobs process that keeps this host's legal document files
 * in line with the database (started once the signals are installed, joined after the stop). */
void legal_files_start(const struct opsd_config *cfg);
void legal_files_stop(void);
/* outbox.c: the thread of the jobs process that sends the outbox's messages (started once the
 * signals are installed, joined after the stop: it finishes the message in hand). */
void outbox_start(const struct opsd_config *cfg);
void outbox_stop(void);
/* nginx_limits.c: counts and audits the 429s nginx answered itself. */
int nginx_limits_job(struct db *d, const struct opsd_config *cfg);

#endif
