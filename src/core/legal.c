#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/legal.h"
#include "core/mail.h"
#include "core/principal_cache.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/util.h"

bool legal_type_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > LEGAL_TYPE_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-'))
			return false;
	return true;
}

bool legal_version_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > LEGAL_VERSION_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

/* ---- the per-worker cache ---------------------------------------------- */

/* Another host's publish is seen after at most this long. */
#define CACHE_TTL_MS 1000

static struct {
	uint64_t *shared;    /* publish counter in shared memory */
	uint64_t generation; /* the counter when the cache was filled */
	int64_t fetched_mono;
	int64_t next_change; /* realtime ms of the next scheduled version */
	bool valid;
	struct legal_doc *docs;
	size_t n;
} cache;

void legal_attach_generation(uint64_t *shared)
{
	cache.shared = shared;
}

void legal_published(void)
{
	if (cache.shared)
		__atomic_add_fetch(cache.shared, 1, __ATOMIC_RELEASE);
	cache.valid = false;
}

static void cache_clear(void)
{
	for (size_t i = 0; i < cache.n; i++)
		free(cache.docs[i].json);
	free(cache.docs);
	cache.docs = NULL;
	cache.n = 0;
	cache.valid = false;
}

static bool cache_fresh(void)
{
	if (!cache.valid || mono_ms() - cache.fetched_mono >= CACHE_TTL_MS)
		return false;
	if (cache.next_change && now_ms() >= cache.next_change)
		return false;
	return !cache.shared || __atomic_load_n(cache.shared, __ATOMIC_ACQUIRE) == cache.generation;
}

char *legal_doc_json(const struct db_rows *rows, size_t i, size_t *len)
{
	struct json_object *o = json_object_new_object();
	const char *s;
	char *copy;

	json_object_object_add(o, "type", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "version", dbv_json_str(rows, i, 2));
	json_object_object_add(o, "content", dbv_json_str(rows, i, 3));
	json_object_object_add(o, "effectiveAt", dbv_json_time(rows, i, 5));
	json_object_object_add(o, "contentSha256", dbv_json_str(rows, i, 4));
	json_object_object_add(o, "publishedAt", dbv_json_time(rows, i, 6));
	s = json_object_to_json_string_length(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
	copy = malloc(*len + 2);
	if (copy) {
		memcpy(copy, s, *len);
		copy[(*len)++] = '\n';
		copy[*len] = '\0';
	}
	json_object_put(o);
	return copy;
}

#define DOC_COLUMNS LEGAL_DOC_COLUMNS

static int cache_fill(struct db *d)
{
	struct arena *a = arena_new(64 * 1024);
	struct db_rows rows, next;
	int rc = -1;

	if (!a)
		return -1;
	/* The current version of each type: the latest effective one. */
	if (db_query(d, a,
	        "SELECT " DOC_COLUMNS " FROM (SELECT " DOC_COLUMNS ", ROW_NUMBER() OVER"
	        " (PARTITION BY type ORDER BY effective_at DESC, id DESC) AS rn"
	        " FROM legal_documents WHERE effective_at <= NOW(3)) t WHERE rn = 1 ORDER BY type",
	        NULL, 0, &rows) != 0 ||
	    db_query(d, a,
	        "SELECT CAST(UNIX_TIMESTAMP(MIN(effective_at)) * 1000 AS SIGNED)"
	        " FROM legal_documents WHERE effective_at > NOW(3)",
	        NULL, 0, &next) != 0)
		goto out;
	cache_clear();
	cache.docs = calloc(rows.nrows ? rows.nrows : 1, sizeof(*cache.docs));
	if (!cache.docs)
		goto out;
	for (size_t i = 0; i < rows.nrows; i++) {
		struct legal_doc *doc = &cache.docs[cache.n];
		struct json_object *t = dbv_json_time(&rows, i, 5);

		if (rows.len[i][0] != 16)
			continue;
		memcpy(doc->id, rows.val[i][0], 16);
		dbv_uuid(rows.val[i][0], 16, doc->id_s);
		str_copy(doc->type, rows.val[i][1], sizeof(doc->type));
		str_copy(doc->version, rows.val[i][2], sizeof(doc->version));
		str_copy(doc->effective_at, t ? json_object_get_string(t) : "",
		    sizeof(doc->effective_at));
		json_object_put(t);
		snprintf(doc->etag, sizeof(doc->etag), "\"%s\"", doc->id_s);
		doc->json = legal_doc_json(&rows, i, &doc->json_len);
		if (!doc->json)
			goto out;
		cache.n++;
	}
	cache.next_change =
	    next.nrows == 1 && next.val[0][0] ? strtoll(next.val[0][0], NULL, 10) : 0;
	cache.generation = cache.shared ? __atomic_load_n(cache.shared, __ATOMIC_ACQUIRE) : 0;
	cache.fetched_mono = mono_ms();
	cache.valid = true;
	rc = 0;
out:
	arena_free(a);
	return rc;
}

int legal_current(struct db *d, const struct legal_doc **docs, size_t *n)
{
	if (!cache_fresh() && cache_fill(d) != 0) {
		*docs = NULL;
		*n = 0;
		return -1;
	}
	*docs = cache.docs;
	*n = cache.n;
	return 0;
}

const struct legal_doc *legal_current_of(const struct legal_doc *docs, size_t n, const char *type)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(docs[i].type, type) == 0)
			return &docs[i];
	return NULL;
}

/* ---- publish ----------------------------------------------------------- */

struct publish_tx {
	const struct audit_actor *actor;
	const char *type, *version, *content;
	char when[DB_TIME_LEN + 1];
	char when_rfc[32];
	char sha[65];
	bool notify;
	struct opsd_uuid id;
	char *id_s;
	bool duplicate;
};

static int publish_fn(struct db *d, void *arg)
{
	struct publish_tx *x = arg;
	struct opsd_uuid by;
	struct json_object *payload;
	struct db_param p[] = {
	    DBP_BLOB(x->id.b, 16),
	    DBP_STR(x->type),
	    DBP_STR(x->version),
	    DBP_STR(x->content),
	    DBP_STR(x->sha),
	    DBP_STR(x->when),
	    x->actor->user_id && uuid_parse(x->actor->user_id, &by) ? DBP_BLOB(by.b, 16) : DBP_NULL,
	    DBP_I64(x->notify),
	};

	if (db_exec(d,
	        "INSERT INTO legal_documents (id, type, version, content, content_sha256, effective_at,"
	        " created_by, notify) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	        p, countof(p), NULL) != 0) {
		x->duplicate = db_duplicate(d);
		return x->duplicate ? 1 : -1;
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "type", json_object_new_string(x->type));
	json_object_object_add(payload, "version", json_object_new_string(x->version));
	json_object_object_add(payload, "effectiveAt", json_object_new_string(x->when_rfc));
	json_object_object_add(payload, "contentSha256", json_object_new_string(x->sha));
	json_object_object_add(payload, "notify", json_object_new_boolean(x->notify));
	return audit_append(d, x->actor, AA_LEGAL_UPDATED, NULL, "legal_document", x->id_s,
	    payload);
}

enum legal_err legal_publish(struct db *d, const struct audit_actor *actor, const char *type,
    const char *version, const char *content, int64_t effective_ms, bool notify,
    char id_out[UUID_STR_LEN + 1])
{
	struct publish_tx x = {actor, type, version, content, "", "", "", notify, {{0}}, id_out,
	    false};
	int64_t when = effective_ms ? effective_ms : now_ms();
	int rc;

	db_time_from_ms(when, x.when);
	format_rfc3339(when, x.when_rfc);
	sha256_hex(content, strlen(content), x.sha);
	uuid7_new(&x.id);
	uuid_format(&x.id, id_out);
	rc = db_tx(d, publish_fn, &x);
	if (x.duplicate)
		return LEGAL_DUPLICATE;
	if (rc != 0)
		return LEGAL_DB_ERROR;
	legal_published();
	return LEGAL_OK;
}

/* ---- acceptance -------------------------------------------------------- */

/* From the host's cache when it has the user's state for these documents (a new current
 * version is a new entry; the user's acceptance drops theirs). */
int legal_pending(struct db *d, struct arena *a, const char *user_id, const struct legal_doc *docs,
    size_t n, bool *pending, char (*accepted_at)[32])
{
	struct opsd_uuid u;
	struct db_param p[1 + 64];
	char sql[256 + 64 * 3], times[64][32];
	uint8_t ids[64][16];
	struct db_rows rows;
	size_t np = 0;
	uint64_t epoch = pcache_epoch();

	if (!accepted_at)
		accepted_at = times;
	for (size_t i = 0; i < n; i++) {
		pending[i] = true;
		accepted_at[i][0] = '\0';
	}
	if (n == 0)
		return 0;
	if (n > 64 || !uuid_parse(user_id, &u))
		return -1;
	for (size_t i = 0; i < n; i++)
		memcpy(ids[i], docs[i].id, 16);
	if (pcache_legal_get(user_id, ids, n, pending, accepted_at))
		return 0;
	/* One indexed lookup: the user's acceptances of the current ids. */
	p[np++] = DBP_BLOB(u.b, 16);
	str_copy(sql,
	    "SELECT document_id, accepted_at FROM legal_acceptances WHERE user_id = ?"
	    " AND document_id IN (?",
	    sizeof(sql));
	p[np++] = DBP_BLOB(docs[0].id, 16);
	for (size_t i = 1; i < n; i++) {
		strncat(sql, ", ?", sizeof(sql) - strlen(sql) - 1);
		p[np++] = DBP_BLOB(docs[i].id, 16);
	}
	strncat(sql, ")", sizeof(sql) - strlen(sql) - 1);
	if (db_query(d, a, sql, p, np, &rows) != 0)
		return -1;
	for (size_t r = 0; r < rows.nrows; r++)
		for (size_t i = 0; i < n; i++)
			if (rows.len[r][0] == 16 && memcmp(rows.val[r][0], docs[i].id, 16) == 0) {
				struct json_object *t = dbv_json_time(&rows, r, 1);

				pending[i] = false;
				str_copy(accepted_at[i], t ? json_object_get_string(t) : "", 32);
				json_object_put(t);
			}
	pcache_legal_put(user_id, ids, n, pending, accepted_at, epoch);
	return 0;
}

/* ---- notification ------------------------------------------------------ */

#define NOTIFY_BATCH 200

struct notify_tx {
	const struct opsd_config *cfg;
	struct arena *a;
	bool worked;
};

/* One batch of one document per transaction: the emails queued and the
 * progress marker commit together, so a crash repeats nothing. */
static int notify_fn(struct db *d, void *arg)
{
	struct notify_tx *x = arg;
	struct audit_actor actor = {NULL, "system", NULL, NULL};
	struct db_rows doc, users;
	char subject[160], body[512];
	struct db_param lim[] = {DBP_I64(NOTIFY_BATCH)};

	x->worked = false;
	if (db_query(d, x->a,
	        "SELECT id, type, version, notify_after FROM legal_documents"
	        " WHERE notify = 1 AND notified_at IS NULL AND effective_at <= NOW(3)"
	        " ORDER BY created_at LIMIT 1"
	        " FOR UPDATE SKIP LOCKED",
	        NULL, 0, &doc) != 0)
		return -1;
	if (doc.nrows == 0)
		return 0;
	x->worked = true;
	{
		struct db_param p[] = {DBP_I64(doc.val[0][3] != NULL),
		    doc.val[0][3] ? DBP_BLOB(doc.val[0][3], doc.len[0][3]) : DBP_NULL, lim[0]};

		if (db_query(d, x->a,
		        "SELECT id, email FROM users WHERE disabled_at IS NULL AND service = 0"
		        " AND (? = 0 OR id > ?) ORDER BY id LIMIT ?",
		        p, countof(p), &users) != 0)
			return -1;
	}
	snprintf(subject, sizeof(subject), "Updated %s: version %s", doc.val[0][1], doc.val[0][2]);
	snprintf(body, sizeof(body),
	    "A new version (%s) of our %s document has been published.\n"
	    "Please read it and accept it when you next sign in.\n",
	    doc.val[0][2], doc.val[0][1]);
	for (size_t i = 0; i < users.nrows; i++) {
		char id[UUID_STR_LEN + 1];
		enum mail_status st;

		if (mail_enqueue(d, x->cfg, &actor, "legal_notice", users.val[i][1], subject, body,
		        id, &st) == MAIL_DB_ERROR)
			return -1;
	}
	{
		bool done = users.nrows < NOTIFY_BATCH;
		size_t last = users.nrows ? users.nrows - 1 : 0;
		struct db_param p[] = {
		    DBP_I64(users.nrows > 0),
		    users.nrows ? DBP_BLOB(users.val[last][0], users.len[last][0]) : DBP_NULL,
		    DBP_I64(done),
		    DBP_BLOB(doc.val[0][0], doc.len[0][0]),
		};

		return db_exec(d,
		    "UPDATE legal_documents SET notify_after = IF(?, ?, notify_after),"
		    " notified_at = IF(?, NOW(3), NULL) WHERE id = ?",
		    p, countof(p), NULL);
	}
}

int legal_notify_batch(struct db *d, const struct opsd_config *cfg)
{
	struct notify_tx x = {cfg, arena_new(64 * 1024), false};
	int rc = 0;

	if (!x.a)
		return -1;
	/* A few batches per run, then give the other jobs their turn. */
	for (int i = 0; i < 5 && rc == 0; i++) {
		arena_reset(x.a);
		rc = db_tx(d, notify_fn, &x);
		if (!x.worked)
			break;
	}
	arena_free(x.a);
	return rc;
}

/* ---- acceptance ---------------------------------------------------------- */

struct accept_tx {
	struct arena *a;
	const struct audit_actor *actor;
	const char *user_agent, *org_id;
	const struct legal_doc *doc;
	char *accepted_at;
};

static int accept_fn(struct db *d, void *arg)
{
	struct accept_tx *x = arg;
	struct opsd_uuid u;
	char ua[256];
	unsigned long long inserted = 0;
	struct db_rows rows;
	struct json_object *payload;

	uuid_parse(x->actor->user_id, &u);
	str_copy_utf8(ua, x->user_agent, sizeof(ua));
	{
		struct db_param p[] = {DBP_BLOB(u.b, 16), DBP_BLOB(x->doc->id, 16),
		    DBP_STR(x->actor->ip), DBP_STR(ua)};

		/* Accepting twice keeps the first record. */
		if (db_exec(d,
		        "INSERT IGNORE INTO legal_acceptances (user_id, document_id,"
		        " accepted_at, ip, user_agent) VALUES (?, ?, NOW(3), ?, ?)",
		        p, countof(p), &inserted) != 0)
			return -1;
	}
	{
		struct db_param p[] = {DBP_BLOB(u.b, 16), DBP_BLOB(x->doc->id, 16)};

		if (db_query(d, x->a,
		        "SELECT accepted_at FROM legal_acceptances"
		        " WHERE user_id = ? AND document_id = ?",
		        p, 2, &rows) != 0 ||
		    rows.nrows != 1)
			return -1;
		payload = dbv_json_time(&rows, 0, 0);
		str_copy(x->accepted_at, payload ? json_object_get_string(payload) : "", 32);
		json_object_put(payload);
	}
	if (inserted == 0)
		return 0;
	pcache_invalidate(PCACHE_INV_USER, x->actor->user_id);
	payload = json_object_new_object();
	json_object_object_add(payload, "type", json_object_new_string(x->doc->type));
	json_object_object_add(payload, "version", json_object_new_string(x->doc->version));
	return audit_append(d, x->actor, AA_LEGAL_ACCEPTED, x->org_id[0] ? x->org_id : NULL,
	    "legal_document", x->doc->id_s, payload);
}

int legal_accept(struct db *d, struct arena *a, const struct audit_actor *actor,
    const char *user_agent, const char *org_id, const struct legal_doc *doc, char accepted_at[32])
{
	struct accept_tx x = {a, actor, user_agent, org_id, doc, accepted_at};

	return db_tx(d, accept_fn, &x);
}

/* ---- the acceptance report --------------------------------------------- */

/* Active users: enabled people (service principals accept nothing). */
#define ACTIVE "u.disabled_at IS NULL AND u.service = 0"

static struct json_object *pending_user_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 0));
	json_object_object_add(o, "email", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "name", dbv_json_str(rows, i, 2));
	json_object_object_add(o, "orgId", dbv_json_uuid(rows, i, 3));
	return o;
}

/* {"items": [...], "nextCursor": ...}: rows holds up to limit + 1 users. */
static struct json_object *pending_page(const struct db_rows *rows, long long limit)
{
	struct json_object *page = json_object_new_object(), *items = json_object_new_array();
	size_t shown = rows->nrows > (size_t)limit ? (size_t)limit : rows->nrows;

	for (size_t i = 0; i < shown; i++)
		json_object_array_add(items, pending_user_json(rows, i));
	json_object_object_add(page, "items", items);
	if (rows->nrows > shown) {
		char last[UUID_STR_LEN + 1], cur[128];

		dbv_uuid(rows->val[shown - 1][0], rows->len[shown - 1][0], last);
		cursor_encode("legal_report", last, cur, sizeof(cur));
		json_object_object_add(page, "nextCursor", json_object_new_string(cur));
	} else {
		json_object_object_add(page, "nextCursor", NULL);
	}
	return page;
}

enum legal_report_rc legal_report(struct db *d, struct arena *a, const char *type,
    const char *version, long long limit, const struct opsd_uuid *after, struct json_object **out)
{
	const struct legal_doc *docs, *cur;
	struct db_rows doc, counts, rows;
	size_t n;

	*out = NULL;
	if (legal_current(d, &docs, &n) != 0)
		return LEGAL_REPORT_DB_ERROR;
	cur = legal_current_of(docs, n, type);
	if (!version && !cur)
		return LEGAL_REPORT_NO_CURRENT;
	if (!version)
		version = cur->version;
	if (!legal_version_valid(version))
		return LEGAL_REPORT_NO_VERSION;
	{
		struct db_param p[] = {DBP_STR(type), DBP_STR(version)};

		if (db_query(d, a,
		        "SELECT id, type, version FROM legal_documents WHERE type = ? AND"
		        " version = ?",
		        p, 2, &doc) != 0)
			return LEGAL_REPORT_DB_ERROR;
		if (doc.nrows != 1)
			return LEGAL_REPORT_NO_VERSION;
	}
	{
		struct db_param p[] = {DBP_BLOB(doc.val[0][0], 16)};

		if (db_query(d, a,
		        "SELECT COUNT(*), COUNT(a.user_id) FROM users u LEFT JOIN legal_acceptances a"
		        " ON a.user_id = u.id AND a.document_id = ? WHERE " ACTIVE,
		        p, 1, &counts) != 0)
			return LEGAL_REPORT_DB_ERROR;
	}
	{
		struct db_param p[] = {DBP_BLOB(doc.val[0][0], 16), DBP_I64(after != NULL),
		    after ? DBP_BLOB(after->b, 16) : DBP_NULL, DBP_I64(limit + 1)};

		if (db_query(d, a,
		        "SELECT u.id, u.email, u.name, u.org_id FROM users u WHERE " ACTIVE
		        " AND NOT EXISTS (SELECT 1 FROM legal_acceptances a WHERE a.user_id = u.id"
		        " AND a.document_id = ?) AND (? = 0 OR u.id > ?) ORDER BY u.id LIMIT ?",
		        p, countof(p), &rows) != 0)
			return LEGAL_REPORT_DB_ERROR;
	}
	{
		long long total = strtoll(counts.val[0][0], NULL, 10);
		long long accepted = strtoll(counts.val[0][1], NULL, 10);

		*out = json_object_new_object();
		json_object_object_add(*out, "type", json_object_new_string(type));
		json_object_object_add(*out, "version", dbv_json_str(&doc, 0, 2));
		json_object_object_add(*out, "accepted", json_object_new_int64(accepted));
		json_object_object_add(*out, "pending", json_object_new_int64(total - accepted));
		json_object_object_add(*out, "pendingUsers", pending_page(&rows, limit));
	}
	return LEGAL_REPORT_OK;
}
