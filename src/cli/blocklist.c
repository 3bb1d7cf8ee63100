/* opsctl blocklist add, remove, list and sync-nginx (README, runbook 4
 * step 3): opsd reads the list from the database, and so does its nginx
 * process for this host's nginx; sync-nginx does the nginx part by hand. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/blocklist.h"
#include "core/blocklist_nginx.h"
#include "infra/db.h"
#include "infra/nginx_apply.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* The operator's own address when logged in over SSH: blocking it would
 * cut the session that is typing (SSH_CONNECTION "client port server port"). */
static bool ssh_client_addr(char *out, size_t out_len)
{
	const char *s = getenv("SSH_CONNECTION");
	size_t n;

	if (!s || !*s)
		s = getenv("SSH_CLIENT");
	if (!s || !*s)
		return false;
	n = strcspn(s, " ");
	if (n == 0 || n >= out_len)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* What happens in nginx after a change. */
static const char *nginx_note(const struct opsctl *o)
{
	return o->cfg.nginx_apply ? "this host's nginx within seconds (OPSD_NGINX_APPLY)"
	                          : "run `opsctl blocklist sync-nginx` for nginx";
}

int cmd_blocklist_add(struct opsctl *o)
{
	const char *cidr_s = opt_value(o, "--cidr"), *reason = opt_value(o, "--reason");
	const char *at = opt_value(o, "--expires-at");
	struct cidr c;
	enum cidr_err e;
	int64_t expires_ms = 0;
	char norm[CIDR_STR_LEN], id[UUID_STR_LEN + 1], self[64];
	uint8_t addr[16];

	if (!cidr_s)
		return need_opt("--cidr");
	if (!reason)
		return need_opt("--reason");
	if ((e = cidr_parse(cidr_s, &c)) != CIDR_OK) {
		cidr_format(&c, norm);
		fprintf(stderr, "opsctl: --cidr \"%s\": %s%s%s\n", cidr_s, cidr_err_text(e),
		    e == CIDR_HOST_BITS ? "; the network is " : "",
		    e == CIDR_HOST_BITS ? norm : "");
		return EXIT_USAGE;
	}
	if (reason[strspn(reason, " \t\r\n")] == '\0' || strlen(reason) > 500) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	if (at && (!parse_rfc3339(at, &expires_ms) || expires_ms <= now_ms())) {
		fprintf(stderr, "opsctl: --expires-at must be an RFC 3339 time in the future\n");
		return EXIT_USAGE;
	}
	if (!opt_flag(o, "--force") && ssh_client_addr(self, sizeof(self)) &&
	    addr_parse16(self, addr) && cidr_contains(&c, addr)) {
		fprintf(stderr,
		    "opsctl: %s contains your own address %s (SSH_CONNECTION); add --force "
		    "to block it anyway\n",
		    cidr_s, self);
		return EXIT_USAGE;
	}
	cidr_format(&c, norm);
	switch (blocklist_add(o->db, &o->actor, &c, reason, expires_ms, id)) {
	case BL_OK:
		break;
	case BL_DUPLICATE:
		fprintf(stderr, "opsctl: %s is already blocked (opsctl blocklist list)\n", norm);
		return EXIT_FAILED;
	default:
		fprintf(stderr, "opsctl: add failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	printf("blocked %s (id %s)%s%s\n", norm, id, at ? " until " : "", at ? at : "");
	printf("opsd enforces it within a second; %s\n", nginx_note(o));
	return EXIT_OK;
}

int cmd_blocklist_remove(struct opsctl *o)
{
	const char *id_s = opt_value(o, "--id"), *reason = opt_value(o, "--reason");
	struct opsd_uuid id;

	if (!id_s)
		return need_opt("--id");
	if (reason && (reason[strspn(reason, " \t\r\n")] == '\0' || strlen(reason) > 500)) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	if (!uuid_parse(id_s, &id)) {
		fprintf(stderr, "opsctl: --id \"%s\" is not an id (opsctl blocklist list)\n", id_s);
		return EXIT_USAGE;
	}
	switch (blocklist_remove(o->db, &o->actor, &id, reason)) {
	case BL_OK:
		printf("removed %s\n", id_s);
		printf("opsd stops enforcing it within a second; %s\n", nginx_note(o));
		return EXIT_OK;
	case BL_NOT_FOUND:
		fprintf(stderr, "opsctl: no blocklist entry %s\n", id_s);
		return EXIT_FAILED;
	default:
		fprintf(stderr, "opsctl: remove failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
}

/* The active entries as rows of BLOCKLIST_COLUMNS; NULL after a message. */
static struct arena *blocklist_rows(struct opsctl *o, struct db_rows *rows)
{
	struct arena *a = arena_new(64 * 1024);

	if (!a || blocklist_list_active(o->db, a, rows) != 0) {
		fprintf(stderr, "opsctl: cannot read the blocklist: %s\n",
		    a ? db_error(o->db) : "out of memory");
		arena_free(a);
		return NULL;
	}
	return a;
}

/* --format: the list in a firewall's syntax, as GET /security/blocklist?format= gives it. */
static int list_firewall(const struct db_rows *rows, enum blocklist_format f)
{
	const char **cidrs = calloc(rows->nrows ? rows->nrows : 1, sizeof(*cidrs));
	char now[32];
	struct buf b;

	if (!cidrs) {
		fprintf(stderr, "opsctl: out of memory\n");
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < rows->nrows; i++)
		cidrs[i] = rows->val[i][BC_CIDR] ? rows->val[i][BC_CIDR] : "";
	format_rfc3339(now_ms(), now);
	buf_init(&b);
	blocklist_firewall_render(f, cidrs, rows->nrows, now, &b);
	fwrite(b.data ? b.data : "", 1, b.len, stdout);
	buf_free(&b);
	free(cidrs);
	return EXIT_OK;
}

int cmd_blocklist_list(struct opsctl *o)
{
	const char *format = opt_value(o, "--format");
	enum blocklist_format f = BF_JSON;
	struct db_rows rows;
	struct arena *a;
	int rc;

	while (format && f < BF__MAX && strcmp(format, blocklist_format_names[f]) != 0)
		f++;
	if (format && (f == BF__MAX || opt_flag(o, "--json"))) {
		fprintf(stderr, "opsctl: --format must be json, plain, nft, iptables or ip6tables, "
		                "without --json\n");
		return EXIT_USAGE;
	}
	if (!(a = blocklist_rows(o, &rows)))
		return EXIT_FAILED;
	if (format && f != BF_JSON) {
		rc = list_firewall(&rows, f);
		arena_free(a);
		return rc;
	}
	if (opt_flag(o, "--json") || format) {
		struct json_object *arr = json_object_new_array();

		for (size_t i = 0; i < rows.nrows; i++)
			json_object_array_add(arr, blocklist_row_json(&rows, i));
		print_json(arr);
		json_object_put(arr);
	} else {
		printf("%-36s  %-43s  %-24s  %s\n", "ID", "CIDR", "EXPIRES", "REASON");
		for (size_t i = 0; i < rows.nrows; i++) {
			struct json_object *e = blocklist_row_json(&rows, i);
			const char *exp = doc_str(e, "expiresAt");

			printf("%-36s  %-43s  %-24s  %s\n", doc_str(e, "id"), doc_str(e, "cidr"),
			    exp ? exp : "never", doc_str(e, "reason"));
			json_object_put(e);
		}
		printf("%zu active entr%s\n", rows.nrows, rows.nrows == 1 ? "y" : "ies");
	}
	arena_free(a);
	return EXIT_OK;
}

static void skipped_entry(const char *id, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsctl: skipped entry %s: not a valid CIDR\n", id);
}

/* Runbook 4: the same list in this host's nginx, by hand (the nginx process of opsd does it
 * by itself within seconds when OPSD_NGINX_APPLY is on): nginx_apply_file writes it, runs
 * nginx -t, puts the previous file back if that fails, and reloads nginx. */
int cmd_blocklist_sync_nginx(struct opsctl *o)
{
	struct nginx_target t;
	struct blocklist_render r;
	char msg[1024], host[256];
	enum nginx_apply res;
	int rc = EXIT_FAILED;

	nginx_target_from_config(&o->cfg, &t);
	if (access(t.conf, R_OK) != 0) {
		fprintf(stderr,
		    "opsctl: %s: %s (render it with script/render-nginx or script/server, or set "
		    "OPSD_NGINX_CONF)\n",
		    t.conf, strerror(errno));
		return EXIT_FAILED;
	}
	if (blocklist_render_nginx(o->db, &r, skipped_entry, NULL) != 0) {
		fprintf(stderr, "opsctl: cannot read the blocklist: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	res = nginx_apply_file(&t, "opsd-blocklist.conf", r.text.data ? r.text.data : "",
	    r.text.len, NGINX_APPLY_RELOAD, msg, sizeof(msg));
	switch (res) {
	case NGINX_APPLY_RELOADED:
	case NGINX_APPLY_NOT_RUNNING:
		printf("%zu entr%s: %s\n", r.lines, r.lines == 1 ? "y" : "ies", msg);
		nginx_host_name(host, sizeof(host));
		if (res == NGINX_APPLY_RELOADED && blocklist_nginx_applied(o->db, host, &r) != 0)
			fprintf(stderr,
			    "opsctl: nginx runs the list, but recording it failed: %s\n",
			    db_error(o->db));
		rc = EXIT_OK;
		break;
	default:
		fprintf(stderr, "opsctl: %s\n", msg);
		break;
	}
	blocklist_render_free(&r);
	return rc;
}
