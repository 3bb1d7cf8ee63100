/* The one way to answer: status, headers, a JSON body or the error
 * envelope (README "Errors"), streamed bodies. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "http/http.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

void reply_header(struct req *r, const char *name, const char *value)
{
	if (r->nheaders >= REQ_MAX_HEADERS) {
		log_msg(LL_ERROR, "reply_header_overflow", "dropped header %s", name);
		return;
	}
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders].value = arena_strdup(r->arena, value);
	r->nheaders++;
}

static bool reply_has_header(const struct req *r, const char *name)
{
	for (int i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return true;
	return false;
}

void reply_raw(struct req *r, int status, const char *content_type, const char *body, size_t len)
{
	if (r->replied) {
		log_msg(LL_ERROR, "reply_twice", "handler replied twice (status %d)", status);
		return;
	}
	r->replied = true;
	r->status = status;
	r->content_type_out = content_type;
	buf_reset(r->out);
	if (body && len)
		buf_append(r->out, body, len);
}

void reply_stream_begin(struct req *r, int status, const char *content_type)
{
	reply_raw(r, status, content_type, NULL, 0);
	r->streaming = true;
	if (r->stream_head)
		r->stream_head(r);
}

void reply_stream_write(struct req *r, const void *p, size_t n)
{
	if (r->streaming && r->stream_body && n)
		r->stream_body(r, p, n);
}

void reply_empty(struct req *r, int status)
{
	reply_raw(r, status, NULL, NULL, 0);
}

void reply_json(struct req *r, int status, struct json_object *obj)
{
	size_t len = 0;
	const char *s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	reply_raw(r, status, "application/json", s, len);
	buf_putc(r->out, '\n');
	json_object_put(obj);
}

const struct api_error_info api_errors[E__MAX] = {
    [E_BAD_REQUEST] = {400, "bad_request"},
    [E_BAD_PATH] = {400, "bad_path"},
    [E_INVALID_JSON] = {400, "invalid_json"},
    [E_VALIDATION_FAILED] = {400, "validation_failed"},
    [E_TARGET_UNREACHABLE] = {400, "target_unreachable"},
    [E_UNAUTHENTICATED] = {401, "unauthenticated"},
    [E_FORBIDDEN] = {403, "forbidden"},
    [E_CSRF_FAILED] = {403, "csrf_failed"},
    [E_LEGAL_ACCEPTANCE_REQUIRED] = {403, "legal_acceptance_required"},
    [E_BLOCKED] = {403, "blocked"},
    [E_NOT_FOUND] = {404, "not_found"},
    [E_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [E_CONFLICT] = {409, "conflict"},
    [E_DUPLICATE_VERSION] = {409, "duplicate_version"},
    [E_LEGAL_HOLD] = {409, "legal_hold"},
    [E_MIGRATION_IN_PROGRESS] = {409, "migration_in_progress"},
    [E_DATA_KEY_REQUIRED] = {409, "data_key_required"},
    [E_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [E_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [E_RATE_LIMITED] = {429, "rate_limited"},
    [E_INTERNAL] = {500, "internal_error"},
    /* seconds, not minutes: a reconnect, a cut-over's freeze */
    [E_UNAVAILABLE] = {503, "unavailable", "5"},
    [E_ORG_MIGRATING] = {503, "org_migrating", "2"},
    /* what opsctl prints; the API answers it with reply_db_error */
    [E_DB_ERROR] = {503, "unavailable"},
};

void reply_error(struct req *r, enum api_error e, const char *message, struct json_object *details)
{
	struct json_object *err, *env;

	if (e == E_DB_ERROR || (unsigned)e >= E__MAX) {
		json_object_put(details);
		reply_db_error(r);
		return;
	}
	if (api_errors[e].retry_after && !reply_has_header(r, "Retry-After"))
		reply_header(r, "Retry-After", api_errors[e].retry_after);
	err = json_object_new_object();
	env = json_object_new_object();
	json_object_object_add(err, "code", json_object_new_string(api_errors[e].code));
	json_object_object_add(err, "message", json_object_new_string(message));
	json_object_object_add(err, "details", details ? details : json_object_new_object());
	json_object_object_add(env, "error", err);
	json_object_object_add(env, "requestId",
	    r->request_id ? json_object_new_string(r->request_id) : NULL);
	r->error_code = api_errors[e].code;
	reply_json(r, api_errors[e].status, env);
}

void reply_err(struct req *r, const struct err_info *e, const char *detail)
{
	struct json_object *d;

	if (e->error == E_DB_ERROR) {
		reply_db_error(r);
		return;
	}
	d = json_object_new_object();
	if (detail && *detail)
		json_object_object_add(d, "reason", json_object_new_string(detail));
	if (e->field && e->error == E_VALIDATION_FAILED) {
		struct json_object *f = json_object_new_object();

		json_object_object_add(f, e->field, json_object_new_string(e->message));
		json_object_object_add(d, "fields", f);
		reply_invalid(r, d);
		return;
	}
	if (e->field)
		json_object_object_add(d, "field", json_object_new_string(e->field));
	reply_error(r, e->error, e->message, d);
}

void reply_db_error(struct req *r)
{
	if (!r->db || db_is_down(r->db)) {
		reply_error(r, E_UNAVAILABLE, "the database is unavailable; retry shortly", NULL);
		return;
	}
	/* A deadlock or, on a Galera cluster, a write that lost certification to a
	 * concurrent one on another node, still failing after db_tx's retries: the
	 * failing transaction wrote nothing, and the request may be sent again. */
	if (db_retryable(r->db)) {
		struct json_object *d = json_object_new_object();

		log_msg(LL_WARN, "db_conflict", "%s", db_error(r->db));
		json_object_object_add(d, "reason", json_object_new_string("write_conflict"));
		reply_header(r, "Retry-After", "1");
		reply_error(r, E_UNAVAILABLE,
		    "a concurrent write conflicted with this request; retry", d);
		return;
	}
	log_msg(LL_ERROR, "db_error", "%s", db_error(r->db));
	reply_error(r, E_INTERNAL, "internal error; see the log for this request id", NULL);
}

void reply_unavailable(struct req *r, const char *message)
{
	reply_error(r, E_UNAVAILABLE, message, NULL);
}

void reply_invalid(struct req *r, struct json_object *details)
{
	reply_error(r, E_VALIDATION_FAILED, "the request body has invalid fields", details);
}

void reply_rate_limited(struct req *r, long retry_after_s, long limit)
{
	char v[24];

	snprintf(v, sizeof(v), "%ld", retry_after_s > 0 ? retry_after_s : 1);
	reply_header(r, "Retry-After", v);
	reply_header(r, "RateLimit-Reset", v);
	snprintf(v, sizeof(v), "%ld", limit);
	reply_header(r, "RateLimit-Limit", v);
	reply_header(r, "RateLimit-Remaining", "0");
	{
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "layer", json_object_new_string("opsd"));
		reply_error(r, E_RATE_LIMITED, "too many requests; retry later", d);
	}
}

void reply_field_error(struct req *r, const char *field, const char *reason)
{
	struct json_object *d = json_object_new_object();
	struct json_object *f = json_object_new_object();

	json_object_object_add(f, field, json_object_new_string(reason));
	json_object_object_add(d, "fields", f);
	reply_invalid(r, d);
}

const char *http_status_text(int status)
{
	static const struct {
		int code;
		const char *text;
	} texts[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {202, "Accepted"},
	    {204, "No Content"},
	    {301, "Moved Permanently"},
	    {302, "Found"},
	    {304, "Not Modified"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {409, "Conflict"},
	    {411, "Length Required"},
	    {413, "Content Too Large"},
	    {414, "URI Too Long"},
	    {415, "Unsupported Media Type"},
	    {422, "Unprocessable Content"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < countof(texts); i++)
		if (texts[i].code == status)
			return texts[i].text;
	return "Unknown";
}
