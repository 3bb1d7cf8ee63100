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
