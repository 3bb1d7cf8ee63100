#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blocklist.h"
#include "core/blocklist_nginx.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/util.h"

/* ---- nginx's include --------------------------------------------------- */

int blocklist_render_nginx(struct db *d, struct blocklist_render *r,
    void (*skipped)(const char *id, void *ctx), void *ctx)
{
	struct arena *a = arena_new(64 * 1024);
	struct db_rows rows;
	struct buf ids;

	memset(r, 0, sizeof(*r));
	buf_init(&r->text);
	if (!a || blocklist_list_active(d, a, &rows) != 0) {
		arena_free(a);
		return -1;
	}
	buf_init(&ids);
	buf_puts(&r->text,
	    "# opsd — IP blocklist for nginx (included inside the server block of opsd.conf).\n"
	    "#\n"
	    "# GENERATED from the ip_blocklist table: do not edit. opsd's nginx process rewrites\n"
	    "# this file within seconds of every change and expiry (OPSD_NGINX_APPLY), checks it\n"
	    "# with nginx -t and reloads nginx; `opsctl blocklist sync-nginx` does the same by hand.\n"
	    "# Change the list with POST/DELETE /security/blocklist or `opsctl blocklist\n"
	    "# add|remove`. A blocked client gets 403 with a JSON body (error_page 403 in opsd.conf).\n"
	    "#\n");
	for (size_t i = 0; i < rows.nrows; i++) {
		char *const *v = rows.val[i];
		char expires[DBV_RFC3339_LEN + 1], id[UUID_STR_LEN + 1];

		if (rows.len[i][BC_ID] == 16 &&
		    blocklist_nginx_line(&r->text, v[BC_CIDR], v[BC_REASON] ? v[BC_REASON] : "",
		        dbv_rfc3339(v[BC_EXPIRES_AT], expires) ? expires : NULL)) {
			buf_append(&ids, v[BC_ID], 16);
			r->lines++;
		} else if (skipped) {
			skipped(dbv_uuid(v[BC_ID], rows.len[i][BC_ID], id) ? id : "?", ctx);
		}
	}
	buf_printf(&r->text, "# %zu entr%s\n", r->lines, r->lines == 1 ? "y" : "ies");
	arena_free(a);
	if (buf_failed(&r->text) || buf_failed(&ids)) {
		buf_free(&ids);
		blocklist_render_free(r);
		return -1;
	}
	buf_append(&ids, r->text.data, r->text.len);
	sha256_raw(ids.data, ids.len, r->digest);
	/* The buffer starts with the ids: it becomes the array. */
	r->ids = (uint8_t(*)[16])(void *)ids.data;
	r->nids = r->lines;
	return 0;
}

void blocklist_render_free(struct blocklist_render *r)
{
	buf_free(&r->text);
	free(r->ids);
	r->ids = NULL;
	r->nids = r->lines = 0;
}

/* Rows of the ack statement: a fixed number of ids, the last repeated, so that one prepared
 * statement serves every list. */
#define ACK_CHUNK 32

struct ack_tx {
	const char *host;
	const struct blocklist_render *r;
};

static int ack_fn(struct db *d, void *arg)
{
	const struct ack_tx *x = arg;
	static char sql[256 + 3 * ACK_CHUNK];

	if (!sql[0]) {
		size_t n = (size_t)snprintf(sql, sizeof(sql),
		    "INSERT INTO ip_blocklist_nginx (entry_id, host, applied_at)"
		    " SELECT id, ?, NOW(3) FROM ip_blocklist WHERE id IN (?");
		for (int i = 1; i < ACK_CHUNK; i++)
			n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", ?");
		snprintf(sql + n, sizeof(sql) - n, ") ON DUPLICATE KEY UPDATE host = host");
	}
	for (size_t at = 0; at < x->r->nids; at += ACK_CHUNK) {
		struct db_param p[1 + ACK_CHUNK];

		p[0] = DBP_STR(x->host);
		for (size_t i = 0; i < ACK_CHUNK; i++) {
			size_t k = at + i < x->r->nids ? at + i : x->r->nids - 1;

			p[1 + i] = DBP_BLOB(x->r->ids[k], 16);
		}
		if (db_exec(d, sql, p, countof(p), NULL) != 0)
			return -1;
	}
	return 0;
}

int blocklist_nginx_applied(struct db *d, const char *host, const struct blocklist_render *r)
{
	struct ack_tx x = {host, r};

	return r->nids == 0 ? 0 : db_tx(d, ack_fn, &x);
}

/* ---- each host's state ------------------------------------------------- */

int nginx_host_report(struct db *d, const struct nginx_host_report *r)
{
	char ok[DB_TIME_LEN + 1], err_at[DB_TIME_LEN + 1], error[500];
	struct db_param p[8];

	if (r->success_ms)
		db_time_from_ms(r->success_ms, ok);
	if (r->error_ms)
		db_time_from_ms(r->error_ms, err_at);
	if (r->error)
		str_copy_utf8(error, r->error, sizeof(error));
	p[0] = DBP_STR(r->host);
	p[1] = DBP_STR(r->file);
	p[2] = DBP_STR(r->state);
	p[3] = r->success_ms ? DBP_STR(ok) : DBP_NULL;
	p[4] = r->error ? DBP_STR(error) : DBP_NULL;
	p[5] = r->error_ms ? DBP_STR(err_at) : DBP_NULL;
	p[6] = DBP_I64((long long)r->failures);
	return db_exec(d,
	    "INSERT INTO nginx_apply_hosts (host, file, checked_at, state, last_success_at,"
	    " last_error, last_error_at, failures) VALUES (?, ?, NOW(3), ?, ?, ?, ?, ?)"
	    " ON DUPLICATE KEY UPDATE checked_at = VALUES(checked_at), state = VALUES(state),"
	    " last_success_at = VALUES(last_success_at), last_error = VALUES(last_error),"
	    " last_error_at = VALUES(last_error_at), failures = VALUES(failures)",
	    p, 7, NULL);
}

void nginx_host_name(char *out, size_t out_len)
{
	char name[256] = "";

	if (gethostname(name, sizeof(name) - 1) != 0 || !name[0])
		str_copy(name, "localhost", sizeof(name));
	for (char *c = name; *c; c++)
		if (!isgraph((unsigned char)*c))
			*c = '?';
	str_copy(out, name, out_len);
}

/* ---- upstream firewalls ------------------------------------------------ */

const char *const blocklist_format_names[] = {"json", "plain", "nft", "iptables", "ip6tables",
    NULL};

/* The entries of one family, normalised, comma-separated (nft) or one rule a line. */
static size_t firewall_lines(struct buf *out, const char *const *cidrs, size_t n, int family,
    const char *before, const char *after, const char *sep)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		struct cidr c;
		char norm[CIDR_STR_LEN];

		if (cidr_parse(cidrs[i], &c) != CIDR_OK || (family && c.family != family))
			continue;
		cidr_format(&c, norm);
		buf_printf(out, "%s%s%s%s", count && sep ? sep : "", before, norm, after);
		count++;
	}
	return count;
}

static size_t family_count(const char *const *cidrs, size_t n, int family)
{
	size_t count = 0;
	struct cidr c;

	for (size_t i = 0; i < n; i++)
		count += cidr_parse(cidrs[i], &c) == CIDR_OK && c.family == family;
	return count;
}

/* nft: the whole table is replaced in one transaction ("table; delete table; table {…}" is
 * nft's idiom for that); auto-merge accepts overlapping ranges (10.0.0.0/8 and 10.1.0.0/16). */
static void render_nft(const char *const *cidrs, size_t n, const char *now, struct buf *out)
{
	static const struct {
		const char *set, *type, *match;
		int family;
	} sets[] = {{"v4", "ipv4_addr", "ip saddr @v4 drop", 4},
	    {"v6", "ipv6_addr", "ip6 saddr @v6 drop", 6}};

	buf_printf(out,
	    "# opsd blocklist: %zu IPv4 and %zu IPv6 ranges, generated at %s\n"
	    "# (GET /security/blocklist?format=nft). Load with: nft -f FILE\n"
	    "# It replaces the table inet opsd_blocklist, whose input chain drops these sources.\n"
	    "table inet opsd_blocklist\n"
	    "delete table inet opsd_blocklist\n"
	    "table inet opsd_blocklist {\n",
	    family_count(cidrs, n, 4), family_count(cidrs, n, 6), now);
	for (size_t s = 0; s < countof(sets); s++) {
		buf_printf(out, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n",
		    sets[s].set, sets[s].type);
		/* nft refuses "elements = { }": an empty set has no elements line. */
		if (family_count(cidrs, n, sets[s].family)) {
			buf_puts(out, "\t\telements = { ");
			firewall_lines(out, cidrs, n, sets[s].family, "", "", ", ");
			buf_puts(out, " }\n");
		}
		buf_puts(out, "\t}\n");
	}
	buf_printf(out,
	    "\tchain input {\n\t\ttype filter hook input priority filter - 10; policy "
	    "accept;\n\t\t%s\n\t\t%s\n\t}\n}\n",
	    sets[0].match, sets[1].match);
}

/* iptables-restore --noflush: declaring an existing user chain flushes it, so loading the
 * file again replaces the rules; the jump from INPUT is added once by hand. */
static void render_iptables(const char *const *cidrs, size_t n, int family, const char *now,
    struct buf *out)
{
	const char *tool = family == 4 ? "iptables" : "ip6tables";

	buf_printf(out,
	    "# opsd blocklist: %zu IPv%d ranges, generated at %s\n"
	    "# (GET /security/blocklist?format=%s). Load with: %s-restore --noflush < FILE\n"
	    "# It refills the chain OPSD-BLOCKLIST; send traffic through it once with:\n"
	    "#   %s -I INPUT -j OPSD-BLOCKLIST\n"
	    "*filter\n"
	    ":OPSD-BLOCKLIST - [0:0]\n",
	    family_count(cidrs, n, family), family, now, tool, tool, tool);
	firewall_lines(out, cidrs, n, family, "-A OPSD-BLOCKLIST -s ", " -j DROP\n", NULL);
	buf_puts(out, "COMMIT\n");
}

void blocklist_firewall_render(enum blocklist_format f, const char *const *cidrs, size_t n,
    const char *now_rfc3339, struct buf *out)
{
	switch (f) {
	case BF_NFT:
		render_nft(cidrs, n, now_rfc3339, out);
		break;
	case BF_IPTABLES:
	case BF_IP6TABLES:
		render_iptables(cidrs, n, f == BF_IPTABLES ? 4 : 6, now_rfc3339, out);
		break;
	default:
		firewall_lines(out, cidrs, n, 0, "", "\n", NULL);
		break;
	}
}
