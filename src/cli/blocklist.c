/* opsctl blocklist add, remove, list and sync-nginx (README, runbook 4
 * step 2): opsd reads the list from the database; sync-nginx writes it
 * for nginx as well. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/blocklist.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* The operator's own address when logged in over SSH: blocking it would
 * cut the session that is typing (SSH_CONNECTION "client port server port"). */
static bool ssh_client_addr(char *out, size_t out_len)
{
	const char *s = getenv("SSH_CONNECTION");
	size_t n;

	if (!s || !*s)
		s = getenv("SSH_CLIENT");
	if (!s || !*s)
		return false;
	n = strcspn(s, " ");
	if (n == 0 || n >= out_len)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

int cmd_blocklist_add(struct opsctl *o)
{
	const char *cidr_s = opt_value(o, "--cidr"), *reason = opt_value(o, "--reason");
	const char *at = opt_value(o, "--expires-at");
	struct cidr c;
	enum cidr_err e;
	int64_t expires_ms = 0;
	char norm[CIDR_STR_LEN], id[UUID_STR_LEN + 1], self[64];
	uint8_t addr[16];

	if (!cidr_s)
		return need_opt("--cidr");
	if (!reason)
		return need_opt("--reason");
	if ((e = cidr_parse(cidr_s, &c)) != CIDR_OK) {
		cidr_format(&c, norm);
		fprintf(stderr, "opsctl: --cidr \"%s\": %s%s%s\n", cidr_s, cidr_err_text(e),
		    e == CIDR_HOST_BITS ? "; the network is " : "",
		    e == CIDR_HOST_BITS ? norm : "");
		return EXIT_USAGE;
	}
	if (reason[strspn(reason, " \t\r\n")] == '\0' || strlen(reason) > 500) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	if (at && (!parse_rfc3339(at, &expires_ms) || expires_ms <= now_ms())) {
		fprintf(stderr, "opsctl: --expires-at must be an RFC 3339 time in the future\n");
		return EXIT_USAGE;
	}
	if (!opt_flag(o, "--force") && ssh_client_addr(self, sizeof(self)) &&
	    addr_parse16(self, addr) && cidr_contains(&c, addr)) {
		fprintf(stderr,
		    "opsctl: %s contains your own address %s (SSH_CONNECTION); add --force "
		    "to block it anyway\n",
		    cidr_s, self);
		return EXIT_USAGE;
	}
	cidr_format(&c, norm);
	switch (blocklist_add(o->db, &o->actor, &c, reason, expires_ms, id)) {
	case BL_OK:
		break;
	case BL_DUPLICATE:
		fprintf(stderr, "opsctl: %s is already blocked (opsctl blocklist list)\n", norm);
		return EXIT_FAILED;
	default:
		fprintf(stderr, "opsctl: add failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	printf("blocked %s (id %s)%s%s\n", norm, id, at ? " until " : "", at ? at : "");
	printf("opsd enforces it within a second; run `opsctl blocklist sync-nginx` for nginx\n");
	return EXIT_OK;
}

int cmd_blocklist_remove(struct opsctl *o)
{
	const char *id_s = opt_value(o, "--id"), *reason = opt_value(o, "--reason");
	struct opsd_uuid id;

	if (!id_s)
		return need_opt("--id");
	if (reason && (reason[strspn(reason, " \t\r\n")] == '\0' || strlen(reason) > 500)) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	if (!uuid_parse(id_s, &id)) {
		fprintf(stderr, "opsctl: --id \"%s\" is not an id (opsctl blocklist list)\n", id_s);
		return EXIT_USAGE;
	}
	switch (blocklist_remove(o->db, &o->actor, &id, reason)) {
	case BL_OK:
		printf("removed %s\n", id_s);
		printf(
		    "opsd stops enforcing it within a second; run `opsctl blocklist sync-nginx` for "
		    "nginx\n");
		return EXIT_OK;
	case BL_NOT_FOUND:
		fprintf(stderr, "opsctl: no blocklist entry %s\n", id_s);
		return EXIT_FAILED;
	default:
		fprintf(stderr, "opsctl: remove failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
}

/* The active entries as rows of BLOCKLIST_COLUMNS; NULL after a message. */
static struct arena *blocklist_rows(struct opsctl *o, struct db_rows *rows)
{
	struct arena *a = arena_new(64 * 1024);

	if (!a || blocklist_list_active(o->db, a, rows) != 0) {
		fprintf(stderr, "opsctl: cannot read the blocklist: %s\n",
		    a ? db_error(o->db) : "out of memory");
		arena_free(a);
		return NULL;
	}
	return a;
}

int cmd_blocklist_list(struct opsctl *o)
{
	struct db_rows rows;
	struct arena *a = blocklist_rows(o, &rows);

	if (!a)
		return EXIT_FAILED;
	if (opt_flag(o, "--json")) {
		struct json_object *arr = json_object_new_array();

		for (size_t i = 0; i < rows.nrows; i++)
			json_object_array_add(arr, blocklist_row_json(&rows, i));
		print_json(arr);
		json_object_put(arr);
	} else {
		printf("%-36s  %-43s  %-24s  %s\n", "ID", "CIDR", "EXPIRES", "REASON");
		for (size_t i = 0; i < rows.nrows; i++) {
			struct json_object *e = blocklist_row_json(&rows, i);
			const char *exp = doc_str(e, "expiresAt");

			printf("%-36s  %-43s  %-24s  %s\n", doc_str(e, "id"), doc_str(e, "cidr"),
			    exp ? exp : "never", doc_str(e, "reason"));
			json_object_put(e);
		}
		printf("%zu active entr%s\n", rows.nrows, rows.nrows == 1 ? "y" : "ies");
	}
	arena_free(a);
	return EXIT_OK;
}

/* path's contents, or NULL when it does not exist (*missing) or on error. */
static char *slurp(const char *path, size_t *len, bool *missing)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	*missing = !f && errno == ENOENT;
	if (!f)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f) || buf_failed(&b)) {
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	*len = b.len;
	buf_cstr(&b);
	return b.data ? b.data : strdup("");
}

/* Writes path through a temporary file in the same directory and rename(2),
 * so nginx never reads half a file. 0 or -1 (errno set). */
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

/* Runs nginx with argv (argv[0] "nginx", looked up in PATH, then
 * /usr/sbin); its exit status, or -1 when it could not run. */
static int run_nginx(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp("nginx", argv);
		execv("/usr/sbin/nginx", argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void skipped_entry(const char *id, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsctl: skipped entry %s: not a valid CIDR\n", id);
}

/* Runbook 4: the same list in nginx, so blocked clients stop at the edge.
 * nginx does not know about expiry: an expired entry leaves its file at the
 * next sync (opsd stops enforcing it at once; run this from cron, or after
 * each change). */
int cmd_blocklist_sync_nginx(struct opsctl *o)
{
	const char *var = o->cfg.var_dir;
	char path[PATH_MAX], conf[PATH_MAX], prefix[PATH_MAX], pidfile[PATH_MAX], now[32];
	struct buf b;
	char *old = NULL, *pid_s;
	size_t old_len = 0, pid_len = 0, lines = 0;
	bool missing = false, pid_missing = false;
	long pid;
	int rc = EXIT_FAILED, t;

	if (!var || !*var) {
		fprintf(stderr, "opsctl: OPSD_VAR is not set\n");
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/nginx/opsd-blocklist.conf", var);
	snprintf(conf, sizeof(conf), "%s/nginx/nginx.conf", var);
	snprintf(prefix, sizeof(prefix), "%s/nginx/", var);
	snprintf(pidfile, sizeof(pidfile), "%s/run/nginx.pid", var);
	if (access(conf, R_OK) != 0) {
		fprintf(stderr,
		    "opsctl: %s: %s (render it with script/render-nginx or script/server)\n", conf,
		    strerror(errno));
		return EXIT_FAILED;
	}
	format_rfc3339(now_ms(), now);
	buf_init(&b);
	if (blocklist_render_nginx(o->db, now, &b, &lines, skipped_entry, NULL) != 0) {
		fprintf(stderr, "opsctl: cannot read the blocklist: %s\n", db_error(o->db));
		goto out;
	}
	if (buf_failed(&b)) {
		fprintf(stderr, "opsctl: out of memory\n");
		goto out;
	}
	old = slurp(path, &old_len, &missing);
	if (!old && !missing) {
		fprintf(stderr, "opsctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (write_atomically(path, b.data, b.len) != 0) {
		fprintf(stderr, "opsctl: cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	t = run_nginx((char *const[]){"nginx", "-t", "-q", "-c", conf, "-p", prefix, NULL});
	if (t != 0) {
		/* Put back what nginx was running with. */
		if (missing ? unlink(path) : write_atomically(path, old, old_len))
			fprintf(stderr, "opsctl: could not restore %s: %s\n", path,
			    strerror(errno));
		fprintf(stderr, "opsctl: nginx -t failed (%s %d); the previous %s is back\n",
		    t < 0 ? "could not run," : "exit", t, path);
		goto out;
	}
	printf("wrote %s: %zu entr%s; nginx -t ok\n", path, lines, lines == 1 ? "y" : "ies");
	pid_s = slurp(pidfile, &pid_len, &pid_missing);
	pid = pid_s ? strtol(pid_s, NULL, 10) : 0;
	free(pid_s);
	if (pid <= 1 || kill((pid_t)pid, 0) != 0) {
		printf("nginx is not running (%s): it reads the file when it starts\n", pidfile);
		rc = EXIT_OK;
		goto out;
	}
	if (kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "opsctl: cannot reload nginx (pid %ld): %s\n", pid,
		    strerror(errno));
		goto out;
	}
	printf("reloaded nginx (SIGHUP to pid %ld)\n", pid);
	rc = EXIT_OK;
out:
	free(old);
	buf_free(&b);
	return rc;
}
