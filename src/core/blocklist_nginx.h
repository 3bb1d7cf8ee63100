/* The blocklist outside opsd (README "Runbook 4"): nginx's include of deny lines, which each
 * host's nginx process (or `opsctl blocklist sync-nginx`) applies through nginx_apply_file,
 * the record of which host's nginx denies which entry, each host's apply state, and the active
 * list in the syntax of upstream firewalls (GET /security/blocklist?format=…). */
#ifndef OPSD_BLOCKLIST_NGINX_H
#define OPSD_BLOCKLIST_NGINX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct db;

/* ---- nginx's include --------------------------------------------------- */

/* The include as rendered from the table, and the entries it denies. */
struct blocklist_render {
	struct buf text;    /* conf/nginx/opsd-blocklist.conf's shape: comments, deny lines */
	size_t lines;       /* deny lines */
	uint8_t (*ids)[16]; /* the entries of those lines, in order */
	size_t nids;
	uint8_t digest[32]; /* SHA-256 of the text and the ids: changes with any of them */
};

/* The active entries as nginx deny lines (blocklist_nginx_line), no time stamp in the text so
 * that an unchanged list renders the same bytes. An entry whose CIDR does not parse is left
 * out and its id given to skipped (may be NULL). 0, or -1 (database; r is empty). */
int blocklist_render_nginx(struct db *d, struct blocklist_render *r,
    void (*skipped)(const char *id, void *ctx), void *ctx);
void blocklist_render_free(struct blocklist_render *r);

/* host's nginx now runs r: records each entry of r as applied there (once; an entry removed
 * meanwhile is skipped). One transaction. 0 or -1. */
int blocklist_nginx_applied(struct db *d, const char *host, const struct blocklist_render *r);

/* ---- each host's state ------------------------------------------------- */

/* A host's nginx process reports on one file (about every 10 s and at each change): the row
 * of nginx_apply_hosts that decides which hosts an entry must be applied on. */
struct nginx_host_report {
	const char *host;
	const char *file;   /* "blocklist" */
	const char *state;  /* "in_sync", "waiting_for_nginx", "failing", "starting" */
	int64_t success_ms; /* 0: never */
	int64_t error_ms;   /* 0: never */
	const char *error;  /* the last error, NULL: none yet */
	uint64_t failures;
};
int nginx_host_report(struct db *d, const struct nginx_host_report *r);

/* This host's name as nginx_apply_hosts knows it (gethostname, printable ASCII). */
void nginx_host_name(char *out, size_t out_len);

/* ---- upstream firewalls ------------------------------------------------ */

enum blocklist_format {
	BF_JSON, /* the API's pages */
	BF_PLAIN,
	BF_NFT,
	BF_IPTABLES,
	BF_IP6TABLES,
	BF__MAX,
};
/* "json", "plain", "nft", "iptables", "ip6tables", NULL: the choices of ?format=. */
extern const char *const blocklist_format_names[];

/* The active list (cidrs: normalised CIDR texts, e.g. rows of the table) in a firewall's
 * syntax, re-parsed so only valid ranges get out:
 *   plain      one CIDR a line, nothing else;
 *   nft        an `nft -f` script replacing table inet opsd_blocklist: sets v4 and v6
 *              (interval, auto-merge) and an input chain dropping their sources;
 *   iptables   an `iptables-restore --noflush` file refilling chain OPSD-BLOCKLIST with the
 *              IPv4 ranges (ip6tables: the IPv6 ones, for ip6tables-restore).
 * now_rfc3339 goes into the comment at the top (nft, iptables). */
void blocklist_firewall_render(enum blocklist_format f, const char *const *cidrs, size_t n,
    const char *now_rfc3339, struct buf *out);

#endif
