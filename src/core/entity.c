#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/entity.h"
#include "lib/util.h"

static const char *const project_status[] = {"planned", "active", "on_hold", "completed",
    "cancelled", NULL};

/* column, field, type, max, required, email, redaction, choices, and the
 * subject-search term with its generated column (or NO_SUBJECT) */
#define NO_SUBJECT SUBJECT_NONE, NULL
static const struct entity_column contact_cols[] = {
    {"name", "name", FT_STRING, 200, false, false, RED_TOMBSTONE, NULL, SUBJECT_NAME, "name_key"},
    {"email", "email", FT_STRING, 254, false, true, RED_UNIQUE, NULL, SUBJECT_EMAIL, "email_hash"},
    {"phone", "phone", FT_STRING, 64, false, false, RED_NULL, NULL, SUBJECT_PHONE, "phone_hash"},
    {"address", "address", FT_STRING, 500, false, false, RED_NULL, NULL, NO_SUBJECT},
    {"notes", "notes", FT_STRING, 10000, false, false, RED_NULL, NULL, NO_SUBJECT},
};
static const struct entity_column project_cols[] = {
    {"name", "name", FT_STRING, 200, true, false, RED_KEEP, NULL, NO_SUBJECT},
    {"client_name", "clientName", FT_STRING, 200, false, false, RED_TOMBSTONE, NULL, SUBJECT_NAME,
        "client_name_key"},
    {"description", "description", FT_STRING, 10000, false, false, RED_NULL, NULL, NO_SUBJECT},
    {"budget", "budget", FT_NUMBER, 1000000000000LL, false, false, RED_KEEP, NULL, NO_SUBJECT},
    {"status", "status", FT_ENUM, 0, false, false, RED_KEEP, project_status, NO_SUBJECT},
};
static const struct entity_column office_cols[] = {
    {"name", "name", FT_STRING, 200, true, false, RED_KEEP, NULL, NO_SUBJECT},
    {"address", "address", FT_STRING, 500, false, false, RED_NULL, NULL, NO_SUBJECT},
    {"phone", "phone", FT_STRING, 64, false, false, RED_NULL, NULL, SUBJECT_PHONE, "phone_hash"},
    {"manager_name", "managerName", FT_STRING, 200, false, false, RED_TOMBSTONE, NULL, SUBJECT_NAME,
        "manager_name_key"},
};
static const struct entity_column user_cols[] = {
    {"email", "email", FT_STRING, 254, true, true, RED_UNIQUE, NULL, SUBJECT_EMAIL, "email_hash"},
    {"name", "name", FT_STRING, 200, true, false, RED_TOMBSTONE, NULL, SUBJECT_NAME, "name_key"},
};
static const struct entity_column org_cols[] = {
    {"name", "name", FT_STRING, 200, true, false, RED_TOMBSTONE, NULL, SUBJECT_NAME, "name_key"},
};

#define COLS(a) a, countof(a)
_Static_assert(countof(contact_cols) <= ENTITY_MAX_COLS &&
                   countof(project_cols) <= ENTITY_MAX_COLS &&
                   countof(office_cols) <= ENTITY_MAX_COLS &&
                   countof(user_cols) <= ENTITY_MAX_COLS && countof(org_cols) <= ENTITY_MAX_COLS,
    "ENTITY_MAX_COLS bounds every entity's columns");

const struct entity entities[ENTITY__MAX] = {
    [ENTITY_USERS] = {"users", "users", false, false, COLS(user_cols), "org_id"},
    [ENTITY_CONTACTS] = {"contacts", "contacts", true, true, COLS(contact_cols), "org_id"},
    [ENTITY_PROJECTS] = {"projects", "projects", true, true, COLS(project_cols), "org_id"},
    [ENTITY_OFFICES] = {"offices", "offices", true, true, COLS(office_cols), "org_id"},
    [ENTITY_ORGS] = {"orgs", "orgs", false, false, COLS(org_cols), "id"},
};

const struct entity *entity_find(const char *name)
{
	for (size_t i = 0; name && i < ENTITY__MAX; i++)
		if (strcmp(entities[i].name, name) == 0)
			return &entities[i];
	return NULL;
}

static bool listed(enum entity_list which, int pass, const struct entity *e)
{
	switch (which) {
	case ENTITIES_TENANT_FIRST:
		return pass == 0 ? e->tenant : !e->tenant;
	case ENTITIES_CRUD:
		return pass == 0 && e->crud;
	default:
		return pass == 0;
	}
}

const char *const *entity_choices(enum entity_list which)
{
	static const char *lists[ENTITIES__MAX][ENTITY__MAX + 1];
	const char **out = lists[(unsigned)which < ENTITIES__MAX ? which : ENTITIES_ALL];

	if (!out[0])
		for (int pass = 0, n = 0; pass < 2; pass++)
			for (size_t i = 0; i < ENTITY__MAX; i++)
				if (listed(which, pass, &entities[i]))
					out[n++] = entities[i].name;
	return out;
}

/* What each redaction writes, as SQL over the row's own id: the one place
 * that says how a PII column is redacted (README "Runbook 2"). A unique
 * tombstone is derived from the id (the first 16 hex digits of its
 * sha256), so that unique columns stay unique. */
static const char *const redaction_sql[] = {
    [RED_KEEP] = NULL,
    [RED_NULL] = "NULL",
    [RED_TOMBSTONE] = "'[redacted]'",
    [RED_UNIQUE] = "CONCAT('redacted+', LEFT(SHA2(id, 256), 16), '@redacted.invalid')",
};

const char *entity_redaction_sql(enum redaction r)
{
	return (unsigned)r < countof(redaction_sql) ? redaction_sql[r] : NULL;
}

size_t entity_strip_set_sql(const struct entity *e, char *buf, size_t len)
{
	size_t n = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < e->ncols; i++) {
		const char *v = entity_redaction_sql(e->cols[i].redact);
		int w;

		if (!v)
			continue;
		w = snprintf(buf + n, len - n, "%s%s = %s", n ? ", " : "", e->cols[i].column, v);
		if (w < 0 || (size_t)w >= len - n)
			return 0;
		n += (size_t)w;
	}
	return n;
}
