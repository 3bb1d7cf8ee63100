/* Audit retention (doc/architecture.md "The audit log"): events older than
 * OPSD_AUDIT_RETENTION_DAYS are deleted in runs of consecutive seqs, one transaction per batch, and
 * each run is replaced by a signed anchor so /audit/verify still walks the
 * whole chain. Events about a subject under legal hold are kept; so is
 * anything that does not verify (retention never deletes evidence). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/audit_internal.h"
#include "core/legal_hold.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"

#define PURGE_BATCH 1000
#define JOB_MAX_EVENTS 20000

struct purge {
	const struct held_set *held;
	const struct audit_keys *keys; /* n == 0 only for a dry run */
	char cutoff[DB_TIME_LEN + 1];
	bool dry_run;
	int64_t after, max_seq;
	struct arena *a;
	/* one batch; reset at the start of every attempt (db_tx retries) */
	struct audit_anchor run;
	bool run_open;
	uint64_t expired, deleted, kept, anchors;
	size_t nrows;
	int64_t last_seq, refused_at;
};

/* ---- which events are about a held subject ----------------------------- */

static bool uuid_col_held(const struct held_set *h, const char *v, unsigned long len)
{
	return v && len == 16 && held_set_has(h, (const uint8_t *)v);
}

static bool uuid_text_held(const struct held_set *h, const char *s, size_t len)
{
	char buf[UUID_STR_LEN + 1];
	struct opsd_uuid u;

	if (len != UUID_STR_LEN)
		return false;
	memcpy(buf, s, UUID_STR_LEN);
	buf[UUID_STR_LEN] = '\0';
	return uuid_parse(buf, &u) && held_set_has(h, u.b);
}

/* Every UUID-shaped run of text in the payload (batch events name their
 * ids there rather than in target_id). */
static bool payload_held(const struct held_set *h, const char *p)
{
	const char *end = p ? p + strlen(p) : NULL;

	for (const char *s = p; s && (s = strchr(s, '-')) != NULL; s++) {
		/* a UUID's first hyphen is its 9th character */
		if (s - p >= 8 && end - (s - 8) >= UUID_STR_LEN &&
		    uuid_text_held(h, s - 8, UUID_STR_LEN))
			return true;
	}
	return false;
}

static bool event_held(const struct held_set *h, const struct db_rows *rows, size_t r)
{
	char *const *v = rows->val[r];
	const unsigned long *len = rows->len[r];

	if (!h->n)
		return false;
	return uuid_col_held(h, v[AR_ACTOR_ID], len[AR_ACTOR_ID]) ||
	       uuid_col_held(h, v[AR_ORG_ID], len[AR_ORG_ID]) ||
	       (v[AR_TARGET_ID] && uuid_text_held(h, v[AR_TARGET_ID], len[AR_TARGET_ID])) ||
	       payload_held(h, v[AR_PAYLOAD]);
}

/* ---- anchors -------------------------------------------------------------- */

/* Whether a stored anchor verifies under the key of the ring its key_id
 * names (a previous key's still does). */
static bool anchor_ok(const struct purge *x, const struct audit_anchor *an, const char *key_id,
    const char *sig)
{
	const uint8_t *key = audit_keys_find(x->keys, key_id);

	return key && audit_anchor_valid(an, key, (const uint8_t *)sig);
}

/* The anchor ending at last_seq (before) or starting at first_seq (after)
 * when it verifies and links to the run: then the run absorbs it, and the
 * merged anchor is signed under the current key. A forged or foreign
 * anchor is left alone for verify to report. */
static int take_neighbour(struct db *d, struct purge *x, bool before, struct audit_anchor *out)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(before ? x->run.first_seq - 1 : x->run.last_seq + 1)};
	struct audit_anchor an;

	if (db_query(d, x->a,
	        before ? "SELECT first_seq, last_seq, prev_hash, last_hash, signature, key_id"
	                 " FROM audit_anchors WHERE last_seq = ? FOR UPDATE"
	               : "SELECT first_seq, last_seq, prev_hash, last_hash, signature, key_id"
	                 " FROM audit_anchors WHERE first_seq = ? FOR UPDATE",
	        p, 1, &rows) != 0)
		return -1;
	if (rows.nrows != 1 || rows.len[0][2] != 32 || rows.len[0][3] != 32 || rows.len[0][4] != 32)
		return 0;
	an.first_seq = strtoll(rows.val[0][0], NULL, 10);
	an.last_seq = strtoll(rows.val[0][1], NULL, 10);
	memcpy(an.prev_hash, rows.val[0][2], 32);
	memcpy(an.last_hash, rows.val[0][3], 32);
	if (!anchor_ok(x, &an, rows.val[0][5], rows.val[0][4]))
		return 0;
	if (before ? memcmp(an.last_hash, x->run.prev_hash, 32) != 0
	           : memcmp(an.prev_hash, x->run.last_hash, 32) != 0)
		return 0;
	{
		struct db_param del[] = {DBP_I64(an.first_seq)};

		if (db_exec(d, "DELETE FROM audit_anchors WHERE first_seq = ?", del, 1, NULL) != 0)
			return -1;
	}
	*out = an;
	return 1;
}

/* Deletes the run's events and leaves one anchor over them, merged with
 * the anchors on either side. */
static int close_run(struct db *d, struct purge *x)
{
	struct audit_anchor an = x->run, nb;
	uint8_t sig[32];
	int rc;

	if (!x->run_open)
		return 0;
	x->run_open = false;
	x->deleted += (uint64_t)(an.last_seq - an.first_seq + 1);
	x->anchors++;
	if (x->dry_run)
		return 0;
	{
		struct db_param p[] = {DBP_I64(an.first_seq), DBP_I64(an.last_seq)};

		if (db_exec(d, "DELETE FROM audit_events WHERE seq BETWEEN ? AND ?", p, 2, NULL) !=
		    0)
			return -1;
	}
	if ((rc = take_neighbour(d, x, true, &nb)) < 0)
		return -1;
	if (rc > 0) {
		an.first_seq = nb.first_seq;
		memcpy(an.prev_hash, nb.prev_hash, 32);
	}
	if ((rc = take_neighbour(d, x, false, &nb)) < 0)
		return -1;
	if (rc > 0) {
		an.last_seq = nb.last_seq;
		memcpy(an.last_hash, nb.last_hash, 32);
	}
	audit_anchor_sign(&an, x->keys->key[0], sig);
	{
		struct db_param p[] = {
		    DBP_I64(an.first_seq),
		    DBP_I64(an.last_seq),
		    DBP_BLOB(an.prev_hash, 32),
		    DBP_BLOB(an.last_hash, 32),
		    DBP_STR(x->keys->id[0]),
		    DBP_BLOB(sig, 32),
		};

		return db_exec(d,
		    "INSERT INTO audit_anchors (first_seq, last_seq, prev_hash, last_hash, key_id,"
		    " signature) VALUES (?, ?, ?, ?, ?, ?)",
		    p, countof(p), NULL);
	}
}

/* ---- one batch ------------------------------------------------------------ */

/* The hash event seq must link back to when the event before it is not in
 * hand: zeros for the first event, else the stored event seq - 1 or the
 * anchor that ends there. 1 with out filled, 0 when nothing precedes it
 * (rows removed without an anchor: the break verify reports, which
 * retention must not erase), -1 on a database error. */
static int chain_link(struct db *d, struct purge *x, int64_t seq, uint8_t out[32])
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(seq - 1)};

	if (seq == 1) {
		memset(out, 0, 32);
		return 1;
	}
	if (db_query(d, x->a, "SELECT hash FROM audit_events WHERE seq = ?", p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && rows.len[0][0] == 32) {
		memcpy(out, rows.val[0][0], 32);
		return 1;
	}
	if (db_query(d, x->a,
	        "SELECT first_seq, prev_hash, last_hash, signature, key_id FROM audit_anchors"
	        " WHERE last_seq = ?",
	        p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && rows.len[0][1] == 32 && rows.len[0][2] == 32 &&
	    rows.len[0][3] == 32) {
		struct audit_anchor an = {.first_seq = strtoll(rows.val[0][0], NULL, 10),
		    .last_seq = seq - 1};

		memcpy(an.prev_hash, rows.val[0][1], 32);
		memcpy(an.last_hash, rows.val[0][2], 32);
		/* a dry run without the key can only count */
		if (!x->keys->n || anchor_ok(x, &an, rows.val[0][4], rows.val[0][3])) {
			memcpy(out, an.last_hash, 32);
			return 1;
		}
	}
	return 0;
}

static int purge_batch(struct db *d, void *ctx)
{
	struct purge *x = ctx;
	struct db_rows rows, head;
	struct db_param p[] = {DBP_I64(x->after), DBP_I64(PURGE_BATCH + 1)};
	const uint8_t *prev_row_hash = NULL;
	int64_t prev_seq = -1;
	size_t ahead = (size_t)-1;

	x->run_open = false;
	x->expired = x->deleted = x->kept = x->anchors = 0;
	x->nrows = 0;
	x->last_seq = x->after;
	x->refused_at = 0;
	arena_reset(x->a);
	/* The chain head lock orders this batch with every append and with a
	 * purge on another host. */
	if (db_query(d, x->a,
	        x->dry_run ? "SELECT seq, hash FROM audit_chain_head WHERE id = 1"
	                   : "SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE",
	        NULL, 0, &head) != 0)
		return -1;
	/* One row more than the batch: the event after the last one looked at
	 * must link to it before that one may go. */
	if (db_query(d, x->a,
	        "SELECT " AUDIT_ROW_COLUMNS " FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
	        p, countof(p), &rows) != 0)
		return -1;
	for (size_t r = 0; r < rows.nrows; r++) {
		char *const *v = rows.val[r];
		int64_t seq = strtoll(v[AR_SEQ], NULL, 10);

		if (r == PURGE_BATCH || seq > x->max_seq) {
			ahead = r;
			break;
		}
		bool next = seq == prev_seq + 1;
		/* expired: stored times compare as text ("YYYY-MM-DD HH:MM:SS.mmm") */
		bool expired = v[AR_OCCURRED_AT] && strcmp(v[AR_OCCURRED_AT], x->cutoff) < 0;
		bool held = expired && event_held(x->held, &rows, r);
		bool del = expired && !held;
		char id[UUID_STR_LEN + 1];
		uint8_t link[32];
		int lk = 1;

		/* Each event is checked before it may go: its own hash and its link
		 * to what precedes it (in this batch, or stored, or anchored). */
		if (next && prev_row_hash)
			memcpy(link, prev_row_hash, 32);
		else if ((lk = chain_link(d, x, seq, link)) < 0)
			return -1;
		if (lk == 0 || !audit_row_hash_ok(&rows, r, link, id)) {
			/* A broken link may mean the event before it was altered (its
			 * hash recomputed): that one stays too. A broken hash of its
			 * own marks only this event. */
			x->refused_at = seq;
			if (next && (lk == 0 || rows.len[r][AR_PREV_HASH] != 32 ||
			                memcmp(v[AR_PREV_HASH], link, 32) != 0))
				x->run_open = false;
			break;
		}
		if (x->run_open && (!del || !next))
			if (close_run(d, x) != 0)
				return -1;
		if (del) {
			if (!x->run_open) {
				x->run_open = true;
				x->run.first_seq = seq;
				memcpy(x->run.prev_hash, v[AR_PREV_HASH], 32);
			}
			x->run.last_seq = seq;
			memcpy(x->run.last_hash, v[AR_HASH], 32);
		}
		x->expired += expired;
		x->kept += held;
		prev_seq = seq;
		prev_row_hash = (const uint8_t *)v[AR_HASH];
		x->last_seq = seq;
		x->nrows++;
	}
	/* The last event looked at links forward: to the event after it, or
	 * it is the chain head. Otherwise it stays (it may be the altered one). */
	if (!x->refused_at && x->run_open && prev_row_hash) {
		bool linked = true;

		if (ahead != (size_t)-1 &&
		    strtoll(rows.val[ahead][AR_SEQ], NULL, 10) == prev_seq + 1)
			linked = rows.len[ahead][AR_PREV_HASH] == 32 &&
			         memcmp(rows.val[ahead][AR_PREV_HASH], prev_row_hash, 32) == 0;
		else if (ahead == (size_t)-1 && head.nrows == 1 &&
		         strtoll(head.val[0][0], NULL, 10) == prev_seq)
			linked =
			    head.len[0][1] == 32 && memcmp(head.val[0][1], prev_row_hash, 32) == 0;
		if (!linked) {
			x->refused_at = ahead != (size_t)-1
			                    ? strtoll(rows.val[ahead][AR_SEQ], NULL, 10)
			                    : prev_seq;
			x->run_open = false;
		}
	}
	return close_run(d, x);
}

static struct json_object *purged_payload(const struct audit_purge_result *res)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "cutoff", json_object_new_string(res->cutoff));
	json_object_object_add(o, "deleted", json_object_new_int64((int64_t)res->deleted));
	json_object_object_add(o, "keptLegalHold", json_object_new_int64((int64_t)res->kept_held));
	json_object_object_add(o, "anchors", json_object_new_int64((int64_t)res->anchors));
	json_object_object_add(o, "complete",
	    json_object_new_boolean(!res->more && !res->refused_at));
	return o;
}

int audit_purge(struct db *d, const struct opsd_config *cfg, const struct audit_actor *actor,
    const struct audit_keys *keys, int64_t cutoff_ms, bool dry_run, uint64_t max_events,
    struct audit_purge_result *res)
{
	static const struct audit_keys none;
	struct purge x = {.keys = keys ? keys : &none, .dry_run = dry_run};
	struct held_set held = {0};
	struct db_rows rows;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	format_rfc3339(cutoff_ms, res->cutoff);
	db_time_from_ms(cutoff_ms, x.cutoff);
	if (!dry_run && !x.keys->n)
		return -1;
	if (!(x.a = arena_new(512 * 1024)))
		return -1;
	/* The newest expired event bounds the scan (the time index answers it);
	 * with nothing expired, nothing else is read. */
	{
		struct db_param p[] = {DBP_STR(x.cutoff)};

		if (db_query(d, x.a, "SELECT MAX(seq) FROM audit_events WHERE occurred_at < ?", p,
		        1, &rows) != 0)
			goto out;
		if (rows.nrows != 1 || !rows.val[0][0]) {
			rc = 0;
			goto out;
		}
		x.max_seq = strtoll(rows.val[0][0], NULL, 10);
	}
	if (legal_hold_collect(d, cfg, &held) != 0)
		goto out;
	x.held = &held;
	while (!max_events || res->expired < max_events) {
		if (db_tx(d, purge_batch, &x) != 0)
			goto out;
		res->expired += x.expired;
		res->deleted += x.deleted;
		res->kept_held += x.kept;
		res->anchors += x.anchors;
		x.after = x.last_seq;
		if (x.refused_at) {
			res->refused_at = x.refused_at;
			log_msg(LL_ERROR, "audit_purge_refused",
			    "audit event seq %lld does not verify; retention stopped before it (run"
			    " opsctl audit verify)",
			    (long long)x.refused_at);
			break;
		}
		if (x.nrows < PURGE_BATCH || x.after >= x.max_seq)
			break;
	}
	res->more = !res->refused_at && x.after < x.max_seq;
	if (!dry_run && res->deleted &&
	    audit_append_tx(d, actor, AA_AUDIT_PURGED, NULL, "audit", NULL, purged_payload(res)) !=
	        0)
		goto out;
	rc = 0;
out:
	held_set_free(&held);
	arena_free(x.a);
	return rc;
}

int audit_retention_job(struct db *d, const struct opsd_config *cfg)
{
	static bool warned;
	static const struct audit_actor system_actor = {NULL, "system", NULL, NULL};
	struct audit_purge_result res;
	struct audit_keys keys;
	int rc;

	if (!audit_anchor_keys(cfg, &keys)) {
		if (!warned)
			log_msg(LL_WARN, "audit_retention_off",
			    "OPSD_DATA_KEY is unset: audit retention cannot sign anchors and deletes nothing");
		warned = true;
		return 0;
	}
	rc = audit_purge(d, cfg, &system_actor, &keys,
	    now_ms() - (int64_t)cfg->audit_retention_days * 86400000LL, false, JOB_MAX_EVENTS,
	    &res);
	audit_keys_wipe(&keys);
	if (rc == 0 && res.deleted) {
		struct logline *l = log_begin(LL_INFO, "audit_purged");

		log_str(l, "cutoff", res.cutoff);
		log_int(l, "deleted", (long long)res.deleted);
		log_int(l, "keptLegalHold", (long long)res.kept_held);
		log_end(l);
	}
	return rc;
}
