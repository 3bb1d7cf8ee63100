/* The pure half of the audit log: the canonical hash of one event and the
 * redaction of its payload. No database here, so both are unit-tested. */
#include "core/audit.h"

#include "infra/config.h"
#include "lib/crypto.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

#include <json-c/json.h>
#include <openssl/crypto.h> /* OPENSSL_cleanse */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define REDACTED "[redacted]"
/* Deeper than any payload we build; past it a subtree is redacted whole. */
#define REDACT_MAX_DEPTH 64

static void put_u64_be(uint8_t b[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* 'N' for NULL, else 'S' + 8-byte big-endian length + the bytes: the length
 * prefix keeps ("ab","c") and ("a","bc") apart, the tag keeps NULL from "". */
static bool hash_field(EVP_MD_CTX *ctx, const char *s)
{
	uint8_t hdr[9];
	if (s == NULL)
		return EVP_DigestUpdate(ctx, "N", 1) == 1;
	size_t n = strlen(s);
	hdr[0] = 'S';
	put_u64_be(hdr + 1, (uint64_t)n);
	return EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) == 1 && EVP_DigestUpdate(ctx, s, n) == 1;
}

/* Canonical form, in struct order: seq (8 bytes, big-endian), the string
 * fields id … payload (hash_field), then the 32-byte prev_hash. */
void audit_record_hash(const struct audit_record *rec, uint8_t out[32])
{
	const char *fields[] = {rec->id, rec->occurred_at, rec->actor_id, rec->actor_label,
	    rec->org_id, rec->action, rec->target_type, rec->target_id, rec->ip, rec->request_id,
	    rec->payload};
	uint8_t seq[8];
	unsigned int len = 0;
	bool ok = false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto fail;
	put_u64_be(seq, (uint64_t)rec->seq);
	if (EVP_DigestUpdate(ctx, seq, sizeof(seq)) != 1)
		goto fail;
	for (size_t i = 0; i < countof(fields); i++)
		if (!hash_field(ctx, fields[i]))
			goto fail;
	if (EVP_DigestUpdate(ctx, rec->prev_hash, sizeof(rec->prev_hash)) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != 32)
		goto fail;
	ok = true;
fail:
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		/* never a predictable hash: an unverifiable event must read as broken */
		log_msg(LL_ERROR, "audit_hash_failed", "SHA-256 of an audit record failed");
		if (!random_bytes(out, 32))
			memset(out, 0xff, 32);
	}
}

static bool redact_whole(const struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
	case json_type_int:
	case json_type_double:
	case json_type_boolean:
	case json_type_object:
	case json_type_array:
		return true;
	default:
		return false; /* null says nothing */
	}
}

/* The replacement for string v under key, or NULL when redact_field left
 * it as it was. */
static struct json_object *redacted_string(const char *key, struct json_object *v)
{
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	/* masking can lengthen short matches ("a@b.cc" → "a***@b.cc") */
	size_t cap = n * 3 + 32;
	char *buf = malloc(cap);
	struct json_object *r;
	if (buf == NULL)
		return json_object_new_string(REDACTED); /* fail closed */
	const char *out = redact_field(key, s, buf, cap);
	r = out == s ? NULL : json_object_new_string(out);
	free(buf);
	return r;
}

static void redact_value(struct json_object *v, const char *key, int depth);

/* What replaces child (held under key), or NULL to keep it; containers are
 * walked in place. */
static struct json_object *redact_child(const char *key, struct json_object *child, int depth)
{
	if (json_object_is_type(child, json_type_string))
		return redacted_string(key, child);
	if (!json_object_is_type(child, json_type_object) &&
	    !json_object_is_type(child, json_type_array))
		return NULL;
	if (depth >= REDACT_MAX_DEPTH)
		return json_object_new_string(REDACTED);
	redact_value(child, key, depth + 1);
	return NULL;
}

static void redact_object(struct json_object *obj, int depth)
{
	json_object_object_foreach (obj, k, child) {
		struct json_object *repl;
		if (redact_key_is_sensitive(k) && redact_whole(child))
			repl = json_object_new_string(REDACTED);
		else
			repl = redact_child(k, child, depth);
		/* replacing an existing key swaps the value in place; iteration is safe */
		if (repl != NULL)
			json_object_object_add(obj, k, repl);
	}
}

static void redact_array(struct json_object *arr, const char *key, int depth)
{
	size_t n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *child = json_object_array_get_idx(arr, i);
		struct json_object *repl = redact_child(key, child, depth);
		if (repl != NULL)
			json_object_array_put_idx(arr, i, repl);
	}
}

/* Array elements are judged by the key that holds the array. */
static void redact_value(struct json_object *v, const char *key, int depth)
{
	if (json_object_is_type(v, json_type_object))
		redact_object(v, depth);
	else if (json_object_is_type(v, json_type_array))
		redact_array(v, key, depth);
}

void audit_redact_payload(struct json_object *payload)
{
	if (payload == NULL)
		return;
	if (json_object_is_type(payload, json_type_string)) {
		/* a bare string cannot be swapped out by the caller's pointer: rewrite it */
		struct json_object *repl = redacted_string(NULL, payload);
		if (repl != NULL) {
			json_object_set_string(payload, json_object_get_string(repl));
			json_object_put(repl);
		}
		return;
	}
	redact_value(payload, NULL, 0);
}

const char *audit_payload_text(struct json_object *payload)
{
	audit_redact_payload(payload);
	return json_object_to_json_string_ext(payload,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---- retention anchors ------------------------------------------------- */

#define ANCHOR_KEY_LABEL "opsd audit anchor key v1"
#define ANCHOR_SIG_LABEL "opsd-audit-anchor-v1"

bool audit_anchor_key(const struct opsd_config *cfg, uint8_t key[32],
    char key_id[AUDIT_KEY_ID_LEN + 1])
{
	uint8_t data_key[32];
	bool ok = config_data_key(cfg, data_key);

	/* A derived key: the anchors never share a MAC key with anything else
	 * OPSD_DATA_KEY protects. */
	if (ok)
		hmac_sha256(data_key, sizeof(data_key), ANCHOR_KEY_LABEL, strlen(ANCHOR_KEY_LABEL),
		    key);
	else
		memset(key, 0, 32);
	OPENSSL_cleanse(data_key, sizeof(data_key));
	audit_key_id(key, key_id);
	return ok;
}

_Static_assert(AUDIT_KEYS_MAX == 1 + DATA_KEYS_PREVIOUS_MAX, "one anchor key per data key");

bool audit_anchor_keys(const struct opsd_config *cfg, struct audit_keys *out)
{
	uint8_t data_keys[AUDIT_KEYS_MAX][32];

	memset(out, 0, sizeof(*out));
	out->n = config_data_keys(cfg, data_keys, AUDIT_KEYS_MAX);
	for (size_t i = 0; i < out->n; i++) {
		hmac_sha256(data_keys[i], 32, ANCHOR_KEY_LABEL, strlen(ANCHOR_KEY_LABEL),
		    out->key[i]);
		audit_key_id(out->key[i], out->id[i]);
	}
	OPENSSL_cleanse(data_keys, sizeof(data_keys));
	return out->n > 0;
}

const uint8_t *audit_keys_find(const struct audit_keys *k, const char *key_id)
{
	for (size_t i = 0; k && key_id && i < k->n; i++)
		if (strcmp(k->id[i], key_id) == 0)
			return k->key[i];
	return NULL;
}

void audit_keys_wipe(struct audit_keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

void audit_key_id(const uint8_t key[32], char key_id[AUDIT_KEY_ID_LEN + 1])
{
	uint8_t h[32];

	sha256_raw(key, 32, h);
	hex_encode(h, AUDIT_KEY_ID_LEN / 2, key_id);
}

/* The label, both seqs (8 bytes big-endian each) and both hashes. */
void audit_anchor_sign(const struct audit_anchor *an, const uint8_t key[32], uint8_t sig[32])
{
	uint8_t msg[sizeof(ANCHOR_SIG_LABEL) - 1 + 8 + 8 + 32 + 32];
	size_t n = sizeof(ANCHOR_SIG_LABEL) - 1;

	memcpy(msg, ANCHOR_SIG_LABEL, n);
	put_u64_be(msg + n, (uint64_t)an->first_seq);
	put_u64_be(msg + n + 8, (uint64_t)an->last_seq);
	memcpy(msg + n + 16, an->prev_hash, 32);
	memcpy(msg + n + 48, an->last_hash, 32);
	hmac_sha256(key, 32, msg, sizeof(msg), sig);
}

bool audit_anchor_valid(const struct audit_anchor *an, const uint8_t key[32], const uint8_t sig[32])
{
	uint8_t want[32];

	audit_anchor_sign(an, key, want);
	return ct_equal(want, sig, 32);
}

/* ---- verification checkpoints and cursors ------------------------------ */

#define CHECKPOINT_SIG_LABEL "opsd-audit-checkpoint-v1"
#define CURSOR_MAC_LABEL "opsd-audit-verify-cursor-v2"
#define CURSOR_KEY_LABEL "opsd-audit-verify-cursor-key"

/* n bytes of s (at most max) with an 8-byte big-endian length before them. */
static size_t put_field(uint8_t *out, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	put_u64_be(out, (uint64_t)n);
	memcpy(out + 8, s, n);
	return 8 + n;
}

/* The label, seq, from_seq and events (8 bytes big-endian each), the hash,
 * then verified_at and verified_by each with an 8-byte length. */
void audit_checkpoint_sign(const struct audit_checkpoint *cp, const uint8_t key[32],
    uint8_t sig[32])
{
	uint8_t msg[sizeof(CHECKPOINT_SIG_LABEL) - 1 + 24 + 32 + 8 + sizeof(cp->verified_at) + 8 +
	            sizeof(cp->verified_by)];
	size_t n = sizeof(CHECKPOINT_SIG_LABEL) - 1;

	memcpy(msg, CHECKPOINT_SIG_LABEL, n);
	put_u64_be(msg + n, (uint64_t)cp->seq);
	put_u64_be(msg + n + 8, (uint64_t)cp->from_seq);
	put_u64_be(msg + n + 16, cp->events);
	memcpy(msg + n + 24, cp->hash, 32);
	n += 56;
	n += put_field(msg + n, cp->verified_at, sizeof(cp->verified_at) - 1);
	n += put_field(msg + n, cp->verified_by, sizeof(cp->verified_by) - 1);
	hmac_sha256(key, 32, msg, n, sig);
}

bool audit_checkpoint_valid(const struct audit_checkpoint *cp, const uint8_t key[32],
    const uint8_t sig[32])
{
	uint8_t want[32];

	audit_checkpoint_sign(cp, key, want);
	return ct_equal(want, sig, 32);
}

/* version, full, from_seq, next_seq, checked, prev, checkpoints_after,
 * issued (seconds since the epoch), then 16 bytes of MAC */
#define CURSOR_VERSION 2
#define CURSOR_BODY (1 + 1 + 8 + 8 + 8 + 32 + 8 + 8)
#define CURSOR_MAC 16
/* a cursor issued this far ahead of now_s comes from a host with a clock
 * ahead of ours: accepted */
#define CURSOR_SKEW_S 300

static uint64_t get_u64_be(const uint8_t b[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void cursor_mac(const uint8_t *key, const uint8_t body[CURSOR_BODY], uint8_t out[32])
{
	uint8_t msg[sizeof(CURSOR_MAC_LABEL) - 1 + CURSOR_BODY];

	memcpy(msg, CURSOR_MAC_LABEL, sizeof(CURSOR_MAC_LABEL) - 1);
	memcpy(msg + sizeof(CURSOR_MAC_LABEL) - 1, body, CURSOR_BODY);
	hmac_sha256(key, 32, msg, sizeof(msg), out);
}

void audit_verify_cursor_keys(const struct opsd_config *cfg, struct audit_keys *out)
{
	const char *secret = cfg->session_secret ? cfg->session_secret : "";

	/* A cursor lets a call skip what an earlier one verified: a MAC under a
	 * key anyone knows would let a client mint one at the head. */
	if (audit_anchor_keys(cfg, out))
		return;
	out->n = 1;
	hmac_sha256((const uint8_t *)secret, strlen(secret), CURSOR_KEY_LABEL,
	    strlen(CURSOR_KEY_LABEL), out->key[0]);
	audit_key_id(out->key[0], out->id[0]);
}

void audit_verify_cursor(const struct audit_keys *keys, int64_t now_s,
    const struct audit_verify_pos *pos, char out[AUDIT_VERIFY_CURSOR_MAX])
{
	uint8_t b[CURSOR_BODY + CURSOR_MAC], mac[32];

	b[0] = CURSOR_VERSION;
	b[1] = pos->full;
	put_u64_be(b + 2, (uint64_t)pos->from_seq);
	put_u64_be(b + 10, (uint64_t)pos->next_seq);
	put_u64_be(b + 18, pos->checked);
	memcpy(b + 26, pos->prev, 32);
	put_u64_be(b + 58, (uint64_t)pos->checkpoints_after);
	put_u64_be(b + 66, (uint64_t)now_s);
	cursor_mac(keys->key[0], b, mac);
	memcpy(b + CURSOR_BODY, mac, CURSOR_MAC);
	b64url_encode(b, sizeof(b), out, AUDIT_VERIFY_CURSOR_MAX);
}

const char *audit_verify_cursor_parse(const struct audit_keys *keys, int64_t now_s, const char *s,
    struct audit_verify_pos *pos)
{
	uint8_t b[CURSOR_BODY + CURSOR_MAC], mac[32];
	size_t n = 0;
	bool ok = false;
	int64_t issued;

	if (!s || !b64url_decode(s, strlen(s), b, sizeof(b), &n) || n != sizeof(b) ||
	    b[0] != CURSOR_VERSION || b[1] > 1)
		return "not a cursor of GET /audit/verify";
	/* any key of the ring: a rotation between two pages keeps the run going */
	for (size_t i = 0; !ok && keys && i < keys->n; i++) {
		cursor_mac(keys->key[i], b, mac);
		ok = ct_equal(mac, b + CURSOR_BODY, CURSOR_MAC);
	}
	if (!ok)
		return "not a cursor of GET /audit/verify";
	pos->full = b[1];
	pos->from_seq = (int64_t)get_u64_be(b + 2);
	pos->next_seq = (int64_t)get_u64_be(b + 10);
	pos->checked = get_u64_be(b + 18);
	memcpy(pos->prev, b + 26, 32);
	pos->checkpoints_after = (int64_t)get_u64_be(b + 58);
	issued = (int64_t)get_u64_be(b + 66);
	if (pos->from_seq < 1 || pos->next_seq < pos->from_seq || pos->checkpoints_after < 0)
		return "not a cursor of GET /audit/verify";
	if (issued > now_s + CURSOR_SKEW_S || now_s - issued > AUDIT_VERIFY_CURSOR_TTL_S)
		return "expired: a cursor continues its run for an hour; start again";
	return NULL;
}
