/* The audit payload as stored and hashed (core/audit_hash.c
 * audit_payload_text) and the canonical hash of a record. The input is a
 * request body, read by json_parse_body as every route reads one. The
 * payload text is valid JSON, the same for the same payload (a deep copy
 * renders identically), canonical (its parse renders the same text), and
 * leaves nothing to redact: every value under a sensitive key is
 * "[redacted]" or null, and redact_field finds no address left in any
 * other string (of those without a URL or a bearer token). The record hash
 * tells apart records that differ only by a byte moved from one field to
 * the next, or by NULL against "". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "fuzz.h"
#include "lib/json.h"
#include "lib/log.h"

static struct json_object *parse_strict(const char *s, size_t n, int depth)
{
	struct json_tokener *t = json_tokener_new_ex(depth);
	json_tokener_set_flags(t, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(t, s, (int)n);
	if (o != NULL && json_tokener_get_parse_end(t) != n) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(t);
	return o;
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p++)
		n++;
	return n;
}

/* Nothing left to redact under key (NULL: the top level or no key). */
static void check_redacted(struct json_object *v, const char *key)
{
	static char scratch[65536];
	if (key != NULL && redact_key_is_sensitive(key) && v != NULL) {
		if (!json_object_is_type(v, json_type_string) ||
		    strcmp(json_object_get_string(v), "[redacted]") != 0)
			abort();
		return;
	}
	switch (json_object_get_type(v)) {
	case json_type_string: {
		const char *s = json_object_get_string(v);
		if (strlen(s) * 3 + 32 > sizeof(scratch))
			return;
		/* a second pass masks no address the first one left; only where
		 * no URL or bearer rule applies, as those read an address in a URL
		 * or a masked one as something else (a user name, a token) */
		if (strstr(s, "://") == NULL && strcasestr(s, "bearer") == NULL &&
		    count(redact_field(key, s, scratch, sizeof(scratch)), "***@") >
		        count(s, "***@"))
			abort();
		break;
	}
	case json_type_object: {
		json_object_object_foreach (v, k, child)
			check_redacted(child, k);
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			check_redacted(json_object_array_get_idx(v, i), key);
		break;
	default:
		break;
	}
}

static void check_hash(const char *text, size_t n)
{
	struct audit_record a, b;
	uint8_t ha[32], hb[32];
	char *buf = malloc(2 * n + 2), *buf2 = malloc(2 * n + 2);
	if (!buf || !buf2)
		abort();
	/* a: id = text[0..k), occurred_at = text[k..n); b: the byte at k moved */
	size_t k = n / 2;
	memcpy(buf, text, k);
	buf[k] = '\0';
	memcpy(buf + k + 1, text + k, n - k);
	buf[n + 1] = '\0';
	memcpy(buf2, text, k + 1);
	buf2[k + 1] = '\0';
	memcpy(buf2 + k + 2, text + k + 1, n - k - 1);
	buf2[n + 1] = '\0';
	memset(&a, 0, sizeof(a));
	a.seq = (int64_t)n;
	a.id = buf;
	a.occurred_at = buf + k + 1;
	a.payload = text;
	b = a;
	b.id = buf2;
	b.occurred_at = buf2 + k + 2;
	audit_record_hash(&a, ha);
	audit_record_hash(&b, hb);
	if (k < n && memcmp(ha, hb, 32) == 0)
		abort();
	/* the same record twice: the same hash */
	audit_record_hash(&a, hb);
	if (memcmp(ha, hb, 32) != 0)
		abort();
	/* NULL against "" */
	b = a;
	b.actor_id = "";
	audit_record_hash(&b, hb);
	if (memcmp(ha, hb, 32) == 0)
		abort();
	free(buf);
	free(buf2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	/* as request bodies are read (their values end up in payloads) */
	struct json_object *in = NULL;
	if (json_parse_body((const char *)data, size, &in, NULL, 0) != JSON_PARSE_OK)
		return 0;
	struct json_object *copy = NULL;
	if (json_object_deep_copy(in, &copy, NULL) != 0)
		abort();
	const char *text = audit_payload_text(in);
	size_t n = strlen(text);
	if (strcmp(audit_payload_text(copy), text) != 0)
		abort(); /* deterministic */
	struct json_object *back = parse_strict(text, n, 200);
	if (back == NULL)
		abort(); /* valid JSON */
	check_redacted(back, NULL);
	if (strcmp(json_object_to_json_string_ext(back,
	               JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	        text) != 0)
		abort(); /* canonical: its parse renders the same text */
	check_hash(text, n);
	json_object_put(back);
	json_object_put(copy);
	json_object_put(in);
	return 0;
}
