/* Request bodies: size, UTF-8 and depth limits of README "API", then a strict
 * json-c parse, then validation against a field table. */
#include "lib/json.h"

#include "lib/secret.h"
#include "lib/utf8.h"
#include "lib/util.h"
#include "lib/uuid.h"

#include <json-c/printbuf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static enum json_parse_err parse_fail(enum json_parse_err e, char *why, size_t why_len,
    const char *reason)
{
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s", reason);
	return e;
}

static bool only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr(" \t\r\n", s[i]) == NULL || s[i] == '\0')
			return false;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Whether s[i] (outside strings) begins a number's integer part, not a
 * fraction or an exponent. */
static bool int_part_starts(const char *s, size_t i)
{
	if (i > 0 && s[i - 1] == '-')
		i--;
	return i == 0 || (!is_digit(s[i - 1]) && strchr(".eE+-", s[i - 1]) == NULL);
}

/* json-c's strict mode still takes 'single quotes', NaN, Infinity, "1.",
 * "-.5", "00.5" and raw control characters in strings, and writes such numbers back
 * as they were; RFC 8259 allows none of them. */
static bool lexically_strict(const char *s, size_t n)
{
	static const char outside[] = " \t\r\n{}[],:0123456789+-.eEtruefalsn";
	bool in_string = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_string) {
			if ((unsigned char)c < 0x20)
				return false; /* RFC 8259 §7: control characters must be escaped */
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '\0' || strchr(outside, c) == NULL) {
			return false;
		} else if (c == '.' &&
		           (i + 1 == n || !is_digit(s[i + 1]) || i == 0 || !is_digit(s[i - 1]))) {
			return false; /* RFC 8259 §6: digits on both sides ("-.5" too) */
		} else if (c == '0' && i + 1 < n && is_digit(s[i + 1]) && int_part_starts(s, i)) {
			return false; /* RFC 8259 §6: no leading zero ("00.5", "-01") */
		}
	}
	return true;
}

enum json_parse_err json_parse_body(const char *body, size_t n, struct json_object **out, char *why,
    size_t why_len)
{
	*out = NULL;
	if (body == NULL || n == 0 || only_space(body, n))
		return parse_fail(JSON_PARSE_EMPTY, why, why_len, "request body is empty");
	if (n > JSON_MAX_BODY)
		return parse_fail(JSON_PARSE_TOO_BIG, why, why_len,
		    "request body is larger than 1 MiB");
	if (!utf8_valid(body, n))
		return parse_fail(JSON_PARSE_UTF8, why, why_len, "request body is not valid UTF-8");
	/* json-c would stop at a raw NUL; JSON never contains one outside \u0000 */
	if (memchr(body, '\0', n) != NULL)
		return parse_fail(JSON_PARSE_SYNTAX, why, why_len,
		    "request body contains a NUL byte");

	if (!lexically_strict(body, n))
		return parse_fail(JSON_PARSE_SYNTAX, why, why_len,
		    "malformed JSON: character not allowed here");

	struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (tok == NULL)
		return parse_fail(JSON_PARSE_SYNTAX, why, why_len, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *obj = json_tokener_parse_ex(tok, body, (int)n);
	enum json_tokener_error err = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (obj == NULL && err == json_tokener_continue) {
		/* a bare number at the very end is only finished by a delimiter */
		obj = json_tokener_parse_ex(tok, " ", 1);
		err = json_tokener_get_error(tok);
		end = n;
	}
	/* the tokener's buffer keeps the last string it read (a password, say) */
	if (tok->pb != NULL && tok->pb->buf != NULL && tok->pb->size > 0)
		secret_wipe(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);

	enum json_parse_err rc = JSON_PARSE_OK;
	const char *reason = NULL;
	if (err == json_tokener_error_depth) {
		rc = JSON_PARSE_DEPTH;
		reason = "JSON nested deeper than 32 levels";
	} else if (err == json_tokener_continue) {
		rc = JSON_PARSE_SYNTAX;
		reason = "malformed JSON: unexpected end of input";
	} else if (err != json_tokener_success) {
		rc = JSON_PARSE_SYNTAX;
		reason = "malformed JSON";
	} else if (end < n && !only_space(body + end, n - end)) {
		rc = JSON_PARSE_SYNTAX;
		reason = "malformed JSON: trailing data after the value";
	} else if (!json_object_is_type(obj, json_type_object)) {
		rc = JSON_PARSE_NOT_OBJECT;
		reason = "request body must be a JSON object";
	}
	if (rc != JSON_PARSE_OK) {
		json_object_put(obj);
		if (why != NULL && why_len > 0) {
			if (rc == JSON_PARSE_SYNTAX && err != json_tokener_success &&
			    err != json_tokener_continue)
				snprintf(why, why_len, "%s: %s at byte %zu", reason,
				    json_tokener_error_desc(err), end);
			else
				snprintf(why, why_len, "%s", reason);
		}
		return rc;
	}
	*out = obj;
	return JSON_PARSE_OK;
}

/* Writes the bound violation of v against [min, max] into buf, or returns false. */
static bool out_of_range(long long v, const struct field_spec *f, const char *unit, char *buf,
    size_t len)
{
	if (f->min == 0 && f->max == 0)
		return false;
	if (v >= f->min && v <= f->max)
		return false;
	if (*unit == '\0')
		snprintf(buf, len, "must be between %lld and %lld", f->min, f->max);
	else if (v < f->min && f->min == 1)
		snprintf(buf, len, "must not be empty");
	else if (v < f->min)
		snprintf(buf, len, "must be at least %lld %s", f->min, unit);
	else
		snprintf(buf, len, "must be at most %lld %s", f->max, unit);
	return true;
}

static bool is_choice(const char *s, const char *const *choices)
{
	for (; choices != NULL && *choices != NULL; choices++)
		if (strcmp(s, *choices) == 0)
			return true;
	return false;
}

void json_choices_reason(const char *const *choices, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "must be one of: ");
	for (const char *const *c = choices; c != NULL && *c != NULL && off < len; c++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", c == choices ? "" : ", ", *c);
}

/* A string without embedded NULs (json-c accepts "\u0000"). */
static bool plain_string(struct json_object *v)
{
	return json_object_is_type(v, json_type_string) &&
	       strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v);
}

/* Checks one present, non-null value; fills reason and returns false on a problem. */
static bool check_value(struct json_object *v, const struct field_spec *f, char *reason, size_t len)
{
	struct opsd_uuid u;
	int64_t ms;
	const char *s = plain_string(v) ? json_object_get_string(v) : NULL;
	switch (f->type) {
	case FT_STRING:
		if (s == NULL) {
			snprintf(reason, len, "must be a string");
			return false;
		}
		return !out_of_range((long long)utf8_chars(s, strlen(s)), f, "characters", reason,
		    len);
	case FT_INT: {
		if (!json_object_is_type(v, json_type_int)) {
			snprintf(reason, len, "must be an integer");
			return false;
		}
		/* json-c saturates integers that do not fit in 64 bits */
		int64_t n = json_object_get_int64(v);
		if (n == INT64_MAX || n == INT64_MIN) {
			snprintf(reason, len, "is out of range");
			return false;
		}
		return !out_of_range(n, f, "", reason, len);
	}
	case FT_NUMBER: {
		double d;

		if (!json_object_is_type(v, json_type_int) &&
		    !json_object_is_type(v, json_type_double)) {
			snprintf(reason, len, "must be a number");
			return false;
		}
		d = json_object_get_double(v);
		if (!(d == d) ||
		    ((f->min || f->max) && (d < (double)f->min || d > (double)f->max))) {
			snprintf(reason, len, "must be between %lld and %lld", f->min, f->max);
			return false;
		}
		return true;
	}
	case FT_BOOL:
		if (json_object_is_type(v, json_type_boolean))
			return true;
		snprintf(reason, len, "must be a boolean");
		return false;
	case FT_OBJECT:
		if (json_object_is_type(v, json_type_object))
			return true;
		snprintf(reason, len, "must be an object");
		return false;
	case FT_STRING_ARRAY: {
		if (!json_object_is_type(v, json_type_array)) {
			snprintf(reason, len, "must be an array of strings");
			return false;
		}
		size_t count = json_object_array_length(v);
		for (size_t i = 0; i < count; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			if (!plain_string(e) || json_object_get_string_len(e) == 0) {
				snprintf(reason, len, "must be an array of non-empty strings");
				return false;
			}
		}
		return !out_of_range((long long)count, f, "items", reason, len);
	}
	case FT_UUID:
		if (s != NULL && uuid_parse(s, &u))
			return true;
		snprintf(reason, len, "must be a UUID");
		return false;
	case FT_TIME:
		if (s != NULL && parse_rfc3339(s, &ms))
			return true;
		snprintf(reason, len, "must be an RFC 3339 date-time");
		return false;
	case FT_ENUM:
		if (s != NULL && is_choice(s, f->choices))
			return true;
		json_choices_reason(f->choices, reason, len);
		return false;
	}
	snprintf(reason, len, "has an unknown type");
	return false;
}

static bool spec_has(const struct field_spec *spec, const char *name)
{
	for (; spec->name != NULL; spec++)
		if (strcmp(spec->name, name) == 0)
			return true;
	return false;
}

static void add_problem(struct json_object *fields, const char *name, const char *reason)
{
	if (fields != NULL)
		json_object_object_add(fields, name, json_object_new_string(reason));
}

int json_validate(struct json_object *obj, const struct field_spec *spec,
    struct json_object **details)
{
	char reason[256];
	int problems = 0;
	struct json_object *fields = details != NULL ? json_object_new_object() : NULL;
	if (details != NULL)
		*details = NULL;

	if (!json_object_is_type(obj, json_type_object)) {
		add_problem(fields, "", "body must be a JSON object");
		problems++;
		goto done;
	}
	for (const struct field_spec *f = spec; f->name != NULL; f++) {
		struct json_object *v = NULL;
		bool present = json_object_object_get_ex(obj, f->name, &v);
		if (!present || (v == NULL && !(f->flags & FIELD_NULLABLE))) {
			if (present || (f->flags & FIELD_REQUIRED)) {
				add_problem(fields, f->name,
				    present ? "must not be null" : "required");
				problems++;
			}
			continue;
		}
		if (v == NULL)
			continue;
		if (!check_value(v, f, reason, sizeof(reason))) {
			add_problem(fields, f->name, reason);
			problems++;
		}
	}
	json_object_object_foreach (obj, key, val) {
		(void)val;
		if (!spec_has(spec, key)) {
			add_problem(fields, key, "unknown field");
			problems++;
		}
	}
done:
	if (problems > 0 && fields != NULL) {
		*details = json_object_new_object();
		json_object_object_add(*details, "fields", fields);
	} else {
		json_object_put(fields);
	}
	return problems;
}

static struct json_object *field(struct json_object *obj, const char *name)
{
	struct json_object *v = NULL;
	if (obj == NULL || !json_object_object_get_ex(obj, name, &v))
		return NULL;
	return v;
}

const char *json_get_str(struct json_object *obj, const char *name, const char *dflt)
{
	struct json_object *v = field(obj, name);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

long long json_get_int(struct json_object *obj, const char *name, long long dflt)
{
	struct json_object *v = field(obj, name);
	return json_object_is_type(v, json_type_int) ? (long long)json_object_get_int64(v) : dflt;
}

bool json_get_bool(struct json_object *obj, const char *name, bool dflt)
{
	struct json_object *v = field(obj, name);
	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : dflt;
}

void json_wipe_strings(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		/* json-c hands out its own buffer: overwrite it in place before it is freed */
		secret_wipe((char *)json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		for (size_t i = 0, n = json_object_array_length(o); i < n; i++)
			json_wipe_strings(json_object_array_get_idx(o, i));
		break;
	case json_type_object: {
		json_object_object_foreach (o, key, val) {
			(void)key;
			json_wipe_strings(val);
		}
		break;
	}
	default:
		break;
	}
}
