/* MariaDB access (doc/architecture.md "Data"; README "API"): one connection per process, prepared
 * statements cached per connection, transparent reconnect outside
 * transactions, and one transaction helper. */
#include "infra/db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "lib/arena.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

#define STMT_CACHE_SIZE 64
#define TX_RETRIES 3
#define PING_INTERVAL_MS 1000
#define STACK_BINDS 32
#define FAST_LOSS_MS 1000

/* SET TRANSACTION cannot share a SET statement with variables. */
static const char *const session_sql[] = {
    "SET time_zone='+00:00', SESSION sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,"
    "NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
};

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
	struct stmt_slot cache[STMT_CACHE_SIZE];
	uint64_t tick;
	int64_t last_ok_ms; /* monotonic time the connection last proved alive */
	bool last_ok;
	bool in_tx;
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
};

static bool is_down_errno(unsigned e)
{
	for (size_t i = 0; i < countof(down_errors); i++)
		if (down_errors[i] == e)
			return true;
	return false;
}

/* ---- URI ---------------------------------------------------------------- */

static bool uri_fail(char *err, size_t err_len, const char *reason)
{
	snprintf(err, err_len, "%s", reason);
	return false;
}

static bool parse_port(const char *s, size_t n, unsigned *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = v;
	return true;
}

static bool parse_query(const char *q, struct db_uri *out, char *err, size_t err_len)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		if (n == 0) {
			q++;
			continue;
		}
		if (!eq || (size_t)(eq - q) != 6 || memcmp(q, "socket", 6) != 0)
			return uri_fail(err, err_len,
			    "unknown query parameter (only ?socket=/path is supported)");
		if (!pct_decode(eq + 1, n - 7, false, out->socket, sizeof(out->socket)) ||
		    out->socket[0] != '/')
			return uri_fail(err, err_len, "socket must be an absolute path");
		q += n;
	}
	return true;
}

static bool parse_uri(const char *uri, struct db_uri *out, char *err, size_t err_len)
{
	static const char scheme[] = "mysql://";
	const char *p, *auth_end, *at, *host, *host_end;

	memset(out, 0, sizeof(*out));
	if (err_len)
		err[0] = '\0';
	if (!uri || strncasecmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return uri_fail(err, err_len, "must start with mysql://");
	p = uri + sizeof(scheme) - 1;
	auth_end = p + strcspn(p, "/?#");
	if (*auth_end == '#')
		return uri_fail(err, err_len,
		    "fragments are not allowed (percent-encode '#' in the password)");

	/* The last '@' so that an unencoded '@' in the password still parses;
	 * reasons never quote the authority, which may hold the password. */
	at = NULL;
	for (const char *s = p; s < auth_end; s++)
		if (*s == '@')
			at = s;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
		if (!pct_decode(p, ulen, false, out->user, sizeof(out->user)))
			return uri_fail(err, err_len, "malformed or too long user name");
		if (colon && !pct_decode(colon + 1, (size_t)(at - colon - 1), false, out->pass,
		                 sizeof(out->pass)))
			return uri_fail(err, err_len,
			    "malformed or too long password (percent-encode special characters)");
		host = at + 1;
	} else {
		host = p;
	}

	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(auth_end - host));
		if (!rb || rb == host + 1)
			return uri_fail(err, err_len, "malformed IPv6 host (use [addr]:port)");
		host_end = rb + 1;
		if (host_end < auth_end && *host_end != ':')
			return uri_fail(err, err_len, "malformed IPv6 host (use [addr]:port)");
		if (!pct_decode(host + 1, (size_t)(rb - host - 1), false, out->host,
		        sizeof(out->host)))
			return uri_fail(err, err_len, "malformed or too long IPv6 host");
	} else {
		host_end = memchr(host, ':', (size_t)(auth_end - host));
		if (!host_end)
			host_end = auth_end;
		else if (memchr(host_end + 1, ':', (size_t)(auth_end - host_end - 1)))
			return uri_fail(err, err_len, "IPv6 hosts go in brackets: [addr]:port");
		if (!pct_decode(host, (size_t)(host_end - host), false, out->host,
		        sizeof(out->host)))
			return uri_fail(err, err_len, "malformed or too long host");
	}
	if (out->host[0] == '\0')
		return uri_fail(err, err_len, "empty host");
	if (host_end < auth_end) { /* ":port" */
		if (!parse_port(host_end + 1, (size_t)(auth_end - host_end - 1), &out->port))
			return uri_fail(err, err_len,
			    "invalid port (1-65535; IPv6 hosts go in brackets; percent-encode special characters in the password)");
	}

	p = auth_end;
	if (*p == '/') {
		size_t n = strcspn(p + 1, "?#");
		if (!pct_decode(p + 1, n, false, out->dbname, sizeof(out->dbname)) ||
		    strchr(out->dbname, '/'))
			return uri_fail(err, err_len, "malformed or too long database name");
		p += 1 + n;
	}
	if (*p == '#')
		return uri_fail(err, err_len, "fragments are not allowed");
	if (*p == '?') {
		const char *q = p + 1;
		if (strchr(q, '#'))
			return uri_fail(err, err_len, "fragments are not allowed");
		if (!parse_query(q, out, err, err_len))
			return false;
	}
	return true;
}

bool db_uri_parse(const char *uri, struct db_uri *out, char *err, size_t err_len)
{
	if (parse_uri(uri, out, err, err_len))
		return true;
	explicit_bzero(out, sizeof(*out)); /* no half-parsed password left behind */
	return false;
}

bool db_uri_same_database(const struct db_uri *a, const struct db_uri *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port &&
	       strcmp(a->dbname, b->dbname) == 0 && strcmp(a->socket, b->socket) == 0;
}

const char *db_uri_previous_problem(const char *uri, const char *previous)
{
	struct db_uri cur, prev;
	char err[256];
	const char *why = NULL;

	if (!db_uri_parse(previous, &prev, err, sizeof(err)))
		return "must look like mysql://user:pass@host[:port]/db";
	if (uri && db_uri_parse(uri, &cur, err, sizeof(err))) {
		if (!db_uri_same_database(&cur, &prev))
			why =
			    "must name the same server and database as OPSD_DB_URI (only the user and "
			    "password may differ)";
		explicit_bzero(&cur, sizeof(cur));
	}
	explicit_bzero(&prev, sizeof(prev));
	return why;
}

void db_uri_redacted(const struct db_uri *u, char *out, size_t out_len)
{
	char port[16] = "";
	bool v6 = strchr(u->host, ':') != NULL;

	if (u->port)
		snprintf(port, sizeof(port), ":%u", u->port);
	snprintf(out, out_len, "mysql://%s%s%s%s%s%s%s/%s%s%s", u->user, u->pass[0] ? ":***" : "",
	    u->user[0] || u->pass[0] ? "@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "", port,
	    u->dbname, u->socket[0] ? "?socket=" : "", u->socket);
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
}

/* One connection attempt with u's credentials: the handle, or NULL with
 * the error in d (no password in it). */
static MYSQL *connect_as(struct db *d, const struct db_uri *u)
{
	unsigned connect_timeout = 3, io_timeout = 30;
	my_bool reconnect = 0; /* we reconnect ourselves, dropping statements */
	char where[1024];
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
	if (u->socket[0]) {
		unsigned proto = MYSQL_PROTOCOL_SOCKET;
		mysql_options(my, MYSQL_OPT_PROTOCOL, &proto);
	}
	if (!mysql_real_connect(my, u->socket[0] ? "localhost" : u->host,
	        u->user[0] ? u->user : NULL, u->pass[0] ? u->pass : NULL,
	        u->dbname[0] ? u->dbname : NULL, u->port, u->socket[0] ? u->socket : NULL, 0)) {
		db_uri_redacted(u, where, sizeof(where));
		set_err(d, mysql_errno(my), "cannot connect to %s: %s", where, mysql_error(my));
		mysql_close(my);
		return NULL;
	}
	return my;
}

/* The configured credentials first; when the server refuses them and
 * previous ones are configured, those: the new password may be in the
 * configuration before ALTER USER gives it to the server. */
static MYSQL *connect_rotating(struct db *d)
{
	MYSQL *my = connect_as(d, &d->uri);

	if (my || !d->has_previous || d->err_no != ER_ACCESS_DENIED_ERROR)
		return my;
	if ((my = connect_as(d, &d->previous)) != NULL)
		log_msg(LL_WARN, "db_previous_credentials",
		    "the server refused OPSD_DB_URI's credentials; connected with "
		    "OPSD_DB_URI_PREVIOUS (finish the rotation: ALTER USER, then remove it)");
	return my;
}

static int connect_now(struct db *d)
{
	MYSQL *my;

	disconnect(d);
	if (!(my = connect_rotating(d)))
		return -1;
	for (size_t i = 0; i < countof(session_sql); i++) {
		if (mysql_real_query(my, session_sql[i], strlen(session_sql[i])) != 0) {
			set_err(d, mysql_errno(my), "session setup failed: %s", mysql_error(my));
			mysql_close(my);
			return -1;
		}
	}
	d->my = my;
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

	if (d->my && d->last_ok && now - d->last_ok_ms < PING_INTERVAL_MS)
		return 0;
	if (d->my && mysql_ping(d->my) == 0) {
		d->last_ok = true;
		d->last_ok_ms = now;
		return 0;
	}
	return connect_now(d);
}

/* Connected, or reconnected when that cannot lose a transaction. */
static int need_connection(struct db *d)
{
	if (d->my)
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
 * CR_SERVER_LOST is what TCP reports for a connection that died while idle
 * (answered at once), but also a read timeout on a statement the server is
 * still running: only a fast one is retried. */
static bool may_retry(const struct db *d, bool executed, int64_t elapsed_ms)
{
	if (d->in_tx || !is_down_errno(d->err_no))
		return false;
	if (!executed || d->err_no == CR_SERVER_GONE_ERROR || d->err_no == ER_CONNECTION_KILLED)
		return true;
	return d->err_no == CR_SERVER_LOST && elapsed_ms < FAST_LOSS_MS;
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
		if (attempt > 0 || !may_retry(d, executed, executed ? mono_ms() - start : 0) ||
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

static void backoff(int attempt)
{
	struct timespec ts = {0, (long)attempt * 20 * 1000000L};

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
		if (rc == 0 && db_commit(d) == 0)
			return 0;
		if (rc == 0)
			rc = -1; /* COMMIT failed */
		saved_no = d->err_no;
		memcpy(saved, d->err, sizeof(saved));
		db_rollback(d);
		d->err_no = saved_no;
		memcpy(d->err, saved, sizeof(saved));
		if (attempt >= TX_RETRIES ||
		    (saved_no != ER_LOCK_DEADLOCK && saved_no != ER_LOCK_WAIT_TIMEOUT))
			return rc;
		backoff(attempt + 1);
	}
}

bool db_retryable(const struct db *d)
{
	return d && (d->err_no == ER_LOCK_DEADLOCK || d->err_no == ER_LOCK_WAIT_TIMEOUT);
}

bool db_duplicate(const struct db *d)
{
	return d->err_no == ER_DUP_ENTRY;
}
