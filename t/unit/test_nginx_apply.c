#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infra/nginx_apply.h"

/* nginx_apply_file against a fake nginx: a script (named as the target's program; PATH,
 * which holds an nginx that always fails, is never searched) whose -t fails when the
 * include holds "BAD", and a child process named nginx that reports each SIGHUP. */
static char dir[64], conf[128], pidfile[128], inc[128];
static int hup_pipe[2];
static pid_t fake_master;

static void spit(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static char *slurp(const char *path)
{
	static char text[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

static void on_hup(int sig)
{
	(void)sig;
	if (write(hup_pipe[1], "h", 1) != 1)
		_exit(2);
}

static bool got_hup(int wait_ms)
{
	struct pollfd p = {hup_pipe[0], POLLIN, 0};
	char c;

	return poll(&p, 1, wait_ms) == 1 && read(hup_pipe[0], &c, 1) == 1;
}

static int setup(void **state)
{
	char bin[128], path[4096];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/opsd-nginx-apply-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/nginx.pid", dir);
	snprintf(inc, sizeof(inc), "%s/opsd-test.conf", dir);
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	mkdir(bin, 0755);
	spit(conf, "events {}\n", 0644);
	/* argv: -t -q -c CONF -p PREFIX */
	snprintf(path, sizeof(path), "%s/nginx", bin);
	spit(path,
	    "#!/bin/sh\n"
	    "[ \"$1 $3 $5\" = \"-t -c -p\" ] || { echo \"nginx: [emerg] bad argv: $*\" >&2; exit 1; }\n"
	    "[ -n \"$OPSD_DB_URI\" ] && { echo 'nginx: [emerg] saw opsd env' >&2; exit 1; }\n"
	    "if grep -q BAD \"$6opsd-test.conf\" 2>/dev/null; then\n"
	    "  echo 'nginx: the configuration file test failed' >&2\n"
	    "  echo 'nginx: [emerg] unknown directive \"BAD\" in x:1' >&2; exit 1\n"
	    "fi\n"
	    "exit 0\n",
	    0755);
	/* a decoy first in PATH: found there, every test would fail */
	snprintf(path, sizeof(path), "%s/decoy", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/decoy/nginx", dir);
	spit(path, "#!/bin/sh\necho 'nginx: [emerg] the decoy in PATH ran' >&2\nexit 1\n", 0755);
	snprintf(path, sizeof(path), "%s/decoy:%s", dir,
	    getenv("PATH") ? getenv("PATH") : "/usr/bin");
	setenv("PATH", path, 1);
	setenv("OPSD_DB_URI", "mysql://u:secret@h/db", 1);
	if (pipe(hup_pipe) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	if (fake_master > 0) {
		kill(fake_master, SIGKILL);
		waitpid(fake_master, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct nginx_target target(const char *c, const char *p)
{
	struct nginx_target t;

	snprintf(t.conf, sizeof(t.conf), "%s", c);
	snprintf(t.pid_file, sizeof(t.pid_file), "%s", p);
	snprintf(t.bin, sizeof(t.bin), "%s/bin/nginx", dir);
	return t;
}

static enum nginx_apply apply(const char *content, unsigned flags, char *msg, size_t len)
{
	const struct nginx_target t = target(conf, pidfile);

	return nginx_apply_file(&t, "opsd-test.conf", content, strlen(content), flags, msg, len);
}

static void start_fake_master(void)
{
	char pid[32];

	fake_master = fork();
	assert_true(fake_master >= 0);
	if (fake_master == 0) {
		signal(SIGHUP, on_hup);
		prctl(PR_SET_NAME, "nginx", 0, 0, 0);
		for (;;)
			pause();
	}
	usleep(100 * 1000); /* its name and handler are set */
	snprintf(pid, sizeof(pid), "%d\n", (int)fake_master);
	spit(pidfile, pid, 0644);
}

static void test_apply(void **state)
{
	char msg[1024], pid[32];
	const struct nginx_target t = target(conf, pidfile);

	(void)state;
	/* nginx not running: written and tested, no one to reload */
	assert_int_equal(apply("deny 10.0.0.0/8;\n", 0, msg, sizeof(msg)), NGINX_APPLY_NOT_RUNNING);
	assert_string_equal(slurp(inc), "deny 10.0.0.0/8;\n");
	assert_non_null(strstr(msg, "nginx is not running"));
	assert_int_equal(apply("deny 10.0.0.0/8;\n", 0, msg, sizeof(msg)), NGINX_APPLY_UNCHANGED);
	assert_int_equal(apply("deny 10.0.0.0/8;\n", NGINX_APPLY_RELOAD, msg, sizeof(msg)),
	    NGINX_APPLY_NOT_RUNNING);

	/* a pid file naming a process that is not nginx: never signalled */
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	spit(pidfile, pid, 0644);
	assert_int_equal(nginx_master_pid(&t), 0);
	assert_int_equal(apply("deny 10.0.0.0/8;\n", NGINX_APPLY_RELOAD, msg, sizeof(msg)),
	    NGINX_APPLY_NOT_RUNNING);

	/* running: a pending reload, then a change */
	start_fake_master();
	assert_int_equal(nginx_master_pid(&t), fake_master);
	assert_int_equal(apply("deny 10.0.0.0/8;\n", NGINX_APPLY_RELOAD, msg, sizeof(msg)),
	    NGINX_APPLY_RELOADED);
	assert_true(got_hup(2000));
	assert_int_equal(apply("deny 10.0.0.0/8;\ndeny 2001:db8::/32;\n", 0, msg, sizeof(msg)),
	    NGINX_APPLY_RELOADED);
	assert_true(got_hup(2000));
	assert_non_null(strstr(msg, "reloaded nginx (SIGHUP to pid"));
	assert_string_equal(slurp(inc), "deny 10.0.0.0/8;\ndeny 2001:db8::/32;\n");

	/* nginx -t fails: the previous file is back, nginx is not signalled */
	assert_int_equal(apply("BAD;\n", 0, msg, sizeof(msg)), NGINX_APPLY_TEST_FAILED);
	assert_string_equal(slurp(inc), "deny 10.0.0.0/8;\ndeny 2001:db8::/32;\n");
	assert_non_null(strstr(msg, "[emerg] unknown directive \"BAD\""));
	assert_non_null(strstr(msg, "the previous"));
	assert_false(got_hup(200));
	/* … and a file that did not exist is removed again */
	unlink(inc);
	assert_int_equal(apply("BAD;\n", 0, msg, sizeof(msg)), NGINX_APPLY_TEST_FAILED);
	assert_null(slurp(inc));
}

static void test_refusals(void **state)
{
	char msg[1024];
	const struct nginx_target t = target(conf, pidfile),
	                          none = target("/nonexistent/nginx.conf", pidfile);
	DIR *d;
	struct dirent *e;

	(void)state;
	assert_int_equal(nginx_apply_file(&t, "../x.conf", "x", 1, 0, msg, sizeof(msg)),
	    NGINX_APPLY_FAILED);
	assert_int_equal(nginx_apply_file(&none, "x.conf", "x", 1, 0, msg, sizeof(msg)),
	    NGINX_APPLY_FAILED);
	assert_non_null(strstr(msg, "/nonexistent/nginx.conf"));
	/* no temporary file is ever left behind */
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)))
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0)
			fail_msg("left behind: %s", e->d_name);
	closedir(d);
	assert_string_equal(nginx_apply_name(NGINX_APPLY_TEST_FAILED), "test_failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_apply),
	    cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
