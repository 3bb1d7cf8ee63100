/* The schemas of the API document, one line each. Most are written in a
 * short form of their properties that reads like the JSON they describe:
 *
 *   name:type    a property that is always there
 *   name?:type   a property that may be absent
 *   @Other       every property of the schema Other (short form) too
 *   ...          other properties may appear (an opaque part)
 *
 * and the types are string, uuid, time (RFC 3339), int, number, bool,
 * object (any object), intmap (an object of integers), any, @Name (another
 * schema), [type] (an array), each with |null when null is allowed. Without
 * "..." an object has exactly the properties listed. A name ending in
 * "Page" is a list page of the name before it ({"items": [...],
 * "nextCursor": …}, README "API"); it is in the table only to give other
 * media types (CSV). The error envelope and
 * the tenant records are made from the tables of the code. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/openapi_schemas.h"
#include "core/entity.h"
#include "http/http.h"
#include "lib/json.h"
#include "lib/util.h"

struct named_schema {
	const char *name;
	const char *props; /* the short form; NULL when build makes it */
	struct json_object *(*build)(struct json_object *schemas, struct openapi_problems *p);
	const char *media; /* NULL: application/json */
};

static struct json_object *error_envelope(struct json_object *schemas, struct openapi_problems *p);
static struct json_object *text_body(struct json_object *schemas, struct openapi_problems *p);

/* clang-format off */
static const struct named_schema named[] = {
	{"ErrorEnvelope", NULL, error_envelope, NULL},
	/* The details depend on the code; these are the ones clients use. */
	{"Error", "code:string message:string details:@ErrorDetails", NULL, NULL},
	{"ErrorDetails", "fields?:object permission?:string pending?:[object] allow?:string reason?:string field?:string layer?:string ...", NULL, NULL},

	/* system.c, openapi.c */
	{"Health", "status:string", NULL, NULL},
	{"Ready", "status:string db:string schema:string", NULL, NULL},
	{"PoolStatus", "pool:string processManager:string startTime:time startSince:int acceptedConn:int listenQueue:int|null listenQueueLen:int|null idleProcesses:int activeProcesses:int totalProcesses:int maxActiveProcesses:int maxChildren:int maxChildrenReached:int slowRequests:int requestTimeouts:int workerRestarts:int nginxApply:[@NginxApply] processes?:[@PoolProcess]", NULL, NULL},
	{"NginxApply", "file:string state:string lastCheckAt:time|null lastSuccessAt:time|null lastReloadAt:time|null failures:int lastError:string|null lastErrorAt:time|null", NULL, NULL},
	{"PoolProcess", "pid:int state:string startTime:time requests:int generation:int requestMethod?:string requestUri?:string requestId?:string requestDurationMs?:int lastRequestMethod?:string lastRequestUri?:string lastRequestStatus?:int lastRequestDurationMs?:number", NULL, NULL},
	{"MetricsText", NULL, text_body, "text/plain"},
	{"OpenApiDocument", "openapi:string info:object paths:object components:object ...", NULL, NULL},

	/* auth.c */
	{"User", "id:uuid email:string name:string roles:[string] orgId:uuid|null service:bool disabled:bool createdAt:time updatedAt:time", NULL, NULL},
	{"Login", "user:@User csrfToken:string expiresAt:time", NULL, NULL},
	{"LoggedOut", "loggedOut:bool", NULL, NULL},
	{"Me", "user:@User permissions:[string] roleTable:[@RoleChoice] authMethod:string csrfToken?:string", NULL, NULL},
	{"RoleChoice", "role:string grantable:bool orgRole:bool", NULL, NULL},
	{"CsrfToken", "csrfToken:string", NULL, NULL},
	{"Token", "id:uuid name:string scopes:[string] expiresAt:time|null createdAt:time lastUsedAt:time|null revokedAt:time|null", NULL, NULL},
	{"NewToken", "@Token token:string", NULL, NULL},
	{"TokenRevoked", "revoked:bool", NULL, NULL},

	/* legal.c */
	{"LegalPublished", "id:uuid type:string version:string effectiveAt:time contentSha256:string publishedAt:time current:bool notify:bool", NULL, NULL},
	{"LegalDocument", "type:string version:string content:string effectiveAt:time contentSha256:string publishedAt:time", NULL, NULL},
	{"LegalVersionInfo", "type:string version:string effectiveAt:time contentSha256:string publishedAt:time", NULL, NULL},
	{"LegalVersion", "@LegalVersionInfo current:bool", NULL, NULL},
	{"LegalType", "type:string current:@LegalVersionInfo|null scheduled:[@LegalVersionInfo]", NULL, NULL},
	{"LegalDiff", "type:string from:string to:string diff:[@LegalDiffLine] unified:string", NULL, NULL},
	{"LegalDiffLine", "op:string line:string", NULL, NULL},
	{"LegalStatus", "enforced:bool pending:[@LegalPending] accepted:[@LegalAcceptance]", NULL, NULL},
	{"LegalPending", "type:string version:string effectiveAt:time", NULL, NULL},
	{"LegalAcceptance", "type:string version:string acceptedAt:time", NULL, NULL},
	{"LegalReport", "type:string version:string accepted:int pending:int pendingUsers:@PendingUserPage", NULL, NULL},
	{"PendingUser", "id:uuid email:string name:string orgId:uuid|null", NULL, NULL},

	/* users.c, tenant.c */
	{"Org", "id:uuid name:string slug:string dbMode:string legalHold:bool createdAt:time updatedAt:time", NULL, NULL},
	{"Deleted", "deleted:bool", NULL, NULL},
	/* migration.c: PUT /orgs/:id/dedicated-target */
	{"DedicatedTarget", "orgId:uuid dbMode:string target:string", NULL, NULL},

	/* compliance.c, export.c */
	{"BatchResult", "counts:intmap results:[@BatchOutcome]", NULL, NULL},
	{"BatchOutcome", "id:uuid result:string", NULL, NULL},
	{"ArchiveResult", "dryRun:bool counts:intmap results?:[@BatchOutcome]", NULL, NULL},
	{"ComplianceRecord", "entity:string id:uuid orgId:uuid|null piiStripped:bool piiStrippedAt:time|null piiStrippedReason:string|null legalHold:bool legalHoldAt:time|null legalHoldReason:string|null legalHoldCaseRef:string|null archived:bool archivedAt:time|null archivedReason:string|null", NULL, NULL},
	{"SubjectExport", "entity:string id:uuid exportedAt:time record:object", NULL, NULL},
	{"OrgExport", "items:[object]", NULL, "application/json text/csv"},
	/* subjects.c: POST /compliance/subjects/search (core/subjects.c) */
	{"SubjectSearchResult", "items:[@SubjectMatch] nextCursor:string|null unsearched:[@SubjectUnsearched]", NULL, NULL},
	{"SubjectMatch", "entity:string id:uuid orgId:uuid|null database:string dedicatedDb?:string matched:[@SubjectMatchedField] piiStripped:bool legalHold:bool orgLegalHold:bool archived:bool", NULL, NULL},
	{"SubjectMatchedField", "term:string field:string", NULL, NULL},
	{"SubjectUnsearched", "orgId:uuid database:string dedicatedDb:string|null", NULL, NULL},

	/* migration.c: the engine's status document (migration/status.c) */
	{"Migration", "id:uuid orgId:uuid direction:string status:string phase:string|null dryRun:bool chunkSize:int target:string|null dbName:string|null reason:string|null abortReason:string|null overrideLegalHold:bool tables:[@MigrationTable] rowsCopied:int rowsTotal:int percent:number rowsPerSecond:number etaSeconds:int|null throttled:bool throttleReason:string|null changelog:@MigrationChangelog verification:object|null report:object|null freezeMs:int|null error:string|null createdBy:uuid|null createdAt:time updatedAt:time finishedAt:time|null", NULL, NULL},
	{"MigrationTable", "table:string rowsCopied:int rowsTotal:int done:bool verified:bool", NULL, NULL},
	{"MigrationChangelog", "snapshot:int|null applied:int|null pending:int|null", NULL, NULL},
	/* finalize with dryRun: the rehearsal's report (migration/rehearsal.c) */
	{"MigrationRehearsal", "migrationId:uuid orgId:uuid dryRun:bool rehearsal:bool switched:bool ok:bool steps:any verification:any error:string|null ...", NULL, NULL},

	/* security.c */
	{"SessionsFlushed", "scope:string flushed:int tokensRevoked?:int", NULL, NULL},
	{"ContainedUser", "@User changed:bool", NULL, NULL},
	{"TokensRevoked", "scope:string id?:uuid revoked:int", NULL, NULL},
	{"BlocklistEntry", "id:uuid cidr:string family:string prefix:int reason:string createdBy:uuid|null createdByLabel:string createdAt:time expiresAt:time|null nginx:@BlocklistNginx", NULL, NULL},
	{"BlocklistNginx", "applied:bool appliedAt:time|null hosts:int hostsApplied:int", NULL, NULL},
	/* ?format=plain|nft|iptables|ip6tables: the whole active list as text */
	{"BlocklistEntryPage", NULL, NULL, "application/json text/plain"},
	{"BlocklistRemoved", "@BlocklistEntry removed:bool", NULL, NULL},
	/* rate_limits.c */
	{"RateLimits", "limits:[@RateLimit] generation:int nginxGeneration:int nginxAppliedGeneration:int nginxAppliedAt:time|null nginxApplied:bool", NULL, NULL},
	{"RateLimit", "name:string layer:string variable:string description:string value:any source:string envValue:any envSource:string setBy:uuid|null setByLabel:string|null setAt:time|null reason:string|null", NULL, NULL},
	{"RateLimitsChanged", "@RateLimits changed:int", NULL, NULL},

	/* email.c */
	{"EmailQueued", "id:uuid status:string to:string", NULL, NULL},
	{"EmailSettings", "server:string|null port:int secure:string user:string|null passwordSet:bool from:string|null caFile:string|null testMode:bool allowlist:[string]", NULL, NULL},
	{"OutboxMessage", "id:uuid kind:string to:string subject:string status:string attempts:int nextAttemptAt:time lastSmtpStatus:int|null lastError:string|null createdAt:time sentAt:time|null", NULL, NULL},

	/* audit.c */
	{"AuditEvent", "id:uuid occurredAt:time actorId:uuid|null actorLabel:string orgId:uuid|null action:string targetType:string|null targetId:string|null ip:string|null requestId:string|null payload:object|null", NULL, NULL},
	{"AuditEventPage", NULL, NULL, "application/json text/csv"},
	{"AuditVerify", "ok:bool checked:int fromSeq:int toSeq:int more:bool cursor:string|null checkpoint:@AuditCheckpoint|null firstBrokenId?:uuid|null firstBrokenSeq?:int reason?:string", NULL, NULL},
	{"AuditCheckpoint", "seq:int verifiedAt:time|null verifiedBy:string", NULL, NULL},
};
/* clang-format on */

void openapi_problem(struct openapi_problems *p, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->n++;
	if (p->fn)
		p->fn(buf, p->ctx);
}

struct json_object *openapi_ref(const char *name)
{
	struct json_object *o = json_object_new_object();
	char ref[160];

	snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
	json_object_object_add(o, "$ref", json_object_new_string(ref));
	return o;
}

static const struct named_schema *find_named(const char *name, size_t len)
{
	for (size_t i = 0; i < countof(named); i++)
		if (strlen(named[i].name) == len && strncmp(named[i].name, name, len) == 0)
			return &named[i];
	return NULL;
}

static struct json_object *typed(const char *type, const char *format)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(type));
	if (format)
		json_object_object_add(o, "format", json_object_new_string(format));
	return o;
}

/* null allowed as well: ["string", "null"] for a typed schema, anyOf for a
 * reference; "any" allows it already. */
static struct json_object *or_null(struct json_object *s)
{
	struct json_object *t, *any, *n;

	if (json_object_object_get_ex(s, "type", &t) && json_object_is_type(t, json_type_string)) {
		struct json_object *a = json_object_new_array();

		json_object_array_add(a, json_object_get(t));
		json_object_array_add(a, json_object_new_string("null"));
		json_object_object_add(s, "type", a);
		return s;
	}
	if (!json_object_object_get_ex(s, "$ref", &t))
		return s;
	any = json_object_new_array();
	n = typed("null", NULL);
	json_object_array_add(any, s);
	json_object_array_add(any, n);
	s = json_object_new_object();
	json_object_object_add(s, "anyOf", any);
	return s;
}

/* ---- the short form ---------------------------------------------------- */

static const struct {
	const char *word;
	const char *type;
	const char *format;
} words[] = {
    {"string", "string", NULL},
    {"uuid", "string", "uuid"},
    {"time", "string", "date-time"},
    {"int", "integer", NULL},
    {"number", "number", NULL},
    {"bool", "boolean", NULL},
    {"object", "object", NULL},
};

static struct json_object *short_type(const char *t, size_t n, struct json_object *schemas,
    struct openapi_problems *p)
{
	static const char null_suffix[] = "|null";
	size_t ns = sizeof(null_suffix) - 1;
	struct json_object *s = NULL;

	if (n > ns && strncmp(t + n - ns, null_suffix, ns) == 0) {
		s = short_type(t, n - ns, schemas, p);
		return s ? or_null(s) : NULL;
	}
	if (n >= 2 && t[0] == '[' && t[n - 1] == ']') {
		struct json_object *items = short_type(t + 1, n - 2, schemas, p);

		if (!items)
			return NULL;
		s = typed("array", NULL);
		json_object_object_add(s, "items", items);
		return s;
	}
	if (n > 1 && t[0] == '@') {
		char name[96];

		snprintf(name, sizeof(name), "%.*s", (int)(n - 1), t + 1);
		openapi_schema_add(schemas, name, p);
		return openapi_ref(name);
	}
	if (n == 3 && strncmp(t, "any", 3) == 0)
		return json_object_new_object();
	if (n == 6 && strncmp(t, "intmap", 6) == 0) {
		s = typed("object", NULL);
		json_object_object_add(s, "additionalProperties", typed("integer", NULL));
		return s;
	}
	for (size_t i = 0; i < countof(words); i++)
		if (strlen(words[i].word) == n && strncmp(words[i].word, t, n) == 0)
			return typed(words[i].type, words[i].format);
	openapi_problem(p, "schema type \"%.*s\" is not one of the short form's", (int)n, t);
	return NULL;
}

/* The properties of src into props and required; *open when "..." is there. */
static void short_props(const char *src, struct json_object *props, struct json_object *required,
    bool *open, struct json_object *schemas, struct openapi_problems *p, int depth)
{
	for (const char *t = src; *t;) {
		size_t n = strcspn(t, " "), name_len;
		const char *colon = memchr(t, ':', n);
		bool optional;
		struct json_object *s;

		if (n == 0) {
			t++;
			continue;
		}
		if (n == 3 && strncmp(t, "...", 3) == 0) {
			*open = true;
		} else if (!colon && t[0] == '@') {
			const struct named_schema *inc = find_named(t + 1, n - 1);

			if (!inc || !inc->props || depth > 4)
				openapi_problem(p, "\"%.*s\" names no schema in the short form",
				    (int)n, t);
			else
				short_props(inc->props, props, required, open, schemas, p,
				    depth + 1);
		} else if (!colon || colon == t) {
			openapi_problem(p, "\"%.*s\" is not name:type", (int)n, t);
		} else {
			name_len = (size_t)(colon - t);
			optional = t[name_len - 1] == '?';
			if (optional)
				name_len--;
			s = short_type(colon + 1, n - (size_t)(colon + 1 - t), schemas, p);
			if (s) {
				char name[64];

				snprintf(name, sizeof(name), "%.*s", (int)name_len, t);
				json_object_object_add(props, name, s);
				if (!optional)
					json_object_array_add(required,
					    json_object_new_string(name));
			}
		}
		t += n;
	}
}

static struct json_object *object_schema(struct json_object *props, struct json_object *required,
    bool open)
{
	struct json_object *o = typed("object", NULL);

	if (json_object_array_length(required) > 0)
		json_object_object_add(o, "required", required);
	else
		json_object_put(required);
	json_object_object_add(o, "properties", props);
	if (!open)
		json_object_object_add(o, "additionalProperties", json_object_new_boolean(0));
	return o;
}

static struct json_object *short_schema(const char *src, struct json_object *schemas,
    struct openapi_problems *p)
{
	struct json_object *props = json_object_new_object(), *required = json_object_new_array();
	bool open = false;

	short_props(src, props, required, &open, schemas, p, 0);
	return object_schema(props, required, open);
}

/* ---- made from the code's tables --------------------------------------- */

static struct json_object *text_body(struct json_object *schemas, struct openapi_problems *p)
{
	(void)schemas;
	(void)p;
	return typed("string", NULL);
}

/* README "Errors": every refusal, opsd's and nginx's own, uses it. */
static struct json_object *error_envelope(struct json_object *schemas, struct openapi_problems *p)
{
	struct json_object *codes = json_object_new_array(), *code, *env;

	for (int i = 0; i < E__MAX; i++) {
		bool seen = false;

		for (int k = 0; k < i; k++)
			seen |= strcmp(api_errors[k].code, api_errors[i].code) == 0;
		if (!seen)
			json_object_array_add(codes, json_object_new_string(api_errors[i].code));
	}
	code = typed("string", NULL);
	json_object_object_add(code, "pattern", json_object_new_string("^[a-z][a-z0-9_]*$"));
	json_object_object_add(code, "description",
	    json_object_new_string(
	        "opsd's codes are the examples (README \"Errors\"); nginx answers the errors it "
	        "meets itself in the same envelope with codes of its own (uri_too_long, "
	        "request_timeout, bad_gateway, ...)"));
	json_object_object_add(code, "examples", codes);
	env = short_schema("error:@Error requestId:string|null", schemas, p);
	openapi_schema_add(schemas, "Error", p);
	json_object_object_add(
	    json_object_object_get(json_object_object_get(schemas, "Error"), "properties"), "code",
	    code);
	return env;
}

void openapi_record_name(const struct entity *e, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%c%sRecord%s", toupper((unsigned char)e->name[0]), e->name + 1,
	    suffix ? suffix : "");
}

/* A record as core/records.c record_json renders it: its id and org, the
 * entity's fields (null when unset), its compliance flags and times. */
static struct json_object *record_schema(const struct entity *e, struct json_object *schemas,
    struct openapi_problems *p)
{
	char src[1024];
	size_t n = (size_t)snprintf(src, sizeof(src), "id:uuid orgId:uuid");
	struct json_object *o, *props;

	for (size_t i = 0; i < e->ncols && n < sizeof(src); i++)
		n += (size_t)snprintf(src + n, sizeof(src) - n, " %s:%s%s", e->cols[i].field,
		    e->cols[i].type == FT_NUMBER ? "number" : "string",
		    e->cols[i].required ? "" : "|null");
	snprintf(src + n, sizeof(src) - n,
	    " legalHold:bool piiStripped:bool archived:bool createdAt:time updatedAt:time");
	o = short_schema(src, schemas, p);
	props = json_object_object_get(o, "properties");
	for (size_t i = 0; i < e->ncols; i++) {
		const struct entity_column *c = &e->cols[i];
		struct json_object *en;

		if (c->type != FT_ENUM || !c->choices)
			continue;
		en = json_object_new_array();
		for (const char *const *ch = c->choices; *ch; ch++)
			json_object_array_add(en, json_object_new_string(*ch));
		if (!c->required)
			json_object_array_add(en, NULL);
		json_object_object_add(json_object_object_get(props, c->field), "enum", en);
	}
	return o;
}

/* {"items": [<item>], "nextCursor": string or null} */
static struct json_object *page_schema(const char *item, struct json_object *schemas,
    struct openapi_problems *p)
{
	struct json_object *o = short_schema("nextCursor:string|null", schemas, p);
	struct json_object *items = typed("array", NULL);

	openapi_schema_add(schemas, item, p);
	json_object_object_add(items, "items", openapi_ref(item));
	json_object_object_add(json_object_object_get(o, "properties"), "items", items);
	json_object_array_add(json_object_object_get(o, "required"),
	    json_object_new_string("items"));
	return o;
}

static struct json_object *build(const char *name, struct json_object *schemas,
    struct openapi_problems *p)
{
	const struct named_schema *s = find_named(name, strlen(name));
	size_t n = strlen(name);
	char rec[96];

	if (s && (s->props || s->build))
		return s->props ? short_schema(s->props, schemas, p) : s->build(schemas, p);
	for (size_t i = 0; i < ENTITY__MAX; i++) {
		openapi_record_name(&entities[i], NULL, rec, sizeof(rec));
		if (strcmp(rec, name) == 0)
			return record_schema(&entities[i], schemas, p);
	}
	if (n > 4 && strcmp(name + n - 4, "Page") == 0) {
		char item[96];

		snprintf(item, sizeof(item), "%.*s", (int)(n - 4), name);
		if (find_named(item, strlen(item)) || strstr(item, "Record"))
			return page_schema(item, schemas, p);
	}
	return NULL;
}

void openapi_schema_add(struct json_object *schemas, const char *name, struct openapi_problems *p)
{
	struct json_object *s;

	if (json_object_object_get_ex(schemas, name, NULL))
		return;
	/* Held by a null first: a schema that refers to itself stops here. */
	json_object_object_add(schemas, name, NULL);
	s = build(name, schemas, p);
	if (!s) {
		json_object_object_del(schemas, name);
		openapi_problem(p, "no schema named %s (api/openapi_schemas.c)", name);
		return;
	}
	json_object_object_add(schemas, name, s);
}

const char *openapi_schema_media(const char *name)
{
	const struct named_schema *s = name ? find_named(name, strlen(name)) : NULL;

	return s && s->media ? s->media : "application/json";
}

/* ---- field tables -------------------------------------------------------- */

static void bounds(struct json_object *o, const struct field_spec *f, const char *lo,
    const char *hi)
{
	if (f->min == 0 && f->max == 0)
		return;
	json_object_object_add(o, lo, json_object_new_int64(f->min));
	json_object_object_add(o, hi, json_object_new_int64(f->max));
}

struct json_object *openapi_field_schema(const struct field_spec *f)
{
	struct json_object *o = NULL, *items;
	const char *const *choices;

	switch (f->type) {
	case FT_STRING:
		o = typed("string", NULL);
		bounds(o, f, "minLength", "maxLength");
		break;
	case FT_INT:
		o = typed("integer", NULL);
		bounds(o, f, "minimum", "maximum");
		break;
	case FT_NUMBER:
		o = typed("number", NULL);
		bounds(o, f, "minimum", "maximum");
		break;
	case FT_BOOL:
		o = typed("boolean", NULL);
		break;
	case FT_OBJECT:
		o = typed("object", NULL);
		break;
	case FT_STRING_ARRAY:
		o = typed("array", NULL);
		items = typed("string", NULL);
		json_object_object_add(items, "minLength", json_object_new_int(1));
		json_object_object_add(o, "items", items);
		bounds(o, f, "minItems", "maxItems");
		break;
	case FT_UUID:
		o = typed("string", "uuid");
		break;
	case FT_TIME:
		o = typed("string", "date-time");
		break;
	case FT_ENUM:
		o = typed("string", NULL);
		items = json_object_new_array();
		choices = spec_choices(f);
		for (const char *const *c = choices; c && *c; c++)
			json_object_array_add(items, json_object_new_string(*c));
		if (f->flags & FIELD_NULLABLE)
			json_object_array_add(items, NULL);
		json_object_object_add(o, "enum", items);
		break;
	}
	if (!o)
		o = json_object_new_object();
	return (f->flags & FIELD_NULLABLE) ? or_null(o) : o;
}

struct json_object *openapi_spec_schema(const struct field_spec *spec)
{
	struct json_object *props = json_object_new_object(), *required = json_object_new_array();

	for (const struct field_spec *f = spec; f->name; f++) {
		json_object_object_add(props, f->name, openapi_field_schema(f));
		if (f->flags & FIELD_REQUIRED)
			json_object_array_add(required, json_object_new_string(f->name));
	}
	return object_schema(props, required, false);
}
