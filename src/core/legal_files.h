/* The public legal documents as files nginx serves itself (README "Runbook 1", "The
 * $OPSD_VAR layout"): $OPSD_VAR/www-legal/<type>.json holds exactly the body of
 * GET /legal/<type> for the current version of each type, <type>.json.gz the same bytes
 * gzipped. Each file's modification time is derived from the document (its effective time,
 * kept increasing from one version of a type to the next), so every host writes the same
 * bytes and the same time, and nginx's ETag and Last-Modified agree across hosts.
 *
 * Written by the worker that publishes (before it answers), by opsctl legal publish, and
 * by the jobs process's materialiser thread of every host (jobs/legal_files.c), which
 * follows the database. All of them take the directory's lock (flock on .lock) for a
 * whole sync, and a sync writes what the database says at that moment: whoever syncs last
 * writes the newest state. A missing file only sends the request on to opsd. */
#ifndef OPSD_LEGAL_FILES_H
#define OPSD_LEGAL_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct opsd_config;

#define LEGAL_FILES_SUBDIR "www-legal"

/* <OPSD_VAR>/www-legal into out; false when it does not fit. */
bool legal_files_dir(const struct opsd_config *cfg, char *out, size_t n);

/* What the files depend on, read in one cheap statement: the number of versions in effect
 * and a digest of their ids (a publish that is current, or a scheduled version that became
 * current, changes them), and the milliseconds until the next scheduled version takes
 * effect (-1: none), by the database's clock. */
struct legal_files_stamp {
	int64_t effective;
	uint64_t ids;
	int64_t next_ms;
};
int legal_files_stamp(struct db *d, struct legal_files_stamp *out);

/* Brings the directory in line with the database: writes the files of every current
 * document whose bytes or time differ (temporary file, fsync, rename: .gz first), removes
 * the files of other types and stale temporary files. create: make the directory when it
 * is missing (mode 0755); otherwise a missing directory is left alone (0). The number of
 * files written or removed, or -1 (logged). */
int legal_files_sync(struct db *d, const char *dir, bool create);

/* After a publish on this host (a worker, opsctl): the files are in line before the publish
 * answers. A directory that does not exist is left to the jobs process, which makes it. */
void legal_files_after_publish(struct db *d, const struct opsd_config *cfg);

/* A digest of the directory's document files as they stand (names, inodes, sizes, times):
 * it changes when anything rewrites, removes or adds one. 0 when the directory is missing. */
uint64_t legal_files_fingerprint(const char *dir);

#endif
