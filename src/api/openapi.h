/* The API document: OpenAPI 3.1, built from the route table, the field
 * tables of the handlers (api/specs.h) and the named schemas
 * (api/openapi_schemas.h). Served at GET /openapi.json, printed by `opsctl
 * openapi`, installed as $(pkgdatadir)/openapi.json. */
#ifndef OPSD_OPENAPI_H
#define OPSD_OPENAPI_H

#include "api/openapi_schemas.h"

struct json_object;

/* The document (a new object). What it cannot describe — a route without
 * RESP, a JSON route without BODY, an unknown schema — is reported through
 * p and counted; the document is built anyway. */
struct json_object *openapi_document(struct openapi_problems *p);

#endif
