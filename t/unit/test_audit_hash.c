#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/audit.h"
#include "infra/config.h"
#include "lib/encoding.h"
#include "lib/util.h"

static struct audit_record base(void)
{
	struct audit_record r = {
	    .seq = 42,
	    .id = "0190f5a2-7b3c-7def-8abc-0123456789ab",
	    .occurred_at = "2026-11-24 10:27:55.123",
	    .actor_id = NULL,
	    .actor_label = "cli:root",
	    .org_id = NULL,
	    .action = "user.create",
	    .target_type = "user",
	    .target_id = "0190f5a2-7b3c-7def-8abc-0123456789ac",
	    .ip = "127.0.0.1",
	    .request_id = "req-1",
	    .payload = "{\"roles\":[\"member\"]}",
	};
	memset(r.prev_hash, 0x11, sizeof(r.prev_hash));
	return r;
}

static void hash_hex(const struct audit_record *r, char out[65])
{
	uint8_t h[32];
	audit_record_hash(r, h);
	hex_encode(h, sizeof(h), out);
}

static void test_known_vector(void **state)
{
	(void)state;
	/* Pinned once, computed independently in Python:
	 *   f = lambda s: b'N' if s is None else b'S' + struct.pack('>Q', len(s)) + s
	 *   sha256(struct.pack('>Q', 42) + b''.join(f(x) for x in [id, occurred_at,
	 *          actor_id, ..., payload]) + b'\x11' * 32)
	 * with the fields of base(). A change here breaks every stored chain. */
	char hex[65];
	struct audit_record r = base();
	hash_hex(&r, hex);
	assert_string_equal(hex,
	    "777f9dbfabdaedd4fe28389b57ffa193a48cf896413239db3c18a2c5ef8e2866");
	/* deterministic */
	char again[65];
	hash_hex(&r, again);
	assert_string_equal(hex, again);
}

static void test_every_field_counts(void **state)
{
	(void)state;
	static const size_t offsets[] = {
	    offsetof(struct audit_record, id),
	    offsetof(struct audit_record, occurred_at),
	    offsetof(struct audit_record, actor_id),
	    offsetof(struct audit_record, actor_label),
	    offsetof(struct audit_record, org_id),
	    offsetof(struct audit_record, action),
	    offsetof(struct audit_record, target_type),
	    offsetof(struct audit_record, target_id),
	    offsetof(struct audit_record, ip),
	    offsetof(struct audit_record, request_id),
	    offsetof(struct audit_record, payload),
	};
	struct audit_record b = base();
	char ref[65], hex[65];
	hash_hex(&b, ref);
	for (size_t i = 0; i < countof(offsets); i++) {
		/* three changes per field: a different text, NULL and "" (NULL ≠ "") */
		static const char *const variants[] = {"x", NULL, ""};
		for (size_t v = 0; v < countof(variants); v++) {
			struct audit_record r = base();
			const char **f = (const char **)((char *)&r + offsets[i]);
			if (*f == variants[v] ||
			    (*f != NULL && variants[v] != NULL && strcmp(*f, variants[v]) == 0))
				continue;
			*f = variants[v];
			hash_hex(&r, hex);
			if (strcmp(hex, ref) == 0)
				fail_msg("field %zu variant %zu does not change the hash", i, v);
		}
		struct audit_record n = base(), e = base();
		*(const char **)((char *)&n + offsets[i]) = NULL;
		*(const char **)((char *)&e + offsets[i]) = "";
		char hn[65], he[65];
		hash_hex(&n, hn);
		hash_hex(&e, he);
		assert_string_not_equal(hn, he);
	}
	struct audit_record r = base();
	r.seq = 43;
	hash_hex(&r, hex);
	assert_string_not_equal(hex, ref);
	r = base();
	r.seq = 42 + ((int64_t)1 << 40); /* high bytes count too */
	hash_hex(&r, hex);
	assert_string_not_equal(hex, ref);
	r = base();
	r.prev_hash[31] ^= 1;
	hash_hex(&r, hex);
	assert_string_not_equal(hex, ref);
	r = base();
	r.prev_hash[0] ^= 0x80;
	hash_hex(&r, hex);
	assert_string_not_equal(hex, ref);
}

static void test_boundaries(void **state)
{
	(void)state;
	struct audit_record a = base(), b = base();
	char ha[65], hb[65];
	/* the same bytes split differently between neighbouring fields */
	a.target_type = "ab";
	a.target_id = "c";
	b.target_type = "a";
	b.target_id = "bc";
	hash_hex(&a, ha);
	hash_hex(&b, hb);
	assert_string_not_equal(ha, hb);
	/* a NULL moved from one field to the next */
	a = base();
	b = base();
	a.actor_id = NULL;
	a.actor_label = "x";
	b.actor_id = "x";
	b.actor_label = NULL;
	hash_hex(&a, ha);
	hash_hex(&b, hb);
	assert_string_not_equal(ha, hb);
	/* a field that spells out another field's encoding */
	a = base();
	b = base();
	a.ip = "";
	a.request_id = "S";
	b.ip = "N";
	b.request_id = NULL;
	hash_hex(&a, ha);
	hash_hex(&b, hb);
	assert_string_not_equal(ha, hb);
}

/* Redacts the JSON in, written with ' for " to stay readable, and compares
 * the compact result with want (written the same way). */
static void check_redacted(const char *in, const char *want)
{
	char text[1024], expect[1024];
	str_copy(text, in, sizeof(text));
	str_copy(expect, want, sizeof(expect));
	for (char *p = text; *p != '\0'; p++)
		*p = *p == '\'' ? '"' : *p;
	for (char *p = expect; *p != '\0'; p++)
		*p = *p == '\'' ? '"' : *p;
	struct json_object *o = json_tokener_parse(text);
	assert_non_null(o);
	audit_redact_payload(o);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), expect);
	json_object_put(o);
}

static void test_redact_sensitive_keys(void **state)
{
	(void)state;
	check_redacted("{'email':'a@example.com','newPassword':'hunter2','token':'opsd_abc',"
	               "'roles':['member']}",
	    "{'email':'[redacted]','newPassword':'[redacted]','token':'[redacted]',"
	    "'roles':['member']}");
	/* any value type under a sensitive key goes whole; null says nothing */
	check_redacted("{'password':null,'secret':{'a':1},'apiToken':12345,'name':['Ann','Bob'],"
	               "'phone':true,'zip':1.5}",
	    "{'password':null,'secret':'[redacted]','apiToken':'[redacted]','name':'[redacted]',"
	    "'phone':'[redacted]','zip':'[redacted]'}");
	/* keys are normalised like the log's: case, '_' and '-' */
	check_redacted("{'E-Mail':'x','new_password':'y','csrfToken':'z'}",
	    "{'E-Mail':'[redacted]','new_password':'[redacted]','csrfToken':'[redacted]'}");
	/* harmless keys and values are left alone */
	check_redacted("{'count':3,'ok':true,'scope':'all','n':null}",
	    "{'count':3,'ok':true,'scope':'all','n':null}");
}

static void test_redact_depth(void **state)
{
	(void)state;
	check_redacted("{'user':{'profile':{'email':'a@b.com','id':'u1',"
	               "'deep':[{'token':'t','note':'mail bob@example.com'}]}}}",
	    "{'user':{'profile':{'email':'[redacted]','id':'u1',"
	    "'deep':[{'token':'[redacted]','note':'mail b***@example.com'}]}}}");
	/* arrays of arrays */
	check_redacted("[[{'password':'p'}],['x@y.org']]",
	    "[[{'password':'[redacted]'}],['x***@y.org']]");
}

static void test_redact_arrays_of_emails(void **state)
{
	(void)state;
	check_redacted("{'recipients':['alice@example.com','bob@example.org','not an address',7]}",
	    "{'recipients':['a***@example.com','b***@example.org','not an address',7]}");
	/* the same array under a sensitive key is dropped whole */
	check_redacted("{'email':['alice@example.com']}", "{'email':'[redacted]'}");
}

static void test_redact_free_text(void **state)
{
	(void)state;
	/* e-mails and bearer tokens inside ordinary strings */
	check_redacted("{'reason':'requested by a@example.com','header':'Bearer opsd_abcdef'}",
	    "{'reason':'requested by a***@example.com','header':'Bearer [redacted]'}");
	/* a short value that grows when masked is not cut */
	check_redacted("{'to':'a@b.cc'}", "{'to':'a***@b.cc'}");
	/* a bare string payload */
	struct json_object *s = json_object_new_string("from a@example.com");
	audit_redact_payload(s);
	assert_string_equal(json_object_get_string(s), "from a***@example.com");
	json_object_put(s);
	audit_redact_payload(NULL);
}

static void test_redact_very_deep(void **state)
{
	(void)state;
	/* past the depth cap a subtree is replaced, never left unredacted */
	struct json_object *root = json_object_new_object(), *cur = root;
	for (int i = 0; i < 100; i++) {
		struct json_object *next = json_object_new_object();
		json_object_object_add(cur, "k", next);
		cur = next;
	}
	json_object_object_add(cur, "note", json_object_new_string("x@example.com"));
	audit_redact_payload(root);
	const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	assert_null(strstr(text, "x@example.com"));
	assert_non_null(strstr(text, "[redacted]"));
	json_object_put(root);
}

/* ---- retention anchors ---------------------------------------------------- */

static struct audit_anchor anchor(void)
{
	struct audit_anchor an = {.first_seq = 10, .last_seq = 2000};

	memset(an.prev_hash, 0x22, 32);
	memset(an.last_hash, 0x33, 32);
	return an;
}

/* The signed message pinned byte for byte: a change of format would make
 * every stored anchor fail verification. */
static void test_anchor_known_message(void **state)
{
	(void)state;
	struct audit_anchor an = anchor();
	uint8_t key[32], sig[32], want[32], msg[20 + 8 + 8 + 64];
	unsigned int len = 0;

	memset(key, 0x44, sizeof(key));
	memcpy(msg, "opsd-audit-anchor-v1", 20);
	memset(msg + 20, 0, 16);
	msg[27] = 10;
	msg[34] = 2000 >> 8;
	msg[35] = 2000 & 0xff;
	memset(msg + 36, 0x22, 32);
	memset(msg + 68, 0x33, 32);
	HMAC(EVP_sha256(), key, 32, msg, sizeof(msg), want, &len);
	audit_anchor_sign(&an, key, sig);
	assert_int_equal(len, 32);
	assert_memory_equal(sig, want, 32);
	assert_true(audit_anchor_valid(&an, key, sig));
}

static void test_anchor_every_field_counts(void **state)
{
	(void)state;
	uint8_t key[32], sig[32];
	struct audit_anchor an = anchor(), m;

	memset(key, 0x44, sizeof(key));
	audit_anchor_sign(&an, key, sig);
	m = an;
	m.first_seq++;
	assert_false(audit_anchor_valid(&m, key, sig));
	m = an;
	m.last_seq--;
	assert_false(audit_anchor_valid(&m, key, sig));
	m = an;
	m.prev_hash[31] ^= 1;
	assert_false(audit_anchor_valid(&m, key, sig));
	m = an;
	m.last_hash[0] ^= 0x80;
	assert_false(audit_anchor_valid(&m, key, sig));
	key[5] ^= 1;
	assert_false(audit_anchor_valid(&an, key, sig));
}

static void test_anchor_key_from_config(void **state)
{
	(void)state;
	struct opsd_config c;
	uint8_t k1[32], k2[32], zero[32] = {0};
	char id1[AUDIT_KEY_ID_LEN + 1], id2[AUDIT_KEY_ID_LEN + 1];

	memset(&c, 0, sizeof(c));
	assert_false(audit_anchor_key(&c, k1, id1));
	assert_memory_equal(k1, zero, 32);
	c.data_key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	assert_true(audit_anchor_key(&c, k1, id1));
	assert_int_equal(strlen(id1), AUDIT_KEY_ID_LEN);
	/* derived, not the data key itself */
	assert_memory_not_equal(k1, "\x00\x01\x02\x03", 4);
	/* the same key as base64 gives the same anchor key */
	c.data_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	assert_true(audit_anchor_key(&c, k2, id2));
	assert_memory_equal(k1, k2, 32);
	assert_string_equal(id1, id2);
	c.data_key = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	assert_true(audit_anchor_key(&c, k2, id2));
	assert_memory_not_equal(k1, k2, 32);
	assert_string_not_equal(id1, id2);
}

/* ---- verification checkpoints and cursors ------------------------------ */

static struct audit_checkpoint checkpoint(void)
{
	struct audit_checkpoint cp = {.seq = 5000, .from_seq = 4001, .events = 1000};

	memset(cp.hash, 0x55, 32);
	strcpy(cp.verified_at, "2026-12-06 11:27:52.123");
	strcpy(cp.verified_by, "cli:root");
	return cp;
}

/* Pinned byte for byte, like the anchors': the label, three numbers, the
 * hash, two length-prefixed strings. */
static void test_checkpoint_known_message(void **state)
{
	(void)state;
	struct audit_checkpoint cp = checkpoint();
	uint8_t key[32], sig[32], want[32], msg[256];
	unsigned int len = 0;
	size_t n = 0;

	memset(key, 0x44, sizeof(key));
	memcpy(msg, "opsd-audit-checkpoint-v1", 24);
	n = 24;
	memset(msg + n, 0, 24);
	msg[n + 6] = 5000 >> 8;
	msg[n + 7] = 5000 & 0xff;
	msg[n + 14] = 4001 >> 8;
	msg[n + 15] = 4001 & 0xff;
	msg[n + 22] = 1000 >> 8;
	msg[n + 23] = 1000 & 0xff;
	n += 24;
	memset(msg + n, 0x55, 32);
	n += 32;
	memset(msg + n, 0, 8);
	msg[n + 7] = 23;
	memcpy(msg + n + 8, "2026-12-06 11:27:52.123", 23);
	n += 31;
	memset(msg + n, 0, 8);
	msg[n + 7] = 8;
	memcpy(msg + n + 8, "cli:root", 8);
	n += 16;
	HMAC(EVP_sha256(), key, 32, msg, n, want, &len);
	audit_checkpoint_sign(&cp, key, sig);
	assert_memory_equal(sig, want, 32);
	assert_true(audit_checkpoint_valid(&cp, key, sig));
}

static void test_checkpoint_every_field_counts(void **state)
{
	(void)state;
	uint8_t key[32], sig[32], asig[32];
	struct audit_checkpoint cp = checkpoint(), m;
	struct audit_anchor an = {.first_seq = 5000, .last_seq = 5000};

	memset(key, 0x44, sizeof(key));
	audit_checkpoint_sign(&cp, key, sig);
	m = cp;
	m.seq++;
	assert_false(audit_checkpoint_valid(&m, key, sig));
	m = cp;
	m.from_seq--;
	assert_false(audit_checkpoint_valid(&m, key, sig));
	m = cp;
	m.events++;
	assert_false(audit_checkpoint_valid(&m, key, sig));
	m = cp;
	m.hash[7] ^= 1;
	assert_false(audit_checkpoint_valid(&m, key, sig));
	m = cp;
	m.verified_at[22] = '4';
	assert_false(audit_checkpoint_valid(&m, key, sig));
	m = cp;
	strcpy(m.verified_by, "cli:roo");
	assert_false(audit_checkpoint_valid(&m, key, sig));
	/* an anchor's signature never stands for a checkpoint's */
	memcpy(an.prev_hash, cp.hash, 32);
	memcpy(an.last_hash, cp.hash, 32);
	audit_anchor_sign(&an, key, asig);
	assert_false(audit_checkpoint_valid(&cp, key, asig));
	key[0] ^= 1;
	assert_false(audit_checkpoint_valid(&cp, key, sig));
}

#define NOW 1800000000LL

static void test_verify_cursor(void **state)
{
	(void)state;
	struct audit_keys ring = {.n = 2}, other = {.n = 1}, none = {0}, zeros = {.n = 1};
	struct audit_verify_pos pos = {.from_seq = 7,
	                            .next_seq = 123456789012LL,
	                            .checked = 42,
	                            .full = true,
	                            .checkpoints_after = 99},
	                        back;
	char c[AUDIT_VERIFY_CURSOR_MAX], bad[AUDIT_VERIFY_CURSOR_MAX];

	memset(ring.key[0], 1, 32);
	memset(ring.key[1], 2, 32);
	memset(other.key[0], 3, 32);
	memset(pos.prev, 0x77, 32);
	audit_verify_cursor(&ring, NOW, &pos, c);
	assert_null(audit_verify_cursor_parse(&ring, NOW, c, &back));
	assert_int_equal(back.from_seq, 7);
	assert_int_equal(back.next_seq, 123456789012LL);
	assert_int_equal(back.checked, 42);
	assert_int_equal(back.checkpoints_after, 99);
	assert_true(back.full);
	assert_memory_equal(back.prev, pos.prev, 32);
	/* a previous key of the ring still opens it: a rotation between pages */
	other.key[0][0] = 0;
	memcpy(&ring.key[0], &ring.key[1], 32);
	memset(ring.key[1], 1, 32);
	assert_null(audit_verify_cursor_parse(&ring, NOW, c, &back));
	assert_non_null(audit_verify_cursor_parse(&other, NOW, c, &back));
	assert_non_null(audit_verify_cursor_parse(&none, NOW, c, &back));
	/* one character changed, cut short, or not base64 */
	strcpy(bad, c);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	assert_non_null(audit_verify_cursor_parse(&ring, NOW, bad, &back));
	strcpy(bad, c);
	bad[strlen(bad) - 2] = '\0';
	assert_non_null(audit_verify_cursor_parse(&ring, NOW, bad, &back));
	assert_non_null(audit_verify_cursor_parse(&ring, NOW, "not a cursor!", &back));
	assert_non_null(audit_verify_cursor_parse(&ring, NOW, "", &back));
	assert_non_null(audit_verify_cursor_parse(&ring, NOW, NULL, &back));
	/* an hour old, or from far ahead: refused, with why */
	assert_null(audit_verify_cursor_parse(&ring, NOW + AUDIT_VERIFY_CURSOR_TTL_S, c, &back));
	assert_non_null(
	    strstr(audit_verify_cursor_parse(&ring, NOW + AUDIT_VERIFY_CURSOR_TTL_S + 1, c, &back),
	        "expired"));
	assert_non_null(audit_verify_cursor_parse(&ring, NOW - 3600, c, &back));
	/* one minted under a key anyone knows (zeros) is not ours */
	audit_verify_cursor(&zeros, NOW, &pos, c);
	assert_non_null(audit_verify_cursor_parse(&ring, NOW, c, &back));
	assert_non_null(audit_verify_cursor_parse(&none, NOW, c, &back));
}

static void test_cursor_keys(void **state)
{
	(void)state;
	struct opsd_config a = {0}, b = {0};
	struct audit_keys ka, kb, kz = {.n = 1};
	struct audit_verify_pos pos = {.from_seq = 1, .next_seq = 5}, back;
	char c[AUDIT_VERIFY_CURSOR_MAX];

	/* without a data key: a key from SESSION_SECRET, one per secret */
	a.session_secret = "0123456789abcdef0123456789abcdef-a";
	b.session_secret = "0123456789abcdef0123456789abcdef-b";
	audit_verify_cursor_keys(&a, &ka);
	audit_verify_cursor_keys(&b, &kb);
	assert_int_equal(ka.n, 1);
	assert_memory_not_equal(ka.key[0], kz.key[0], 32);
	audit_verify_cursor(&ka, NOW, &pos, c);
	assert_null(audit_verify_cursor_parse(&ka, NOW, c, &back));
	assert_non_null(audit_verify_cursor_parse(&kb, NOW, c, &back));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_vector),
	    cmocka_unit_test(test_every_field_counts),
	    cmocka_unit_test(test_boundaries),
	    cmocka_unit_test(test_redact_sensitive_keys),
	    cmocka_unit_test(test_redact_depth),
	    cmocka_unit_test(test_redact_arrays_of_emails),
	    cmocka_unit_test(test_redact_free_text),
	    cmocka_unit_test(test_redact_very_deep),
	    cmocka_unit_test(test_anchor_known_message),
	    cmocka_unit_test(test_anchor_every_field_counts),
	    cmocka_unit_test(test_anchor_key_from_config),
	    cmocka_unit_test(test_checkpoint_known_message),
	    cmocka_unit_test(test_checkpoint_every_field_counts),
	    cmocka_unit_test(test_verify_cursor),
	    cmocka_unit_test(test_cursor_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
