/* Searching the audit log (README "Runbook 4"): one set of filters, read
 * from GET /audit's query string or from opsctl audit search's options,
 * checked here and turned into one SELECT with bound parameters only. Every
 * filter given must hold (AND); events come newest first, in keyset pages
 * over seq. Parsing, checking and building the SQL are pure; the unit tests
 * call them without a database. */
#ifndef OPSD_AUDIT_QUERY_H
#define OPSD_AUDIT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infra/db.h"
#include "infra/dbval.h"

struct arena;
struct json_object;

/* The filters, by the name GET /audit takes them under. opsctl's options
 * are the same names in its own spelling (--target-type for targetType). */
enum audit_filter {
	AF_ACTION,      /* "compliance.exported" exactly, or "compliance.*": a prefix */
	AF_ACTOR,       /* a user id, or the label of a non-user actor ("cli:root") */
	AF_ACTOR_ID,    /* a user id (the older spelling of actor=<uuid>) */
	AF_ORG_ID,      /* a UUID */
	AF_TARGET_TYPE, /* "user", "contacts", … */
	AF_TARGET_ID,   /* the target's id as recorded */
	AF_ABOUT,       /* a UUID: the event's target, or named in its payload (batch ids) */
	AF_IP,          /* an address or a CIDR range, IPv4 or IPv6 */
	AF_REQUEST_ID,  /* the X-Request-Id of the request that wrote it */
	AF_SINCE,       /* RFC 3339, inclusive */
	AF_UNTIL,       /* RFC 3339, exclusive */
	AF__MAX
};
extern const char *const audit_filter_names[AF__MAX];
/* The filter called name, or AF__MAX. */
enum audit_filter audit_filter_find(const char *name);

#define AUDIT_ACTION_MAX 64 /* the column's length */
#define AUDIT_TEXT_MAX 64   /* actor_label, target_id, request_id */
#define AUDIT_TARGET_TYPE_MAX 32

struct audit_query {
	bool set[AF__MAX];
	char action[AUDIT_ACTION_MAX + 1];
	bool action_prefix;
	/* the prefix as a LIKE pattern: wildcards escaped, then '%' */
	char action_like[2 * AUDIT_ACTION_MAX + 2];
	uint8_t actor_id[16]; /* AF_ACTOR given a UUID, or AF_ACTOR_ID */
	bool actor_is_id;
	char actor_label[AUDIT_TEXT_MAX + 1];
	uint8_t org_id[16];
	char target_type[AUDIT_TARGET_TYPE_MAX + 1];
	char target_id[AUDIT_TEXT_MAX + 1];
	char about[40];      /* the UUID as written, lower case */
	char about_like[48]; /* "%<uuid>%": a UUID holds no LIKE wildcard */
	/* ip: the 16-byte range (IPv4 as IPv4-mapped, as ip_bin stores it) */
	uint8_t ip_lo[16], ip_hi[16];
	bool ip_not_mapped; /* an IPv6 range that holds ::ffff:0:0/96 leaves IPv4 out */
	char request_id[AUDIT_TEXT_MAX + 1];
	int64_t since_ms, until_ms;
	char since[DB_TIME_LEN + 1], until[DB_TIME_LEN + 1];
	int64_t before_seq; /* keyset: only events with a smaller seq; 0: from the newest */
	long long limit;    /* rows the statement returns; audit_query_each: 0 is all */
};

void audit_query_init(struct audit_query *q);
/* Checks one filter's value and stores it. false with a reason for the
 * caller's error (the API's details.fields, opsctl's stderr) when the value
 * is not what the filter takes, or when the same filter is set twice. */
bool audit_query_set(struct audit_query *q, enum audit_filter f, const char *value, char *why,
    size_t why_len);
/* What only the whole set can say (until before since); false with the
 * filter to name and the reason. */
bool audit_query_check(const struct audit_query *q, enum audit_filter *bad, const char **why);

/* limit and cursor. As JSON, limit is the size of a page, 1..500 (50); as
 * CSV, which is streamed, a cap on its rows, 1..1000000 (none: every
 * matching event). cursor is a page's nextCursor: the list goes on after
 * it. false with the parameter to name ("limit", "cursor") and the reason. */
#define AUDIT_PAGE_DEFAULT 50
#define AUDIT_PAGE_MAX 500
#define AUDIT_CSV_MAX 1000000
bool audit_query_paging(struct audit_query *q, bool csv, const char *limit, const char *cursor,
    const char **bad, const char **why);

/* Escapes s for the pattern of LIKE … ESCAPE '!': '%', '_' and '!' get a
 * '!' before them. false when out (with its NUL) is too small. */
bool audit_like_escape(const char *s, char *out, size_t out_len);
/* "a.b.c.d[/n]" or "x:x::x[/n]" as the range of ip_bin values it covers;
 * host bits after the prefix are ignored (203.0.113.7/24 is
 * 203.0.113.0/24). false with a reason. */
bool audit_ip_range(const char *s, uint8_t lo[16], uint8_t hi[16], bool *not_mapped,
    const char **why);

/* The statement: AUDIT_EVENT_COLUMNS of the matching events, newest first,
 * at most q->limit of them. The SQL is built from fixed fragments only;
 * every value is a parameter. Returns the number of parameters written to
 * p (at most AUDIT_QUERY_MAX_PARAMS), 0 when sql_len is too small. */
#define AUDIT_QUERY_MAX_PARAMS 16
#define AUDIT_QUERY_SQL_MAX 1024
size_t audit_query_sql(const struct audit_query *q, char *sql, size_t sql_len, struct db_param *p);

/* The columns of an event, in the order audit_event_json reads them; seq
 * first (the keyset cursor, not shown). */
#define AUDIT_EVENT_COLUMNS                                                                        \
	"seq, id, occurred_at, actor_id, actor_label, org_id, action,"                             \
	" target_type, target_id, ip, request_id, payload"
/* The names of an event's fields, in order: the keys of audit_event_json
 * and the header of the CSV. */
#define AUDIT_EVENT_FIELDS 11
extern const char *const audit_event_fields[AUDIT_EVENT_FIELDS];
/* {id, occurredAt, actorId, actorLabel, orgId, action, targetType,
 * targetId, ip, requestId, payload} of row i. */
struct json_object *audit_event_json(const struct db_rows *rows, size_t i);

/* Runs the statement: rows into the arena. 0 or -1. */
int audit_query_run(struct db *d, struct arena *a, const struct audit_query *q,
    struct db_rows *out);
/* Every matching event from q->before_seq on, newest first, up to max rows
 * (0: all), read in chunks of AUDIT_QUERY_CHUNK rows each in a fresh
 * arena, so memory does not grow with the result: fn gets each row and
 * returns false to stop. Returns the rows passed to fn, or -1 on a
 * database error (fn may have seen rows already). */
#define AUDIT_QUERY_CHUNK 1000
long long audit_query_each(struct db *d, const struct audit_query *q, long long max,
    bool (*fn)(const struct db_rows *rows, size_t i, void *ctx), void *ctx);

/* Keyset cursors of the list: the same opaque form for the API and
 * opsctl. A cursor names the last event shown; the next page starts after
 * it. */
#define AUDIT_CURSOR_KIND "audit"
bool audit_cursor_parse(const char *cursor, int64_t *seq);
void audit_cursor_make(const char *seq, char *out, size_t out_len);

#endif
