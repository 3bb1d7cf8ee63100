#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit_query.h"
#include "core/blocklist.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/util.h"
#include "lib/uuid.h"

const char *const audit_filter_names[AF__MAX] = {
    [AF_ACTION] = "action",
    [AF_ACTOR] = "actor",
    [AF_ACTOR_ID] = "actorId",
    [AF_ORG_ID] = "orgId",
    [AF_TARGET_TYPE] = "targetType",
    [AF_TARGET_ID] = "targetId",
    [AF_ABOUT] = "about",
    [AF_IP] = "ip",
    [AF_REQUEST_ID] = "requestId",
    [AF_SINCE] = "since",
    [AF_UNTIL] = "until",
};

enum audit_filter audit_filter_find(const char *name)
{
	for (int f = 0; f < AF__MAX; f++)
		if (name && strcmp(name, audit_filter_names[f]) == 0)
			return (enum audit_filter)f;
	return AF__MAX;
}

void audit_query_init(struct audit_query *q)
{
	memset(q, 0, sizeof(*q));
	q->limit = AUDIT_PAGE_DEFAULT;
}

/* ---- values ------------------------------------------------------------ */

/* ::ffff:0:0/96 (RFC 4291 §2.5.5.2): where ip_bin keeps IPv4 addresses. */
static const uint8_t mapped_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
static const uint8_t mapped_hi[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff};

bool audit_ip_range(const char *s, uint8_t lo[16], uint8_t hi[16], bool *not_mapped,
    const char **why)
{
	struct cidr c;
	enum cidr_err e = cidr_parse(s, &c);
	unsigned bits;

	if (e == CIDR_MALFORMED || e == CIDR_PREFIX_RANGE) {
		*why = e == CIDR_PREFIX_RANGE
		           ? "the prefix length must be 0-32 for IPv4, 0-128 for IPv6"
		           : "must be an IPv4 or IPv6 address or CIDR range (203.0.113.0/24, "
		             "2001:db8::/32)";
		return false;
	}
	/* cidr_parse masked the host bits (CIDR_HOST_BITS): a search over the
	 * whole range is what 203.0.113.7/24 can only mean. */
	bits = c.family == 4 ? c.prefix + 96 : c.prefix;
	for (unsigned i = 0; i < 16; i++) {
		unsigned here = bits > 8 * i ? bits - 8 * i : 0;
		uint8_t m = here >= 8 ? 0xff : (uint8_t)(0xff00u >> here);

		lo[i] = c.net[i] & m;
		hi[i] = (uint8_t)(c.net[i] | (uint8_t)~m);
	}
	/* As the blocklist and nginx do: an IPv6 range does not hold IPv4
	 * clients, even ::/0 (ranges inside the mapped block became IPv4). */
	*not_mapped =
	    c.family == 6 && memcmp(lo, mapped_lo, 16) <= 0 && memcmp(hi, mapped_hi, 16) >= 0;
	return true;
}

bool audit_like_escape(const char *s, char *out, size_t out_len)
{
	size_t n = 0;

	for (; *s; s++) {
		bool esc = *s == '%' || *s == '_' || *s == '!';

		if (n + (esc ? 2 : 1) >= out_len)
			return false;
		if (esc)
			out[n++] = '!';
		out[n++] = *s;
	}
	if (n >= out_len)
		return false;
	out[n] = '\0';
	return true;
}

/* 1..max bytes of printable ASCII other than space: what labels, target
 * ids and request ids are made of. */
static bool plain_text(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return false;
	for (; *v; v++)
		if (*v <= ' ' || *v > '~')
			return false;
	return true;
}

/* An action is lower-case letters, digits, '_' and '.' ("auth.login_failed");
 * a prefix is the start of one followed by a single '*' at the end. */
static bool action_value(struct audit_query *q, const char *v, char *why, size_t why_len)
{
	size_t n = strlen(v);
	size_t body = strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_.");

	q->action_prefix = n > 0 && v[n - 1] == '*';
	if (n > AUDIT_ACTION_MAX + (q->action_prefix ? 1 : 0)) {
		snprintf(why, why_len, "must be at most %d characters", AUDIT_ACTION_MAX);
		return false;
	}
	if (body + (q->action_prefix ? 1 : 0) != n || body == 0) {
		snprintf(why, why_len,
		    "must be an action (compliance.exported) or the start of one "
		    "followed by a single * (compliance.*)");
		return false;
	}
	str_copy(q->action, v, sizeof(q->action));
	if (q->action_prefix) {
		q->action[body] = '\0';
		audit_like_escape(q->action, q->action_like, sizeof(q->action_like) - 1);
		strcat(q->action_like, "%");
	}
	return true;
}

bool audit_query_set(struct audit_query *q, enum audit_filter f, const char *v, char *why,
    size_t why_len)
{
	struct opsd_uuid u;
	const char *reason = NULL;

	if (f < 0 || f >= AF__MAX || !v) {
		snprintf(why, why_len, "unknown filter");
		return false;
	}
	/* One actor per search: actor (an id or a label) and actorId are two
	 * spellings of the same filter, so both given is refused too. */
	if (q->set[f] || (f == AF_ACTOR && q->set[AF_ACTOR_ID]) ||
	    (f == AF_ACTOR_ID && q->set[AF_ACTOR])) {
		snprintf(why, why_len, "given twice (an actor id goes in actor or actorId, once)");
		return false;
	}
	switch (f) {
	case AF_ACTION:
		if (!action_value(q, v, why, why_len))
			return false;
		break;
	case AF_ACTOR:
	case AF_ACTOR_ID:
		if (uuid_parse(v, &u)) {
			memcpy(q->actor_id, u.b, 16);
			q->actor_is_id = true;
		} else if (f == AF_ACTOR && plain_text(v, AUDIT_TEXT_MAX)) {
			str_copy(q->actor_label, v, sizeof(q->actor_label));
		} else {
			reason = f == AF_ACTOR
			             ? "must be a user id (UUID) or an actor label such as "
			               "cli:root (at most 64 characters, no spaces)"
			             : "must be a UUID";
		}
		break;
	case AF_ORG_ID:
		if (uuid_parse(v, &u))
			memcpy(q->org_id, u.b, 16);
		else
			reason = "must be a UUID";
		break;
	case AF_TARGET_TYPE:
		if (plain_text(v, AUDIT_TARGET_TYPE_MAX))
			str_copy(q->target_type, v, sizeof(q->target_type));
		else
			reason = "must be 1 to 32 characters, no spaces";
		break;
	case AF_TARGET_ID:
		if (plain_text(v, AUDIT_TEXT_MAX))
			str_copy(q->target_id, v, sizeof(q->target_id));
		else
			reason = "must be 1 to 64 characters, no spaces";
		break;
	case AF_ABOUT:
		if (uuid_parse(v, &u)) {
			uuid_format(&u, q->about);
			snprintf(q->about_like, sizeof(q->about_like), "%%%s%%", q->about);
		} else {
			reason = "must be a UUID";
		}
		break;
	case AF_IP:
		audit_ip_range(v, q->ip_lo, q->ip_hi, &q->ip_not_mapped, &reason);
		break;
	case AF_REQUEST_ID:
		if (plain_text(v, AUDIT_TEXT_MAX))
			str_copy(q->request_id, v, sizeof(q->request_id));
		else
			reason =
			    "must be 1 to 64 characters, no spaces (a response's X-Request-Id)";
		break;
	case AF_SINCE:
	case AF_UNTIL: {
		int64_t *ms = f == AF_SINCE ? &q->since_ms : &q->until_ms;

		if (parse_rfc3339(v, ms))
			db_time_from_ms(*ms, f == AF_SINCE ? q->since : q->until);
		else
			reason = "must be an RFC 3339 time (2026-11-24T10:00:00Z)";
		break;
	}
	default:
		reason = "unknown filter";
	}
	if (reason) {
		snprintf(why, why_len, "%s", reason);
		return false;
	}
	q->set[f] = true;
	return true;
}

bool audit_query_check(const struct audit_query *q, enum audit_filter *bad, const char **why)
{
	if (q->set[AF_SINCE] && q->set[AF_UNTIL] && q->until_ms < q->since_ms) {
		*bad = AF_UNTIL;
		*why = "must not be before since";
		return false;
	}
	return true;
}

bool audit_query_paging(struct audit_query *q, bool csv, const char *limit, const char *cursor,
    const char **bad, const char **why)
{
	q->limit = csv ? 0 : AUDIT_PAGE_DEFAULT;
	if (limit && !parse_ll_range(limit, 1, csv ? AUDIT_CSV_MAX : AUDIT_PAGE_MAX, &q->limit)) {
		*bad = "limit";
		*why = csv ? "must be an integer between 1 and 1000000 (format=csv)"
		           : "must be an integer between 1 and 500";
		return false;
	}
	if (cursor && *cursor && !audit_cursor_parse(cursor, &q->before_seq)) {
		*bad = "cursor";
		*why = "not a cursor of this list";
		return false;
	}
	return true;
}

/* ---- the statement ----------------------------------------------------- */

size_t audit_query_sql(const struct audit_query *q, char *sql, size_t sql_len, struct db_param *p)
{
	/* One fixed fragment per filter given, with its parameters. */
	const struct {
		bool on;
		const char *sql;
		size_t np;
		struct db_param v[2];
	} frags[] = {
	    {q->set[AF_ACTION] && !q->action_prefix, " AND action = ?", 1, {DBP_STR(q->action)}},
	    {q->set[AF_ACTION] && q->action_prefix, " AND action LIKE ? ESCAPE '!'", 1,
	        {DBP_STR(q->action_like)}},
	    {q->actor_is_id, " AND actor_id = ?", 1, {DBP_BLOB(q->actor_id, 16)}},
	    {q->set[AF_ACTOR] && !q->actor_is_id, " AND actor_label = ?", 1,
	        {DBP_STR(q->actor_label)}},
	    {q->set[AF_ORG_ID], " AND org_id = ?", 1, {DBP_BLOB(q->org_id, 16)}},
	    {q->set[AF_TARGET_TYPE], " AND target_type = ?", 1, {DBP_STR(q->target_type)}},
	    {q->set[AF_TARGET_ID], " AND target_id = ?", 1, {DBP_STR(q->target_id)}},
	    /* batch events (holds, strips, archives) name their records in the
	     * payload: not indexed, so it reads the events the other filters
	     * leave (README "Audit search": with action or orgId) */
	    {q->set[AF_ABOUT], " AND (target_id = ? OR payload LIKE ?)", 2,
	        {DBP_STR(q->about), DBP_STR(q->about_like)}},
	    {q->set[AF_IP], " AND ip_bin BETWEEN ? AND ?", 2,
	        {DBP_BLOB(q->ip_lo, 16), DBP_BLOB(q->ip_hi, 16)}},
	    {q->set[AF_IP] && q->ip_not_mapped, " AND ip_bin NOT BETWEEN ? AND ?", 2,
	        {DBP_BLOB(mapped_lo, 16), DBP_BLOB(mapped_hi, 16)}},
	    {q->set[AF_REQUEST_ID], " AND request_id = ?", 1, {DBP_STR(q->request_id)}},
	    {q->set[AF_SINCE], " AND occurred_at >= ?", 1, {DBP_STR(q->since)}},
	    {q->set[AF_UNTIL], " AND occurred_at < ?", 1, {DBP_STR(q->until)}},
	    {q->before_seq > 0, " AND seq < ?", 1, {DBP_I64(q->before_seq)}},
	    {true, " ORDER BY seq DESC LIMIT ?", 1, {DBP_I64(q->limit)}},
	};
	size_t np = 0, len;
	/* A bounded window, or a narrow address range (/16 of IPv4, /48 of
	 * IPv6, or narrower): walking the primary key down from the newest event
	 * would read every newer event first (seconds at ten million events,
	 * bench/scale), so MariaDB is told to read the range's index and sort
	 * what it finds. A window open on either side, or a wide range, keeps the
	 * walk: sorting most of the log for every page (a CSV export asks a
	 * thousand of them) would cost more than walking it. */
	static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t prefix = memcmp(q->ip_lo, v4_mapped, 12) == 0 ? 14 : 6;
	bool ranged = (q->set[AF_SINCE] && q->set[AF_UNTIL]) ||
	              (q->set[AF_IP] && memcmp(q->ip_lo, q->ip_hi, prefix) == 0);
	int n =
	    snprintf(sql, sql_len, "SELECT " AUDIT_EVENT_COLUMNS " FROM audit_events%s WHERE 1 = 1",
	        ranged ? " IGNORE INDEX FOR ORDER BY (PRIMARY)" : "");

	if (n < 0 || (size_t)n >= sql_len)
		return 0;
	len = (size_t)n;
	for (size_t i = 0; i < countof(frags); i++) {
		size_t add = strlen(frags[i].sql);

		if (!frags[i].on)
			continue;
		if (len + add >= sql_len || np + frags[i].np > AUDIT_QUERY_MAX_PARAMS)
			return 0;
		memcpy(sql + len, frags[i].sql, add + 1);
		len += add;
		for (size_t k = 0; k < frags[i].np; k++)
			p[np++] = frags[i].v[k];
	}
	return np;
}

int audit_query_run(struct db *d, struct arena *a, const struct audit_query *q, struct db_rows *out)
{
	char sql[AUDIT_QUERY_SQL_MAX];
	struct db_param p[AUDIT_QUERY_MAX_PARAMS];
	size_t np = audit_query_sql(q, sql, sizeof(sql), p);

	if (np == 0)
		return -1;
	return db_query(d, a, sql, p, np, out);
}

long long audit_query_each(struct db *d, const struct audit_query *q, long long max,
    bool (*fn)(const struct db_rows *rows, size_t i, void *ctx), void *ctx)
{
	struct audit_query chunk_q = *q;
	struct arena *a = arena_new(256 * 1024);
	long long n = 0;
	bool more = true;

	if (!a)
		return -1;
	while (more) {
		struct db_rows rows;

		arena_reset(a);
		chunk_q.limit =
		    max > 0 && max - n < AUDIT_QUERY_CHUNK ? max - n : AUDIT_QUERY_CHUNK;
		if (audit_query_run(d, a, &chunk_q, &rows) != 0) {
			n = -1;
			break;
		}
		for (size_t i = 0; i < rows.nrows && more; i++, n++)
			more = fn(&rows, i, ctx);
		more = more && rows.nrows == (size_t)chunk_q.limit && (max == 0 || n < max);
		if (rows.nrows > 0)
			chunk_q.before_seq = strtoll(rows.val[rows.nrows - 1][0], NULL, 10);
	}
	arena_free(a);
	return n;
}

/* ---- events and cursors ------------------------------------------------ */

const char *const audit_event_fields[AUDIT_EVENT_FIELDS] = {"id", "occurredAt", "actorId",
    "actorLabel", "orgId", "action", "targetType", "targetId", "ip", "requestId", "payload"};

struct json_object *audit_event_json(const struct db_rows *rows, size_t i)
{
	/* How each field is read from its column (column k + 1: seq is 0). */
	static struct json_object *(*const read[AUDIT_EVENT_FIELDS])(const struct db_rows *, size_t,
	    size_t) = {dbv_json_uuid, dbv_json_time, dbv_json_uuid, dbv_json_str, dbv_json_uuid,
	    dbv_json_str, dbv_json_str, dbv_json_str, dbv_json_str, dbv_json_str, dbv_json_parse};
	struct json_object *o = json_object_new_object();

	for (size_t k = 0; k < AUDIT_EVENT_FIELDS; k++)
		json_object_object_add(o, audit_event_fields[k], read[k](rows, i, k + 1));
	return o;
}

bool audit_cursor_parse(const char *cursor, int64_t *seq)
{
	char v[32];
	char *end;
	long long s;

	if (!cursor_decode(AUDIT_CURSOR_KIND, cursor, v, sizeof(v)))
		return false;
	s = strtoll(v, &end, 10);
	if (*end || end == v || s <= 0)
		return false;
	*seq = s;
	return true;
}

void audit_cursor_make(const char *seq, char *out, size_t out_len)
{
	cursor_encode(AUDIT_CURSOR_KIND, seq, out, out_len);
}
