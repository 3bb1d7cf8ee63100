#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/blocklist.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- CIDR -------------------------------------------------------------- */

/* ::ffff:0:0/96 (RFC 4291 §2.5.5.2) */
static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Bits of the 16-byte form a prefix covers. */
static unsigned cidr_bits(const struct cidr *c)
{
	return c->family == 4 ? c->prefix + 96 : c->prefix;
}

static uint8_t byte_mask(unsigned bits, size_t i)
{
	unsigned here = bits > 8 * i ? bits - 8 * (unsigned)i : 0;

	return here >= 8 ? 0xff : (uint8_t)(0xff00u >> here);
}

const char *cidr_err_text(enum cidr_err e)
{
	switch (e) {
	case CIDR_OK:
		return "ok";
	case CIDR_PREFIX_RANGE:
		return "the prefix length is out of range (0-32 for IPv4, 0-128 for IPv6)";
	case CIDR_HOST_BITS:
		return "the address has bits set after the prefix";
	default:
		return "not an IPv4 or IPv6 address or CIDR (a.b.c.d/n, x:x::x/n)";
	}
}

enum cidr_err cidr_parse(const char *s, struct cidr *out)
{
	char addr[CIDR_INPUT_MAX + 1];
	const char *slash;
	size_t n = s ? strlen(s) : 0, alen;
	unsigned max;
	uint8_t a4[4];
	bool host_bits = false;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n > CIDR_INPUT_MAX)
		return CIDR_MALFORMED;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : n;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	/* inet_pton takes only the strict forms: four decimal parts without
	 * leading zeros, RFC 4291 text for IPv6 (no zone index). */
	if (inet_pton(AF_INET, addr, a4) == 1) {
		out->family = 4;
		memcpy(out->net, v4_mapped, sizeof(v4_mapped));
		memcpy(out->net + 12, a4, 4);
	} else if (inet_pton(AF_INET6, addr, out->net) == 1) {
		out->family = 6;
	} else {
		return CIDR_MALFORMED;
	}
	max = out->family == 4 ? 32 : 128;
	out->prefix = max;
	if (slash) {
		const char *p = slash + 1;
		size_t digits = strspn(p, "0123456789");

		if (digits == 0 || p[digits] != '\0')
			return CIDR_MALFORMED;
		if (digits > 3)
			return CIDR_PREFIX_RANGE;
		out->prefix = (unsigned)strtoul(p, NULL, 10);
		if (out->prefix > max)
			return CIDR_PREFIX_RANGE;
	}
	/* ::ffff:10.0.0.0/104 is 10.0.0.0/8: one spelling per range. */
	if (out->family == 6 && out->prefix >= 96 && memcmp(out->net, v4_mapped, 12) == 0) {
		out->family = 4;
		out->prefix -= 96;
	}
	for (size_t i = 0; i < 16; i++) {
		uint8_t m = byte_mask(cidr_bits(out), i);

		if (out->net[i] & (uint8_t)~m) {
			host_bits = true;
			out->net[i] &= m;
		}
	}
	return host_bits ? CIDR_HOST_BITS : CIDR_OK;
}

void cidr_format(const struct cidr *c, char out[CIDR_STR_LEN])
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->family == 4 ? c->net + 12 : c->net,
	        a, sizeof(a)))
		a[0] = '\0';
	snprintf(out, CIDR_STR_LEN, "%s/%u", a, c->prefix);
}

bool addr_parse16(const char *s, uint8_t out[16])
{
	uint8_t a4[4];

	if (!s)
		return false;
	if (inet_pton(AF_INET, s, a4) == 1) {
		memcpy(out, v4_mapped, sizeof(v4_mapped));
		memcpy(out + 12, a4, 4);
		return true;
	}
	return inet_pton(AF_INET6, s, out) == 1;
}

bool cidr_contains(const struct cidr *c, const uint8_t addr[16])
{
	unsigned bits = cidr_bits(c);

	/* As nginx's access module does: an IPv4 client (mapped or not) is
	 * checked against IPv4 entries only, so ::/0 does not block it. */
	if (c->family == 6 && memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0)
		return false;
	for (size_t i = 0; i < 16 && 8 * i < bits; i++) {
		uint8_t m = byte_mask(bits, i);

		if ((addr[i] & m) != (c->net[i] & m))
			return false;
	}
	return true;
}

void blocklist_comment(const char *reason, char *out, size_t out_len)
{
	size_t n = 0;
	bool space = true; /* drops leading spaces and collapses runs */

	if (out_len == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)(reason ? reason : ""); *p; p++) {
		char c = (char)*p;

		if (*p >= 0x80 && *p < 0xc0)
			continue; /* UTF-8 continuation: its lead byte gave the '?' */
		if (*p >= 0xc0)
			c = '?';
		else if (*p < 0x20 || *p == 0x7f || strchr(";#'\"\\{}$`", c))
			c = ' ';
		if (c == ' ' && space)
			continue;
		if (n + 1 >= out_len)
			break;
		out[n++] = c;
		space = c == ' ';
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

bool blocklist_nginx_line(struct buf *b, const char *cidr, const char *reason, const char *expires)
{
	struct cidr c;
	char norm[CIDR_STR_LEN], comment[200], until[40];

	if (cidr_parse(cidr, &c) != CIDR_OK)
		return false;
	cidr_format(&c, norm);
	blocklist_comment(reason, comment, sizeof(comment));
	buf_printf(b, "deny %s;  # %s", norm, comment[0] ? comment : "(no reason)");
	blocklist_comment(expires, until, sizeof(until));
	if (until[0])
		buf_printf(b, " (until %s)", until);
	buf_putc(b, '\n');
	return true;
}

/* ---- the table --------------------------------------------------------- */

static struct json_object *nginx_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();
	const char *hosts = rows->val[i][BC_NGINX_HOSTS], *done = rows->val[i][BC_NGINX_APPLIED];
	bool applied = hosts && done && atoll(hosts) > 0 && atoll(done) >= atoll(hosts);

	json_object_object_add(o, "applied", json_object_new_boolean(applied));
	json_object_object_add(o, "appliedAt",
	    applied ? dbv_json_time(rows, i, BC_NGINX_APPLIED_AT) : NULL);
	json_object_object_add(o, "hosts", json_object_new_int64(hosts ? atoll(hosts) : 0));
	json_object_object_add(o, "hostsApplied", json_object_new_int64(done ? atoll(done) : 0));
	return o;
}

struct json_object *blocklist_row_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();
	const char *fam = rows->val[i][BC_FAMILY];

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, BC_ID));
	json_object_object_add(o, "cidr", dbv_json_str(rows, i, BC_CIDR));
	json_object_object_add(o, "family",
	    json_object_new_string(fam && strcmp(fam, "4") == 0 ? "ipv4" : "ipv6"));
	json_object_object_add(o, "prefix", dbv_json_int(rows, i, BC_PREFIX));
	json_object_object_add(o, "reason", dbv_json_str(rows, i, BC_REASON));
	json_object_object_add(o, "createdBy", dbv_json_uuid(rows, i, BC_CREATED_BY));
	json_object_object_add(o, "createdByLabel", dbv_json_str(rows, i, BC_CREATED_BY_LABEL));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, i, BC_CREATED_AT));
	json_object_object_add(o, "expiresAt", dbv_json_time(rows, i, BC_EXPIRES_AT));
	json_object_object_add(o, "nginx", nginx_json(rows, i));
	return o;
}

/* What security.blocklist_* events carry: the range, why, and until when.
 * Addresses are not personal data here; the reason is free text, which
 * audit_append's redaction masks (e-mail addresses, tokens). */
static struct json_object *entry_payload(const char *cidr, const char *reason,
    struct json_object *expires_at)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "cidr", json_object_new_string(cidr));
	json_object_object_add(p, "reason", json_object_new_string(reason ? reason : ""));
	json_object_object_add(p, "expiresAt", expires_at);
	return p;
}

#define REMOVE_COLUMNS "id, cidr, reason, expires_at"

/* Deletes row i of REMOVE_COLUMNS and audits it (why: the operator's
 * reason for removing it, or NULL); a row another process deleted
 * meanwhile is skipped. *removed counts the deleted ones. */
static int remove_row(struct db *d, const struct audit_actor *actor, const struct db_rows *rows,
    size_t i, bool expired, const char *why, unsigned *removed)
{
	char id[UUID_STR_LEN + 1];
	unsigned long long n = 0;
	struct db_param p[] = {DBP_BLOB(rows->val[i][0], rows->len[i][0])};
	struct json_object *payload;

	if (!dbv_uuid(rows->val[i][0], rows->len[i][0], id))
		return -1;
	if (db_exec(d, "DELETE FROM ip_blocklist WHERE id = ?", p, 1, &n) != 0)
		return -1;
	if (n == 0)
		return 0;
	payload = entry_payload(rows->val[i][1], rows->val[i][2], dbv_json_time(rows, i, 3));
	if (expired)
		json_object_object_add(payload, "expired", json_object_new_boolean(1));
	if (why)
		json_object_object_add(payload, "removalReason", json_object_new_string(why));
	(*removed)++;
	return audit_append(d, actor, AA_SECURITY_BLOCKLIST_REMOVED, NULL, "ip_blocklist", id,
	    payload);
}

struct add_tx {
	const struct audit_actor *actor;
	const struct cidr *c;
	const char *reason;
	int64_t expires_ms;
	char cidr_s[CIDR_STR_LEN];
	struct opsd_uuid id;
	char id_s[UUID_STR_LEN + 1];
	struct arena *a;
	bool duplicate;
};

static int add_fn(struct db *d, void *arg)
{
	struct add_tx *x = arg;
	struct opsd_uuid by;
	bool has_by = x->actor->user_id && uuid_parse(x->actor->user_id, &by);
	char expires[DB_TIME_LEN + 1], expires_rfc[32];
	struct db_rows rows;
	struct db_param q[] = {DBP_STR(x->cidr_s)};
	unsigned removed = 0;

	x->duplicate = false;
	arena_reset(x->a);
	if (db_query(d, x->a,
	        "SELECT " REMOVE_COLUMNS ", " BLOCKLIST_ACTIVE " FROM ip_blocklist WHERE cidr = ?"
	        " FOR UPDATE",
	        q, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && strcmp(rows.val[0][4], "1") == 0) {
		x->duplicate = true;
		return 1;
	}
	/* An expired entry the job has not swept yet makes way for the new one. */
	if (rows.nrows == 1 && remove_row(d, x->actor, &rows, 0, true, NULL, &removed) != 0)
		return -1;
	if (x->expires_ms) {
		db_time_from_ms(x->expires_ms, expires);
		format_rfc3339(x->expires_ms, expires_rfc);
	}
	{
		struct db_param p[] = {
		    DBP_BLOB(x->id.b, 16),
		    DBP_STR(x->cidr_s),
		    DBP_I64(x->c->family),
		    DBP_BLOB(x->c->net, 16),
		    DBP_I64(x->c->prefix),
		    DBP_STR(x->reason),
		    has_by ? DBP_BLOB(by.b, 16) : DBP_NULL,
		    DBP_STR(x->actor->label ? x->actor->label : "system"),
		    x->expires_ms ? DBP_STR(expires) : DBP_NULL,
		};

		if (db_exec(d,
		        "INSERT INTO ip_blocklist (id, cidr, family, network, prefix, reason, "
		        "created_by,"
		        " created_by_label, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
		        " NOW(3), ?)",
		        p, countof(p), NULL) != 0) {
			/* Another request inserted the same range since our SELECT. */
			if (db_duplicate(d)) {
				x->duplicate = true;
				return 1;
			}
			return -1;
		}
	}
	return audit_append(d, x->actor, AA_SECURITY_BLOCKLIST_ADDED, NULL, "ip_blocklist", x->id_s,
	    entry_payload(x->cidr_s, x->reason,
	        x->expires_ms ? json_object_new_string(expires_rfc) : NULL));
}

enum blocklist_err blocklist_add(struct db *d, const struct audit_actor *actor,
    const struct cidr *c, const char *reason, int64_t expires_ms, char id_out[UUID_STR_LEN + 1])
{
	struct add_tx x = {.actor = actor, .c = c, .reason = reason, .expires_ms = expires_ms};
	int rc;

	if (!(x.a = arena_new(4096)))
		return BL_DB_ERROR;
	cidr_format(c, x.cidr_s);
	uuid7_new(&x.id);
	uuid_format(&x.id, x.id_s);
	rc = db_tx(d, add_fn, &x);
	arena_free(x.a);
	if (x.duplicate)
		return BL_DUPLICATE;
	if (rc != 0)
		return BL_DB_ERROR;
	str_copy(id_out, x.id_s, UUID_STR_LEN + 1);
	blocklist_changed();
	return BL_OK;
}

struct remove_tx {
	const struct audit_actor *actor;
	const struct opsd_uuid *id;
	const char *reason;
	struct arena *a;
	unsigned removed;
};

static int remove_fn(struct db *d, void *arg)
{
	struct remove_tx *x = arg;
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->id->b, 16)};

	x->removed = 0;
	arena_reset(x->a);
	if (db_query(d, x->a, "SELECT " REMOVE_COLUMNS " FROM ip_blocklist WHERE id = ? FOR UPDATE",
	        p, 1, &rows) != 0)
		return -1;
	return rows.nrows == 1 ? remove_row(d, x->actor, &rows, 0, false, x->reason, &x->removed)
	                       : 0;
}

enum blocklist_err blocklist_remove(struct db *d, const struct audit_actor *actor,
    const struct opsd_uuid *id, const char *reason)
{
	struct remove_tx x = {.actor = actor, .id = id, .reason = reason};
	int rc;

	if (!(x.a = arena_new(4096)))
		return BL_DB_ERROR;
	rc = db_tx(d, remove_fn, &x);
	arena_free(x.a);
	if (rc != 0)
		return BL_DB_ERROR;
	if (x.removed == 0)
		return BL_NOT_FOUND;
	blocklist_changed();
	return BL_OK;
}

int blocklist_fetch(struct db *d, struct arena *a, const struct opsd_uuid *id, struct db_rows *out)
{
	struct db_param p[] = {DBP_BLOB(id->b, 16)};

	return db_query(d, a, "SELECT " BLOCKLIST_COLUMNS " FROM ip_blocklist WHERE id = ?", p, 1,
	    out);
}

int blocklist_list_active(struct db *d, struct arena *a, struct db_rows *out)
{
	return db_query(d, a,
	    "SELECT " BLOCKLIST_COLUMNS " FROM ip_blocklist WHERE " BLOCKLIST_ACTIVE
	    " ORDER BY id DESC",
	    NULL, 0, out);
}

#define EXPIRE_BATCH 100

struct expire_tx {
	struct arena *a;
	unsigned removed;
	size_t seen;
};

static int expire_fn(struct db *d, void *arg)
{
	static const struct audit_actor system_actor = {NULL, "system", NULL, NULL};
	struct expire_tx *x = arg;
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(EXPIRE_BATCH)};

	x->removed = 0;
	arena_reset(x->a);
	/* Several hosts may run this at once: the row locks serialise them and
	 * a row another host deleted is skipped (no second event). */
	if (db_query(d, x->a,
	        "SELECT " REMOVE_COLUMNS " FROM ip_blocklist WHERE expires_at <= NOW(3)"
	        " ORDER BY expires_at LIMIT ? FOR UPDATE",
	        p, 1, &rows) != 0)
		return -1;
	x->seen = rows.nrows;
	for (size_t i = 0; i < rows.nrows; i++)
		if (remove_row(d, &system_actor, &rows, i, true, NULL, &x->removed) != 0)
			return -1;
	return 0;
}

int blocklist_expire_job(struct db *d, const struct opsd_config *cfg)
{
	struct expire_tx x = {0};
	int rc;

	(void)cfg;
	if (!(x.a = arena_new(16 * 1024)))
		return -1;
	rc = db_tx(d, expire_fn, &x);
	arena_free(x.a);
	if (rc != 0)
		return -1;
	if (x.removed > 0) {
		log_msg(LL_INFO, "blocklist_expired", "%u expired entries removed", x.removed);
		blocklist_changed();
	}
	return x.seen == EXPIRE_BATCH ? 1 : 0;
}

/* ---- the per-worker cache ---------------------------------------------- */

/* Changes from other hosts and opsctl are seen after at most this long; a
 * failed load is retried no sooner either (MariaDB down: one attempt a
 * second per worker, and the last list stays in force). */
#define CACHE_TTL_MS 1000

struct blocked_net {
	struct cidr c;
	int64_t expires_ms; /* 0: never */
};

static struct {
	uint64_t *shared;    /* change counter in shared memory */
	uint64_t generation; /* the counter when the cache was filled */
	int64_t tried_mono;  /* the last load attempt */
	bool tried;
	bool failing; /* the last attempt failed (logged once) */
	struct blocked_net *nets;
	size_t n;
} cache;

void blocklist_changed(void)
{
	if (cache.shared)
		__atomic_add_fetch(cache.shared, 1, __ATOMIC_RELEASE);
	cache.tried = false;
}

static int cache_fill(struct db *d)
{
	struct arena *a = arena_new(16 * 1024);
	struct blocked_net *nets;
	struct db_rows rows;
	size_t n = 0;

	if (!a)
		return -1;
	if (db_query(d, a,
	        "SELECT family, network, prefix, CAST(UNIX_TIMESTAMP(expires_at) * 1000 AS SIGNED)"
	        " FROM ip_blocklist WHERE " BLOCKLIST_ACTIVE,
	        NULL, 0, &rows) != 0 ||
	    !(nets = calloc(rows.nrows ? rows.nrows : 1, sizeof(*nets)))) {
		arena_free(a);
		return -1;
	}
	for (size_t i = 0; i < rows.nrows; i++) {
		struct blocked_net *b = &nets[n];
		long fam = rows.val[i][0] ? strtol(rows.val[i][0], NULL, 10) : 0;
		long prefix = rows.val[i][2] ? strtol(rows.val[i][2], NULL, 10) : -1;

		if ((fam != 4 && fam != 6) || rows.len[i][1] != 16 || prefix < 0 ||
		    prefix > (fam == 4 ? 32 : 128))
			continue;
		b->c.family = (int)fam;
		b->c.prefix = (unsigned)prefix;
		memcpy(b->c.net, rows.val[i][1], 16);
		b->expires_ms = rows.val[i][3] ? strtoll(rows.val[i][3], NULL, 10) : 0;
		n++;
	}
	free(cache.nets);
	cache.nets = nets;
	cache.n = n;
	arena_free(a);
	return 0;
}

static void cache_refresh(struct db *d)
{
	int64_t now = mono_ms();
	uint64_t gen;

	if (cache.tried && now - cache.tried_mono < CACHE_TTL_MS &&
	    (cache.failing || !cache.shared ||
	        __atomic_load_n(cache.shared, __ATOMIC_ACQUIRE) == cache.generation))
		return;
	/* Read before the query: a change committed meanwhile bumps it again. */
	gen = cache.shared ? __atomic_load_n(cache.shared, __ATOMIC_ACQUIRE) : 0;
	cache.tried = true;
	cache.tried_mono = now;
	if (!d || cache_fill(d) != 0) {
		if (!cache.failing)
			log_msg(LL_WARN, "blocklist_load_failed",
			    "keeping the last list (%zu entries): %s", cache.n,
			    d ? db_error(d) : "no database connection");
		cache.failing = true;
		return;
	}
	if (cache.failing)
		log_msg(LL_INFO, "blocklist_loaded", "%zu entries", cache.n);
	cache.failing = false;
	cache.generation = gen;
}

void blocklist_attach(uint64_t *shared, struct db *d)
{
	cache.shared = shared;
	if (d)
		cache_refresh(d);
}

bool blocklist_match(struct db *d, const char *addr_s)
{
	uint8_t addr[16];
	int64_t now;

	cache_refresh(d);
	if (cache.n == 0 || !addr_s || !addr_parse16(addr_s, addr))
		return false;
	now = now_ms();
	for (size_t i = 0; i < cache.n; i++)
		if ((!cache.nets[i].expires_ms || cache.nets[i].expires_ms > now) &&
		    cidr_contains(&cache.nets[i].c, addr))
			return true;
	return false;
}
