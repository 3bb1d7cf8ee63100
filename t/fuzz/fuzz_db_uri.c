/* Database URIs (infra/db_uri.c db_uri_parse): any string either parses, or
 * is refused with a reason and nothing of it left in the struct. What parses
 * comes back the same when its parts are percent-encoded into a URI again,
 * and parts split from the input (user, password, hosts, port, database,
 * socket, separated by 0x01; several hosts separated by 0x02) survive being
 * encoded and parsed. Neither the redacted form nor the reason for a
 * refusal depends on the password: the same text with another password
 * gives the same redacted URI, or the same reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "infra/db.h"

static void pct(char *out, size_t out_len, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 4 < out_len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c) != NULL) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* host:port, an IPv6 host (holding ':') in brackets as is, as
 * db_uri_redacted writes it. */
static size_t build_host(char *out, size_t out_len, const char *name, unsigned port)
{
	char host[3 * 256], p[16] = "";
	bool v6 = strchr(name, ':') != NULL;
	int n;
	if (v6)
		snprintf(host, sizeof(host), "%s", name); /* bracketed as is */
	else
		pct(host, sizeof(host), name, strlen(name));
	if (port)
		snprintf(p, sizeof(p), ":%u", port);
	n = snprintf(out, out_len, "%s%s%s%s", v6 ? "[" : "", host, v6 ? "]" : "", p);
	return n > 0 && (size_t)n < out_len ? (size_t)n : out_len - 1;
}

/* mysql://user:pass@h1:p1,h2:p2/db?socket=... from decoded parts. */
static void build(char *out, size_t out_len, const struct db_uri *u)
{
	char user[3 * sizeof(u->user)], pass[3 * sizeof(u->pass)],
	    hosts[DB_URI_MAX_HOSTS * (3 * 256 + 16)], db[3 * sizeof(u->dbname)],
	    sock[3 * sizeof(u->socket)];
	size_t off = 0;
	pct(user, sizeof(user), u->user, strlen(u->user));
	pct(pass, sizeof(pass), u->pass, strlen(u->pass));
	hosts[0] = '\0';
	for (size_t i = 0; i < db_uri_nhosts(u); i++) {
		unsigned port;
		const char *name = db_uri_host(u, i, &port);
		if (i > 0)
			hosts[off++] = ',';
		off += build_host(hosts + off, sizeof(hosts) - off, name, port);
	}
	pct(db, sizeof(db), u->dbname, strlen(u->dbname));
	pct(sock, sizeof(sock), u->socket, strlen(u->socket));
	snprintf(out, out_len, "mysql://%s%s%s@%s/%s%s%s", user, u->pass[0] ? ":" : "", pass, hosts,
	    db, u->socket[0] ? "?socket=" : "", sock);
}

static void same(const struct db_uri *a, const struct db_uri *b)
{
	if (strcmp(a->user, b->user) || strcmp(a->pass, b->pass) || strcmp(a->host, b->host) ||
	    a->port != b->port || strcmp(a->dbname, b->dbname) || strcmp(a->socket, b->socket))
		abort();
	if (db_uri_nhosts(a) != db_uri_nhosts(b))
		abort();
	for (size_t i = 0; i < db_uri_nhosts(a); i++) {
		unsigned pa, pb;
		const char *ha = db_uri_host(a, i, &pa), *hb = db_uri_host(b, i, &pb);
		if (strcmp(ha, hb) || pa != pb)
			abort();
	}
	if (!db_uri_same_database(a, b))
		abort();
}

/* A bracketed host holding a delimiter cannot be written back as it is. */
static bool writable(const struct db_uri *u)
{
	for (size_t i = 0; i < db_uri_nhosts(u); i++) {
		unsigned port;
		const char *h = db_uri_host(u, i, &port);
		if (strchr(h, ':') && strpbrk(h, "[]/?#@%,"))
			return false;
	}
	return true;
}

/* The text with its password (between the userinfo's first ':' and the
 * authority's last '@') replaced by "x": false when it has none. */
static bool other_password(const char *text, char *out, size_t out_len)
{
	const char *auth, *end, *at = NULL, *colon;
	if (strncasecmp(text, "mysql://", 8) != 0)
		return false;
	auth = text + 8;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at || !(colon = memchr(auth, ':', (size_t)(at - auth))) || colon + 1 == at)
		return false;
	return (size_t)snprintf(out, out_len, "%.*sx%s", (int)(colon + 1 - text), text, at) <
	       out_len;
}

static void check_parsed(const struct db_uri *u)
{
	static char uri[16384];
	char red[4096], err[256];
	struct db_uri again;

	/* every field terminated inside its array */
	if (!memchr(u->user, 0, sizeof(u->user)) || !memchr(u->pass, 0, sizeof(u->pass)) ||
	    !memchr(u->host, 0, sizeof(u->host)) || !memchr(u->dbname, 0, sizeof(u->dbname)) ||
	    !memchr(u->socket, 0, sizeof(u->socket)))
		abort();
	if (u->nhosts < 1 || u->nhosts > DB_URI_MAX_HOSTS || (u->socket[0] && u->nhosts != 1))
		abort();
	for (size_t i = 0; i < u->nhosts; i++) {
		unsigned port;
		const char *h = db_uri_host(u, i, &port);
		if (h[0] == '\0' || port > 65535 || (i > 0 && !memchr(h, 0, 256)))
			abort();
	}
	if (strchr(u->dbname, '/') || (u->socket[0] && u->socket[0] != '/'))
		abort();
	db_uri_redacted(u, red, sizeof(red));
	/* the password does not show: the same as for any other password */
	{
		struct db_uri other = *u;
		char red2[sizeof(red)];
		snprintf(other.pass, sizeof(other.pass), "%s", u->pass[0] ? "x" : "");
		db_uri_redacted(&other, red2, sizeof(red2));
		if (strcmp(red, red2) != 0)
			abort();
	}
	if (!writable(u))
		return;
	build(uri, sizeof(uri), u);
	if (!db_uri_parse(uri, &again, err, sizeof(err)))
		abort();
	same(u, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct db_uri zero;
	char text[4096], err[256];
	struct db_uri u;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* 1. the text itself */
	memset(&u, 0x5a, sizeof(u));
	memset(err, 0, sizeof(err));
	bool ok = db_uri_parse(text, &u, err, sizeof(err));
	if (ok) {
		check_parsed(&u);
	} else {
		if (memcmp(&u, &zero, sizeof(u)) != 0 || err[0] == '\0')
			abort(); /* wiped, with a reason */
	}
	/* 1b. another password: the same outcome, the same reason, unless the
	 * reason is about the password itself */
	{
		static char swapped[sizeof(text) + 2];
		char err2[sizeof(err)];
		struct db_uri v;
		if (other_password(text, swapped, sizeof(swapped)) && !strstr(err, "password")) {
			if (db_uri_parse(swapped, &v, err2, sizeof(err2)) != ok)
				abort();
			if (!ok && strcmp(err, err2) != 0)
				abort();
			if (ok && (db_uri_nhosts(&u) != db_uri_nhosts(&v) ||
			              !db_uri_same_database(&u, &v)))
				abort();
		}
	}

	/* 2. parts split at 0x01, encoded, parsed: each part comes back */
	{
		const char *part[6] = {"", "", "", "", "", ""};
		size_t len[6] = {0};
		size_t k = 0;
		const char *s = text;
		for (const char *p = text;; p++) {
			if (*p == '\x01' || *p == '\0') {
				if (k < 6) {
					part[k] = s;
					len[k] = (size_t)(p - s);
				}
				k++;
				s = p + 1;
				if (*p == '\0')
					break;
			}
		}
		struct db_uri want;
		memset(&want, 0, sizeof(want));
		if (len[0] >= sizeof(want.user) || len[1] >= sizeof(want.pass) || len[2] == 0 ||
		    len[2] >= sizeof(want.host) || len[4] >= sizeof(want.dbname) ||
		    len[5] >= sizeof(want.socket))
			return 0;
		memcpy(want.user, part[0], len[0]);
		memcpy(want.pass, part[1], len[1]);
		/* hosts separated by 0x02, at most DB_URI_MAX_HOSTS of them */
		{
			const char *h = part[2], *end = part[2] + len[2];
			size_t n = 0;
			while (h <= end) {
				const char *sep = memchr(h, '\x02', (size_t)(end - h));
				size_t hl = (size_t)((sep ? sep : end) - h);
				char *name;
				if (n == DB_URI_MAX_HOSTS || hl == 0 || hl >= sizeof(want.host))
					return 0;
				name = n == 0 ? want.host : want.more[n - 1].name;
				memcpy(name, h, hl);
				if (strchr(name, ':') && strpbrk(name, "[]/?#@%,"))
					return 0;
				if (n > 0)
					want.more[n - 1].port = (unsigned)(hl * 7 % 65536);
				n++;
				if (!sep)
					break;
				h = sep + 1;
			}
			want.nhosts = n;
		}
		for (size_t i = 0; i < len[3] && i < 6; i++)
			want.port = want.port * 10 + (unsigned)((unsigned char)part[3][i] % 10);
		if (want.port > 65535)
			want.port = 0;
		memcpy(want.dbname, part[4], len[4]);
		if (len[5] > 0) {
			want.socket[0] = '/';
			memcpy(want.socket + 1, part[5], len[5] - 1);
		}
		/* what an URI cannot carry: '/' in a database name, a socket with
		 * several hosts (brackets in an IPv6 literal: above) */
		if (strchr(want.dbname, '/') || (want.socket[0] && want.nhosts > 1))
			return 0;
		static char uri[8192];
		build(uri, sizeof(uri), &want);
		if (!db_uri_parse(uri, &u, err, sizeof(err)))
			abort();
		same(&want, &u);
	}
	return 0;
}
