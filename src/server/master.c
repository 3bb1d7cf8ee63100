#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <mysql.h>

#include "core/authz.h"
#include "core/legal_files.h"
#include "core/mail.h"
#include "infra/config.h"
#include "infra/metrics.h"
#include "infra/pwgate.h"
#include "infra/ratelimit.h"
#include "infra/scoreboard.h"
#include "infra/shmcache.h"
#include "jobs/jobs.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/util.h"
#include "server/master.h"
#include "server/proctitle.h"
#include "server/worker.h"

#define TICK_MS 100
#define LISTEN_BACKLOG 1024
/* Crash-loop guard: this many crashes inside the window pause spawning, with a
 * delay that doubles up to the cap. What counts as a crash: see exit_cause. */
#define CRASH_LIMIT 10
#define CRASH_WINDOW_MS 10000
#define CRASH_BACKOFF_MIN_MS 1000
#define CRASH_BACKOFF_MAX_MS 30000
/* How often a draining worker is reminded to leave (see retire_old). */
#define QUIT_RESEND_MS 1000

struct master {
	struct opsd_config *cfg;
	struct scoreboard *sb;
	int listen_fd;
	char *unix_path; /* set when listening on a unix socket */
	pid_t pid;
	bool drop_privileges;
	uid_t uid;
	gid_t gid;
	char *home; /* the user's home, for HOME after the drop */
	unsigned generation;
	int64_t quit_sent[SB_MAX_SLOTS];  /* ms when we asked the slot to leave */
	bool expected_exit[SB_MAX_SLOTS]; /* we asked it to go (or killed it) */
	int64_t crash_times[CRASH_LIMIT];
	int crash_next;
	int64_t spawn_paused_until;
	int backoff_ms;
	int64_t last_crash;
	int64_t last_max_children;
	int64_t last_shrink;
	enum { RUNNING, STOP_FAST, STOP_GRACEFUL } stop;
};

static struct master M;

/* ---- listen socket, pid file ------------------------------------------ */

static bool unix_socket_in_use(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	bool used;

	if (fd < 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	used = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return used;
}

static int open_listener(struct master *m)
{
	const char *listen = m->cfg->listen;
	const char *target = listen;
	int fd;

	if (str_has_prefix(listen, "unix:")) {
		target = listen + 5;
		if (strlen(target) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			log_msg(LL_ERROR, "listen_failed", "socket path too long: %s", target);
			return -1;
		}
		if (unix_socket_in_use(target)) {
			log_msg(LL_ERROR, "listen_failed", "%s is in use by another process",
			    target);
			return -1;
		}
		m->unix_path = strdup(target);
	}
	fd = FCGX_OpenSocket(target, LISTEN_BACKLOG);
	if (fd < 0) {
		log_msg(LL_ERROR, "listen_failed", "cannot listen on %s", listen);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* Workers wait in ppoll and accept without blocking: the one that loses
	 * the race gets EAGAIN and waits again. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (m->unix_path) {
		/* nginx (same user or group after the drop) and nobody else. */
		if (m->drop_privileges && chown(m->unix_path, m->uid, m->gid) != 0)
			log_msg(LL_WARN, "listen_chown_failed", "%s", strerror(errno));
		if (chmod(m->unix_path, 0660) != 0)
			log_msg(LL_WARN, "listen_chmod_failed", "%s", strerror(errno));
	}
	return fd;
}

static bool pid_is_opsd(pid_t pid)
{
	char path[64], comm[64] = "";
	FILE *f;

	if (pid <= 0 || kill(pid, 0) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "opsd", 4) == 0;
}

static int write_pidfile(const char *path)
{
	char buf[32];
	FILE *f = fopen(path, "r");
	int fd, n;

	if (f) {
		long old = 0;

		if (fscanf(f, "%ld", &old) == 1 && old != getpid() && pid_is_opsd((pid_t)old)) {
			fclose(f);
			log_msg(LL_ERROR, "already_running",
			    "opsd is already running with pid %ld (%s)", old, path);
			return -1;
		}
		fclose(f);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_msg(LL_ERROR, "pidfile_failed", "%s: %s", path, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int resolve_user(struct master *m)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(m->cfg->user);
	if (!pw) {
		log_msg(LL_ERROR, "config_error", "OPSD_USER: no such user \"%s\"", m->cfg->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_msg(LL_WARN, "running_as_root",
		    "OPSD_USER is root: workers keep root privileges");
		return 0;
	}
	m->drop_privileges = true;
	m->uid = pw->pw_uid;
	m->gid = pw->pw_gid;
	m->home = strdup(pw->pw_dir ? pw->pw_dir : "/");
	return 0;
}

/* The public legal documents' directory (README "Runbook 1"), made while the master
 * is still root: the jobs process writes it as OPSD_USER, and under systemd the
 * parent, the StateDirectory, is root's. Without it opsd answers the reads itself. */
static void prepare_legal_files_dir(const struct master *m)
{
	char dir[PATH_MAX];

	if (!legal_files_dir(m->cfg, dir, sizeof(dir)))
		return;
	if (mkdir(dir, 0755) != 0) {
		if (errno != EEXIST)
			log_msg(LL_WARN, "legal_files_dir_failed", "cannot create %s: %s", dir,
			    strerror(errno));
		return; /* one that exists is left as its owner made it */
	}
	if (m->drop_privileges) {
		/* the directory just made, not whatever a writer of OPSD_VAR put in its place */
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0 || fchown(fd, m->uid, m->gid) != 0)
			log_msg(LL_WARN, "legal_files_dir_failed",
			    "cannot hand %s to OPSD_USER: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

/* ---- children ---------------------------------------------------------- */

static void drop_privileges(const struct master *m)
{
	if (!m->drop_privileges)
		return;
	if (setgroups(1, &m->gid) != 0 || setgid(m->gid) != 0 || setuid(m->uid) != 0) {
		log_msg(LL_ERROR, "privilege_drop_failed", "%s", strerror(errno));
		_exit(70);
	}
	if (setuid(0) == 0) {
		log_msg(LL_ERROR, "privilege_drop_failed", "could regain root");
		_exit(70);
	}
	/* The child holds the configuration's secrets: it stays non-dumpable
	 * (no core file, no /proc/PID/mem or environ for OPSD_USER; main.c). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Libraries look under $HOME (libESMTP probes ~/.authenticate during
	 * STARTTLS and gives up on EACCES): point it at the new user's home. */
	setenv("HOME", m->home ? m->home : "/", 1);
	setenv("USER", m->cfg->user, 1);
	setenv("LOGNAME", m->cfg->user, 1);
}

static void child_run(struct master *m, enum sb_kind kind, int slot)
{
	int rc;

	/* Die with the master rather than linger with a stale config. The
	 * master's signal mask is inherited: worker_main and jobs_main unblock
	 * it once their own handlers are installed. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != m->pid)
		_exit(0);
	/* The nginx process keeps the master's user: it writes nginx's includes
	 * and signals nginx's master, and does nothing else (jobs/nginx_sync.c). */
	if (kind != SB_NGINX)
		drop_privileges(m);
	if (kind == SB_NGINX) {
		/* It stays root: it keeps only the database's credentials it reads the
		 * lists with, and leaves no core dump (the others are still in memory
		 * the kernel would write out). */
		static const char *const keep[] = {"OPSD_DB_URI", "OPSD_DB_URI_PREVIOUS", NULL};
		struct rlimit no_core = {0, 0};

		config_forget_secrets(m->cfg, keep);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		setrlimit(RLIMIT_CORE, &no_core);
		close(m->listen_fd);
		proctitle_set("opsd: nginx");
		rc = nginx_sync_main(m->cfg, m->sb, slot);
	} else if (kind == SB_WORKER) {
		struct worker_args wa = {m->cfg, m->listen_fd, m->sb, slot,
		    {m->sb, m->listen_fd, m->cfg->listen,
		        m->cfg->pm == PM_DYNAMIC ? "dynamic" : "static"}};

		proctitle_set("opsd: worker");
		rc = worker_main(&wa);
	} else {
		close(m->listen_fd);
		proctitle_set("opsd: jobs");
		rc = jobs_main(m->cfg, m->sb, slot);
	}
	/* exit, not _exit: flush stdio and let ASan's checks run. */
	exit(rc);
}

static int spawn(struct master *m, enum sb_kind kind)
{
	int slot = scoreboard_claim(m->sb, -1, kind);
	pid_t pid;

	if (slot < 0) {
		log_msg(LL_ERROR, "spawn_failed", "scoreboard full");
		return -1;
	}
	m->quit_sent[slot] = 0;
	m->expected_exit[slot] = false;
	pid = fork();
	if (pid < 0) {
		log_msg(LL_ERROR, "spawn_failed", "fork: %s", strerror(errno));
		scoreboard_release(m->sb, slot);
		return -1;
	}
	if (pid == 0)
		child_run(m, kind, slot);
	m->sb->slots[slot].pid = pid;
	return 0;
}

static void signal_slot(struct master *m, int slot, int sig)
{
	pid_t pid = m->sb->slots[slot].pid;

	if (pid <= 0)
		return;
	if (sig == SIGQUIT && m->quit_sent[slot] == 0)
		m->quit_sent[slot] = mono_ms();
	m->expected_exit[slot] = true;
	kill(pid, sig);
}

static bool slot_alive(const struct master *m, int i)
{
	return m->sb->slots[i].pid > 0 && scoreboard_state(m->sb, i) != SB_FREE;
}

static void signal_all(struct master *m, int sig)
{
	for (int i = 0; i < SB_MAX_SLOTS; i++)
		if (slot_alive(m, i))
			signal_slot(m, i, sig);
}

static int count_alive(const struct master *m)
{
	int n = 0;

	for (int i = 0; i < SB_MAX_SLOTS; i++)
		n += slot_alive(m, i);
	return n;
}

static void note_crash(struct master *m)
{
	int64_t now = mono_ms();
	int64_t oldest;

	m->crash_times[m->crash_next] = now;
	m->crash_next = (m->crash_next + 1) % CRASH_LIMIT;
	oldest = m->crash_times[m->crash_next];
	if (now - m->last_crash > 6 * CRASH_WINDOW_MS)
		m->backoff_ms = 0;
	m->last_crash = now;
	if (oldest != 0 && now - oldest < CRASH_WINDOW_MS) {
		m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : CRASH_BACKOFF_MIN_MS;
		if (m->backoff_ms > CRASH_BACKOFF_MAX_MS)
			m->backoff_ms = CRASH_BACKOFF_MAX_MS;
		m->spawn_paused_until = now + m->backoff_ms;
		log_msg(LL_ERROR, "crash_loop", "%d crashes within %d s: pausing spawns for %d ms",
		    CRASH_LIMIT, CRASH_WINDOW_MS / 1000, m->backoff_ms);
	}
}

/* Signals that mean the process failed by itself (a fault, abort(), a trap);
 * any other signal was sent from outside: an operator's kill, the OOM killer. */
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP};

static enum worker_exit_cause exit_cause(int status)
{
	if (WIFEXITED(status))
		return WEXIT_ERROR;
	for (size_t i = 0; i < countof(fault_signals); i++)
		if (WTERMSIG(status) == fault_signals[i])
			return WEXIT_CRASH;
	return WEXIT_KILLED;
}

/* What the master knew of a child when it ended: read before its slot is freed. */
struct child_end {
	pid_t pid;
	int status;
	const char *kind;
	bool ready; /* it had finished starting (it serves or waits for work) */
	uint64_t requests;
	int64_t age_ms;
};

/* An abnormal end the master did not ask for. A crash or an exit status
 * counts toward the crash-loop guard; a kill from outside counts only when
 * the child died before it was ready, as one that cannot start does: a kill
 * storm on running workers is replaced at once and never pauses the pool. */
static void note_child_died(struct master *m, const struct child_end *e)
{
	static const char *const cause_names[WEXIT__MAX] =
	    {[WEXIT_CRASH] = "crash", [WEXIT_ERROR] = "error", [WEXIT_KILLED] = "killed"};
	enum worker_exit_cause cause = exit_cause(e->status);
	bool counts = cause != WEXIT_KILLED || !e->ready;
	struct logline *l = log_begin(counts ? LL_ERROR : LL_WARN, "child_died");

	log_str(l, "kind", e->kind);
	log_int(l, "childPid", e->pid);
	log_str(l, "cause", cause_names[cause]);
	if (WIFSIGNALED(e->status))
		log_int(l, "signal", WTERMSIG(e->status));
	else
		log_int(l, "exitStatus", WEXITSTATUS(e->status));
	log_bool(l, "ready", e->ready);
	log_int(l, "requests", (int64_t)e->requests);
	log_int(l, "ageMs", e->age_ms);
	log_bool(l, "countsAsCrash", counts);
	log_end(l);
	__atomic_add_fetch(&m->sb->worker_restarts, 1, __ATOMIC_RELAXED);
	metrics_worker_exit(cause);
	if (counts)
		note_crash(m);
}

static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int slot = scoreboard_find(m->sb, pid);
		const struct sb_slot *s = slot >= 0 ? &m->sb->slots[slot] : NULL;
		bool expected = slot >= 0 && m->expected_exit[slot];
		bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		struct child_end e = {pid, status,
		    !s                    ? "worker"
		    : s->kind == SB_JOBS  ? "jobs"
		    : s->kind == SB_NGINX ? "nginx"
		                          : "worker",
		    !s || scoreboard_state(m->sb, slot) != SB_STARTING, s ? s->requests : 0,
		    s ? now_ms() - s->started_ms : 0};

		if (slot >= 0)
			scoreboard_release(m->sb, slot);
		if (clean || (expected && WIFSIGNALED(status)))
			continue;
		note_child_died(m, &e);
	}
}

/* A request running longer than OPSD_REQUEST_TIMEOUT: its worker is killed
 * (nginx answers 502 as JSON) and replaced by maintain_pool. */
static void enforce_timeouts(struct master *m)
{
	int64_t now = mono_ms();
	int64_t limit = (int64_t)m->cfg->request_timeout * 1000;

	if (limit <= 0)
		return;
	for (int i = 0; i < SB_MAX_SLOTS; i++) {
		struct sb_slot *s = &m->sb->slots[i];
		struct logline *l;

		if (s->kind != SB_WORKER || scoreboard_state(m->sb, i) != SB_BUSY)
			continue;
		if (now - __atomic_load_n(&s->req_start_mono, __ATOMIC_RELAXED) <= limit)
			continue;
		l = log_begin(LL_ERROR, "request_timeout");
		log_int(l, "workerPid", s->pid);
		log_str(l, "method", s->method);
		log_str(l, "path", s->uri);
		log_str(l, "timedOutRequestId", s->request_id);
		log_int(l, "timeoutS", m->cfg->request_timeout);
		log_end(l);
		__atomic_add_fetch(&m->sb->timeouts, 1, __ATOMIC_RELAXED);
		scoreboard_set_state(m->sb, i, SB_EXITING);
		signal_slot(m, i, SIGKILL);
	}
}

/* Workers of an older generation finish their request and leave. One that
 * was signalled in the instant between fcgi2's check and accept() would
 * block forever, so draining workers are reminded every second. */
static void retire_old(struct master *m)
{
	int64_t now = mono_ms();

	for (int i = 0; i < SB_MAX_SLOTS; i++) {
		struct sb_slot *s = &m->sb->slots[i];

		if (!slot_alive(m, i) || s->generation == m->generation || s->pid <= 0)
			continue;
		if (m->quit_sent[i] == 0 || now - m->quit_sent[i] >= QUIT_RESEND_MS) {
			m->quit_sent[i] = 0;
			signal_slot(m, i, SIGQUIT);
		}
	}
}

/* The jobs process or the nginx process of the current generation is up. */
static bool kind_running(const struct master *m, enum sb_kind kind)
{
	for (int i = 0; i < SB_MAX_SLOTS; i++)
		if (slot_alive(m, i) && m->sb->slots[i].kind == (int)kind &&
		    m->sb->slots[i].generation == m->generation)
			return true;
	return false;
}

static void shrink_one_idle(struct master *m)
{
	for (int i = 0; i < SB_MAX_SLOTS; i++) {
		struct sb_slot *s = &m->sb->slots[i];

		if (s->kind == SB_WORKER && s->generation == m->generation &&
		    scoreboard_state(m->sb, i) == SB_IDLE && m->quit_sent[i] == 0) {
			signal_slot(m, i, SIGQUIT);
			return;
		}
	}
}

static void maintain_pool(struct master *m)
{
	const struct opsd_config *c = m->cfg;
	int64_t now = mono_ms();
	struct sb_counts n;
	int want;

	scoreboard_count(m->sb, m->generation, &n);
	if (n.busy > m->sb->max_active)
		m->sb->max_active = n.busy;
	if (n.idle == 0 && n.starting == 0 && n.total >= c->workers &&
	    now - m->last_max_children >= 1000) {
		m->last_max_children = now;
		__atomic_add_fetch(&m->sb->max_children_reached, 1, __ATOMIC_RELAXED);
	}
	if (now < m->spawn_paused_until)
		return;
	if (!kind_running(m, SB_JOBS))
		spawn(m, SB_JOBS);
	if (c->nginx_apply && !kind_running(m, SB_NGINX))
		spawn(m, SB_NGINX);
	if (c->pm == PM_STATIC) {
		want = c->workers - n.total;
	} else {
		want = c->min_spare - (n.idle + n.starting);
		if (want > c->workers - n.total)
			want = c->workers - n.total;
		if (n.idle > c->max_spare && now - m->last_shrink >= 1000) {
			m->last_shrink = now;
			shrink_one_idle(m);
		}
	}
	for (int i = 0; i < want; i++)
		if (spawn(m, SB_WORKER) != 0)
			break;
}

/* ---- signals ----------------------------------------------------------- */

static void start_generation(struct master *m)
{
	m->generation++;
	m->sb->generation = m->generation;
	m->sb->pm = m->cfg->pm;
	m->sb->workers_max = m->cfg->workers;
}

static void report_line(bool is_error, const char *line, void *ctx)
{
	(void)ctx;
	log_msg(is_error ? LL_ERROR : LL_WARN, is_error ? "config_error" : "config_warning", "%s",
	    line);
}

/* SIGHUP: re-read the environment and env file; on success the old
 * workers finish their current request while new ones already accept on
 * the same socket, so no request fails. */
static void reload(struct master *m)
{
	struct opsd_config *next = calloc(1, sizeof(*next));
	struct opsd_config *old = m->cfg;

	if (!next)
		return;
	if (config_load(next, report_line, NULL) != 0 || cli_roles_check(next, report_line, NULL)) {
		log_msg(LL_ERROR, "reload_refused",
		    "configuration has errors; keeping the old one");
		config_free(next);
		free(next);
		return;
	}
	if (strcmp(next->listen, old->listen) != 0)
		log_msg(LL_WARN, "reload_listen_ignored",
		    "OPSD_LISTEN changed: a restart is needed to move the socket");
	free(next->listen);
	next->listen = strdup(old->listen);
	/* A random secret (no SESSION_SECRET outside production) must outlive
	 * reloads, or every reload would log everyone out. */
	if (next->session_secret_generated && old->session_secret_generated) {
		secret_free_str(next->session_secret);
		next->session_secret = strdup(old->session_secret);
	}
	if (strcmp(next->log_target, old->log_target) != 0)
		log_msg(LL_WARN, "reload_log_ignored", "OPSD_LOG changed: a restart is needed");
	/* The new jobs process retries what failed at AUTH under replaced SMTP
	 * settings (README "Runbook 7" step 3). */
	if (mail_settings_changed(old, next))
		next->smtp_replaced_since_ms = old->smtp_since_ms;
	else
		next->smtp_since_ms = old->smtp_since_ms;
	/* Turned off: /status and /metrics stop showing the nginx process's last report. */
	if (!next->nginx_apply)
		memset(m->sb->nginx, 0, sizeof(m->sb->nginx));
	m->cfg = next;
	start_generation(m);
	log_msg(LL_INFO, "reload", "generation %u", m->generation);
	retire_old(m);
	maintain_pool(m);
	/* Children of the old generation still point at the old config
	 * (their own copy); the master's copy can go. */
	config_free(old);
	free(old);
}

static void handle_signal(struct master *m, int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_msg(LL_INFO, "stopping", "fast stop (signal %d)", sig);
		m->stop = STOP_FAST;
		signal_all(m, SIGTERM);
		break;
	case SIGQUIT:
		log_msg(LL_INFO, "stopping", "graceful stop");
		m->stop = STOP_GRACEFUL;
		signal_all(m, SIGQUIT);
		break;
	case SIGHUP:
		if (m->stop == RUNNING)
			reload(m);
		break;
	case SIGUSR1:
		/* Workers inherited the old log descriptor: reopen here, then
		 * replace them gracefully so every process writes the new file. */
		if (log_reopen() != 0)
			log_msg(LL_ERROR, "log_reopen_failed", "%s", strerror(errno));
		log_msg(LL_INFO, "log_reopened", "replacing workers");
		if (m->stop == RUNNING) {
			start_generation(m);
			retire_old(m);
			maintain_pool(m);
		}
		break;
	default:
		break;
	}
}

static void wait_children(struct master *m, int64_t deadline_ms)
{
	sigset_t set;
	struct timespec ts = {0, TICK_MS * 1000000L};

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (count_alive(m) > 0 && mono_ms() < deadline_ms) {
		int sig = sigtimedwait(&set, NULL, &ts);

		if ((sig == SIGTERM || sig == SIGINT) && m->stop == STOP_GRACEFUL) {
			m->stop = STOP_FAST;
			signal_all(m, SIGTERM);
			deadline_ms = mono_ms() + 3000;
		}
		reap(m);
		if (m->stop == STOP_GRACEFUL) {
			for (int i = 0; i < SB_MAX_SLOTS; i++)
				if (slot_alive(m, i) && scoreboard_state(m->sb, i) != SB_BUSY &&
				    mono_ms() - m->quit_sent[i] >= QUIT_RESEND_MS) {
					m->quit_sent[i] = 0;
					signal_slot(m, i, SIGQUIT);
				}
		}
	}
	if (count_alive(m) > 0) {
		log_msg(LL_WARN, "stop_kill", "%d children did not stop in time: killing",
		    count_alive(m));
		signal_all(m, SIGKILL);
		for (int i = 0; i < 200 && count_alive(m) > 0; i++) {
			usleep(10 * 1000);
			reap(m);
		}
		for (int i = 0; i < SB_MAX_SLOTS; i++)
			if (m->sb->slots[i].pid > 0)
				scoreboard_release(m->sb, i);
	}
}

/* OpenSSL finds an algorithm's implementation on its first use and keeps it
 * in caches on the heap: found once here, every child inherits the caches
 * instead of building its own on its first signed-in request. */
static void warm_crypto(void)
{
	uint8_t out[32];

	sha256_raw("", 0, out);
	hmac_sha256("", 0, "", 0, out);
}

int master_run(struct opsd_config *cfg)
{
	static const int handled[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
	struct master *m = &M;
	struct sigaction ign;
	sigset_t set;
	struct timespec tick = {0, TICK_MS * 1000000L};

	m->cfg = cfg;
	m->pid = getpid();
	m->listen_fd = -1;
	proctitle_set("opsd: master");
	log_set_role("master");
	if (resolve_user(m) != 0)
		return 1;
	prepare_legal_files_dir(m);

	/* Signals are taken synchronously with sigtimedwait: no handler runs
	 * in the middle of the master's bookkeeping. */
	sigemptyset(&set);
	for (size_t i = 0; i < countof(handled); i++)
		sigaddset(&set, handled[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, NULL);

	m->sb = scoreboard_create();
	if (!m->sb || metrics_init() != 0 || ratelimit_init() != 0 || shmcache_init() != 0) {
		log_msg(LL_ERROR, "start_failed", "cannot map shared memory: %s", strerror(errno));
		return 1;
	}
	/* sized once, from the memory free before any child runs */
	if (pwgate_init(cfg->password_slots, cfg->workers, cfg->scrypt_ln) != 0) {
		log_msg(LL_ERROR, "start_failed", "cannot map the password slots: %s",
		    strerror(errno));
		return 1;
	}
	/* The client library's one-time setup (OpenSSL's algorithm tables, the
	 * port from services) done once here is inherited by every child; done
	 * lazily by each child's first connection it costs each of them about
	 * 1 MiB of pages (doc/performance.md). The master connects to nothing. */
	if (mysql_library_init(0, NULL, NULL) != 0) {
		log_msg(LL_ERROR, "start_failed", "cannot initialise the MariaDB client library");
		return 1;
	}
	warm_crypto();
	m->listen_fd = open_listener(m);
	if (m->listen_fd < 0)
		return 1;
	if (write_pidfile(m->cfg->pid_file) != 0) {
		close(m->listen_fd);
		return 1;
	}
	start_generation(m);
	log_msg(LL_INFO, "started", "listening on %s, pm %s, %d workers, env %s", m->cfg->listen,
	    m->cfg->pm == PM_DYNAMIC ? "dynamic" : "static", m->cfg->workers,
	    config_env_name(m->cfg->env));

	while (m->stop == RUNNING) {
		int sig;

		maintain_pool(m);
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig > 0 && sig != SIGCHLD)
			handle_signal(m, sig);
		reap(m);
		enforce_timeouts(m);
		retire_old(m);
	}

	wait_children(m,
	    mono_ms() +
	        (m->stop == STOP_GRACEFUL
	                ? (int64_t)(m->cfg->request_timeout > 0 ? m->cfg->request_timeout : 30) *
	                          1000 +
	                      5000
	                : 3000));
	close(m->listen_fd);
	if (m->unix_path)
		unlink(m->unix_path);
	unlink(m->cfg->pid_file);
	log_msg(LL_INFO, "stopped", "bye");
	free(m->unix_path);
	return 0;
}
