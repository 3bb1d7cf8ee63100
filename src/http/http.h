/* A request as handlers see it, and the one way to answer it. Nothing here
 * knows about FastCGI: src/server/ fills struct req from the FastCGI params
 * and flushes the reply. */
#ifndef OPSD_HTTP_H
#define OPSD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct arena;
struct json_object;
struct route;
struct route_params;
struct db;
struct opsd_config;
struct principal;

#define REQ_MAX_HEADERS 16

/* The body as the server read it (all of it, up to the 1 MiB limit). */
enum body_state {
	BODY_OK,
	BODY_TOO_BIG,    /* over the limit: drained, answered 413 */
	BODY_BAD_LENGTH, /* CONTENT_LENGTH is not a length */
	BODY_SHORT,      /* the connection ended before CONTENT_LENGTH bytes */
};

/* What the server process tells handlers about itself (GET /status and
 * /metrics read the pool's scoreboard and listen socket). */
struct scoreboard;
struct server_info {
	struct scoreboard *sb;
	int listen_fd;
	const char *listen;  /* OPSD_LISTEN as configured */
	const char *pm_name; /* "static" | "dynamic" */
};

struct req_header {
	const char *name;
	const char *value;
};

struct req {
	struct arena *arena;
	const struct opsd_config *cfg;
	struct db *db;                    /* this worker's connection (may be down) */
	const struct server_info *server; /* the pool serving it */

	/* Request, copied into the arena from the FastCGI params. */
	const char *method;
	const char *path;       /* without the query string, not decoded */
	const char *query;      /* "" when absent */
	const char *request_id; /* nginx's $request_id, or generated */
	const char *remote_addr;
	const char *content_type;
	const char *user_agent;
	const char *cookie;
	const char *authorization;
	const char *if_none_match;
	const char *csrf_token; /* X-CSRF-Token */
	size_t nparams;
	const char **param_name; /* every FastCGI param */
	const char **param_value;
	char *body; /* NUL-terminated, may be NULL */
	enum body_state body_state;
	size_t body_len;
	struct json_object *json; /* parsed body for RF_JSON_BODY routes */

	struct principal *who; /* NULL when anonymous */

	const struct route *route;
	int route_index;
	struct route_params *params;
	int64_t start_us; /* monotonic */

	/* Reply. */
	int status;
	bool replied;
	const char *content_type_out;
	struct req_header headers[REQ_MAX_HEADERS];
	int nheaders;
	struct buf *out;
	const char *error_code; /* for the access log line */

	/* Streamed replies (exports): set by src/server/, used by
	 * reply_stream_*; the body goes out in pieces, in constant memory. */
	bool streaming;
	void (*stream_head)(struct req *r);
	void (*stream_body)(struct req *r, const void *p, size_t n);
	void *stream_ctx;
};

/* Path parameter (":id") of the matched route, decoded; NULL if absent. */
const char *req_param(const struct req *r, const char *name);
/* Query parameter, decoded into the arena; NULL if absent or malformed. */
const char *req_query(struct req *r, const char *name);
bool req_query_has(const struct req *r, const char *name);
/* true when If-None-Match names etag (or is "*"): the answer is a 304. */
bool req_etag_matches(const struct req *r, const char *etag);
/* A FastCGI param (HTTP_X_FOO, SERVER_NAME, ...), NULL if absent. */
const char *req_env(const struct req *r, const char *name);

void reply_header(struct req *r, const char *name, const char *value);
/* Serialises obj as the body and releases it (json_object_put). */
void reply_json(struct req *r, int status, struct json_object *obj);
void reply_raw(struct req *r, int status, const char *content_type, const char *body, size_t len);
void reply_empty(struct req *r, int status);
/* The error codes of the API (README "Errors"), each with its status. */
enum api_error {
	E_BAD_REQUEST,               /* 400 */
	E_BAD_PATH,                  /* 400: a malformed escape in the path */
	E_INVALID_JSON,              /* 400 */
	E_VALIDATION_FAILED,         /* 400: details.fields names them */
	E_TARGET_UNREACHABLE,        /* 400: a migration target refused us */
	E_UNAUTHENTICATED,           /* 401 */
	E_FORBIDDEN,                 /* 403 */
	E_CSRF_FAILED,               /* 403 */
	E_LEGAL_ACCEPTANCE_REQUIRED, /* 403 */
	E_BLOCKED,                   /* 403: the client's address is on the blocklist */
	E_NOT_FOUND,                 /* 404 */
	E_METHOD_NOT_ALLOWED,        /* 405 */
	E_CONFLICT,                  /* 409 */
	E_DUPLICATE_VERSION,         /* 409 */
	E_LEGAL_HOLD,                /* 409 */
	E_MIGRATION_IN_PROGRESS,     /* 409 */
	E_DATA_KEY_REQUIRED,         /* 409: OPSD_DATA_KEY is unset */
	E_PAYLOAD_TOO_LARGE,         /* 413 */
	E_UNSUPPORTED_MEDIA_TYPE,    /* 415 */
	E_RATE_LIMITED,              /* 429 */
	E_INTERNAL,                  /* 500 internal_error */
	E_UNAVAILABLE,               /* 503 */
	E_ORG_MIGRATING,             /* 503 */
	/* Not a code of its own: a failed database call, answered by
	 * reply_db_error (503 unavailable while MariaDB is down, else 500). */
	E_DB_ERROR,
	E__MAX
};
struct api_error_info {
	int status;
	const char *code;        /* "not_found" */
	const char *retry_after; /* Retry-After, unless the handler set one */
};
extern const struct api_error_info api_errors[E__MAX];

/* The envelope:
 * {"error":{"code":…,"message":…,"details":{…}},"requestId":…}.
 * details may be NULL; it is released. */
void reply_error(struct req *r, enum api_error e, const char *message, struct json_object *details);

/* A domain outcome as the API answers it. Each domain error enum has one
 * table of these (api/errors.c); reply_err is the one way to answer them. */
struct err_info {
	enum api_error error;
	/* E_VALIDATION_FAILED: the body field at fault (details.fields);
	 * otherwise the field the conflict concerns (details.field), or NULL */
	const char *field;
	const char *message;
};
/* Answers e; detail (may be NULL) becomes details.reason. */
void reply_err(struct req *r, const struct err_info *e, const char *detail);
/* 503 unavailable with Retry-After when MariaDB is down, else 500
 * internal_error (the log line with the request id has db_error()). */
void reply_db_error(struct req *r);
/* 503 unavailable with Retry-After 5 and the message (a dependency other
 * than the control database is down). */
void reply_unavailable(struct req *r, const char *message);
/* 429 rate_limited with Retry-After and the RateLimit-* headers. */
void reply_rate_limited(struct req *r, long retry_after_s, long limit);
/* 400 validation_failed for one field: {"fields":{field: reason}}. */
void reply_field_error(struct req *r, const char *field, const char *reason);
/* 400 validation_failed naming the fields (details from json_validate). */
void reply_invalid(struct req *r, struct json_object *details);

/* Validates r->json against spec, replying 400 itself on failure.
 * Returns true when the handler may go on. */
struct field_spec;
bool req_validate_or_reply(struct req *r, const struct field_spec *spec);

/* Starts a streamed reply: the status and headers go out now, without a
 * Content-Length; the body follows through reply_stream_write. */
void reply_stream_begin(struct req *r, int status, const char *content_type);
void reply_stream_write(struct req *r, const void *p, size_t n);

/* Default reason phrase ("Not Found") for a status. */
const char *http_status_text(int status);

#endif
