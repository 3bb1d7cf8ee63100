#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infra/config.h"
#include "infra/nginx_apply.h"
#include "lib/buf.h"
#include "lib/util.h"

/* nginx -t reads every included file and the certificates: seconds at most. */
#define NGINX_TEST_TIMEOUT_MS 30000

void nginx_target_from_config(const struct opsd_config *cfg, struct nginx_target *t)
{
	const char *var = cfg->var_dir ? cfg->var_dir : ".";

	if (cfg->nginx_conf)
		str_copy(t->conf, cfg->nginx_conf, sizeof(t->conf));
	else
		snprintf(t->conf, sizeof(t->conf), "%s/nginx/nginx.conf", var);
	if (cfg->nginx_pid_file)
		str_copy(t->pid_file, cfg->nginx_pid_file, sizeof(t->pid_file));
	else
		snprintf(t->pid_file, sizeof(t->pid_file), "%s/run/nginx.pid", var);
	t->bin[0] = '\0'; /* the system's nginx */
}

const char *nginx_apply_name(enum nginx_apply r)
{
	static const char *const names[] = {"unchanged", "reloaded", "not_running", "test_failed",
	    "failed"};

	return (unsigned)r < countof(names) ? names[r] : "failed";
}

/* nginx.conf as an absolute path (nginx reads a relative -c against its prefix), its
 * directory with a trailing '/' (nginx's -p) and the include's path in it. */
static int target_paths(const struct nginx_target *t, const char *name, char conf[PATH_MAX],
    char prefix[PATH_MAX], char path[PATH_MAX], char *msg, size_t msg_len)
{
	const char *slash;

	if (!name || !*name || strchr(name, '/') || !t->conf[0]) {
		snprintf(msg, msg_len, "not a file name beside nginx.conf: %s", name ? name : "?");
		return -1;
	}
	if (!realpath(t->conf, conf)) {
		snprintf(msg, msg_len, "%s: %s", t->conf, strerror(errno));
		return -1;
	}
	slash = strrchr(conf, '/');
	snprintf(prefix, PATH_MAX, "%.*s", (int)(slash - conf + 1), conf);
	if (snprintf(path, PATH_MAX, "%s%s", prefix, name) >= PATH_MAX) {
		snprintf(msg, msg_len, "%s%s: %s", prefix, name, strerror(ENAMETOOLONG));
		return -1;
	}
	return 0;
}

/* path's contents, or NULL when it does not exist (*missing) or cannot be read (errno). */
static char *slurp(const char *path, size_t *len, bool *missing)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	*missing = !f && errno == ENOENT;
	*len = 0;
	if (!f)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f) || buf_failed(&b)) {
		fclose(f);
		buf_free(&b);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	*len = b.len;
	buf_cstr(&b);
	return b.data ? b.data : strdup("");
}

/* Through a temporary file in the same directory and rename(2): nginx never reads half a
 * file. 0 or -1 (errno set). */
static int write_atomically(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, saved;
	size_t off = 0;

	if (snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
	        slash ? slash + 1 : path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/* nginx's most telling line: the first [emerg] (or the first line), without "nginx: ". */
static void first_error_line(const char *out, char *line, size_t line_len)
{
	const char *p = strstr(out, "[emerg]");
	size_t n;

	if (!p)
		p = out + strspn(out, "\n");
	else
		while (p > out && p[-1] != '\n')
			p--;
	if (str_has_prefix(p, "nginx: "))
		p += 7;
	n = strcspn(p, "\n");
	snprintf(line, line_len, "%.*s", (int)n, p);
}

/* Where nginx may be: the system's directories, in PATH's usual order. */
static const char *const nginx_bins[] = {"/usr/local/sbin/nginx", "/usr/local/bin/nginx",
    "/usr/sbin/nginx", "/usr/bin/nginx", "/sbin/nginx", "/bin/nginx"};

/* Runs `nginx -t -q -c conf -p prefix` with PATH as its only environment (opsd's holds
 * secrets) and no file descriptor of ours but its stderr pipe. 0 when it passes; otherwise
 * -1 with nginx's error line in why. */
static int nginx_test(const char *bin, const char *conf, const char *prefix, char *why,
    size_t why_len)
{
	static char path_env[] =
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *const envp[] = {path_env, NULL};
	char *const argv[] = {"nginx", "-t", "-q", "-c", (char *)conf, "-p", (char *)prefix, NULL};
	char out[4096];
	size_t got = 0;
	int pipefd[2], st = 0;
	int64_t deadline = mono_ms() + NGINX_TEST_TIMEOUT_MS;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		snprintf(why, why_len, "cannot run nginx -t: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(why, why_len, "cannot run nginx -t: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(pipefd[1], 2);
		/* nothing else of this process (the database connection, …) reaches nginx */
		close_range(3, ~0U, 0);
		/* only the system's own directories, never the caller's PATH: this process may be
		 * root, and a PATH it inherited may hold a directory others can write */
		if (bin[0] != '\0')
			execve(bin, argv, envp);
		else
			for (size_t i = 0; i < countof(nginx_bins); i++)
				execve(nginx_bins[i], argv, envp);
		fprintf(stderr, "nginx: [emerg] cannot execute nginx: %s\n", strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		struct pollfd p = {pipefd[0], POLLIN, 0};
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			kill(pid, SIGKILL);
			str_copy(out + got, "\n[emerg] nginx -t did not finish in 30 s",
			    sizeof(out) - got);
			got = strlen(out);
			break;
		}
		n = read(pipefd[0], out + got, sizeof(out) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(out) - 1) /* enough to name the problem */
			break;
	}
	out[got] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	first_error_line(out, why, why_len);
	if (!why[0])
		snprintf(why, why_len, "nginx -t failed (%s %d)",
		    st != -1 && WIFEXITED(st) ? "exit" : "status",
		    st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : st);
	return -1;
}

pid_t nginx_master_pid(const struct nginx_target *t)
{
	char path[64], comm[32] = "";
	size_t len;
	bool missing;
	char *s = t->pid_file[0] ? slurp(t->pid_file, &len, &missing) : NULL;
	long pid = s ? strtol(s, NULL, 10) : 0;
	FILE *f;

	free(s);
	if (pid <= 1 || pid > INT_MAX || kill((pid_t)pid, 0) != 0)
		return 0;
	/* A stale pid file may name a process that reused the pid: SIGHUP only nginx. */
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((f = fopen(path, "r"))) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		if (!str_has_prefix(comm, "nginx"))
			return 0;
	}
	return (pid_t)pid;
}

enum nginx_apply nginx_apply_file(const struct nginx_target *t, const char *name,
    const char *content, size_t len, unsigned flags, char *msg, size_t msg_len)
{
	char conf[PATH_MAX], prefix[PATH_MAX], path[PATH_MAX], why[512];
	size_t old_len;
	bool missing, changed;
	char *old;
	enum nginx_apply rc;
	pid_t pid;

	if (target_paths(t, name, conf, prefix, path, msg, msg_len) != 0)
		return NGINX_APPLY_FAILED;
	old = slurp(path, &old_len, &missing);
	if (!old && !missing) {
		snprintf(msg, msg_len, "cannot read %s: %s", path, strerror(errno));
		return NGINX_APPLY_FAILED;
	}
	changed = missing || old_len != len || memcmp(old, content, len) != 0;
	if (!changed && !(flags & NGINX_APPLY_RELOAD)) {
		snprintf(msg, msg_len, "%s is current", path);
		rc = NGINX_APPLY_UNCHANGED;
		goto out;
	}
	/* Unchanged and nginx still down: nothing to test or signal yet. */
	if (!changed && !nginx_master_pid(t)) {
		snprintf(msg, msg_len, "%s is current; nginx is not running (%s)", path,
		    t->pid_file);
		rc = NGINX_APPLY_NOT_RUNNING;
		goto out;
	}
	if (changed && write_atomically(path, content, len) != 0) {
		snprintf(msg, msg_len, "cannot write %s: %s", path, strerror(errno));
		rc = NGINX_APPLY_FAILED;
		goto out;
	}
	if (nginx_test(t->bin, conf, prefix, why, sizeof(why)) != 0) {
		/* Put back what nginx is running with. */
		if (changed && (missing ? unlink(path) : write_atomically(path, old, old_len)) != 0)
			snprintf(msg, msg_len, "nginx -t failed: %s; could not restore %s: %s", why,
			    path, strerror(errno));
		else
			snprintf(msg, msg_len, "nginx -t failed: %s; the previous %s is back", why,
			    path);
		rc = NGINX_APPLY_TEST_FAILED;
		goto out;
	}
	if (!(pid = nginx_master_pid(t))) {
		snprintf(msg, msg_len,
		    "wrote %s; nginx -t ok; nginx is not running (%s): it reads the file when it "
		    "starts",
		    path, t->pid_file);
		rc = NGINX_APPLY_NOT_RUNNING;
		goto out;
	}
	if (kill(pid, SIGHUP) != 0) {
		snprintf(msg, msg_len, "wrote %s; nginx -t ok; cannot reload nginx (pid %d): %s",
		    path, (int)pid, strerror(errno));
		rc = NGINX_APPLY_FAILED;
		goto out;
	}
	snprintf(msg, msg_len, "%s %s; nginx -t ok; reloaded nginx (SIGHUP to pid %d)",
	    changed ? "wrote" : "kept", path, (int)pid);
	rc = NGINX_APPLY_RELOADED;
out:
	free(old);
	return rc;
}
