/* Request bodies as a JSON route sees them: json_parse_body under the API's
 * limits, then json_validate against the field table the route table names
 * for that route (every route with a body: its BODY spec, a tenant record
 * route's create or patch spec from the entity table), then the getters the
 * handlers read the checked body with. The first input byte picks the
 * route, the rest is the body. */
#include "fuzz.h"

#include "api/api.h"
#include "api/routes.h"
#include "api/specs.h"
#include "core/entity.h"
#include "lib/json.h"
#include "lib/utf8.h"

#define SPECS_MAX 128

static const struct field_spec *specs[SPECS_MAX];
static size_t nspecs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* their "entity" choices come from the entity table at run time */
	entity_spec(compliance_hold_spec);
	entity_spec(compliance_strip_spec);
	entity_spec(compliance_archive_spec);
	for (size_t i = 0; i < nroutes && nspecs < SPECS_MAX; i++) {
		const struct route *rt = &routes[i];

		if (rt->body)
			specs[nspecs++] = rt->body;
		else if (rt->entity && (rt->flags & RF_JSON_BODY))
			specs[nspecs++] = tenant_spec(rt->entity, strcmp(rt->method, "POST") == 0);
	}
	if (nspecs == 0)
		abort();
	return 0;
}

static void read_checked(struct json_object *obj, const struct field_spec *spec)
{
	for (const struct field_spec *f = spec; f->name; f++) {
		const char *s;
		long long n;

		switch (f->type) {
		case FT_STRING:
			s = json_get_str(obj, f->name, NULL);
			/* checked: a string within its bounds, in characters */
			if (s && (f->min || f->max) &&
			    (utf8_chars(s, strlen(s)) < (size_t)f->min ||
			        utf8_chars(s, strlen(s)) > (size_t)f->max))
				abort();
			break;
		case FT_INT:
			n = json_get_int(obj, f->name, f->min);
			if ((f->min || f->max) && (n < f->min || n > f->max))
				abort();
			break;
		case FT_BOOL:
			(void)json_get_bool(obj, f->name, false);
			break;
		case FT_UUID:
		case FT_TIME:
		case FT_ENUM:
			s = json_get_str(obj, f->name, "");
			(void)strlen(s);
			break;
		default:
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *obj = NULL, *details = NULL;
	const struct field_spec *spec;
	char why[160];
	char *body;
	int problems;

	if (size < 1)
		return 0;
	spec = specs[data[0] % nspecs];
	body = fuzz_cstr(data + 1, size - 1);
	if (json_parse_body(body, size - 1, &obj, why, sizeof(why)) != JSON_PARSE_OK) {
		if (obj || why[0] == '\0')
			abort();
		free(body);
		return 0;
	}
	problems = json_validate(obj, spec, &details);
	if ((problems > 0) != (details != NULL))
		abort();
	if (details)
		(void)json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN);
	else
		read_checked(obj, spec);
	json_object_put(details);
	json_object_put(obj);
	free(body);
	return 0;
}
