/* The one way opsd changes the configuration of a running nginx (README "Runbook 4", "nginx
 * on this host"): a generated include (the blocklist's deny lines, and any other file opsd
 * renders for nginx) is written beside nginx.conf atomically and only when it changes, the
 * whole configuration is checked with `nginx -t`, the previous file is put back when the check
 * fails, and nginx is reloaded (SIGHUP to the master of its pid file). Used by the nginx process
 * (jobs/nginx_sync.c) and by `opsctl blocklist sync-nginx`; it needs the rights to write the
 * include and to signal nginx's master. */
#ifndef OPSD_NGINX_APPLY_H
#define OPSD_NGINX_APPLY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct opsd_config;

/* The nginx a host runs: its nginx.conf (tested with -c, its directory is the -p prefix and
 * holds the generated includes) and its master's pid file. */
struct nginx_target {
	char conf[PATH_MAX];
	char pid_file[PATH_MAX];
	char bin[PATH_MAX]; /* nginx's program; "" (the default): the first found in the system's
	                       directories, never the caller's PATH */
};

/* OPSD_NGINX_CONF and OPSD_NGINX_PID_FILE, by default $OPSD_VAR/nginx/nginx.conf and
 * $OPSD_VAR/run/nginx.pid (script/server's layout). */
void nginx_target_from_config(const struct opsd_config *cfg, struct nginx_target *t);

enum nginx_apply {
	NGINX_APPLY_UNCHANGED,   /* the file already holds the content: nothing was done */
	NGINX_APPLY_RELOADED,    /* written (when it changed), nginx -t passed, nginx reloaded */
	NGINX_APPLY_NOT_RUNNING, /* written, nginx -t passed, no nginx to reload: it reads the
	                            file when it starts (call again with NGINX_APPLY_RELOAD) */
	NGINX_APPLY_TEST_FAILED, /* nginx -t refused the configuration: the previous file is back
	                            and nginx was not signalled */
	NGINX_APPLY_FAILED,      /* the file could not be read or written, nginx could not be run
	                            or signalled */
};

/* Test and reload even when the file is unchanged (a write whose reload did not happen). */
#define NGINX_APPLY_RELOAD 1u

/* Makes nginx run `name` (a file name, written in the directory of t->conf) with content.
 * msg gets one line saying what was done or what failed (nginx -t's own error line), never
 * empty. nginx -t and nginx run with an empty environment but PATH. */
enum nginx_apply nginx_apply_file(const struct nginx_target *t, const char *name,
    const char *content, size_t len, unsigned flags, char *msg, size_t msg_len);

/* The running master's pid from t->pid_file, 0 when none runs (no file, a stale pid, or a
 * process that is not nginx). */
pid_t nginx_master_pid(const struct nginx_target *t);

/* Result names for logs and /status: "unchanged", "reloaded", "not_running", "test_failed",
 * "failed". */
const char *nginx_apply_name(enum nginx_apply r);

#endif
