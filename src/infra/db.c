/* MariaDB access (doc/architecture.md "Data"; README "API"): one connection per process, prepared
 * statements cached per connection, transparent reconnect outside
 * transactions, and one transaction helper. */
#include "infra/db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "infra/metrics.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"

#define STMT_CACHE_SIZE 64
/* db_tx runs a transaction at most TX_ATTEMPTS times; before the n-th retry
 * it waits TX_BACKOFF_MS << (n - 1), between half and one and a half of it
 * (10, 20, 40, 80 ms on average): two hosts whose writes conflicted on a
 * cluster do not meet again at the same instant. */
#define TX_ATTEMPTS 5
#define TX_BACKOFF_MS 10
#define PING_INTERVAL_MS 1000
#define STACK_BINDS 32
#define FAST_LOSS_MS 1000
/* Per node when OPSD_DB_URI lists several: a dead one costs a worker this
 * long once, before the next node is tried. */
#define NODE_CONNECT_TIMEOUT_S 2

/* SET TRANSACTION cannot share a SET statement with variables. */
static const char *const session_sql[] = {
    "SET time_zone='+00:00', SESSION sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,"
    "NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
};

/* On a Galera node: a read (SELECT, SHOW, START TRANSACTION) first waits until
 * this node has applied every write the cluster committed before it, so a
 * logout, a role change or a blocklist entry made through another node is
 * seen by the next read here. Writes are certified anyway (level 1 = reads). */
static const char galera_sql[] = "SET SESSION wsrep_sync_wait = 1";

struct stmt_slot {
	char *sql;     /* cache key: a copy of the text (callers may build it) */
	uint64_t hash; /* FNV-1a of the text, compared before the text */
	MYSQL_STMT *stmt;
	uint64_t used; /* LRU tick */
};

struct db {
	MYSQL *my; /* NULL while disconnected */
	struct db_uri uri;
	/* Credentials tried when the server refuses uri's (a password rotation
	 * in progress: README "Runbook 7"); has_previous false when none. */
	struct db_uri previous;
	bool has_previous;
	size_t node;    /* the node of uri in use, or used last */
	bool node_lost; /* it stopped serving: connect again before the next statement */
	struct stmt_slot cache[STMT_CACHE_SIZE];
	uint64_t tick;
	int64_t last_ok_ms; /* monotonic time the connection last proved alive */
	bool last_ok;
	bool in_tx;
	int (*fence)(struct db *d, void *ctx);
	void *fence_ctx;
	uint64_t last_id;
	unsigned err_no;
	char err[512];
};

/* Lost, refused or killed connections: the caller answers 503. */
static const unsigned down_errors[] = {
    CR_SOCKET_CREATE_ERROR,
    CR_CONNECTION_ERROR,
    CR_CONN_HOST_ERROR,
    CR_IPSOCK_ERROR,
    CR_SERVER_GONE_ERROR,
    CR_SERVER_HANDSHAKE_ERR,
    CR_SERVER_LOST,
    CR_SERVER_LOST_EXTENDED,
    CR_ERR_NET_READ,
    CR_ERR_NET_WRITE,
    ER_CON_COUNT_ERROR,
    ER_SERVER_SHUTDOWN,
    ER_CONNECTION_KILLED,
    /* a Galera node out of the cluster's primary component, or not yet
     * synced: "WSREP has not yet prepared node for application use" */
    ER_UNKNOWN_COM_ERROR,
};

static bool is_down_errno(unsigned e)
{
	for (size_t i = 0; i < countof(down_errors); i++)
		if (down_errors[i] == e)
			return true;
	return false;
}

/* ---- errors ------------------------------------------------------------- */

static void set_err(struct db *d, unsigned no, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(struct db *d, unsigned no, const char *fmt, ...)
{
	va_list ap;

	d->err_no = no;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	if (is_down_errno(no))
		d->last_ok = false;
	if (no == ER_UNKNOWN_COM_ERROR)
		d->node_lost = true; /* it answers pings, but serves nothing */
}

/* "prefix; the error so far". */
static void prefix_err(struct db *d, const char *prefix)
{
	char was[sizeof(d->err)];
	int n;

	memcpy(was, d->err, sizeof(was));
	n = snprintf(d->err, sizeof(d->err), "%s; last: ", prefix);
	if (n > 0 && (size_t)n < sizeof(d->err)) {
		size_t k = strnlen(was, sizeof(d->err) - (size_t)n - 1);
		memcpy(d->err + n, was, k);
		d->err[(size_t)n + k] = '\0';
	}
}

static void clear_err(struct db *d)
{
	d->err_no = 0;
	d->err[0] = '\0';
}

static void set_mysql_err(struct db *d)
{
	set_err(d, mysql_errno(d->my), "%s", mysql_error(d->my));
}

static void set_stmt_err(struct db *d, MYSQL_STMT *st)
{
	set_err(d, mysql_stmt_errno(st), "%s", mysql_stmt_error(st));
}

bool db_is_down(const struct db *d)
{
	return d->my == NULL || is_down_errno(d->err_no);
}

const char *db_error(const struct db *d)
{
	return d->err;
}

unsigned db_errno(const struct db *d)
{
	return d->err_no;
}

uint64_t db_last_insert_id(const struct db *d)
{
	return d->last_id;
}

/* ---- connection --------------------------------------------------------- */

static void cache_clear(struct db *d)
{
	for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
		if (d->cache[i].stmt)
			mysql_stmt_close(d->cache[i].stmt);
		free(d->cache[i].sql);
		d->cache[i] = (struct stmt_slot){0};
	}
}

static void disconnect(struct db *d)
{
	cache_clear(d);
	if (d->my)
		mysql_close(d->my);
	d->my = NULL;
	d->in_tx = false;
	d->last_ok = false;
	d->node_lost = false;
}

/* One connection attempt to node i of d->uri with cred's user, password and
 * database (d->uri's or the previous ones): the handle, or NULL with the error
 * in d (no password in it). A node that does not answer is given up after
 * the connect timeout, shorter when there are others to try. */
static MYSQL *connect_as(struct db *d, const struct db_uri *cred, size_t i)
{
	unsigned connect_timeout = db_uri_nhosts(&d->uri) > 1 ? NODE_CONNECT_TIMEOUT_S : 3;
	unsigned io_timeout = 30, port;
	my_bool reconnect = 0; /* we reconnect ourselves, dropping statements */
	const char *host = db_uri_host(&d->uri, i, &port);
	const char *sock = d->uri.socket;
	char where[300];
	MYSQL *my;

	if (!(my = mysql_init(NULL))) {
		set_err(d, CR_OUT_OF_MEMORY, "mysql_init failed");
		return NULL;
	}
	mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	mysql_options(my, MYSQL_OPT_RECONNECT, &reconnect);
	if (sock[0]) {
		unsigned proto = MYSQL_PROTOCOL_SOCKET;
		mysql_options(my, MYSQL_OPT_PROTOCOL, &proto);
	}
	if (!mysql_real_connect(my, sock[0] ? "localhost" : host, cred->user[0] ? cred->user : NULL,
	        cred->pass[0] ? cred->pass : NULL, cred->dbname[0] ? cred->dbname : NULL, port,
	        sock[0] ? sock : NULL, 0)) {
		db_uri_host_label(&d->uri, i, where, sizeof(where));
		set_err(d, mysql_errno(my), "cannot connect to %s: %s", where, mysql_error(my));
		mysql_close(my);
		return NULL;
	}
	return my;
}

/* The configured credentials first; when the server refuses them and
 * previous ones are configured, those: the new password may be in the
 * configuration before ALTER USER gives it to the server. */
static MYSQL *connect_rotating(struct db *d, size_t i)
{
	MYSQL *my = connect_as(d, &d->uri, i);

	if (my || !d->has_previous || d->err_no != ER_ACCESS_DENIED_ERROR)
		return my;
	if ((my = connect_as(d, &d->previous, i)) != NULL)
		log_msg(LL_WARN, "db_previous_credentials",
		    "the server refused OPSD_DB_URI's credentials; connected with "
		    "OPSD_DB_URI_PREVIOUS (finish the rotation: ALTER USER, then remove it)");
	return my;
}

/* One row, one column: its text in out. 0, or -1 with the error in d. */
static int query_value(struct db *d, MYSQL *my, const char *sql, int col, char *out, size_t len)
{
	MYSQL_RES *res;
	MYSQL_ROW row;

	out[0] = '\0';
	if (mysql_real_query(my, sql, strlen(sql)) != 0 || !(res = mysql_store_result(my))) {
		set_err(d, mysql_errno(my), "session setup failed: %s", mysql_error(my));
		return -1;
	}
	if ((row = mysql_fetch_row(res)) && mysql_num_fields(res) > (unsigned)col && row[col])
		snprintf(out, len, "%s", row[col]);
	mysql_free_result(res);
	return 0;
}

/* A Galera node serves only once it is synced with the cluster (wsrep_ready;
 * until then statements fail with ER_UNKNOWN_COM_ERROR) and while its
 * operator does not drain it (wsrep_reject_queries): one that does not serve
 * is skipped like one that is down; one that does gets galera_sql. A server
 * without Galera has no @@wsrep_on or has it off: nothing more is done. */
static int node_setup(struct db *d, MYSQL *my)
{
	char v[16];

	for (size_t i = 0; i < countof(session_sql); i++) {
		if (mysql_real_query(my, session_sql[i], strlen(session_sql[i])) != 0) {
			set_err(d, mysql_errno(my), "session setup failed: %s", mysql_error(my));
			return -1;
		}
	}
	if (query_value(d, my, "SELECT @@wsrep_on", 0, v, sizeof(v)) != 0) {
		if (d->err_no != ER_UNKNOWN_SYSTEM_VARIABLE)
			return -1;
		v[0] = '\0';
	}
	if (strcmp(v, "1") != 0)
		return 0;
	if (query_value(d, my, "SHOW GLOBAL STATUS LIKE 'wsrep_ready'", 1, v, sizeof(v)) != 0)
		return -1;
	if (strcmp(v, "ON") != 0) {
		set_err(d, ER_UNKNOWN_COM_ERROR, "the Galera node is not ready (wsrep_ready %s)",
		    v[0] ? v : "unknown");
		return -1;
	}
	/* drained by its operator: it would refuse every statement */
	if (query_value(d, my, "SELECT @@global.wsrep_reject_queries", 0, v, sizeof(v)) != 0)
		return -1;
	if (strcmp(v, "NONE") != 0) {
		set_err(d, ER_UNKNOWN_COM_ERROR,
		    "the Galera node rejects queries (wsrep_reject_queries %s)", v);
		return -1;
	}
	if (mysql_real_query(my, galera_sql, strlen(galera_sql)) != 0) {
		set_err(d, mysql_errno(my), "session setup failed: %s", mysql_error(my));
		return -1;
	}
	return 0;
}

/* Node i of the list, connected and set up. */
static MYSQL *connect_node(struct db *d, size_t i)
{
	MYSQL *my = connect_rotating(d, i);

	if (my && node_setup(d, my) != 0) {
		mysql_close(my);
		my = NULL;
	}
	return my;
}

/* The node it connected to, when that is not the one used last: a log line
 * (no password: host and port only) and a count. */
static void note_failover(struct db *d, size_t from, size_t to, const char *why)
{
	char was[300], now[300];
	struct logline *l;

	db_uri_host_label(&d->uri, from, was, sizeof(was));
	db_uri_host_label(&d->uri, to, now, sizeof(now));
	metrics_db(MDB_FAILOVER);
	if (!(l = log_begin(LL_WARN, "db_failover")))
		return;
	log_str(l, "node", now);
	log_str(l, "from", was);
	log_str(l, "reason", why);
	log_end(l);
}

/* The first node that answers and serves, starting from the one used last
 * (it may be back already: a restart, a blip) or, when that one said it does
 * not serve (node_lost), from the next; a node that does not answer or is not
 * ready hands over to the next. Any other refusal (credentials, an unknown
 * database) would be the same on every node: it ends the round. */
static int connect_now(struct db *d)
{
	size_t n = db_uri_nhosts(&d->uri), was = d->node % n;
	size_t start = d->node_lost ? (was + 1) % n : was;
	char why[sizeof(d->err)];
	MYSQL *my = NULL;
	size_t k, i = start;

	/* why the node used last is left: its refusal, or its first failure below */
	snprintf(why, sizeof(why), "%s", d->node_lost ? d->err : "");
	disconnect(d);
	for (k = 0; k < n; k++) {
		i = (start + k) % n;
		if ((my = connect_node(d, i)) != NULL)
			break;
		if (i == was && !why[0])
			snprintf(why, sizeof(why), "%s", d->err);
		if (!is_down_errno(d->err_no)) /* the request's fault, not the node's */
			break;
	}
	if (!my) {
		if (n > 1 && k >= n)
			prefix_err(d, "no host of the list answered");
		return -1;
	}
	if (i != was)
		note_failover(d, was, i, why);
	d->node = i;
	d->my = my;
	d->node_lost = false; /* set by a node skipped on the way */
	d->last_ok = true;
	d->last_ok_ms = mono_ms();
	clear_err(d);
	return 0;
}

struct db *db_open_rotating(const char *uri, const char *previous, char *err, size_t err_len)
{
	struct db *d = calloc(1, sizeof(*d));
	char reason[256];

	if (!d) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (!db_uri_parse(uri, &d->uri, reason, sizeof(reason))) {
		snprintf(err, err_len, "database URI: %s", reason);
		goto fail;
	}
	if (previous && previous[0]) {
		if (!db_uri_parse(previous, &d->previous, reason, sizeof(reason))) {
			snprintf(err, err_len, "previous database URI: %s", reason);
			goto fail;
		}
		d->has_previous = true;
	}
	if (connect_now(d) != 0) {
		snprintf(err, err_len, "%s", d->err);
		goto fail;
	}
	return d;
fail:
	explicit_bzero(d->uri.pass, sizeof(d->uri.pass));
	explicit_bzero(d->previous.pass, sizeof(d->previous.pass));
	free(d);
	return NULL;
}

int db_library_init(void)
{
	return mysql_library_init(0, NULL, NULL) == 0 ? 0 : -1;
}

void db_thread_end(void)
{
	mysql_thread_end();
}

struct db *db_open(const char *uri, char *err, size_t err_len)
{
	return db_open_rotating(uri, NULL, err, err_len);
}

void db_close(struct db *d)
{
	if (!d)
		return;
	disconnect(d);
	explicit_bzero(d->uri.pass, sizeof(d->uri.pass));
	explicit_bzero(d->previous.pass, sizeof(d->previous.pass));
	free(d);
}

int db_ensure(struct db *d)
{
	int64_t now = mono_ms();

	if (d->my && !d->node_lost && d->last_ok && now - d->last_ok_ms < PING_INTERVAL_MS)
		return 0;
	if (d->my && !d->node_lost && mysql_ping(d->my) == 0) {
		d->last_ok = true;
		d->last_ok_ms = now;
		return 0;
	}
	return connect_now(d);
}

/* Connected, or reconnected when that cannot lose a transaction. */
static int need_connection(struct db *d)
{
	if (d->my && !d->node_lost)
		return 0;
	if (d->in_tx) {
		set_err(d, CR_SERVER_GONE_ERROR, "connection lost inside a transaction");
		return -1;
	}
	return connect_now(d);
}

static void mark_ok(struct db *d)
{
	d->last_ok = true;
	d->last_ok_ms = mono_ms();
}

/* ---- prepared statements ------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static MYSQL_STMT *stmt_get(struct db *d, const char *sql)
{
	struct stmt_slot *victim = &d->cache[0];
	my_bool update_max = 1;
	uint64_t h = fnv1a(sql);
	char *copy;
	MYSQL_STMT *st;

	for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
		struct stmt_slot *s = &d->cache[i];
		if (s->stmt && s->hash == h && strcmp(s->sql, sql) == 0) {
			s->used = ++d->tick;
			return s->stmt;
		}
		if (s->used < victim->used)
			victim = s;
	}
	if (!(copy = strdup(sql))) {
		set_err(d, CR_OUT_OF_MEMORY, "out of memory");
		return NULL;
	}
	if (!(st = mysql_stmt_init(d->my))) {
		set_mysql_err(d);
		free(copy);
		return NULL;
	}
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
		set_stmt_err(d, st);
		mysql_stmt_close(st);
		free(copy);
		return NULL;
	}
	mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
	if (victim->stmt)
		mysql_stmt_close(victim->stmt);
	free(victim->sql);
	*victim = (struct stmt_slot){copy, h, st, ++d->tick};
	return st;
}

static int bind_params(struct db *d, MYSQL_STMT *st, const struct db_param *p, size_t np)
{
	MYSQL_BIND stack[STACK_BINDS], *b = stack;
	int rc = -1;

	if (mysql_stmt_param_count(st) != np) {
		set_err(d, CR_INVALID_PARAMETER_NO, "statement expects %lu parameters, got %zu",
		    mysql_stmt_param_count(st), np);
		return -1;
	}
	if (np == 0)
		return 0;
	if (np > STACK_BINDS && !(b = calloc(np, sizeof(*b)))) {
		set_err(d, CR_OUT_OF_MEMORY, "out of memory");
		return -1;
	}
	memset(b, 0, np * sizeof(*b));
	for (size_t i = 0; i < np; i++) {
		switch (p[i].type) {
		case DB_NULL:
			b[i].buffer_type = MYSQL_TYPE_NULL;
			break;
		case DB_STR:
			b[i].buffer_type = MYSQL_TYPE_STRING;
			b[i].buffer = (void *)p[i].ptr;
			b[i].buffer_length = p[i].len ? p[i].len : strlen(p[i].ptr);
			break;
		case DB_BLOB:
			b[i].buffer_type = MYSQL_TYPE_BLOB;
			b[i].buffer = (void *)p[i].ptr;
			b[i].buffer_length = p[i].len;
			break;
		case DB_I64:
			b[i].buffer_type = MYSQL_TYPE_LONGLONG;
			b[i].buffer = (void *)&p[i].i;
			break;
		}
	}
	/* The library copies the bind array; the values are read at execute. */
	if (mysql_stmt_bind_param(st, b) != 0)
		set_stmt_err(d, st);
	else
		rc = 0;
	if (b != stack)
		free(b);
	return rc;
}

/* Whether a failed statement may run again on a fresh connection: never in
 * a transaction, and after execute only when the server cannot have run it.
 * CR_SERVER_LOST is also what a statement gets when the server died after
 * committing it (a killed Galera node): only a fast read is run again then,
 * never a write another node would write twice. A not-ready node refuses
 * before running anything. */
static bool may_retry(const struct db *d, const char *sql, bool executed, int64_t elapsed_ms)
{
	if (d->in_tx || !is_down_errno(d->err_no))
		return false;
	if (!executed || d->err_no == CR_SERVER_GONE_ERROR || d->err_no == ER_CONNECTION_KILLED ||
	    d->err_no == ER_UNKNOWN_COM_ERROR)
		return true;
	return d->err_no == CR_SERVER_LOST && elapsed_ms < FAST_LOSS_MS &&
	       strncasecmp(sql, "SELECT ", 7) == 0;
}

/* Prepares (or reuses), binds and executes; reconnects and retries once when
 * the connection was gone and no transaction or work can be lost. */
static MYSQL_STMT *run(struct db *d, const char *sql, const struct db_param *p, size_t np)
{
	clear_err(d);
	for (int attempt = 0;; attempt++) {
		MYSQL_STMT *st;
		bool executed = false;
		int64_t start = 0;
		if (need_connection(d) != 0)
			return NULL;
		st = stmt_get(d, sql);
		if (st && bind_params(d, st, p, np) == 0) {
			start = mono_ms();
			if (mysql_stmt_execute(st) == 0) {
				d->last_id = mysql_stmt_insert_id(st);
				mark_ok(d);
				return st;
			}
			set_stmt_err(d, st);
			executed = true;
		}
		if (attempt > 0 || !may_retry(d, sql, executed, executed ? mono_ms() - start : 0) ||
		    connect_now(d) != 0)
			return NULL;
	}
}

int db_exec(struct db *d, const char *sql, const struct db_param *p, size_t np,
    unsigned long long *affected)
{
	MYSQL_STMT *st = run(d, sql, p, np);

	if (!st)
		return -1;
	if (affected)
		*affected = mysql_stmt_affected_rows(st);
	mysql_stmt_free_result(st);
	return 0;
}

static bool is_binary(const MYSQL_FIELD *f)
{
	return f->charsetnr == 63 && f->type != MYSQL_TYPE_NEWDECIMAL &&
	       (f->type == MYSQL_TYPE_STRING || f->type == MYSQL_TYPE_VAR_STRING ||
	           f->type == MYSQL_TYPE_BLOB || f->type == MYSQL_TYPE_TINY_BLOB ||
	           f->type == MYSQL_TYPE_MEDIUM_BLOB || f->type == MYSQL_TYPE_LONG_BLOB);
}

/* Copies the stored result of st into the arena. */
static int fetch_all(struct db *d, struct arena *a, MYSQL_STMT *st, MYSQL_RES *meta,
    struct db_rows *out)
{
	size_t nc = mysql_num_fields(meta), nr = (size_t)mysql_stmt_num_rows(st);
	MYSQL_FIELD *f = mysql_fetch_fields(meta);
	MYSQL_BIND *b = NULL;
	unsigned long *lens = NULL;
	my_bool *nulls = NULL, *errs = NULL;
	char **bufs = NULL;
	int rc = -1, r;

	out->ncols = nc;
	out->nrows = 0;
	if (!(out->names = arena_calloc(a, nc ? nc : 1, sizeof(*out->names))) ||
	    !(out->val = arena_calloc(a, nr ? nr : 1, sizeof(*out->val))) ||
	    !(out->len = arena_calloc(a, nr ? nr : 1, sizeof(*out->len))))
		goto oom;
	for (size_t c = 0; c < nc; c++)
		if (!(out->names[c] = arena_strdup(a, f[c].name)))
			goto oom;

	b = calloc(nc, sizeof(*b));
	lens = calloc(nc, sizeof(*lens));
	nulls = calloc(nc, sizeof(*nulls));
	errs = calloc(nc, sizeof(*errs));
	bufs = calloc(nc, sizeof(*bufs));
	if (nc && (!b || !lens || !nulls || !errs || !bufs))
		goto oom;
	for (size_t c = 0; c < nc; c++) {
		/* max_length covers strings; numbers and dates converted to text
		 * need up to ~64 bytes; anything longer is refetched below. */
		size_t size = f[c].max_length > 64 ? f[c].max_length + 1 : 65;
		if (!(bufs[c] = malloc(size)))
			goto oom;
		b[c].buffer_type = is_binary(&f[c]) ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
		b[c].buffer = bufs[c];
		b[c].buffer_length = size;
		b[c].length = &lens[c];
		b[c].is_null = &nulls[c];
		b[c].error = &errs[c];
	}
	if (nc && mysql_stmt_bind_result(st, b) != 0) {
		set_stmt_err(d, st);
		goto out;
	}
	while ((r = mysql_stmt_fetch(st)) == 0 || r == MYSQL_DATA_TRUNCATED) {
		size_t row = out->nrows;
		if (row >= nr)
			break;
		if (!(out->val[row] = arena_calloc(a, nc ? nc : 1, sizeof(char *))) ||
		    !(out->len[row] = arena_calloc(a, nc ? nc : 1, sizeof(unsigned long))))
			goto oom;
		for (size_t c = 0; c < nc; c++) {
			char *v;
			if (nulls[c])
				continue;
			if (!(v = arena_alloc(a, lens[c] + 1)))
				goto oom;
			if (lens[c] < b[c].buffer_length) {
				memcpy(v, bufs[c], lens[c]);
			} else {
				MYSQL_BIND one = b[c];
				one.buffer = v;
				one.buffer_length = lens[c] + 1;
				if (mysql_stmt_fetch_column(st, &one, (unsigned)c, 0) != 0) {
					set_stmt_err(d, st);
					goto out;
				}
			}
			v[lens[c]] = '\0';
			out->val[row][c] = v;
			out->len[row][c] = lens[c];
		}
		out->nrows++;
	}
	if (r == 1) {
		set_stmt_err(d, st);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	set_err(d, CR_OUT_OF_MEMORY, "out of memory copying a result");
out:
	for (size_t c = 0; bufs && c < nc; c++)
		free(bufs[c]);
	free(bufs);
	free(errs);
	free(nulls);
	free(lens);
	free(b);
	return rc;
}

int db_query(struct db *d, struct arena *a, const char *sql, const struct db_param *p, size_t np,
    struct db_rows *out)
{
	MYSQL_STMT *st;
	MYSQL_RES *meta;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!(st = run(d, sql, p, np)))
		return -1;
	if (!(meta = mysql_stmt_result_metadata(st))) {
		/* A statement without a result set: zero rows, zero columns. */
		mysql_stmt_free_result(st);
		return 0;
	}
	if (mysql_stmt_store_result(st) != 0)
		set_stmt_err(d, st);
	else
		rc = fetch_all(d, a, st, meta, out);
	mysql_free_result(meta);
	mysql_stmt_free_result(st);
	return rc;
}

/* ---- scripts and transactions ------------------------------------------- */

int db_exec_script(struct db *d, const char *sql)
{
	int status, rc = -1;

	clear_err(d);
	if (need_connection(d) != 0)
		return -1;
	if (mysql_set_server_option(d->my, MYSQL_OPTION_MULTI_STATEMENTS_ON) != 0) {
		set_mysql_err(d);
		return -1;
	}
	status = mysql_real_query(d->my, sql, strlen(sql));
	while (status == 0) {
		MYSQL_RES *res = mysql_store_result(d->my);
		if (res)
			mysql_free_result(res);
		else if (mysql_field_count(d->my) != 0)
			break; /* a result set that could not be read: error below */
		status = mysql_next_result(d->my);
	}
	if (status > 0 || (status == 0 && mysql_errno(d->my))) {
		set_mysql_err(d);
	} else {
		d->last_id = mysql_insert_id(d->my);
		mark_ok(d);
		rc = 0;
	}
	/* The next statements must not be able to smuggle a second one. */
	if (d->my && mysql_set_server_option(d->my, MYSQL_OPTION_MULTI_STATEMENTS_OFF) != 0 &&
	    rc == 0) {
		set_mysql_err(d);
		rc = -1;
	}
	return rc;
}

static int simple_query(struct db *d, const char *sql, bool may_reconnect)
{
	clear_err(d);
	for (int attempt = 0;; attempt++) {
		if (need_connection(d) != 0)
			return -1;
		if (mysql_real_query(d->my, sql, strlen(sql)) == 0) {
			mark_ok(d);
			return 0;
		}
		set_mysql_err(d);
		if (attempt > 0 || !may_reconnect || !is_down_errno(d->err_no) ||
		    connect_now(d) != 0)
			return -1;
	}
}

int db_begin(struct db *d)
{
	if (d->in_tx) {
		set_err(d, CR_COMMANDS_OUT_OF_SYNC, "transaction already open");
		return -1;
	}
	if (simple_query(d, "START TRANSACTION", true) != 0)
		return -1;
	d->in_tx = true;
	return 0;
}

int db_commit(struct db *d)
{
	int rc = simple_query(d, "COMMIT", false);

	d->in_tx = false;
	return rc;
}

int db_rollback(struct db *d)
{
	int rc = d->my ? simple_query(d, "ROLLBACK", false) : 0;

	d->in_tx = false;
	return rc;
}

static void backoff(int retry)
{
	long base_us = (long)TX_BACKOFF_MS * 1000L << (retry - 1), us;
	uint32_t r = 0;
	struct timespec ts;

	if (!random_bytes(&r, sizeof(r)))
		r = (uint32_t)mono_ms();
	us = base_us / 2 + (long)(r % (uint32_t)(base_us + 1));
	ts = (struct timespec){us / 1000000L, us % 1000000L * 1000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int db_tx(struct db *d, int (*fn)(struct db *d, void *ctx), void *ctx)
{
	for (int attempt = 0;; attempt++) {
		unsigned saved_no;
		char saved[sizeof(d->err)];
		int rc;

		if (db_begin(d) != 0)
			return -1;
		rc = fn(d, ctx);
		/* a fence that fails by itself (no database error) is not retried */
		if (rc == 0 && d->fence && d->fence(d, d->fence_ctx) != 0)
			rc = -1;
		if (rc == 0 && db_commit(d) == 0)
			return 0;
		if (rc == 0)
			rc = -1; /* COMMIT failed */
		saved_no = d->err_no;
		memcpy(saved, d->err, sizeof(saved));
		db_rollback(d);
		d->err_no = saved_no;
		memcpy(d->err, saved, sizeof(saved));
		if (attempt + 1 >= TX_ATTEMPTS || !db_retryable(d))
			return rc;
		metrics_db(MDB_TX_RETRY);
		backoff(attempt + 1);
	}
}

void db_set_fence(struct db *d, int (*fn)(struct db *d, void *ctx), void *ctx)
{
	d->fence = fn;
	d->fence_ctx = ctx;
}

bool db_retryable(const struct db *d)
{
	return d && (d->err_no == ER_LOCK_DEADLOCK || d->err_no == ER_LOCK_WAIT_TIMEOUT);
}

bool db_duplicate(const struct db *d)
{
	return d->err_no == ER_DUP_ENTRY;
}
