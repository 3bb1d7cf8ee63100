/* MariaDB access through libmysqlclient (MariaDB Connector/C). Every
 * statement is prepared and parameterised; client input never becomes SQL
 * text. One struct db per process (worker, jobs, opsctl). */
#ifndef OPSD_DB_H
#define OPSD_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct db;

/* Several hosts name the nodes of one cluster (MariaDB Galera): a
 * connection goes to the first that answers, starting from the one used
 * last. */
#define DB_URI_MAX_HOSTS 8

struct db_host {
	char name[256];
	unsigned port; /* 0 = default 3306 */
};

struct db_uri {
	char user[128];
	char pass[256];
	char host[256];   /* the first host; "localhost" with socket set means a unix socket */
	unsigned port;    /* the first host's port, 0 = default 3306 */
	char dbname[128]; /* may be empty (OPSD_DEDICATED_DB_URI) */
	char socket[512]; /* ?socket=/path, with a single host only */
	/* The hosts after the first (more[0] is the second host): nhosts - 1 of
	 * them. nhosts is 1 for a single host (0 in a struct not filled by
	 * db_uri_parse counts as 1). */
	size_t nhosts;
	struct db_host more[DB_URI_MAX_HOSTS - 1];
};

/* mysql://user:pass@host:port/db, mysql://user:pass@h1:p1,h2:p2,[::1]:p3/db
 * (up to DB_URI_MAX_HOSTS hosts) or mysql://user:pass@localhost/db?socket=/p
 * (user and pass percent-decoded; IPv6 host in brackets). Returns false with
 * a reason in err that never contains the password. */
bool db_uri_parse(const char *uri, struct db_uri *out, char *err, size_t err_len);
/* How many hosts u names (at least 1), and the i-th of them (0 = the first)
 * with its port in *port (0 = default). */
size_t db_uri_nhosts(const struct db_uri *u);
const char *db_uri_host(const struct db_uri *u, size_t i, unsigned *port);
/* Whether two URIs name the same servers and database (the same hosts in
 * any order, ports, socket and database name; the credentials may differ). */
bool db_uri_same_database(const struct db_uri *a, const struct db_uri *b);
/* Why previous cannot stand in for uri as OPSD_DB_URI_PREVIOUS (it does not
 * parse, or names another server or database), NULL when it can. Never
 * quotes either URI. */
const char *db_uri_previous_problem(const char *uri, const char *previous);
/* The URI with the password replaced by "***", every host kept, for logs
 * and responses. */
void db_uri_redacted(const struct db_uri *u, char *out, size_t out_len);
/* "host:port" of u's i-th host ("[::1]:3307", "db1", the socket path), for
 * a log line. */
void db_uri_host_label(const struct db_uri *u, size_t i, char *out, size_t out_len);

/* Connects (utf8mb4, UTC session time zone, READ COMMITTED, strict mode).
 * Returns NULL with err set (no password in it). */
struct db *db_open(const char *uri, char *err, size_t err_len);
/* The control database's connection (OPSD_DB_URI and OPSD_DB_URI_PREVIOUS):
 * as db_open, but whenever the server refuses uri's credentials (access
 * denied) and previous is set (not NULL or empty), it connects with
 * previous's instead and logs db_previous_credentials. Every reconnect tries
 * uri first, so the new password is used as soon as the server has it. */
struct db *db_open_rotating(const char *uri, const char *previous, char *err, size_t err_len);
void db_close(struct db *d);
/* The client library's process-wide setup, before a second thread opens a
 * connection (libmysqlclient is not thread-safe until it ran): 0 or -1. */
int db_library_init(void);
/* Frees what the client library keeps per thread: at the end of a thread,
 * other than the process's first, that opened connections. */
void db_thread_end(void);
/* Makes sure the connection is usable: pings, reconnects once if the server
 * went away (dropping cached statements). 0 when up, -1 when MariaDB is
 * unreachable. Cheap: pings at most once a second unless the last call
 * failed. */
int db_ensure(struct db *d);
/* True when the last failure was a lost or refused connection (the caller
 * answers 503 unavailable with Retry-After rather than 500). */
bool db_is_down(const struct db *d);
const char *db_error(const struct db *d);
unsigned db_errno(const struct db *d);

enum db_type { DB_NULL, DB_STR, DB_I64, DB_BLOB };
struct db_param {
	enum db_type type;
	const void *ptr; /* DB_STR: NUL-terminated; DB_BLOB: bytes */
	size_t len;      /* DB_BLOB */
	long long i;     /* DB_I64 */
};
#define DBP_NULL ((struct db_param){DB_NULL, NULL, 0, 0})
/* A function, not a conditional in the macro: DBP_STR(char_array) would
 * trip -Waddress (-Werror), and s is evaluated once. NULL binds SQL NULL. */
static inline struct db_param db_param_str(const char *s)
{
	return (struct db_param){s ? DB_STR : DB_NULL, s, 0, 0};
}
#define DBP_STR(s) db_param_str(s)
#define DBP_I64(v) ((struct db_param){DB_I64, NULL, 0, (long long)(v)})
#define DBP_BLOB(p, n) ((struct db_param){DB_BLOB, (p), (n), 0})
/* Text of a known length (a value copied from another result set). */
#define DBP_STRN(p, n) ((struct db_param){DB_STR, (p), (n), 0})

/* Result set copied into the arena: every value as bytes plus NUL (NULL for
 * SQL NULL), with its length. */
struct db_rows {
	size_t nrows;
	size_t ncols;
	const char **names;
	char ***val;         /* val[row][col] */
	unsigned long **len; /* len[row][col] */
};

/* Runs a statement that returns no rows. Statements are prepared once per
 * connection and cached by their text (64 per connection, least recently
 * used dropped first).
 * Returns 0 and *affected (may be NULL), or -1 (see db_error/db_is_down). */
int db_exec(struct db *d, const char *sql, const struct db_param *p, size_t np,
    unsigned long long *affected);
/* Runs a statement that returns rows, copied into the arena. */
int db_query(struct db *d, struct arena *a, const char *sql, const struct db_param *p, size_t np,
    struct db_rows *out);
/* Runs SQL text that comes only from opsd's own files (schema migrations);
 * multi-statement. Never call with client input. */
int db_exec_script(struct db *d, const char *sql);
uint64_t db_last_insert_id(const struct db *d);

int db_begin(struct db *d);
int db_commit(struct db *d);
int db_rollback(struct db *d);
/* The one transaction helper: BEGIN, fn, COMMIT; ROLLBACK when fn returns
 * non-zero or COMMIT fails; run up to 5 times in all on deadlock or lock
 * wait timeout (on Galera a certification conflict is a deadlock error at
 * COMMIT), waiting about 10, 20, 40, 80 ms with jitter between the runs
 * (counted in opsd_db_tx_retries_total). fn must be safe to run again.
 * Returns fn's result, or -1 on a database error. */
int db_tx(struct db *d, int (*fn)(struct db *d, void *ctx), void *ctx);
/* A check db_tx runs last in every transaction of this connection, before
 * COMMIT, until cleared with fn NULL: non-zero fails the transaction (rolled
 * back, not retried). The jobs process fences a cluster-wide job's writes with
 * its lease this way (jobs/lease.h). */
void db_set_fence(struct db *d, int (*fn)(struct db *d, void *ctx), void *ctx);
/* The last error was a deadlock or lock wait timeout: the transaction may
 * be run again (after db_tx gave up: answer 503 with Retry-After). */
bool db_retryable(const struct db *d);
/* The last error was a duplicate key (a unique column already holds the
 * value). */
bool db_duplicate(const struct db *d);

#endif
