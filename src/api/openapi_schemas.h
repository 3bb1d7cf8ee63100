/* The named schemas of the API document (api/openapi.c): the success bodies
 * the route table names (RESP), the error envelope, the request bodies made
 * from field tables. Each is declared once in api/openapi_schemas.c, or
 * derived from a table of the code (the entity table, the error codes). */
#ifndef OPSD_OPENAPI_SCHEMAS_H
#define OPSD_OPENAPI_SCHEMAS_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;
struct field_spec;
struct entity;

/* What went wrong while building the document; each problem is reported
 * through fn (may be NULL) and counted. */
struct openapi_problems {
	void (*fn)(const char *problem, void *ctx);
	void *ctx;
	int n;
};
void openapi_problem(struct openapi_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* {"$ref": "#/components/schemas/<name>"} */
struct json_object *openapi_ref(const char *name);

/* Adds the schema called name, and every schema it refers to, to schemas
 * (the document's components.schemas) unless it is there already. A
 * reported problem when no such schema exists. */
void openapi_schema_add(struct json_object *schemas, const char *name, struct openapi_problems *p);

/* The media types of a named body, space-separated: "application/json"
 * unless the schema says otherwise (/metrics' text, CSV exports). */
const char *openapi_schema_media(const char *name);

/* The schema of one field of a field table, for a body or a query. */
struct json_object *openapi_field_schema(const struct field_spec *f);
/* A body's schema from its field table: an object of exactly those fields. */
struct json_object *openapi_spec_schema(const struct field_spec *spec);

/* The name of the record schema of entity e ("ContactsRecord"), with an
 * optional suffix ("Page"). */
void openapi_record_name(const struct entity *e, const char *suffix, char *buf, size_t len);

#endif
