/* Request bodies: parsed with json-c under README "API" limits, then validated
 * against a declarative field table so handlers only see checked input. */
#ifndef OPSD_JSON_H
#define OPSD_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_BODY (1024 * 1024)
#define JSON_MAX_DEPTH 32

enum json_parse_err {
	JSON_PARSE_OK = 0,
	JSON_PARSE_EMPTY,      /* no body */
	JSON_PARSE_TOO_BIG,    /* over JSON_MAX_BODY */
	JSON_PARSE_UTF8,       /* not valid UTF-8 */
	JSON_PARSE_DEPTH,      /* nested deeper than JSON_MAX_DEPTH */
	JSON_PARSE_SYNTAX,     /* malformed, or trailing bytes after the value */
	JSON_PARSE_NOT_OBJECT, /* top level is not an object */
};

/* Parses a request body. On success *out owns a new object (json_object_put
 * it). On failure *out is NULL and why (if not NULL) gets a short reason
 * suitable for the error envelope's message. */
enum json_parse_err json_parse_body(const char *body, size_t n, struct json_object **out, char *why,
    size_t why_len);
/* Overwrites every string value of a parsed body (passwords, tokens) before it is released:
 * the worker calls it at the end of each request (README "Hardening"). NULL is fine. */
void json_wipe_strings(struct json_object *o);

enum field_type {
	FT_STRING, /* min/max: length in characters (UTF-8 code points) */
	FT_INT,    /* min/max: value */
	FT_BOOL,
	FT_OBJECT,
	FT_STRING_ARRAY, /* min/max: element count; elements non-empty strings */
	FT_UUID,         /* a UUID string */
	FT_TIME,         /* an RFC 3339 string */
	FT_ENUM,         /* a string among choices */
	FT_NUMBER,       /* an integer or a decimal; min/max: value */
};

#define FIELD_REQUIRED 0x1u
#define FIELD_NULLABLE 0x2u /* null is accepted and treated as absent */

struct field_spec {
	const char *name;
	enum field_type type;
	unsigned flags;
	long long min; /* 0 and 0 mean "no bounds" */
	long long max;
	const char *const *choices; /* FT_ENUM: NULL-terminated */
};

/* Checks obj against spec (terminated by an entry with name == NULL).
 * Reports unknown fields, missing required ones, wrong types and values out
 * of range. Returns the number of problems; when > 0 and details is not
 * NULL, *details is a new object {"fields": {"name": "reason", ...}}. */
int json_validate(struct json_object *obj, const struct field_spec *spec,
    struct json_object **details);

/* "must be one of: a, b, c" (the reason json_validate gives for FT_ENUM). */
void json_choices_reason(const char *const *choices, char *buf, size_t len);

/* Typed getters that return dflt when the field is absent or null. */
const char *json_get_str(struct json_object *obj, const char *name, const char *dflt);
long long json_get_int(struct json_object *obj, const char *name, long long dflt);
bool json_get_bool(struct json_object *obj, const char *name, bool dflt);

#endif
