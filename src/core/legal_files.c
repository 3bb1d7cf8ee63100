#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/legal.h"
#include "core/legal_files.h"
#include "infra/config.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "lib/util.h"

#define FILE_MODE 0644
#define DIR_MODE 0755
#define TMP_PREFIX ".tmp-"
#define LOCK_NAME ".lock"
/* Longest file name: ".tmp-" + type + ".json.gz" + "-<pid>-<n>". */
#define NAME_MAX_LEN (LEGAL_TYPE_MAX + 48)

bool legal_files_dir(const struct opsd_config *cfg, char *out, size_t n)
{
	int w = snprintf(out, n, "%s/" LEGAL_FILES_SUBDIR, cfg->var_dir);

	return w > 0 && (size_t)w < n;
}

int legal_files_stamp(struct db *d, struct legal_files_stamp *out)
{
	struct arena *a = arena_new(4096);
	struct db_rows rows;
	int rc = -1;

	if (!a)
		return -1;
	/* NOW(3) is one instant for the whole statement. */
	if (db_query(d, a,
	        "SELECT COALESCE(SUM(effective_at <= NOW(3)), 0),"
	        " BIT_XOR(IF(effective_at <= NOW(3), CRC32(id), 0)),"
	        " MIN(IF(effective_at > NOW(3), TIMESTAMPDIFF(MICROSECOND, NOW(3), effective_at),"
	        " NULL)) FROM legal_documents",
	        NULL, 0, &rows) == 0 &&
	    rows.nrows == 1) {
		out->effective = rows.val[0][0] ? strtoll(rows.val[0][0], NULL, 10) : 0;
		out->ids = rows.val[0][1] ? strtoull(rows.val[0][1], NULL, 10) : 0;
		out->next_ms = rows.val[0][2] ? strtoll(rows.val[0][2], NULL, 10) / 1000 : -1;
		rc = 0;
	}
	arena_free(a);
	return rc;
}

/* ---- one file --------------------------------------------------------- */

/* true when name is a regular file holding exactly p[0..n) with modification time mtime. */
static bool file_is(int dirfd, const char *name, const char *p, size_t n, int64_t mtime)
{
	struct stat st;
	char chunk[8192];
	size_t off = 0;
	bool same;
	int fd;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size != n || st.st_mtim.tv_sec != mtime || st.st_mtim.tv_nsec != 0 ||
	    (st.st_mode & 07777) != FILE_MODE)
		return false;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	same = true;
	while (same && off < n) {
		ssize_t got = read(fd, chunk, sizeof(chunk));

		if (got <= 0 || (size_t)got > n - off || memcmp(chunk, p + off, (size_t)got) != 0)
			same = false;
		else
			off += (size_t)got;
	}
	close(fd);
	return same;
}

/* Writes p[0..n) to a new temporary file of dirfd with the given time, synced to disk;
 * its name goes to tmp. */
static int write_temp(int dirfd, const char *name, const char *p, size_t n, int64_t mtime,
    char tmp[NAME_MAX_LEN])
{
	static unsigned seq;
	struct timespec ts[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
	size_t off = 0;
	int fd;

	snprintf(tmp, NAME_MAX_LEN, TMP_PREFIX "%s-%ld-%u", name, (long)getpid(), ++seq);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
	if (fd < 0)
		return -1;
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	/* The mode regardless of the umask (systemd's is 0027): nginx's user reads it. */
	if (fchmod(fd, FILE_MODE) != 0 || futimens(fd, ts) != 0 || fsync(fd) != 0)
		goto fail;
	return close(fd);
fail:
	close(fd);
	unlinkat(dirfd, tmp, 0);
	return -1;
}

/* ---- a whole sync ------------------------------------------------------- */

struct doc_file {
	char type[LEGAL_TYPE_MAX + 1];
	char *json;
	size_t json_len;
	int64_t mtime;
};

/* Every version in effect, oldest first per type, with the content of the current one
 * only: the current one is the last of its type. */
static int load_current(struct db *d, struct arena *a, struct doc_file **out, size_t *n)
{
	struct db_rows rows;
	struct doc_file *docs;
	int64_t prev = 0;

	*out = NULL;
	*n = 0;
	if (db_query(d, a,
	        "SELECT id, type, version, IF(rn = 1, content, NULL), content_sha256, effective_at,"
	        " created_at, FLOOR(UNIX_TIMESTAMP(effective_at)), rn FROM (SELECT " LEGAL_DOC_COLUMNS
	        ", ROW_NUMBER() OVER (PARTITION BY type ORDER BY effective_at DESC, id DESC) AS rn"
	        " FROM legal_documents WHERE effective_at <= NOW(3)) t ORDER BY type, effective_at, id",
	        NULL, 0, &rows) != 0)
		return -1;
	docs = calloc(rows.nrows ? rows.nrows : 1, sizeof(*docs));
	if (!docs)
		return -1;
	for (size_t i = 0; i < rows.nrows; i++) {
		int64_t eff = rows.val[i][7] ? strtoll(rows.val[i][7], NULL, 10) : 0;
		bool first = i == 0 || strcmp(rows.val[i][1], rows.val[i - 1][1]) != 0;
		struct doc_file *f;

		/* Each version of a type a second later than the one before at least: two
		 * versions published within a second never share an ETag or a Last-Modified. */
		prev = first || eff > prev ? eff : prev + 1;
		if (strcmp(rows.val[i][8], "1") != 0)
			continue;
		f = &docs[(*n)++];
		str_copy(f->type, rows.val[i][1], sizeof(f->type));
		f->mtime = prev;
		f->json = legal_doc_json(&rows, i, &f->json_len);
		if (!f->json || !legal_type_valid(f->type)) {
			log_msg(LL_ERROR, "legal_files_skipped", "type %s: %s", f->type,
			    f->json ? "not a valid type name" : "out of memory");
			free(f->json);
			(*n)--;
		}
	}
	*out = docs;
	return 0;
}

/* Logged once a minute at most: the jobs process tries again every few hundred ms. */
static void unavailable(const char *dir, const char *name)
{
	static int64_t logged;
	int e = errno;

	if (logged && mono_ms() - logged < 60000)
		return;
	logged = mono_ms();
	log_msg(LL_WARN, "legal_files_unavailable",
	    "%s%s: %s (GET /legal/:type is answered by opsd)", dir, name, strerror(e));
}

/* Writes type's two files when they differ: the .gz is renamed first, so that from the
 * moment the new .json is in place both answer the new version. */
static int write_doc(int dirfd, const struct doc_file *f)
{
	char name[NAME_MAX_LEN], gz_name[NAME_MAX_LEN], tmp[NAME_MAX_LEN], gz_tmp[NAME_MAX_LEN];
	struct buf gz;
	int written = 0;

	snprintf(name, sizeof(name), "%s.json", f->type);
	snprintf(gz_name, sizeof(gz_name), "%s.json.gz", f->type);
	buf_init(&gz);
	gzip_encode(f->json, f->json_len, &gz);
	if (buf_failed(&gz))
		goto fail;
	if (!file_is(dirfd, gz_name, gz.data, gz.len, f->mtime)) {
		if (write_temp(dirfd, gz_name, gz.data, gz.len, f->mtime, gz_tmp) != 0 ||
		    renameat(dirfd, gz_tmp, dirfd, gz_name) != 0)
			goto fail;
		written++;
	}
	if (!file_is(dirfd, name, f->json, f->json_len, f->mtime)) {
		if (write_temp(dirfd, name, f->json, f->json_len, f->mtime, tmp) != 0 ||
		    renameat(dirfd, tmp, dirfd, name) != 0)
			goto fail;
		written++;
	}
	buf_free(&gz);
	return written;
fail:
	unavailable(name, "");
	buf_free(&gz);
	return -1;
}

/* The type a document file stands for (name without .json or .json.gz), or false. */
static bool file_type(const char *name, char type[LEGAL_TYPE_MAX + 1])
{
	size_t n = strlen(name);
	size_t cut = n > 8 && strcmp(name + n - 8, ".json.gz") == 0 ? n - 8
	             : n > 5 && strcmp(name + n - 5, ".json") == 0  ? n - 5
	                                                            : 0;

	if (cut == 0 || cut > LEGAL_TYPE_MAX)
		return false;
	memcpy(type, name, cut);
	type[cut] = '\0';
	return true;
}

/* Removes what no current document stands for: files of other types (.json first, so
 * that nginx stops answering before the .gz goes) and temporary files a crash left. */
static int remove_strays(int dirfd, const struct doc_file *docs, size_t n)
{
	int fd = dup(dirfd), removed = 0;
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(dir);
		while ((e = readdir(dir)) != NULL) {
			char type[LEGAL_TYPE_MAX + 1];
			bool gz = strlen(e->d_name) > 3 &&
			          strcmp(e->d_name + strlen(e->d_name) - 3, ".gz") == 0;
			bool keep = false;

			if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
				/* Only a sync writes them, under the lock we hold. */
				removed += pass == 0 && unlinkat(dirfd, e->d_name, 0) == 0;
				continue;
			}
			if (!file_type(e->d_name, type) || gz != (pass == 1))
				continue;
			for (size_t i = 0; i < n && !keep; i++)
				keep = strcmp(docs[i].type, type) == 0;
			if (!keep && unlinkat(dirfd, e->d_name, 0) == 0)
				removed++;
		}
	}
	closedir(dir);
	return removed;
}

/* The directory, made when asked, opened without following a link. */
static int open_dir(const char *dir, bool create)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdir(dir, DIR_MODE) != 0 && errno != EEXIST)
			return -1;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			fchmod(fd, DIR_MODE);
	}
	return fd;
}

int legal_files_sync(struct db *d, const char *dir, bool create)
{
	struct arena *a = NULL;
	struct doc_file *docs = NULL;
	size_t n = 0;
	int dirfd, lockfd = -1, changed = 0, rc = -1;

	dirfd = open_dir(dir, create);
	if (dirfd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		unavailable(dir, "");
		return -1;
	}
	lockfd = openat(dirfd, LOCK_NAME, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
		unavailable(dir, "/" LOCK_NAME);
		goto out;
	}
	/* Read under the lock: a sync that starts later reads a later state. */
	a = arena_new(64 * 1024);
	if (!a || load_current(d, a, &docs, &n) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int w = write_doc(dirfd, &docs[i]);

		if (w < 0)
			goto out;
		changed += w;
	}
	{
		int r = remove_strays(dirfd, docs, n);

		if (r < 0)
			goto out;
		changed += r;
	}
	if (changed)
		fsync(dirfd);
	rc = changed;
out:
	for (size_t i = 0; i < n; i++)
		free(docs[i].json);
	free(docs);
	arena_free(a);
	if (lockfd >= 0)
		close(lockfd); /* releases the lock */
	close(dirfd);
	return rc;
}

void legal_files_after_publish(struct db *d, const struct opsd_config *cfg)
{
	char dir[4096];

	if (legal_files_dir(cfg, dir, sizeof(dir)))
		legal_files_sync(d, dir, false);
}

uint64_t legal_files_fingerprint(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	uint64_t fp = 1;

	if (!dp)
		return 0;
	while ((e = readdir(dp)) != NULL) {
		char type[LEGAL_TYPE_MAX + 1];
		struct stat st;
		uint8_t h[32];
		uint64_t v;
		struct {
			uint64_t ino, size;
			int64_t sec, nsec;
			char name[256];
		} key;

		if (!file_type(e->d_name, type) ||
		    fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		memset(&key, 0, sizeof(key));
		key.ino = st.st_ino;
		key.size = (uint64_t)st.st_size;
		key.sec = st.st_mtim.tv_sec;
		key.nsec = st.st_mtim.tv_nsec;
		str_copy(key.name, e->d_name, sizeof(key.name));
		sha256_raw(&key, sizeof(key), h);
		memcpy(&v, h, sizeof(v));
		/* Order-free: readdir's order is the file system's. */
		fp += v;
	}
	closedir(dp);
	return fp;
}
