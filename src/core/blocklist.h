/* The IP blocklist (README "Runbook 4"): CIDR parsing and matching (pure),
 * the ip_blocklist table, and each worker's cache of the active entries that
 * blocklist_match() checks before anything else of a request. */
#ifndef OPSD_BLOCKLIST_H
#define OPSD_BLOCKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct db_rows;
struct json_object;
struct opsd_config;

/* ---- pure part --------------------------------------------------------- */

#define CIDR_INPUT_MAX 64 /* longer input is malformed */
#define CIDR_STR_LEN 48   /* "ffff:…:ffff/128" and its NUL fit */

struct cidr {
	int family;      /* 4 or 6 */
	unsigned prefix; /* bits of the family: 0..32 or 0..128 */
	uint8_t net[16]; /* the network; IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d) */
};

enum cidr_err {
	CIDR_OK,
	CIDR_MALFORMED,    /* not "address" or "address/prefix" (inet_pton forms) */
	CIDR_PREFIX_RANGE, /* prefix over 32 (IPv4) or 128 (IPv6) */
	CIDR_HOST_BITS,    /* bits set after the prefix: out holds the network */
};

/* Parses "203.0.113.0/24", "2001:db8::/32" or a bare address (/32, /128).
 * An IPv4-mapped IPv6 range of at least /96 becomes its IPv4 form
 * (::ffff:10.0.0.0/104 is 10.0.0.0/8), so both spellings are one entry.
 * Host bits after the prefix are refused rather than masked: 10.0.0.5/8 is
 * more likely a typo for /32 than a wish to block 16 million addresses; the
 * caller can suggest out (the masked network) in its message. */
enum cidr_err cidr_parse(const char *s, struct cidr *out);
const char *cidr_err_text(enum cidr_err e);
/* The normalised text: inet_ntop form (RFC 5952 for IPv6), "/", prefix. */
void cidr_format(const struct cidr *c, char out[CIDR_STR_LEN]);
/* A client address (REMOTE_ADDR) as 16 bytes, IPv4 as IPv4-mapped IPv6, so
 * an IPv6 socket's ::ffff:a.b.c.d client matches IPv4 entries. */
bool addr_parse16(const char *s, uint8_t out[16]);
/* IPv4 clients (plain or mapped) match IPv4 entries only and IPv6 clients
 * IPv6 entries only, as in nginx's access module: ::/0 blocks no IPv4
 * client, 0.0.0.0/0 no IPv6 one. */
bool cidr_contains(const struct cidr *c, const uint8_t addr[16]);
/* A reason as an nginx comment: printable ASCII only, and none of
 * ; # ' " \ { } $ ` (replaced by spaces, runs collapsed), at most out_len - 1
 * bytes. Nothing in it can end the comment or the line. */
void blocklist_comment(const char *reason, char *out, size_t out_len);
/* Appends one nginx line, "deny <cidr>;  # <reason> (until <expires>)\n",
 * re-parsing cidr so that only a valid range reaches the file; expires may
 * be NULL. False (nothing appended) when cidr does not parse. */
struct buf;
bool blocklist_nginx_line(struct buf *b, const char *cidr, const char *reason, const char *expires);

/* ---- the table --------------------------------------------------------- */

/* The hosts whose nginx process applies the blocklist (core/blocklist_nginx.h): those that
 * reported within a minute (they report about every 10 s). */
#define BLOCKLIST_NGINX_LIVE "h.file = 'blocklist' AND h.checked_at > NOW(3) - INTERVAL 60 SECOND"
#define BLOCKLIST_NGINX_ACKS                                                                       \
	" FROM ip_blocklist_nginx a JOIN nginx_apply_hosts h ON h.host = a.host"                   \
	" WHERE a.entry_id = ip_blocklist.id AND " BLOCKLIST_NGINX_LIVE

/* Columns read by blocklist_row_json, in its order (FROM ip_blocklist, not aliased): the
 * entry, then how many hosts apply the list to their nginx, how many of them have applied
 * this entry and when the last of those did. */
#define BLOCKLIST_COLUMNS                                                                          \
	"id, cidr, family, prefix, reason, created_by, created_by_label, created_at, expires_at,"  \
	" (SELECT COUNT(*) FROM nginx_apply_hosts h WHERE " BLOCKLIST_NGINX_LIVE "),"              \
	" (SELECT COUNT(*)" BLOCKLIST_NGINX_ACKS "),"                                              \
	" (SELECT MAX(a.applied_at)" BLOCKLIST_NGINX_ACKS ")"
enum {
	BC_ID,
	BC_CIDR,
	BC_FAMILY,
	BC_PREFIX,
	BC_REASON,
	BC_CREATED_BY,
	BC_CREATED_BY_LABEL,
	BC_CREATED_AT,
	BC_EXPIRES_AT,
	BC_NGINX_HOSTS,
	BC_NGINX_APPLIED,
	BC_NGINX_APPLIED_AT,
};
/* Entries not expired (expires_at NULL or in the future). */
#define BLOCKLIST_ACTIVE "(expires_at IS NULL OR expires_at > NOW(3))"

/* {id, cidr, family ("ipv4"|"ipv6"), prefix, reason, createdBy,
 * createdByLabel, createdAt, expiresAt, nginx} of a row of BLOCKLIST_COLUMNS; nginx is
 * {applied, appliedAt, hosts, hostsApplied}: applied once every host that applies the list
 * to its nginx (hosts, at least one) has reloaded nginx with the entry. */
struct json_object *blocklist_row_json(const struct db_rows *rows, size_t i);

enum blocklist_err { BL_OK, BL_DUPLICATE, BL_NOT_FOUND, BL_DB_ERROR, BL__MAX };

/* Inserts an entry and audits security.blocklist_added {cidr, reason,
 * expiresAt} in one transaction (an expired entry of the same CIDR is
 * removed first, audited as expired). expires_ms 0: never. BL_DUPLICATE
 * when the CIDR is already active. Bumps the generation on success. */
enum blocklist_err blocklist_add(struct db *d, const struct audit_actor *actor,
    const struct cidr *c, const char *reason, int64_t expires_ms, char id_out[UUID_STR_LEN + 1]);
/* Deletes an entry and audits security.blocklist_removed in one
 * transaction (with removalReason when reason is not NULL); bumps the
 * generation. */
enum blocklist_err blocklist_remove(struct db *d, const struct audit_actor *actor,
    const struct opsd_uuid *id, const char *reason);
/* One entry by id (active or not), or the active entries newest first:
 * rows of BLOCKLIST_COLUMNS. 0 or -1. */
int blocklist_fetch(struct db *d, struct arena *a, const struct opsd_uuid *id, struct db_rows *out);
int blocklist_list_active(struct db *d, struct arena *a, struct db_rows *out);
/* The jobs process: deletes expired entries in batches, each audited as
 * security.blocklist_removed {…, "expired": true}. -1, 0 or 1 (more). */
int blocklist_expire_job(struct db *d, const struct opsd_config *cfg);

/* ---- enforcement (workers) --------------------------------------------- */

/* Workers share a change counter through the scoreboard (next to the legal
 * one): a change on this host is enforced by every worker on its next
 * request; changes made on other hosts or by opsctl within a second, when
 * each worker reloads its copy anyway. With d (a worker at start) the list
 * is loaded at once, so a new worker enforces it even if MariaDB goes away
 * before its first request; the jobs process passes NULL. */
void blocklist_attach(uint64_t *shared, struct db *d);
void blocklist_changed(void);

/* True when addr (a client's REMOTE_ADDR) is in an active entry of this
 * worker's copy of the list, refreshed first as blocklist_attach says (d
 * may be NULL: the last list loaded stays in force). The request pipeline
 * answers 403 "blocked" before routing, authentication or the body, except
 * to monitoring on the host (api/pipeline.c). */
bool blocklist_match(struct db *d, const char *addr);

#endif
