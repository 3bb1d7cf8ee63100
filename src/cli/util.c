/* The JSON output the command groups share. */
#include <stdio.h>

#include <json-c/json.h>

#include "cli/cli.h"

void print_json(struct json_object *doc)
{
	printf("%s\n", json_object_to_json_string_ext(doc,
	                   JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

void print_list_page(struct json_object *items, const char *next)
{
	struct json_object *doc = json_object_new_object();

	json_object_object_add(doc, "items", items);
	json_object_object_add(doc, "nextCursor", next ? json_object_new_string(next) : NULL);
	print_json(doc);
	json_object_put(doc);
}

/* Tolerates an absent or null member, and o itself NULL. */
const char *doc_str(struct json_object *o, const char *k)
{
	struct json_object *v = json_object_object_get(o, k);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}
