/* Declarative routing (kcgi style): the route table is data; matching is
 * pure so it is unit-tested on its own. */
#ifndef OPSD_ROUTER_H
#define OPSD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/authz.h"

struct arena;
struct entity;
struct field_spec;
struct req;

typedef void (*route_handler)(struct req *r);

/* Route flags. */
#define RF_PUBLIC 0x01u       /* no authentication needed */
#define RF_LOOPBACK 0x02u     /* loopback needs no credentials; others need perm */
#define RF_LEGAL_EXEMPT 0x04u /* not blocked by the legal-acceptance gate */
/* health and monitoring: outside opsd's rate limiter, and reachable from
 * loopback even when an operator blocks that address */
#define RF_MONITOR 0x08u
#define RF_JSON_BODY 0x10u /* body must be a JSON object */
#define RF_TEST_ONLY 0x20u /* exists only when OPSD_ENV=test */
#define RF_NO_DB 0x40u     /* never touches MariaDB (served while it is down) */
/* Containment and the audit log (README "Runbook 1" and "Runbook 4"): with
 * LEGAL_ENFORCE=1 the legal gate lets through a caller with pending documents
 * here, since incident response cannot wait for them to read new terms. The
 * caller already holds the route's permission (checked before the gate, and
 * router_check_table refuses this flag without one), so a security or
 * compliance role gets through while a plain user stays blocked everywhere
 * else. The answer carries Legal-Pending: they are still asked to accept. */
#define RF_LEGAL_CONTAIN 0x80u
/* With RF_JSON_BODY: the body may also be absent (no bytes at all), and the
 * handler then sees r->json NULL; one that is sent is checked as usual. */
#define RF_JSON_OPTIONAL 0x100u

#define ROUTE_MAX_PARAMS 8

struct route {
	const char *method;  /* "GET", "POST", "PATCH", "DELETE", "PUT" */
	const char *pattern; /* "/legal/:type/versions/:version" */
	route_handler handler;
	enum perm perm; /* the permission it needs; P_NONE: any signed-in caller */
	unsigned flags;
	const char *name;            /* metric label, e.g. "legal_get" */
	const struct entity *entity; /* the entity a tenant record route serves */
	/* What the API document (api/openapi.c) says of it; the pipeline
	 * reads none of these. */
	const struct field_spec *body;  /* its JSON body's fields (tenant routes: the entity's) */
	const struct field_spec *query; /* the query parameters it reads */
	int status;                     /* its success status */
	const char *schema;             /* its success body: a schema of api/openapi_schemas.c */
	const char *errors;     /* refusals of its handler beyond the pipeline's: "404 409" */
	bool etag;              /* answers 304 to a matching If-None-Match */
	int alt_status;         /* a second success answer (0: none) */
	const char *alt_schema; /* and its body */
};

struct route_params {
	int n;
	const char *name[ROUTE_MAX_PARAMS];
	char *value[ROUTE_MAX_PARAMS]; /* percent-decoded, in the arena */
};

enum route_result { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD, ROUTE_BAD_PATH };

/* Finds the route for method+path (path without the query string). HEAD
 * matches GET routes. Literal segments beat ":param" segments. On
 * ROUTE_BAD_METHOD, allow gets the comma-separated methods the path accepts
 * ("GET, HEAD, POST"). ROUTE_BAD_PATH: a parameter failed to decode. A route
 * with RF_TEST_ONLY is skipped unless test_routes is true. */
enum route_result router_match(const struct route *table, size_t n, const char *method,
    const char *path, bool test_routes, struct arena *a, const struct route **found,
    struct route_params *params, char *allow, size_t allow_len);

/* Checks a table at start-up: patterns well formed, no duplicate
 * method+pattern, at most ROUTE_MAX_PARAMS params. Returns the number of
 * problems and reports each through fn. */
int router_check_table(const struct route *table, size_t n,
    void (*fn)(const char *problem, void *ctx), void *ctx);

#endif
