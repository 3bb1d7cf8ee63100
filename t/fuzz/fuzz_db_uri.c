/* Database URIs (infra/db.c db_uri_parse): any string either parses, or is
 * refused with a reason and nothing of it left in the struct. What parses
 * comes back the same when its parts are percent-encoded into a URI again,
 * and parts split from the input (user, password, host, port, database,
 * socket, separated by 0x01) survive being encoded and parsed. The
 * redacted form never holds the password. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* mysql://user:pass@host:port/db?socket=... from decoded parts; IPv6 hosts
 * (holding ':') in brackets, as db_uri_redacted writes them. */
static void build(char *out, size_t out_len, const struct db_uri *u)
{
	char user[3 * sizeof(u->user)], pass[3 * sizeof(u->pass)], host[3 * sizeof(u->host)],
	    db[3 * sizeof(u->dbname)], sock[3 * sizeof(u->socket)], port[16] = "";
	bool v6 = strchr(u->host, ':') != NULL;
	pct(user, sizeof(user), u->user, strlen(u->user));
	pct(pass, sizeof(pass), u->pass, strlen(u->pass));
	if (v6)
		snprintf(host, sizeof(host), "%s", u->host); /* bracketed as is */
	else
		pct(host, sizeof(host), u->host, strlen(u->host));
	pct(db, sizeof(db), u->dbname, strlen(u->dbname));
	pct(sock, sizeof(sock), u->socket, strlen(u->socket));
	if (u->port)
		snprintf(port, sizeof(port), ":%u", u->port);
	snprintf(out, out_len, "mysql://%s%s%s@%s%s%s%s/%s%s%s", user, u->pass[0] ? ":" : "", pass,
	    v6 ? "[" : "", host, v6 ? "]" : "", port, db, u->socket[0] ? "?socket=" : "", sock);
}

static void same(const struct db_uri *a, const struct db_uri *b)
{
	if (strcmp(a->user, b->user) || strcmp(a->pass, b->pass) || strcmp(a->host, b->host) ||
	    a->port != b->port || strcmp(a->dbname, b->dbname) || strcmp(a->socket, b->socket))
		abort();
	if (!db_uri_same_database(a, b))
		abort();
}

static void check_parsed(const struct db_uri *u)
{
	static char uri[8192];
	char red[2048], err[256];
	struct db_uri again;

	/* every field terminated inside its array */
	if (!memchr(u->user, 0, sizeof(u->user)) || !memchr(u->pass, 0, sizeof(u->pass)) ||
	    !memchr(u->host, 0, sizeof(u->host)) || !memchr(u->dbname, 0, sizeof(u->dbname)) ||
	    !memchr(u->socket, 0, sizeof(u->socket)))
		abort();
	if (u->host[0] == '\0' || u->port > 65535 || strchr(u->dbname, '/') ||
	    (u->socket[0] && u->socket[0] != '/'))
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
	/* a bracketed host holding a delimiter cannot be written back as it is */
	if (strchr(u->host, ':') && strpbrk(u->host, "[]/?#@%"))
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
	if (db_uri_parse(text, &u, err, sizeof(err))) {
		check_parsed(&u);
	} else {
		if (memcmp(&u, &zero, sizeof(u)) != 0 || err[0] == '\0')
			abort(); /* wiped, with a reason */
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
		memcpy(want.host, part[2], len[2]);
		for (size_t i = 0; i < len[3] && i < 6; i++)
			want.port = want.port * 10 + (unsigned)((unsigned char)part[3][i] % 10);
		if (want.port > 65535)
			want.port = 0;
		memcpy(want.dbname, part[4], len[4]);
		if (len[5] > 0) {
			want.socket[0] = '/';
			memcpy(want.socket + 1, part[5], len[5] - 1);
		}
		/* what an URI cannot carry: '/' in a database name, brackets in an
		 * IPv6 literal */
		if (strchr(want.dbname, '/') ||
		    (strchr(want.host, ':') && strpbrk(want.host, "[]/?#@%")))
			return 0;
		static char uri[8192];
		build(uri, sizeof(uri), &want);
		if (!db_uri_parse(uri, &u, err, sizeof(err)))
			abort();
		same(&want, &u);
	}
	return 0;
}
