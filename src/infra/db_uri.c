/* Database URIs (README "Configuration" OPSD_DB_URI): parsing, comparing and
 * redacting mysql://user:pass@host[:port][,host[:port]...][/db][?socket=/p].
 * No reason given for a refusal quotes the authority, which may hold the
 * password. */
#include "infra/db.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/encoding.h"
#include "lib/util.h"

static bool uri_fail(char *err, size_t err_len, const char *reason)
{
	snprintf(err, err_len, "%s", reason);
	return false;
}

/* A reason about one host of a list names its place in the list. */
static bool host_fail(char *err, size_t err_len, const char *reason, size_t i, bool listed)
{
	if (listed)
		snprintf(err, err_len, "host %zu of the list: %s", i + 1, reason);
	else
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

/* One host[:port] of the list, host..end: a name or a bracketed IPv6
 * literal (RFC 3986 §3.2.2). i is its place in the list. */
static bool parse_host(const char *host, const char *end, struct db_host *out, size_t i,
    bool listed, char *err, size_t err_len)
{
	const char *host_end;

	if (host < end && *host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (!rb || rb == host + 1)
			return host_fail(err, err_len, "malformed IPv6 host (use [addr]:port)", i,
			    listed);
		host_end = rb + 1;
		if (host_end < end && *host_end != ':')
			return host_fail(err, err_len, "malformed IPv6 host (use [addr]:port)", i,
			    listed);
		if (!pct_decode(host + 1, (size_t)(rb - host - 1), false, out->name,
		        sizeof(out->name)))
			return host_fail(err, err_len, "malformed or too long IPv6 host", i,
			    listed);
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		if (!host_end)
			host_end = end;
		else if (memchr(host_end + 1, ':', (size_t)(end - host_end - 1)))
			return host_fail(err, err_len, "IPv6 hosts go in brackets: [addr]:port", i,
			    listed);
		if (!pct_decode(host, (size_t)(host_end - host), false, out->name,
		        sizeof(out->name)))
			return host_fail(err, err_len, "malformed or too long host", i, listed);
	}
	if (out->name[0] == '\0')
		return host_fail(err, err_len, "empty host", i, listed);
	if (host_end < end && !parse_port(host_end + 1, (size_t)(end - host_end - 1), &out->port))
		return host_fail(err, err_len,
		    "invalid port (1-65535; IPv6 hosts go in brackets; percent-encode special characters in the password)",
		    i, listed);
	return true;
}

/* host[:port] *("," host[:port]) between hosts and end. */
static bool parse_hosts(const char *hosts, const char *end, struct db_uri *out, char *err,
    size_t err_len)
{
	size_t n = 1;
	bool listed;

	for (const char *s = hosts; s < end; s++)
		n += *s == ',';
	if (n > DB_URI_MAX_HOSTS) {
		snprintf(err, err_len, "too many hosts (at most %d, separated by commas)",
		    DB_URI_MAX_HOSTS);
		return false;
	}
	listed = n > 1;
	for (size_t i = 0; i < n; i++) {
		const char *comma = memchr(hosts, ',', (size_t)(end - hosts));
		const char *stop = comma ? comma : end;
		struct db_host h = {{0}, 0};
		if (!parse_host(hosts, stop, &h, i, listed, err, err_len))
			return false;
		if (i == 0) {
			memcpy(out->host, h.name, sizeof(out->host));
			out->port = h.port;
		} else {
			out->more[i - 1] = h;
		}
		hosts = stop + 1;
	}
	out->nhosts = n;
	return true;
}

static bool parse_uri(const char *uri, struct db_uri *out, char *err, size_t err_len)
{
	static const char scheme[] = "mysql://";
	const char *p, *auth_end, *at, *host;

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

	/* The last '@' so that an unencoded '@' in the password still parses. */
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
	if (!parse_hosts(host, auth_end, out, err, err_len))
		return false;

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
	if (out->socket[0] && out->nhosts > 1)
		return uri_fail(err, err_len,
		    "?socket= takes a single host (list several hosts without it, or one with it)");
	return true;
}

bool db_uri_parse(const char *uri, struct db_uri *out, char *err, size_t err_len)
{
	if (parse_uri(uri, out, err, err_len))
		return true;
	explicit_bzero(out, sizeof(*out)); /* no half-parsed password left behind */
	return false;
}

size_t db_uri_nhosts(const struct db_uri *u)
{
	return u->nhosts > 1 && u->nhosts <= DB_URI_MAX_HOSTS ? u->nhosts : 1;
}

const char *db_uri_host(const struct db_uri *u, size_t i, unsigned *port)
{
	if (i == 0 || i >= db_uri_nhosts(u)) {
		*port = u->port;
		return u->host;
	}
	*port = u->more[i - 1].port;
	return u->more[i - 1].name;
}

static bool has_host(const struct db_uri *u, const char *name, unsigned port)
{
	for (size_t i = 0; i < db_uri_nhosts(u); i++) {
		unsigned p;
		const char *h = db_uri_host(u, i, &p);
		if (p == port && strcmp(h, name) == 0)
			return true;
	}
	return false;
}

/* Every host of a is one of b's and the other way round. */
static bool same_hosts(const struct db_uri *a, const struct db_uri *b)
{
	for (size_t i = 0; i < db_uri_nhosts(a); i++) {
		unsigned p;
		const char *h = db_uri_host(a, i, &p);
		if (!has_host(b, h, p))
			return false;
	}
	for (size_t i = 0; i < db_uri_nhosts(b); i++) {
		unsigned p;
		const char *h = db_uri_host(b, i, &p);
		if (!has_host(a, h, p))
			return false;
	}
	return true;
}

bool db_uri_same_database(const struct db_uri *a, const struct db_uri *b)
{
	return same_hosts(a, b) && strcmp(a->dbname, b->dbname) == 0 &&
	       strcmp(a->socket, b->socket) == 0;
}

const char *db_uri_previous_problem(const char *uri, const char *previous)
{
	struct db_uri cur, prev;
	char err[256];
	const char *why = NULL;

	if (!db_uri_parse(previous, &prev, err, sizeof(err)))
		return "must look like mysql://user:pass@host[:port][,host[:port]...]/db";
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

/* "name:port" with an IPv6 name in brackets, appended at out + *off. */
static void append_host(char *out, size_t out_len, size_t *off, const char *name, unsigned port)
{
	bool v6 = strchr(name, ':') != NULL;
	int n;

	if (*off >= out_len)
		return;
	n = port ? snprintf(out + *off, out_len - *off, "%s%s%s:%u", v6 ? "[" : "", name,
	               v6 ? "]" : "", port)
	         : snprintf(out + *off, out_len - *off, "%s%s%s", v6 ? "[" : "", name,
	               v6 ? "]" : "");
	*off += n > 0 ? (size_t)n : 0;
}

void db_uri_host_label(const struct db_uri *u, size_t i, char *out, size_t out_len)
{
	size_t off = 0;
	unsigned port;
	const char *name = db_uri_host(u, i, &port);

	if (out_len == 0)
		return;
	out[0] = '\0';
	if (u->socket[0])
		snprintf(out, out_len, "%s", u->socket);
	else
		append_host(out, out_len, &off, name, port);
}

void db_uri_redacted(const struct db_uri *u, char *out, size_t out_len)
{
	size_t off;
	int n;

	if (out_len == 0)
		return;
	n = snprintf(out, out_len, "mysql://%s%s%s", u->user, u->pass[0] ? ":***" : "",
	    u->user[0] || u->pass[0] ? "@" : "");
	off = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < db_uri_nhosts(u) && off < out_len; i++) {
		unsigned port;
		const char *name = db_uri_host(u, i, &port);
		if (i > 0)
			off += (size_t)snprintf(out + off, out_len - off, ",");
		append_host(out, out_len, &off, name, port);
	}
	if (off < out_len)
		snprintf(out + off, out_len - off, "/%s%s%s", u->dbname,
		    u->socket[0] ? "?socket=" : "", u->socket);
}
