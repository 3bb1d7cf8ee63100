/* Job leases (see lease.h): rows of job_leases taken and renewed with
 * compare-and-set UPDATEs, so that of two hosts racing (on one server, or on two
 * nodes of a Galera cluster, where one of the two updates fails certification) one
 * takes the row and the other finds it taken. */
#include "jobs/lease.h"

#include <stdlib.h>
#include <string.h>

#include "infra/db.h"
#include "lib/arena.h"
#include "lib/holder.h"
#include "lib/log.h"
#include "lib/util.h"

static const char SQL_CREATE[] = "INSERT IGNORE INTO job_leases (name, holder, epoch, expires_at)"
                                 " VALUES (?, ?, 1, NOW(3) + INTERVAL ? MICROSECOND)";
static const char SQL_READ[] =
    "SELECT holder, epoch, expires_at < NOW(3) FROM job_leases WHERE name = ?";
/* epoch moves on before holder changes (MariaDB assigns left to right) */
static const char SQL_TAKE[] =
    "UPDATE job_leases SET epoch = epoch + 1, holder = ?,"
    " expires_at = NOW(3) + INTERVAL ? MICROSECOND WHERE name = ? AND holder = ? AND epoch = ?";
static const char SQL_RENEW[] =
    "UPDATE job_leases SET expires_at = NOW(3) + INTERVAL ? MICROSECOND, touches = touches + 1"
    " WHERE name = ? AND holder = ? AND epoch = ?";
static const char SQL_FENCE[] = "UPDATE job_leases SET touches = touches + 1"
                                " WHERE name = ? AND holder = ? AND epoch = ?";
static const char SQL_RELEASE[] = "UPDATE job_leases SET expires_at = NOW(3) - INTERVAL 1 SECOND,"
                                  " touches = touches + 1"
                                  " WHERE name = ? AND holder = ? AND epoch = ?";

/* One statement on the lease's row where this process holds it with l->epoch:
 * 1 when it changed the row, 0 when the lease is no longer ours, -1 on error. */
static int held_exec(struct db *d, const char *sql, const struct job_lease *l, long long us)
{
	struct db_param p[4];
	unsigned long long n = 0;
	size_t np = 0;

	if (us >= 0)
		p[np++] = DBP_I64(us);
	p[np++] = DBP_STR(l->name);
	p[np++] = DBP_STR(holder_self());
	p[np++] = DBP_I64((long long)l->epoch);
	if (db_exec(d, sql, p, np, &n) != 0)
		return -1;
	return n == 1;
}

/* Takes the row from holder (at epoch), which has expired or is gone: 1 taken,
 * 0 another host took it first, -1 on error. */
static int take(struct db *d, struct job_lease *l, const char *holder, const char *epoch,
    long long us)
{
	struct db_param p[] = {DBP_STR(holder_self()), DBP_I64(us), DBP_STR(l->name),
	    DBP_STR(holder), DBP_I64(strtoll(epoch, NULL, 10))};
	unsigned long long n = 0;

	if (db_exec(d, SQL_TAKE, p, countof(p), &n) != 0)
		return -1;
	if (n != 1)
		return 0;
	l->epoch = strtoull(epoch, NULL, 10) + 1;
	log_msg(LL_INFO, "job_lease_taken", "%s (epoch %llu, from %s)", l->name,
	    (unsigned long long)l->epoch, holder);
	return 1;
}

static int hold(struct db *d, struct job_lease *l, long long us, struct arena *a)
{
	struct db_rows rows;
	struct db_param c[] = {DBP_STR(l->name), DBP_STR(holder_self()), DBP_I64(us)};
	struct db_param r[] = {DBP_STR(l->name)};
	int rc;

	if (l->epoch && (rc = held_exec(d, SQL_RENEW, l, us)) != 0)
		return rc;
	/* Read first: the row exists but for a job's very first run, and an INSERT
	 * of an existing key waits for the holder's lock on it (its fenced
	 * transaction) where a plain read does not. */
	if (db_query(d, a, SQL_READ, r, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 0 && (db_exec(d, SQL_CREATE, c, countof(c), NULL) != 0 ||
	                           db_query(d, a, SQL_READ, r, 1, &rows) != 0))
		return -1;
	if (rows.nrows != 1)
		return -1;
	if (strcmp(rows.val[0][0], holder_self()) == 0) {
		/* a row this process created, or took in a statement whose answer was lost */
		l->epoch = strtoull(rows.val[0][1], NULL, 10);
		return held_exec(d, SQL_RENEW, l, us);
	}
	if (strcmp(rows.val[0][2], "1") == 0 || holder_gone(rows.val[0][0]))
		return take(d, l, rows.val[0][0], rows.val[0][1], us);
	return 0;
}

bool job_lease_hold(struct db *d, struct job_lease *l, int ttl_ms)
{
	struct arena *a = arena_new(1024);
	bool had = l->epoch != 0;
	int rc = a ? hold(d, l, (long long)ttl_ms * 1000, a) : -1;

	arena_free(a);
	if (rc != 1) {
		if (had)
			log_msg(LL_WARN, "job_lease_lost", "%s: %s", l->name,
			    rc < 0 ? db_error(d) : "another host holds it");
		l->epoch = 0;
	}
	return rc == 1;
}

static int fence_fn(struct db *d, void *ctx)
{
	struct job_lease *l = ctx;
	int rc = held_exec(d, SQL_FENCE, l, -1);

	if (rc == 0)
		log_msg(LL_WARN, "job_lease_lost", "%s: its transaction is not committed", l->name);
	return rc == 1 ? 0 : -1;
}

void job_lease_fence(struct db *d, struct job_lease *l)
{
	db_set_fence(d, fence_fn, l);
}

void job_lease_unfence(struct db *d)
{
	db_set_fence(d, NULL, NULL);
}

void job_lease_release(struct db *d, struct job_lease *l)
{
	if (l->epoch && d)
		held_exec(d, SQL_RELEASE, l, -1);
	l->epoch = 0;
}
