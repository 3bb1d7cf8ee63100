/* Schema migrations (doc/architecture.md "Data"): files of sql_dir/<set>/ applied in byte
 * order of their names, each recorded with its SHA-256. */
#include "infra/schema.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mysqld_error.h>

#include "infra/db.h"
#include "lib/arena.h"
#include "lib/holder.h"
#include "lib/util.h"

#define MAX_SCRIPT_BYTES (16u << 20)

static const char SQL_CREATE[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " set_name VARCHAR(16) NOT NULL,"
                                 " name VARCHAR(128) NOT NULL,"
                                 " checksum CHAR(64) NOT NULL,"
                                 " applied_at DATETIME(3) NOT NULL,"
                                 " PRIMARY KEY (set_name, name)"
                                 ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
static const char SQL_APPLIED[] = "SELECT name, checksum FROM schema_migrations WHERE set_name = ?";
static const char SQL_RECORD[] =
    "INSERT INTO schema_migrations (set_name, name, checksum, applied_at)"
    " VALUES (?, ?, ?, UTC_TIMESTAMP(3))";
/* The migration lock: one row, not GET_LOCK, whose locks stay on the node that
 * took them on a Galera cluster (README "Running on several hosts"). Two opsctl
 * runs (or a deploy racing an operator), on any hosts, never interleave: the
 * INSERT of row 1 succeeds for one of them. The holder renews the row before
 * each file and stops when it finds it is no longer the holder; a holder that
 * is gone (a process of this host that died), or whose row is past its 30
 * minutes (a run that died on another host, or one file running that long), is
 * replaced. renewals makes every renewal change the row, so that it is counted. */
static const char SQL_LOCK_CREATE[] = "CREATE TABLE IF NOT EXISTS schema_lock ("
                                      " id TINYINT UNSIGNED NOT NULL,"
                                      " holder VARCHAR(128) NOT NULL,"
                                      " taken_at DATETIME(3) NOT NULL,"
                                      " expires_at DATETIME(3) NOT NULL,"
                                      " renewals INT UNSIGNED NOT NULL DEFAULT 0,"
                                      " PRIMARY KEY (id)"
                                      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
static const char SQL_LOCK_TAKE[] =
    "INSERT INTO schema_lock (id, holder, taken_at, expires_at)"
    " VALUES (1, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) + INTERVAL 30 MINUTE)";
static const char SQL_LOCK_READ[] =
    "SELECT holder, DATE_FORMAT(taken_at, '%Y-%m-%dT%H:%i:%sZ'),"
    " expires_at < UTC_TIMESTAMP(3), DATE_FORMAT(expires_at, '%Y-%m-%dT%H:%i:%sZ')"
    " FROM schema_lock WHERE id = 1";
static const char SQL_LOCK_BREAK[] = "DELETE FROM schema_lock WHERE id = 1 AND holder = ?";
/* only while still expired: a holder that renewed meanwhile keeps its row */
static const char SQL_LOCK_BREAK_EXPIRED[] =
    "DELETE FROM schema_lock WHERE id = 1 AND holder = ? AND expires_at < UTC_TIMESTAMP(3)";
static const char SQL_LOCK_RENEW[] =
    "UPDATE schema_lock SET expires_at = UTC_TIMESTAMP(3) + INTERVAL 30 MINUTE,"
    " renewals = renewals + 1 WHERE id = 1 AND holder = ?";
/* Waits 25 s for a busy lock, polling every 250 ms. */
#define LOCK_WAIT_MS 25000
#define LOCK_POLL_MS 250

struct plan {
	struct schema_entry *e;
	size_t n;
};

static bool is_set_name(const char *set)
{
	return strcmp(set, "control") == 0 || strcmp(set, "tenant") == 0;
}

static int sql_file(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 4 && strcmp(de->d_name + n - 4, ".sql") == 0;
}

/* Byte order, whatever the locale: "0002_x" sorts before "0010_y". */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct schema_entry *)a)->name,
	    ((const struct schema_entry *)b)->name);
}

/* Reads a whole script (NUL-terminated) into *out; caller frees. */
static int read_script(const char *path, char **out, size_t *len, char *err, size_t err_len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_SCRIPT_BYTES) {
		snprintf(err, err_len, "%s: not a regular file of at most 16 MiB", path);
		goto fail;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		snprintf(err, err_len, "%s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, err_len, "%s: %s", path,
			    r < 0 ? strerror(errno) : "file shrank while reading");
			goto fail;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	if (memchr(buf, '\0', got)) {
		snprintf(err, err_len, "%s: contains a NUL byte", path);
		goto fail;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Lists the files of one set with their checksums, merges in the rows of
 * schema_migrations and sorts by name. Files are PENDING until matched. */
static int plan_build(struct db *d, const char *sql_dir, const char *set, struct plan *pl,
    char *err, size_t err_len)
{
	struct dirent **list = NULL;
	struct arena *a = NULL;
	struct db_rows rows;
	char dir[4096], path[4096 + 256];
	int nfiles = -1, rc = -1;
	size_t cap;

	pl->e = NULL;
	pl->n = 0;
	if (!is_set_name(set)) {
		snprintf(err, err_len, "unknown schema set \"%s\"", set);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/%s", sql_dir, set);
	if ((nfiles = scandir(dir, &list, sql_file, by_name)) < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!(a = arena_new(16384))) {
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	if (db_query(d, a, SQL_APPLIED, (struct db_param[]){DBP_STR(set)}, 1, &rows) != 0) {
		if (db_errno(d) != ER_NO_SUCH_TABLE) {
			snprintf(err, err_len, "reading schema_migrations: %s", db_error(d));
			goto out;
		}
		rows.nrows = 0; /* never migrated: every file is pending */
	}
	cap = (size_t)nfiles + rows.nrows;
	if (!(pl->e = calloc(cap ? cap : 1, sizeof(*pl->e)))) {
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	for (int i = 0; i < nfiles; i++) {
		struct schema_entry *e = &pl->e[pl->n];
		char *text;
		size_t len;
		if (strlen(list[i]->d_name) >= sizeof(e->name)) {
			snprintf(err, err_len, "%s/%s: file name longer than %zu bytes", dir,
			    list[i]->d_name, sizeof(e->name) - 1);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (read_script(path, &text, &len, err, err_len) != 0)
			goto out;
		sha256_hex(text, len, e->sha256);
		free(text);
		str_copy(e->set, set, sizeof(e->set));
		str_copy(e->name, list[i]->d_name, sizeof(e->name));
		e->state = SCHEMA_PENDING;
		pl->n++;
	}
	for (size_t r = 0; r < rows.nrows; r++) {
		const char *name = rows.val[r][0], *sum = rows.val[r][1];
		struct schema_entry *e = NULL;
		for (size_t i = 0; i < (size_t)nfiles; i++)
			if (strcmp(pl->e[i].name, name) == 0)
				e = &pl->e[i];
		if (e) {
			e->state = strcmp(e->sha256, sum) == 0 ? SCHEMA_APPLIED : SCHEMA_MODIFIED;
			continue;
		}
		e = &pl->e[pl->n++];
		str_copy(e->set, set, sizeof(e->set));
		str_copy(e->name, name, sizeof(e->name));
		str_copy(e->sha256, sum, sizeof(e->sha256));
		e->state = SCHEMA_MISSING;
	}
	qsort(pl->e, pl->n, sizeof(*pl->e), entry_cmp);
	rc = 0;
out:
	if (rc != 0) {
		free(pl->e);
		pl->e = NULL;
		pl->n = 0;
	}
	arena_free(a);
	for (int i = 0; i < nfiles; i++)
		free(list[i]);
	free(list);
	return rc;
}

int schema_status(struct db *d, const char *sql_dir, const char *set, schema_report_fn fn,
    void *ctx, char *err, size_t err_len)
{
	struct plan pl;
	int behind = 0;

	if (plan_build(d, sql_dir, set, &pl, err, err_len) != 0)
		return -1;
	for (size_t i = 0; i < pl.n; i++) {
		if (pl.e[i].state != SCHEMA_APPLIED)
			behind++;
		if (fn)
			fn(&pl.e[i], ctx);
	}
	free(pl.e);
	return behind;
}

/* Takes the migration lock: 1, 0 when another holder kept it for LOCK_WAIT_MS
 * (who, since when, in err), -1 on a database error. */
static int lock_take(struct db *d, char *err, size_t err_len)
{
	struct arena *a = arena_new(1024);
	int64_t until = mono_ms() + LOCK_WAIT_MS;
	struct db_param me[] = {DBP_STR(holder_self())};
	int rc = -1;

	if (!a || db_exec_script(d, SQL_LOCK_CREATE) != 0)
		goto out;
	for (;;) {
		struct db_rows rows;
		bool gone;

		if (db_exec(d, SQL_LOCK_TAKE, me, 1, NULL) == 0) {
			rc = 1;
			break;
		}
		if (!db_duplicate(d) && !db_retryable(d))
			break;
		arena_reset(a);
		if (db_query(d, a, SQL_LOCK_READ, NULL, 0, &rows) != 0)
			break;
		gone = rows.nrows == 1 && holder_gone(rows.val[0][0]);
		if (gone || (rows.nrows == 1 && strcmp(rows.val[0][2], "1") == 0)) {
			struct db_param old[] = {DBP_STR(rows.val[0][0])};

			if (db_exec(d, gone ? SQL_LOCK_BREAK : SQL_LOCK_BREAK_EXPIRED, old, 1,
			        NULL) != 0)
				break;
			continue;
		}
		if (mono_ms() >= until) {
			snprintf(err, err_len,
			    "another schema migration holds the lock (waited %d s): %s since %s, "
			    "until %s; if that process is gone, delete row 1 of schema_lock",
			    LOCK_WAIT_MS / 1000, rows.nrows ? rows.val[0][0] : "?",
			    rows.nrows ? rows.val[0][1] : "?", rows.nrows ? rows.val[0][3] : "?");
			rc = 0;
			break;
		}
		usleep(LOCK_POLL_MS * 1000);
	}
out:
	if (rc < 0)
		snprintf(err, err_len, "cannot take the migration lock: %s",
		    a ? db_error(d) : "out of memory");
	arena_free(a);
	return rc;
}

/* Renews the lock before file e: 0, or -1 (err set) when it is no longer ours. */
static int lock_renew(struct db *d, const struct schema_entry *e, char *err, size_t err_len)
{
	unsigned long long n = 0;

	if (db_exec(d, SQL_LOCK_RENEW, (struct db_param[]){DBP_STR(holder_self())}, 1, &n) != 0) {
		snprintf(err, err_len, "renewing the migration lock: %s", db_error(d));
		return -1;
	}
	if (n != 1) {
		snprintf(err, err_len,
		    "the migration lock was taken over (its 30 minutes ran out); stopped before %s/%s",
		    e->set, e->name);
		return -1;
	}
	return 0;
}

static void lock_release(struct db *d)
{
	db_exec(d, SQL_LOCK_BREAK, (struct db_param[]){DBP_STR(holder_self())}, 1, NULL);
}

static int apply_one(struct db *d, const char *sql_dir, struct schema_entry *e, char *err,
    size_t err_len)
{
	char path[4096 + 256], sum[65];
	char *text = NULL;
	size_t len;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s/%s", sql_dir, e->set, e->name);
	if (read_script(path, &text, &len, err, err_len) != 0)
		return -1;
	sha256_hex(text, len, sum);
	if (strcmp(sum, e->sha256) != 0) {
		snprintf(err, err_len, "%s/%s changed while migrating; run again", e->set, e->name);
		goto out;
	}
	/* DDL commits implicitly: a failure can leave the file half applied,
	 * and the message says which file to inspect. */
	if (db_exec_script(d, text) != 0) {
		snprintf(err, err_len, "%s/%s: %s", e->set, e->name, db_error(d));
		goto out;
	}
	if (db_exec(d, SQL_RECORD,
	        (struct db_param[]){DBP_STR(e->set), DBP_STR(e->name), DBP_STR(e->sha256)}, 3,
	        NULL) != 0) {
		snprintf(err, err_len, "%s/%s applied but not recorded: %s", e->set, e->name,
		    db_error(d));
		goto out;
	}
	e->state = SCHEMA_APPLIED;
	rc = 0;
out:
	free(text);
	return rc;
}

int schema_migrate(struct db *d, const char *sql_dir, const char *set, schema_report_fn fn,
    void *ctx, char *err, size_t err_len)
{
	struct plan pl = {0};
	int applied = -1;

	if (!is_set_name(set)) {
		snprintf(err, err_len, "unknown schema set \"%s\"", set);
		return -1;
	}
	if (lock_take(d, err, err_len) != 1)
		return -1;
	if (db_exec_script(d, SQL_CREATE) != 0) {
		snprintf(err, err_len, "creating schema_migrations: %s", db_error(d));
		goto out;
	}
	if (plan_build(d, sql_dir, set, &pl, err, err_len) != 0)
		goto out;
	for (size_t i = 0; i < pl.n; i++) {
		const struct schema_entry *e = &pl.e[i];
		if (e->state == SCHEMA_MODIFIED) {
			snprintf(err, err_len,
			    "%s/%s was modified after it was applied "
			    "(checksum differs); restore it and add a new migration instead",
			    e->set, e->name);
			goto out;
		}
		if (e->state == SCHEMA_MISSING) {
			snprintf(err, err_len,
			    "%s/%s is recorded as applied but missing from %s/%s", e->set, e->name,
			    sql_dir, e->set);
			goto out;
		}
	}
	applied = 0;
	for (size_t i = 0; i < pl.n; i++) {
		if (pl.e[i].state != SCHEMA_PENDING)
			continue;
		if (lock_renew(d, &pl.e[i], err, err_len) != 0) {
			applied = -1;
			goto out;
		}
		if (apply_one(d, sql_dir, &pl.e[i], err, err_len) != 0) {
			applied = -1;
			goto out;
		}
		applied++;
		if (fn)
			fn(&pl.e[i], ctx);
	}
out:
	free(pl.e);
	lock_release(d);
	return applied;
}

int schema_probe(struct db *d)
{
	struct arena *a = arena_new(256);
	struct db_rows rows;
	int rc = -1;

	if (a && (db_query(d, a, "SELECT 1 FROM schema_migrations LIMIT 1", NULL, 0, &rows) == 0 ||
	             db_errno(d) == ER_NO_SUCH_TABLE))
		rc = 0;
	arena_free(a);
	return rc;
}

int schema_is_current(struct db *d, const char *sql_dir)
{
	static const char *const sets[] = {"control", "tenant"};
	char err[512];

	for (size_t i = 0; i < countof(sets); i++) {
		int behind = schema_status(d, sql_dir, sets[i], NULL, NULL, err, sizeof(err));
		if (behind < 0)
			return -1;
		if (behind > 0)
			return 0;
	}
	return 1;
}
