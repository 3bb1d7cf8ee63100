/* Verifying the audit chain (doc/architecture.md "The audit log"): a replay
 * in keyset pages from the first event, or from the newest verification
 * checkpoint, bounded per call when asked, and the checkpoints themselves.
 *
 * Memory: one page of events is held at a time (the arena is reset before
 * each). A page is at most VERIFY_BATCH rows and VERIFY_PAGE_BYTES of
 * stored rows, sized from the payload lengths before it is read (a payload
 * can be tens of kilobytes: compliance.archived names hundreds of ids), so
 * a replay of any length needs about VERIFY_PAGE_BYTES plus one row, and
 * one row per anchor or checkpoint looked up.
 *
 * Time: a bounded run (max_events, deadline_ms) stops between events,
 * between anchors and between checkpoint rows alike, with a position the
 * next call continues from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/audit_internal.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/util.h"
#include "lib/uuid.h"

#define VERIFY_BATCH 2000
#define VERIFY_PAGE_BYTES (2 * 1024 * 1024)
/* the columns besides the payload, with their pointers and lengths */
#define VERIFY_ROW_OVERHEAD 512
#define CHECKPOINT_BATCH 500

#define CHECKPOINT_COLUMNS                                                                         \
	"seq, from_seq, events, hash, verified_at, verified_by, key_id, signature"

struct run {
	struct db *d;
	struct arena *a;  /* one page of events */
	struct arena *aa; /* point lookups, reset per lookup */
	const struct audit_keys *keys;
	const struct audit_verify_opts *o;
	struct audit_verify_result *res;
	struct audit_verify_pos pos;
	uint64_t anchors, checkpoints; /* stepped over or checked by this call */
};

/* A bounded call stops here once it did `done` of a kind of work: the
 * caller answers more with the position reached. At least one of each
 * before, so every call moves the run on. */
static bool bound_reached(struct run *x, uint64_t done)
{
	if (done == 0)
		return false;
	if ((x->o->max_events && done >= x->o->max_events) ||
	    (x->o->deadline_ms && now_ms() >= x->o->deadline_ms)) {
		x->res->more = true;
		return true;
	}
	return false;
}

static void broken(struct audit_verify_result *res, const char *reason, int64_t seq, const char *id)
{
	res->ok = false;
	res->reason = reason;
	res->first_broken_seq = seq;
	str_copy(res->first_broken_id, id ? id : "", sizeof(res->first_broken_id));
}

/* The id of the stored event seq into id ("" when there is none). */
static int event_id(struct run *x, int64_t seq, char id[UUID_STR_LEN + 1])
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(seq)};

	id[0] = '\0';
	arena_reset(x->aa);
	if (db_query(x->d, x->aa, "SELECT id FROM audit_events WHERE seq = ?", p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1 && !dbv_uuid(rows.val[0][0], rows.len[0][0], id))
		id[0] = '\0';
	return 0;
}

/* Why a signed row (anchor or checkpoint) does not verify, NULL when it
 * does under the key of the ring its key_id names. */
static const char *signature_problem(const struct audit_keys *keys, const char *key_id,
    bool (*valid)(const void *row, const uint8_t key[32], const uint8_t sig[32]), const void *row,
    const char *sig, const char *const why[3])
{
	const uint8_t *key;

	if (!keys || !keys->n)
		return why[0];
	key = audit_keys_find(keys, key_id);
	if (!key)
		return why[1];
	return valid(row, key, (const uint8_t *)sig) ? NULL : why[2];
}

static bool anchor_valid(const void *row, const uint8_t key[32], const uint8_t sig[32])
{
	return audit_anchor_valid(row, key, sig);
}

static bool checkpoint_valid(const void *row, const uint8_t key[32], const uint8_t sig[32])
{
	return audit_checkpoint_valid(row, key, sig);
}

static const char *const anchor_why[3] = {"anchor cannot be checked: OPSD_DATA_KEY is unset",
    "anchor signed with another key", "anchor signature mismatch"};
static const char *const checkpoint_why[3] = {
    "checkpoint cannot be checked: OPSD_DATA_KEY is unset", "checkpoint signed with another key",
    "checkpoint signature mismatch"};

/* An anchor row (first_seq, last_seq, prev_hash, last_hash, key_id,
 * signature) into an; NULL when it verifies, else why not. */
static const char *anchor_row(const struct audit_keys *keys, char *const *v,
    const unsigned long *len, struct audit_anchor *an)
{
	an->first_seq = strtoll(v[0], NULL, 10);
	an->last_seq = strtoll(v[1], NULL, 10);
	if (len[2] != 32 || len[3] != 32 || len[5] != 32 || an->last_seq < an->first_seq)
		return "hash mismatch";
	memcpy(an->prev_hash, v[2], 32);
	memcpy(an->last_hash, v[3], 32);
	/* An anchor verifies under the key of the ring its key_id names: one
	 * signed under a previous key still does until it is re-signed
	 * (opsctl data-key rotate). */
	return signature_problem(keys, v[4], anchor_valid, an, v[5], anchor_why);
}

/* A row of CHECKPOINT_COLUMNS into cp; NULL when it verifies. */
static const char *checkpoint_row(const struct audit_keys *keys, char *const *v,
    const unsigned long *len, struct audit_checkpoint *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->seq = strtoll(v[0], NULL, 10);
	cp->from_seq = strtoll(v[1], NULL, 10);
	cp->events = strtoull(v[2], NULL, 10);
	if (len[3] != 32 || len[7] != 32 || !v[4] || !v[5])
		return checkpoint_why[2];
	memcpy(cp->hash, v[3], 32);
	str_copy(cp->verified_at, v[4], sizeof(cp->verified_at));
	str_copy(cp->verified_by, v[5], sizeof(cp->verified_by));
	return signature_problem(keys, v[6], checkpoint_valid, cp, v[7], checkpoint_why);
}

/* Steps over the anchors that cover the seqs before `until` (exclusive;
 * INT64_MAX for "as far as they go"). 0 with res filled when an anchor is
 * missing, forged or does not link, or at a bound (res->more); `at_id` names
 * the event that could not be reached. -1 on a database error. */
static int step_anchors(struct run *x, int64_t until, const char *at_id)
{
	while (x->pos.next_seq < until) {
		/* the event the break is reported at: the one the anchors lead to,
		 * or the first anchored seq past the last event */
		int64_t at_seq = until == INT64_MAX ? x->pos.next_seq : until;
		struct db_rows rows;
		struct db_param p[] = {DBP_I64(x->pos.next_seq)};
		struct audit_anchor an;
		const char *why;

		if (bound_reached(x, x->anchors))
			return 0;
		arena_reset(x->aa);
		if (db_query(x->d, x->aa,
		        "SELECT first_seq, last_seq, prev_hash, last_hash, key_id, signature FROM"
		        " audit_anchors WHERE first_seq = ?",
		        p, 1, &rows) != 0)
			return -1;
		if (rows.nrows != 1) {
			if (until == INT64_MAX)
				return 1; /* no more anchors: the caller checks the head */
			broken(x->res, "events missing", until, at_id);
			return 0;
		}
		why = anchor_row(x->keys, rows.val[0], rows.len[0], &an);
		if (!why && (an.last_seq >= until || memcmp(an.prev_hash, x->pos.prev, 32) != 0))
			why = "hash mismatch";
		if (why) {
			broken(x->res, why, at_seq, at_id);
			return 0;
		}
		memcpy(x->pos.prev, an.last_hash, 32);
		x->pos.next_seq = an.last_seq + 1;
		x->anchors++;
	}
	return 1;
}

/* The run continues after event next_seq - 1, whose hash is prev: that
 * event is stored with that hash, or retention has since replaced it by an
 * anchor (signed: it vouches for the run it removed), which then carries
 * the run to its end. `why` is the reason when the hash differs. */
static int position_ok(struct run *x, const char *why)
{
	int64_t s = x->pos.next_seq - 1;
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(s)};
	struct audit_anchor an;
	char id[UUID_STR_LEN + 1];
	const char *bad;

	if (s < 1)
		return 1;
	arena_reset(x->aa);
	if (db_query(x->d, x->aa, "SELECT hash, id FROM audit_events WHERE seq = ?", p, 1, &rows) !=
	    0)
		return -1;
	if (rows.nrows == 1) {
		if (rows.len[0][0] == 32 && memcmp(rows.val[0][0], x->pos.prev, 32) == 0)
			return 1;
		if (!dbv_uuid(rows.val[0][1], rows.len[0][1], id))
			id[0] = '\0';
		broken(x->res, why, s, id);
		return 0;
	}
	{
		struct db_param q[] = {DBP_I64(s), DBP_I64(s)};

		if (db_query(x->d, x->aa,
		        "SELECT first_seq, last_seq, prev_hash, last_hash, key_id, signature FROM"
		        " audit_anchors WHERE first_seq <= ? AND last_seq >= ?",
		        q, 2, &rows) != 0)
			return -1;
	}
	if (rows.nrows != 1) {
		broken(x->res, "events missing", s, NULL);
		return 0;
	}
	bad = anchor_row(x->keys, rows.val[0], rows.len[0], &an);
	if (!bad && an.last_seq == s && memcmp(an.last_hash, x->pos.prev, 32) != 0)
		bad = why;
	if (bad) {
		broken(x->res, bad, s, NULL);
		return 0;
	}
	memcpy(x->pos.prev, an.last_hash, 32);
	x->pos.next_seq = an.last_seq + 1;
	return 1;
}

/* An audit.verified event names the checkpoint it recorded: deleting that
 * checkpoint shows here. */
static int checkpoint_stored(struct run *x, const char *payload, int64_t seq, const char *id)
{
	struct json_object *o = payload ? json_tokener_parse(payload) : NULL, *v = NULL;
	bool named = o && json_object_object_get_ex(o, "checkpointSeq", &v) &&
	             json_object_is_type(v, json_type_int);
	struct db_param p[] = {DBP_I64(named ? json_object_get_int64(v) : 0)};
	struct db_rows rows;

	json_object_put(o);
	arena_reset(x->aa);
	if (named && db_query(x->d, x->aa, "SELECT seq FROM audit_checkpoints WHERE seq = ?", p, 1,
	                 &rows) != 0)
		return -1;
	if (!named || rows.nrows != 1) {
		broken(x->res, "checkpoint missing", seq, id);
		return 0;
	}
	return 1;
}

/* A checkpoint names an event of the chain with the hash it has, or the end
 * of an anchor with its last hash; one inside an anchor stands on the
 * anchor's signature (its event is gone). */
static int checkpoint_matches(struct run *x, const struct audit_checkpoint *cp)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(cp->seq), DBP_I64(cp->seq)};

	arena_reset(x->aa);
	if (db_query(x->d, x->aa, "SELECT hash FROM audit_events WHERE seq = ?", p, 1, &rows) != 0)
		return -1;
	if (rows.nrows == 1)
		return rows.len[0][0] == 32 && memcmp(rows.val[0][0], cp->hash, 32) == 0;
	if (db_query(x->d, x->aa,
	        "SELECT last_seq, last_hash FROM audit_anchors WHERE first_seq <= ? AND last_seq >= ?",
	        p, 2, &rows) != 0)
		return -1;
	if (rows.nrows != 1 || rows.len[0][1] != 32)
		return 0;
	return strtoll(rows.val[0][0], NULL, 10) != cp->seq ||
	       memcmp(rows.val[0][1], cp->hash, 32) == 0;
}

/* Every checkpoint row past pos.checkpoints_after, in keyset pages: signed,
 * and on the chain. 0 at a break or a bound (res says which). */
static int check_checkpoints(struct run *x)
{
	for (;;) {
		struct db_rows rows;
		struct db_param p[] = {DBP_I64(x->pos.checkpoints_after),
		    DBP_I64(CHECKPOINT_BATCH)};

		arena_reset(x->a);
		if (db_query(x->d, x->a,
		        "SELECT " CHECKPOINT_COLUMNS
		        " FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?",
		        p, 2, &rows) != 0)
			return -1;
		for (size_t r = 0; r < rows.nrows; r++) {
			struct audit_checkpoint cp;
			const char *why = checkpoint_row(x->keys, rows.val[r], rows.len[r], &cp);
			char id[UUID_STR_LEN + 1];
			int m;

			if (bound_reached(x, x->checkpoints))
				return 0;
			m = why ? 0 : checkpoint_matches(x, &cp);
			if (m < 0)
				return -1;
			if (why || !m) {
				if (event_id(x, cp.seq, id) != 0)
					return -1;
				broken(x->res, why ? why : "checkpoint does not match the chain",
				    cp.seq, id);
				return 0;
			}
			x->res->checkpoints++;
			x->checkpoints++;
			x->pos.checkpoints_after = cp.seq;
		}
		if (rows.nrows < CHECKPOINT_BATCH)
			return 1;
	}
}

/* Where an incremental run begins: after the newest checkpoint, which must
 * verify. */
static int start_at_checkpoint(struct run *x)
{
	struct db_rows rows;
	struct audit_checkpoint *cp = &x->res->checkpoint;
	const char *why;
	char id[UUID_STR_LEN + 1];

	arena_reset(x->aa);
	if (db_query(x->d, x->aa,
	        "SELECT " CHECKPOINT_COLUMNS " FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
	        NULL, 0, &rows) != 0)
		return -1;
	if (rows.nrows == 0)
		return 1; /* none yet: the whole chain */
	if ((why = checkpoint_row(x->keys, rows.val[0], rows.len[0], cp)) != NULL) {
		if (event_id(x, cp->seq, id) != 0)
			return -1;
		broken(x->res, why, cp->seq, id);
		return 0;
	}
	x->res->from_checkpoint = true;
	x->pos = (struct audit_verify_pos){.from_seq = cp->seq + 1, .next_seq = cp->seq + 1};
	memcpy(x->pos.prev, cp->hash, 32);
	return position_ok(x, "checkpoint does not match the chain");
}

/* The next page: the events past the position, at most limit of them and
 * VERIFY_PAGE_BYTES (at least one), read by their lengths only. *last gets
 * its last seq (0: no events left), *end whether no event follows it. */
static int page_extent(struct run *x, int64_t limit, int64_t *last, bool *end)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(x->pos.next_seq - 1), DBP_I64(limit)};
	size_t bytes = 0, r;

	arena_reset(x->aa);
	if (db_query(x->d, x->aa,
	        "SELECT seq, LENGTH(payload) FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
	        p, countof(p), &rows) != 0)
		return -1;
	*last = 0;
	for (r = 0; r < rows.nrows; r++) {
		size_t size = VERIFY_ROW_OVERHEAD + strtoull(rows.val[r][1], NULL, 10);

		if (r > 0 && bytes + size > VERIFY_PAGE_BYTES)
			break;
		bytes += size;
		*last = strtoll(rows.val[r][0], NULL, 10);
	}
	*end = r == rows.nrows && rows.nrows < (size_t)limit;
	return 0;
}

/* One page of events up to seq last: 1 to go on, 0 at a break or a bound
 * (res says which), -1 on a database error. */
static int replay_page(struct run *x, int64_t last)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_I64(x->pos.next_seq - 1), DBP_I64(last)};
	int st;

	arena_reset(x->a);
	if (db_query(x->d, x->a,
	        "SELECT " AUDIT_ROW_COLUMNS
	        " FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq",
	        p, countof(p), &rows) != 0)
		return -1;
	for (size_t r = 0; r < rows.nrows; r++) {
		char id[UUID_STR_LEN + 1];
		int64_t seq = strtoll(rows.val[r][AR_SEQ], NULL, 10);
		bool linked = audit_row_hash_ok(&rows, r, x->pos.prev, id);

		/* Retention leaves anchors where it removed events. */
		if (seq != x->pos.next_seq) {
			if ((st = step_anchors(x, seq, id)) <= 0)
				return st;
			linked = audit_row_hash_ok(&rows, r, x->pos.prev, id);
		}
		if (!linked) {
			broken(x->res, "hash mismatch", seq, id);
			return 0;
		}
		if (rows.val[r][AR_ACTION] &&
		    strcmp(rows.val[r][AR_ACTION], audit_actions[AA_AUDIT_VERIFIED].name) == 0 &&
		    (st = checkpoint_stored(x, rows.val[r][AR_PAYLOAD], seq, id)) <= 0)
			return st;
		memcpy(x->pos.prev, rows.val[r][AR_HASH], 32);
		x->pos.next_seq = seq + 1;
		x->pos.checked++;
	}
	return 1;
}

/* After the last event: trailing anchors, then the head, which names the
 * last event appended (rows deleted at the end of the chain leave every
 * remaining link intact but not the head). */
static int check_end(struct run *x, int64_t head_seq, const uint8_t head_hash[32])
{
	int st = step_anchors(x, INT64_MAX, NULL);

	if (st <= 0)
		return st;
	if (head_seq >= 0 &&
	    (head_seq != x->pos.next_seq - 1 || memcmp(head_hash, x->pos.prev, 32) != 0)) {
		broken(x->res, "events missing at the end", x->pos.next_seq, NULL);
		return 0;
	}
	return x->pos.full ? check_checkpoints(x) : 1;
}

static int run_snapshot(struct run *x, const struct audit_verify_opts *o)
{
	uint64_t budget = o->max_events;
	struct db_rows head;
	int64_t head_seq = -1; /* no head row: nothing to compare */
	uint8_t head_hash[32] = {0};
	int st;

	arena_reset(x->a);
	if (db_query(x->d, x->a, "SELECT seq, hash FROM audit_chain_head WHERE id = 1", NULL, 0,
	        &head) != 0)
		return -1;
	if (head.nrows == 1) {
		head_seq = strtoll(head.val[0][0], NULL, 10);
		/* a head without a 32-byte hash matches no chain */
		if (head.len[0][1] == 32)
			memcpy(head_hash, head.val[0][1], 32);
		else
			head_seq = INT64_MAX;
	}
	if (o->resume) {
		x->pos = *o->resume;
		if ((st = position_ok(x, "hash mismatch")) <= 0)
			return st;
	} else if (o->from_checkpoint && (st = start_at_checkpoint(x)) <= 0)
		return st;
	for (;;) {
		uint64_t before = x->pos.checked;
		int64_t limit = budget && budget < VERIFY_BATCH ? (int64_t)budget : VERIFY_BATCH;
		int64_t last;
		bool end;

		if (page_extent(x, limit, &last, &end) != 0)
			return -1;
		if (last && (st = replay_page(x, last)) <= 0)
			return st;
		if (budget)
			budget -=
			    x->pos.checked - before < budget ? x->pos.checked - before : budget;
		if (end)
			break; /* the last event */
		/* a bound reached with events left: the caller continues from pos */
		if (x->pos.next_seq - 1 < head_seq &&
		    ((o->max_events && !budget) ||
		        (o->deadline_ms && now_ms() >= o->deadline_ms))) {
			x->res->more = true;
			return 1;
		}
	}
	return check_end(x, head_seq, head_hash);
}

int audit_verify_run(struct db *d, const struct audit_verify_opts *o,
    struct audit_verify_result *res)
{
	struct run x = {.d = d, .keys = o->keys, .o = o, .res = res};
	int rc = -1;
	bool in_tx = false;

	memset(res, 0, sizeof(*res));
	res->ok = true;
	x.pos = (struct audit_verify_pos){.from_seq = 1, .next_seq = 1, .full = true};
	x.a = arena_new(256 * 1024);
	x.aa = arena_new(4096);
	if (!x.a || !x.aa)
		goto out;
	/* One snapshot for the whole call: retention merging anchors or
	 * appends moving the head mid-way must not read as a break. */
	if (db_exec_script(d, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ") != 0 ||
	    db_begin(d) != 0)
		goto out;
	in_tx = true;
	if (run_snapshot(&x, o) < 0)
		goto out;
	res->pos = x.pos;
	res->checked = x.pos.checked;
	res->from_seq = x.pos.from_seq;
	res->to_seq = x.pos.next_seq - 1;
	rc = 0;
out:
	if (in_tx)
		db_rollback(d); /* read only */
	arena_free(x.aa);
	arena_free(x.a);
	return rc;
}

int audit_verify(struct db *d, const struct audit_keys *keys, struct audit_verify_result *res)
{
	struct audit_verify_opts o = {.keys = keys};

	return audit_verify_run(d, &o, res);
}

/* ---- recording a checkpoint ---------------------------------------------- */

struct record {
	const struct audit_actor *actor;
	const struct audit_keys *keys;
	const struct audit_verify_result *res;
	struct audit_checkpoint cp;
	bool recorded;
};

static struct json_object *verified_payload(const struct audit_checkpoint *cp)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "checkpointSeq", json_object_new_int64(cp->seq));
	json_object_object_add(o, "fromSeq", json_object_new_int64(cp->from_seq));
	json_object_object_add(o, "checked", json_object_new_int64((int64_t)cp->events));
	return o;
}

static int record_fn(struct db *d, void *ctx)
{
	struct record *x = ctx;
	struct arena *a = arena_new(4096);
	struct db_rows rows;
	uint8_t sig[32];
	int rc = -1;

	x->recorded = false;
	if (!a)
		return -1;
	/* The chain head's lock orders this with appends, retention and
	 * another verifier recording at the same time. */
	if (db_query(d, a, "SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE", NULL, 0,
	        &rows) != 0 ||
	    db_query(d, a, "SELECT IFNULL(MAX(seq), 0) FROM audit_checkpoints", NULL, 0, &rows) !=
	        0)
		goto out;
	if (rows.nrows == 1 && strtoll(rows.val[0][0], NULL, 10) >= x->res->to_seq) {
		rc = 0; /* one at or past it already */
		goto out;
	}
	memset(&x->cp, 0, sizeof(x->cp));
	x->cp.seq = x->res->to_seq;
	x->cp.from_seq = x->res->from_seq;
	x->cp.events = x->res->checked;
	memcpy(x->cp.hash, x->res->pos.prev, 32);
	db_time_from_ms(now_ms(), x->cp.verified_at);
	str_copy(x->cp.verified_by, x->actor->label ? x->actor->label : "system",
	    sizeof(x->cp.verified_by));
	audit_checkpoint_sign(&x->cp, x->keys->key[0], sig);
	{
		struct db_param p[] = {DBP_I64(x->cp.seq), DBP_I64(x->cp.from_seq),
		    DBP_I64((int64_t)x->cp.events), DBP_BLOB(x->cp.hash, 32),
		    DBP_STR(x->cp.verified_at), DBP_STR(x->cp.verified_by), DBP_STR(x->keys->id[0]),
		    DBP_BLOB(sig, 32)};

		if (db_exec(d,
		        "INSERT INTO audit_checkpoints (" CHECKPOINT_COLUMNS
		        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		        p, countof(p), NULL) != 0)
			goto out;
	}
	if (audit_append(d, x->actor, AA_AUDIT_VERIFIED, NULL, "audit", NULL,
	        verified_payload(&x->cp)) != 0)
		goto out;
	x->recorded = true;
	rc = 0;
out:
	arena_free(a);
	return rc;
}

int audit_checkpoint_record(struct db *d, const struct audit_actor *actor,
    const struct audit_keys *keys, const struct audit_verify_result *res,
    struct audit_checkpoint *out)
{
	struct record x = {.actor = actor, .keys = keys, .res = res};

	if (!res->ok || res->more || !keys || !keys->n || res->to_seq < 1)
		return 0;
	if (db_tx(d, record_fn, &x) != 0)
		return -1;
	if (x.recorded && out)
		*out = x.cp;
	return x.recorded ? 1 : 0;
}
