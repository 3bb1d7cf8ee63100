/* Subject search (see subjects.h): the terms' normalisation, the page
 * cursor, one statement per entity and database, the audit event. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/subjects.h"
#include "core/tenant_db.h"
#include "core/users.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/util.h"

const char *const subject_term_names[SUBJECT__MAX] = {
    [SUBJECT_EMAIL] = "email",
    [SUBJECT_NAME] = "name",
    [SUBJECT_PHONE] = "phone",
};

#define CURSOR_KIND "subjects"

/* ---- the terms ------------------------------------------------------------ */

/* What the generated columns' TRIM and [[:space:]] treat as whitespace. */
static bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static const char *email_key(const char *in, char *out, size_t len)
{
	size_t n = strlen(in);
	char trimmed[SUBJECT_EMAIL_MAX + 1];

	while (n && is_space((unsigned char)in[n - 1]))
		n--;
	while (n && is_space((unsigned char)*in))
		in++, n--;
	if (n > SUBJECT_EMAIL_MAX)
		return "must have at most 254 characters";
	memcpy(trimmed, in, n);
	trimmed[n] = '\0';
	return email_normalize(trimmed, out, len) ? NULL : "must be an email address";
}

static const char *name_key(const char *in, char *out, size_t len)
{
	size_t n = 0;
	bool gap = false;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (is_space(*p)) {
			gap = n > 0;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			return "must not contain control characters";
		if (n + 2 >= len)
			return "must have at most 200 characters";
		if (gap)
			out[n++] = ' ';
		gap = false;
		out[n++] = (char)*p;
	}
	out[n] = '\0';
	if (!utf8_valid(out, n))
		return "must be UTF-8";
	if (utf8_chars(out, n) < SUBJECT_NAME_MIN)
		return "must have at least 3 characters besides spaces";
	if (utf8_chars(out, n) > SUBJECT_NAME_MAX)
		return "must have at most 200 characters";
	return NULL;
}

static const char *phone_key(const char *in, char *out, size_t len)
{
	size_t n = 0;

	if (strlen(in) > SUBJECT_PHONE_MAX)
		return "must have at most 64 characters";
	for (const char *p = in; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n + 1 >= len || n >= SUBJECT_PHONE_DIGITS)
				return "must have at most 20 digits";
			out[n++] = *p;
		} else if (!strchr(" +-()./", *p)) {
			return "may hold only digits, spaces and + - ( ) . /";
		}
	}
	out[n] = '\0';
	return n >= SUBJECT_PHONE_MIN ? NULL : "must have at least 6 digits";
}

/* How each term is normalised and compared: exact terms compare sha256 of
 * their key with the generated hash column, prefix terms LIKE 'key%'. */
static const struct term_info {
	const char *(*normalize)(const char *in, char *out, size_t len);
	bool prefix;
} terms[SUBJECT__MAX] = {
    [SUBJECT_EMAIL] = {email_key, false},
    [SUBJECT_NAME] = {name_key, true},
    [SUBJECT_PHONE] = {phone_key, false},
};

const char *subject_normalize(enum subject_term t, const char *in, char *out, size_t len)
{
	if (t <= SUBJECT_NONE || t >= SUBJECT__MAX || !in || !len)
		return "is not a search term";
	return terms[t].normalize(in, out, len);
}

bool subject_like_prefix(const char *key, char *out, size_t len)
{
	size_t n = 0;

	for (; *key; key++) {
		bool special = *key == '!' || *key == '%' || *key == '_';

		/* room for this character, its escape, the '%' and the NUL */
		if (n + special + 3 > len)
			return false;
		if (special)
			out[n++] = '!';
		out[n++] = *key;
	}
	if (n + 2 > len)
		return false;
	out[n++] = '%';
	out[n] = '\0';
	return true;
}

/* ---- the cursor ------------------------------------------------------------ */

void subject_pos_format(const struct subject_pos *p, char *out, size_t len)
{
	char org[33], id[33];

	hex_encode(p->org, 16, org);
	hex_encode(p->id, 16, id);
	if (p->dedicated)
		snprintf(out, len, "d.%s.%s.%s", org, entities[p->entity].name, id);
	else
		snprintf(out, len, "c.%s.%s", entities[p->entity].name, id);
}

bool subject_pos_parse(const char *s, struct subject_pos *p)
{
	char copy[160], *part[4], *save = NULL;
	size_t n = 0;
	const struct entity *e;

	memset(p, 0, sizeof(*p));
	if (str_copy(copy, s, sizeof(copy)) >= sizeof(copy))
		return false;
	for (char *t = strtok_r(copy, ".", &save); t; t = strtok_r(NULL, ".", &save))
		if (n < countof(part))
			part[n++] = t;
		else
			return false;
	p->dedicated = n == 4 && strcmp(part[0], "d") == 0;
	if (!(p->dedicated || (n == 3 && strcmp(part[0], "c") == 0)))
		return false;
	if (p->dedicated && (strlen(part[1]) != 32 || !hex_decode(part[1], p->org, 16)))
		return false;
	e = entity_find(part[n - 2]);
	if (!e || (p->dedicated && !e->tenant) || strlen(part[n - 1]) != 32 ||
	    !hex_decode(part[n - 1], p->id, 16))
		return false;
	p->entity = (size_t)(e - entities);
	p->set = true;
	return true;
}

const char *subject_query_init(struct subject_query *q, const char *const values[SUBJECT__MAX],
    long long limit, const char *cursor, const char **field)
{
	char key[1024], text[160];
	const char *why;
	bool any = false;

	memset(q, 0, sizeof(*q));
	for (int t = SUBJECT_NONE + 1; t < SUBJECT__MAX; t++) {
		if (!values[t])
			continue;
		*field = subject_term_names[t];
		if ((why = subject_normalize((enum subject_term)t, values[t], key, sizeof(key))))
			return why;
		if (terms[t].prefix && !subject_like_prefix(key, q->like[t], sizeof(q->like[t])))
			return "is too long";
		if (!terms[t].prefix)
			sha256_raw(key, strlen(key), q->hash[t]);
		q->has[t] = any = true;
	}
	*field = NULL;
	if (!any)
		return "give at least one of email, name and phone";
	*field = "limit";
	q->limit = limit ? limit : SUBJECT_LIMIT_DEFAULT;
	if (q->limit < 1 || q->limit > SUBJECT_LIMIT_MAX)
		return "must be an integer between 1 and 100";
	*field = "cursor";
	if (cursor && *cursor &&
	    (strlen(cursor) > SUBJECT_CURSOR_MAX ||
	        !cursor_decode(CURSOR_KIND, cursor, text, sizeof(text)) ||
	        !subject_pos_parse(text, &q->after)))
		return "not a cursor of this search";
	*field = NULL;
	return NULL;
}

/* ---- the search ------------------------------------------------------------ */

static const uint8_t before_all[16];

/* One page in the making: need is one more than the limit, so the extra
 * row tells whether another page follows. */
struct scan {
	struct arena *a;
	const struct opsd_config *cfg;
	const struct subject_query *q;
	struct subject_page *out;
	size_t need;
	int64_t deadline; /* mono_ms after which no further dedicated database is begun */
};

/* A page visits dedicated databases one after another; past this share of
 * the request timeout (at most 10 s) it stops before the next one and its
 * cursor resumes there, so a slow or hung database costs one page, not the
 * worker (the master's OPSD_REQUEST_TIMEOUT). */
#define SEARCH_BUDGET_MS(cfg)                                                                      \
	((cfg)->request_timeout > 0 && (cfg)->request_timeout * 1000 / 3 < 10000                   \
	        ? (int64_t)(cfg)->request_timeout * 1000 / 3                                       \
	        : 10000)

/* Where the search looks in hand: the control database, or one dedicated
 * org's. */
struct place {
	struct db *d;
	bool dedicated;
	const uint8_t *org; /* dedicated */
	bool org_held;      /* dedicated: the org's own hold */
	const char *label;  /* dedicated: host/name */
};

static struct db_param term_param(const struct subject_query *q, enum subject_term t)
{
	return terms[t].prefix ? DBP_STR(q->like[t]) : DBP_BLOB(q->hash[t], 32);
}

/* The statement over entity e at pl: the record's id, org, hold, strip and
 * archive state, its org's hold, then one column per search column that a
 * given term compares (used[] gets their indexes in e->cols). Records of
 * the shared tables count only for orgs the routing sends there. The
 * number of search columns; 0 when e has none for the terms given. */
static size_t entity_sql(const struct subject_query *q, const struct entity *e,
    const struct place *pl, struct buf *sql, size_t used[ENTITY_MAX_COLS])
{
	size_t k = 0;

	for (size_t i = 0; i < e->ncols && i < ENTITY_MAX_COLS; i++)
		if (e->cols[i].subject != SUBJECT_NONE && q->has[e->cols[i].subject])
			used[k++] = i;
	if (!k)
		return 0;
	buf_printf(sql,
	    "SELECT t.id, %s%s, t.legal_hold, t.pii_stripped_at IS NOT NULL,"
	    " t.archived_at IS NOT NULL, %s",
	    e->org_column ? "t." : "", e->org_column ? e->org_column : "NULL",
	    !pl->dedicated && e->org_column ? "IFNULL(o.legal_hold, 0)" : "0");
	for (size_t i = 0; i < k; i++)
		buf_printf(sql, ", t.%s %s", e->cols[used[i]].search_column,
		    terms[e->cols[used[i]].subject].prefix ? "LIKE ? ESCAPE '!'" : "= ?");
	buf_printf(sql, " FROM `%s` t", e->table);
	if (!pl->dedicated && e->org_column)
		buf_printf(sql, "%s JOIN orgs o ON o.id = t.%s%s", e->tenant ? "" : " LEFT",
		    e->org_column, e->tenant ? " AND o.db_mode = 'shared'" : "");
	buf_puts(sql, pl->dedicated ? " WHERE t.org_id = ? AND (" : " WHERE (");
	for (size_t i = 0; i < k; i++)
		buf_printf(sql, "%st.%s %s", i ? " OR " : "", e->cols[used[i]].search_column,
		    terms[e->cols[used[i]].subject].prefix ? "LIKE ? ESCAPE '!'" : "= ?");
	buf_puts(sql, ") AND t.id > ? ORDER BY t.id LIMIT ?");
	return k;
}

#define ROW_FIXED 6 /* id, org, hold, stripped, archived, org hold */

/* Adds the records of entities[ei] at pl after the id after. 0 or -1. */
static int scan_entity(struct scan *s, const struct place *pl, size_t ei, const uint8_t after[16])
{
	const struct entity *e = &entities[ei];
	size_t used[ENTITY_MAX_COLS], k, np = 0;
	struct db_param p[2 * ENTITY_MAX_COLS + 3];
	struct db_rows rows;
	struct buf sql;
	int rc = -1;

	buf_init(&sql);
	if (!(k = entity_sql(s->q, e, pl, &sql, used))) {
		buf_free(&sql);
		return 0;
	}
	for (size_t i = 0; i < k; i++)
		p[np++] = term_param(s->q, e->cols[used[i]].subject);
	if (pl->dedicated)
		p[np++] = DBP_BLOB(pl->org, 16);
	for (size_t i = 0; i < k; i++)
		p[np++] = term_param(s->q, e->cols[used[i]].subject);
	p[np++] = DBP_BLOB(after, 16);
	p[np++] = DBP_I64(s->need - s->out->n);
	if (buf_failed(&sql) || db_query(pl->d, s->a, buf_cstr(&sql), p, np, &rows) != 0)
		goto out;
	for (size_t r = 0; r < rows.nrows && s->out->n < s->need; r++) {
		struct subject_match *m = &s->out->items[s->out->n++];
		char *const *v = rows.val[r];

		memset(m, 0, sizeof(*m));
		m->e = e;
		if (rows.len[r][0] == 16)
			memcpy(m->id, v[0], 16);
		m->has_org = v[1] && rows.len[r][1] == 16;
		if (m->has_org)
			memcpy(m->org, v[1], 16);
		m->place = pl->dedicated ? SUBJECT_IN_DEDICATED
		           : e->tenant   ? SUBJECT_IN_SHARED
		                         : SUBJECT_IN_CONTROL;
		m->dedicated_db = pl->label;
		m->held = dbv_true(v[2]);
		m->stripped = dbv_true(v[3]);
		m->archived = dbv_true(v[4]);
		m->org_held = pl->dedicated ? pl->org_held : dbv_true(v[5]);
		for (size_t i = 0; i < k; i++)
			if (dbv_true(v[ROW_FIXED + i]))
				m->matched |= 1u << used[i];
		m->pos = (struct subject_pos){true, pl->dedicated, {0}, ei, {0}};
		if (pl->dedicated)
			memcpy(m->pos.org, pl->org, 16);
		memcpy(m->pos.id, m->id, 16);
	}
	rc = 0;
out:
	buf_free(&sql);
	return rc;
}

/* The control database: users and orgs, and the shared tenant tables. */
static int scan_control(struct scan *s, struct db *control)
{
	const struct subject_pos *from = &s->q->after;
	struct place pl = {.d = control};

	if (from->set && from->dedicated)
		return 0;
	for (size_t i = from->set ? from->entity : 0; i < ENTITY__MAX && s->out->n < s->need; i++)
		if (scan_entity(s, &pl, i,
		        from->set && i == from->entity ? from->id : before_all) != 0)
			return -1;
	return 0;
}

/* "host[:port]/name" of a dedicated target shown as mysql://user:***@…. */
static const char *db_label(struct arena *a, const char *redacted)
{
	struct db_uri u;
	char err[256];

	if (!redacted || !db_uri_parse(redacted, &u, err, sizeof(err)))
		return "unknown";
	return u.port ? arena_printf(a, "%s:%u/%s", u.host, u.port, u.dbname)
	              : arena_printf(a, "%s/%s", u.host, u.dbname);
}

static void unsearched(struct scan *s, const struct place *pl, const char *why)
{
	struct subject_unsearched *u = &s->out->unsearched[s->out->nunsearched++];
	char org[UUID_STR_LEN + 1];

	memcpy(u->org, pl->org, 16);
	u->dedicated_db = pl->label;
	dbv_uuid((const char *)pl->org, 16, org);
	log_msg(LL_WARN, "subject_search_unsearched", "the dedicated database of org %s (%s): %s",
	    org, pl->label, why);
}

/* Every dedicated org's database, by org id, from the cursor's on. A
 * database that cannot be asked is listed in unsearched; the others are
 * still searched. */
static int scan_dedicated(struct scan *s, struct db *control)
{
	const struct subject_pos *from = &s->q->after;
	bool resuming = from->set && from->dedicated;
	struct db_param p[] = {DBP_BLOB(resuming ? from->org : before_all, 16)};
	struct db_rows orgs;

	if (s->out->n >= s->need)
		return 0;
	if (db_query(control, s->a,
	        "SELECT id, JSON_VALUE(dedicated_target, '$.sealed'),"
	        " JSON_VALUE(dedicated_target, '$.redacted'), legal_hold FROM orgs"
	        " WHERE db_mode = 'dedicated' AND id >= ? ORDER BY id",
	        p, 1, &orgs) != 0)
		return -1;
	if (!(s->out->unsearched = arena_calloc(s->a, orgs.nrows + 1, sizeof(*s->out->unsearched))))
		return -1;
	for (size_t o = 0, visited = 0; o < orgs.nrows && s->out->n < s->need; o++, visited++) {
		struct place pl = {.dedicated = true,
		    .org = (const uint8_t *)orgs.val[o][0],
		    .org_held = dbv_true(orgs.val[o][3]),
		    .label = db_label(s->a, orgs.val[o][2])};
		bool here = resuming && memcmp(pl.org, from->org, 16) == 0;
		char err[256] = "no dedicated target";

		if (orgs.len[o][0] != 16)
			continue;
		if (visited > 0 && mono_ms() > s->deadline) {
			s->out->cut = s->out->more = true;
			s->out->resume = (struct subject_pos){.set = true, .dedicated = true};
			memcpy(s->out->resume.org, pl.org, 16);
			break;
		}
		if (!orgs.val[o][1] ||
		    !(pl.d = tenant_db_sealed(s->cfg, orgs.val[o][1], err, sizeof(err))) ||
		    db_ensure(pl.d) != 0) {
			unsearched(s, &pl, pl.d ? db_error(pl.d) : err);
			continue;
		}
		for (size_t i = here ? from->entity : 0; i < ENTITY__MAX && s->out->n < s->need;
		     i++) {
			if (!entities[i].tenant)
				continue;
			if (scan_entity(s, &pl, i,
			        here && i == from->entity ? from->id : before_all) != 0) {
				unsearched(s, &pl, db_error(pl.d));
				break;
			}
		}
	}
	return 0;
}

/* compliance.subjects_searched: which terms (by name), how many records,
 * whether a page follows or this one continued another, and how many
 * databases could not be asked. Never a searched value. */
static int audit_search(struct db *control, const struct audit_actor *actor,
    const struct subject_query *q, const struct subject_page *p)
{
	struct json_object *payload = json_object_new_object(), *fields = json_object_new_array();

	for (int t = SUBJECT_NONE + 1; t < SUBJECT__MAX; t++)
		if (q->has[t])
			json_object_array_add(fields,
			    json_object_new_string(subject_term_names[t]));
	json_object_object_add(payload, "fields", fields);
	json_object_object_add(payload, "results", json_object_new_int64((int64_t)p->n));
	json_object_object_add(payload, "more", json_object_new_boolean(p->more));
	json_object_object_add(payload, "continued", json_object_new_boolean(q->after.set));
	json_object_object_add(payload, "unsearched",
	    json_object_new_int64((int64_t)p->nunsearched));
	return audit_append_tx(control, actor, AA_COMPLIANCE_SUBJECTS_SEARCHED, NULL, "subjects",
	    NULL, payload);
}

int subject_search_audited(struct db *control, const struct opsd_config *cfg, struct arena *a,
    const struct audit_actor *actor, const struct subject_query *q, struct subject_page *out)
{
	struct scan s = {a, cfg, q, out, (size_t)q->limit + 1, mono_ms() + SEARCH_BUDGET_MS(cfg)};

	memset(out, 0, sizeof(*out));
	if (!(out->items = arena_calloc(a, s.need, sizeof(*out->items))))
		return -1;
	if (scan_control(&s, control) != 0 || scan_dedicated(&s, control) != 0)
		return -1;
	if (out->n > (size_t)q->limit) {
		out->more = true;
		out->cut = false; /* a full page: the next starts after its last item */
		out->n = (size_t)q->limit;
	}
	return audit_search(control, actor, q, out);
}

/* ---- the answer ------------------------------------------------------------ */

static const char *const place_names[] = {
    [SUBJECT_IN_CONTROL] = "control",
    [SUBJECT_IN_SHARED] = "shared",
    [SUBJECT_IN_DEDICATED] = "dedicated",
};

static struct json_object *uuid_json(const uint8_t id[16])
{
	char s[UUID_STR_LEN + 1];

	dbv_uuid((const char *)id, 16, s);
	return json_object_new_string(s);
}

static struct json_object *match_json(const struct subject_match *m)
{
	struct json_object *o = json_object_new_object(), *matched = json_object_new_array();

	json_object_object_add(o, "entity", json_object_new_string(m->e->name));
	json_object_object_add(o, "id", uuid_json(m->id));
	json_object_object_add(o, "orgId", m->has_org ? uuid_json(m->org) : NULL);
	json_object_object_add(o, "database", json_object_new_string(place_names[m->place]));
	if (m->place == SUBJECT_IN_DEDICATED)
		json_object_object_add(o, "dedicatedDb", json_object_new_string(m->dedicated_db));
	for (size_t i = 0; i < m->e->ncols; i++) {
		struct json_object *x;

		if (!(m->matched & (1u << i)))
			continue;
		x = json_object_new_object();
		json_object_object_add(x, "term",
		    json_object_new_string(subject_term_names[m->e->cols[i].subject]));
		json_object_object_add(x, "field", json_object_new_string(m->e->cols[i].field));
		json_object_array_add(matched, x);
	}
	json_object_object_add(o, "matched", matched);
	json_object_object_add(o, "piiStripped", json_object_new_boolean(m->stripped));
	json_object_object_add(o, "legalHold", json_object_new_boolean(m->held));
	json_object_object_add(o, "orgLegalHold", json_object_new_boolean(m->org_held));
	json_object_object_add(o, "archived", json_object_new_boolean(m->archived));
	return o;
}

struct json_object *subject_page_json(const struct subject_page *p)
{
	struct json_object *o = json_object_new_object(), *items = json_object_new_array(),
	                   *skipped = json_object_new_array();
	char pos[160], cur[256];

	for (size_t i = 0; i < p->n; i++)
		json_object_array_add(items, match_json(&p->items[i]));
	json_object_object_add(o, "items", items);
	if (p->more && (p->cut || p->n)) {
		subject_pos_format(p->cut ? &p->resume : &p->items[p->n - 1].pos, pos, sizeof(pos));
		cursor_encode(CURSOR_KIND, pos, cur, sizeof(cur));
		json_object_object_add(o, "nextCursor", json_object_new_string(cur));
	} else {
		json_object_object_add(o, "nextCursor", NULL);
	}
	for (size_t i = 0; i < p->nunsearched; i++) {
		struct json_object *u = json_object_new_object();

		json_object_object_add(u, "orgId", uuid_json(p->unsearched[i].org));
		json_object_object_add(u, "database", json_object_new_string("dedicated"));
		json_object_object_add(u, "dedicatedDb",
		    json_object_new_string(p->unsearched[i].dedicated_db));
		json_object_array_add(skipped, u);
	}
	json_object_object_add(o, "unsearched", skipped);
	return o;
}
