/* opsctl data-key rotate (see rekey.h): each place that holds sealed text or
 * a signed row (retention anchors, verification checkpoints) is one row of a table below, walked in
 * keyset batches of one transaction each. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "core/audit.h"
#include "core/rekey.h"
#include "infra/config.h"
#include "infra/data_key.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/util.h"

#define REKEY_BATCH 200
#define REKEY_ROUNDS 3

/* Where sealed text lives: a keyset SELECT (id, sealed) of one batch after
 * the id given, rows locked, and the UPDATE that stores the text sealed
 * again. Migrations go before orgs: a cut-over copies its target into the
 * org row, and the second round catches one that copied meanwhile. */
static const struct sealed_place {
	const char *select;
	const char *update;
	size_t counter; /* offsetof the struct rekey_result member it adds to */
} sealed_places[] = {
    {"SELECT id, target_sealed FROM migrations WHERE id > ? ORDER BY id LIMIT ? FOR UPDATE",
        "UPDATE migrations SET target_sealed = ? WHERE id = ?",
        offsetof(struct rekey_result, migration_targets)},
    {"SELECT id, source_sealed FROM migrations WHERE id > ? AND source_sealed IS NOT NULL"
     " ORDER BY id LIMIT ? FOR UPDATE",
        "UPDATE migrations SET source_sealed = ? WHERE id = ?",
        offsetof(struct rekey_result, migration_targets)},
    {"SELECT id, JSON_VALUE(dedicated_target, '$.sealed') FROM orgs WHERE id > ? AND"
     " dedicated_target IS NOT NULL ORDER BY id LIMIT ? FOR UPDATE",
        "UPDATE orgs SET dedicated_target = JSON_SET(dedicated_target, '$.sealed', ?)"
        " WHERE id = ?",
        offsetof(struct rekey_result, org_targets)},
};

struct rekey {
	struct arena *a;
	struct data_keyring ring;
	struct audit_keys anchor_keys;
	struct rekey_result *res;
	const struct sealed_place *place;
	const struct signed_place *signed_place;
	uint8_t after[16]; /* the keyset position of sealed places */
	int64_t after_seq; /* and of anchors */
	size_t nrows;      /* rows the batch looked at */
	uint64_t changed;  /* rows the round changed */
	/* what the batch counted, added to res once it committed */
	uint64_t done, current, unopenable, unverifiable;
};

static void batch_reset(struct rekey *x)
{
	arena_reset(x->a);
	x->nrows = 0;
	x->done = x->current = x->unopenable = x->unverifiable = 0;
}

static int reseal_one(struct db *d, struct rekey *x, const char *id, unsigned long id_len,
    const char *sealed)
{
	char plain[1200], *again = NULL;
	int idx = data_keyring_open(&x->ring, sealed, plain, sizeof(plain)), rc = -1;
	size_t len = SEALED_LEN(strlen(plain));

	if (idx <= 0) {
		x->current += idx == 0;
		x->unopenable += idx < 0;
		OPENSSL_cleanse(plain, sizeof(plain));
		return 0;
	}
	if ((again = malloc(len)) && data_keyring_seal(&x->ring, plain, again, len)) {
		struct db_param p[] = {DBP_STR(again), DBP_BLOB(id, id_len)};

		rc = db_exec(d, x->place->update, p, countof(p), NULL);
		x->done += rc == 0;
	}
	OPENSSL_cleanse(plain, sizeof(plain));
	free(again);
	return rc;
}

static int reseal_batch(struct db *d, void *arg)
{
	struct rekey *x = arg;
	struct db_param p[] = {DBP_BLOB(x->after, 16), DBP_I64(REKEY_BATCH)};
	struct db_rows rows;

	batch_reset(x);
	if (db_query(d, x->a, x->place->select, p, countof(p), &rows) != 0)
		return -1;
	for (size_t r = 0; r < rows.nrows; r++) {
		if (rows.len[r][0] != 16)
			continue;
		if (rows.val[r][1] && reseal_one(d, x, rows.val[r][0], 16, rows.val[r][1]) != 0)
			return -1;
		x->nrows++;
	}
	if (rows.nrows)
		memcpy(x->after, rows.val[rows.nrows - 1][0], 16);
	return 0;
}

/* A signed row as its kind reads it: its key id and signature (columns
 * KEY_COL and SIG_COL of the SELECT), whether it verifies under key, and its
 * signature under another. Anchors and checkpoints sign different messages
 * under different labels (core/audit.h). */
#define KEY_COL 6
#define SIG_COL 7

static bool anchor_of(char *const *v, const unsigned long *len, struct audit_anchor *an)
{
	*an = (struct audit_anchor){strtoll(v[0], NULL, 10), strtoll(v[1], NULL, 10), {0}, {0}};
	if (len[2] != 32 || len[3] != 32)
		return false;
	memcpy(an->prev_hash, v[2], 32);
	memcpy(an->last_hash, v[3], 32);
	return true;
}

static bool anchor_valid(char *const *v, const unsigned long *len, const uint8_t *key)
{
	struct audit_anchor an;

	return anchor_of(v, len, &an) && audit_anchor_valid(&an, key, (const uint8_t *)v[SIG_COL]);
}

static void anchor_sign(char *const *v, const unsigned long *len, const uint8_t *key,
    uint8_t sig[32])
{
	struct audit_anchor an;

	anchor_of(v, len, &an);
	audit_anchor_sign(&an, key, sig);
}

static bool checkpoint_of(char *const *v, const unsigned long *len, struct audit_checkpoint *cp)
{
	*cp = (struct audit_checkpoint){.seq = strtoll(v[0], NULL, 10),
	    .from_seq = strtoll(v[1], NULL, 10),
	    .events = strtoull(v[2], NULL, 10)};
	if (len[3] != 32 || !v[4] || !v[5])
		return false;
	memcpy(cp->hash, v[3], 32);
	str_copy(cp->verified_at, v[4], sizeof(cp->verified_at));
	str_copy(cp->verified_by, v[5], sizeof(cp->verified_by));
	return true;
}

static bool checkpoint_valid(char *const *v, const unsigned long *len, const uint8_t *key)
{
	struct audit_checkpoint cp;

	return checkpoint_of(v, len, &cp) &&
	       audit_checkpoint_valid(&cp, key, (const uint8_t *)v[SIG_COL]);
}

static void checkpoint_sign(char *const *v, const unsigned long *len, const uint8_t *key,
    uint8_t sig[32])
{
	struct audit_checkpoint cp;

	checkpoint_of(v, len, &cp);
	audit_checkpoint_sign(&cp, key, sig);
}

/* Where signed rows live: a keyset SELECT by seq (rows locked, under the chain
 * head's lock, which orders a batch with retention and with opsctl audit
 * verify recording a checkpoint), the UPDATE that stores the new signature,
 * and the counter of struct rekey_result it adds to. */
static const struct signed_place {
	const char *select;
	const char *update;
	bool (*valid)(char *const *v, const unsigned long *len, const uint8_t *key);
	void (*sign)(char *const *v, const unsigned long *len, const uint8_t *key, uint8_t sig[32]);
	size_t counter;
} signed_places[] = {
    {"SELECT first_seq, last_seq, prev_hash, last_hash, NULL, NULL, key_id, signature FROM"
     " audit_anchors WHERE first_seq > ? ORDER BY first_seq LIMIT ? FOR UPDATE",
        "UPDATE audit_anchors SET key_id = ?, signature = ? WHERE first_seq = ?", anchor_valid,
        anchor_sign, offsetof(struct rekey_result, anchors)},
    {"SELECT seq, from_seq, events, hash, verified_at, verified_by, key_id, signature"
     " FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ? FOR UPDATE",
        "UPDATE audit_checkpoints SET key_id = ?, signature = ? WHERE seq = ?", checkpoint_valid,
        checkpoint_sign, offsetof(struct rekey_result, checkpoints)},
};

/* One signed row: left when under the current key (or forged), signed again
 * when it verifies under the previous key its key_id names. */
static int resign_one(struct db *d, struct rekey *x, char *const *v, const unsigned long *len)
{
	const struct signed_place *pl = x->signed_place;
	const uint8_t *key = audit_keys_find(&x->anchor_keys, v[KEY_COL]);
	uint8_t sig[32];

	if (!key || len[SIG_COL] != 32 || !pl->valid(v, len, key)) {
		x->unverifiable++;
		return 0;
	}
	if (key == x->anchor_keys.key[0]) {
		x->current++;
		return 0;
	}
	pl->sign(v, len, x->anchor_keys.key[0], sig);
	{
		struct db_param p[] = {DBP_STR(x->anchor_keys.id[0]), DBP_BLOB(sig, 32),
		    DBP_I64(strtoll(v[0], NULL, 10))};

		if (db_exec(d, pl->update, p, countof(p), NULL) != 0)
			return -1;
	}
	x->done++;
	return 0;
}

static int resign_batch(struct db *d, void *arg)
{
	struct rekey *x = arg;
	struct db_param p[] = {DBP_I64(x->after_seq), DBP_I64(REKEY_BATCH)};
	struct db_rows head, rows;

	batch_reset(x);
	if (db_query(d, x->a, "SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE", NULL, 0,
	        &head) != 0 ||
	    db_query(d, x->a, x->signed_place->select, p, countof(p), &rows) != 0)
		return -1;
	for (size_t r = 0; r < rows.nrows; r++) {
		if (resign_one(d, x, rows.val[r], rows.len[r]) != 0)
			return -1;
		x->nrows++;
	}
	if (rows.nrows)
		x->after_seq = strtoll(rows.val[rows.nrows - 1][0], NULL, 10);
	return 0;
}

/* Every batch of one place, sealed or signed (the other NULL), until one
 * comes back short; res gets what each committed batch counted. */
static int rekey_place(struct db *d, struct rekey *x, const struct sealed_place *place,
    const struct signed_place *signed_place)
{
	uint64_t *done =
	    (uint64_t *)(void *)((char *)x->res + (place ? place->counter : signed_place->counter));

	x->place = place;
	x->signed_place = signed_place;
	memset(x->after, 0, sizeof(x->after));
	x->after_seq = 0;
	do {
		if (db_tx(d, place ? reseal_batch : resign_batch, x) != 0)
			return -1;
		*done += x->done;
		x->changed += x->done;
		x->res->current += x->current;
		x->res->unopenable += x->unopenable;
		x->res->unverifiable += x->unverifiable;
	} while (x->nrows == REKEY_BATCH);
	return 0;
}

static struct json_object *rotated_payload(const struct rekey_result *res)
{
	struct json_object *o = json_object_new_object(), *prev = json_object_new_array();

	for (size_t i = 0; i < res->nprevious; i++)
		json_object_array_add(prev, json_object_new_string(res->previous[i]));
	json_object_object_add(o, "keyFingerprint", json_object_new_string(res->key));
	json_object_object_add(o, "previousKeyFingerprints", prev);
	json_object_object_add(o, "orgTargets", json_object_new_int64((int64_t)res->org_targets));
	json_object_object_add(o, "migrationTargets",
	    json_object_new_int64((int64_t)res->migration_targets));
	json_object_object_add(o, "anchors", json_object_new_int64((int64_t)res->anchors));
	json_object_object_add(o, "checkpoints", json_object_new_int64((int64_t)res->checkpoints));
	json_object_object_add(o, "alreadyCurrent", json_object_new_int64((int64_t)res->current));
	json_object_object_add(o, "unopenable", json_object_new_int64((int64_t)res->unopenable));
	json_object_object_add(o, "unverifiable",
	    json_object_new_int64((int64_t)res->unverifiable));
	return o;
}

enum rekey_rc data_key_rotate(struct db *d, const struct opsd_config *cfg,
    const struct audit_actor *actor, struct rekey_result *res)
{
	struct rekey x = {.res = res};
	enum rekey_rc rc = REKEY_DB_ERROR;

	memset(res, 0, sizeof(*res));
	if (!data_keyring_load(cfg, &x.ring) || !audit_anchor_keys(cfg, &x.anchor_keys)) {
		rc = REKEY_NO_KEY;
		goto out;
	}
	data_key_fingerprint(x.ring.key[0], res->key);
	for (size_t i = 1; i < x.ring.n && res->nprevious < DATA_KEYS_PREVIOUS_MAX; i++)
		data_key_fingerprint(x.ring.key[i], res->previous[res->nprevious++]);
	if (!(x.a = arena_new(256 * 1024)))
		goto out;
	/* A second round finds what changed under the first one's feet (a
	 * cut-over copying its target meanwhile); the last round's counts of
	 * what is current or foreign stand. */
	for (int round = 0; round < REKEY_ROUNDS; round++) {
		x.changed = 0;
		res->current = res->unopenable = res->unverifiable = 0;
		for (size_t i = 0; i < countof(sealed_places); i++)
			if (rekey_place(d, &x, &sealed_places[i], NULL) != 0)
				goto out;
		for (size_t i = 0; i < countof(signed_places); i++)
			if (rekey_place(d, &x, NULL, &signed_places[i]) != 0)
				goto out;
		if (!x.changed)
			break;
	}
	if (audit_append_tx(d, actor, AA_SECURITY_DATA_KEY_ROTATED, NULL, "data_key", res->key,
	        rotated_payload(res)) != 0)
		goto out;
	rc = REKEY_OK;
out:
	data_keyring_wipe(&x.ring);
	audit_keys_wipe(&x.anchor_keys);
	arena_free(x.a);
	return rc;
}
