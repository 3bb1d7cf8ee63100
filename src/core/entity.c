#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "entity.h"
#include "util.h"

static const char *const project_status[] = {"planned", "active", "on_hold", "completed",
	"cancelled", NULL};

/* column, field, type, max, required, email, redaction, choices */
static const struct entity_column contact_cols[] = {
	{"name", "name", FT_STRING, 200, false, false, RED_TOMBSTONE, NULL},
	{"email", "email", FT_STRING, 254, false, true, RED_UNIQUE, NULL},
	{"phone", "phone", FT_STRING, 64, false, false, RED_NULL, NULL},
	{"address", "address", FT_STRING, 500, false, false, RED_NULL, NULL},
	{"notes", "notes", FT_STRING, 10000, false, false, RED_NULL, NULL},
};
static const struct entity_column project_cols[] = {
	{"name", "name", FT_STRING, 200, true, false, RED_KEEP, NULL},
	{"client_name", "clientName", FT_STRING, 200, false, false, RED_TOMBSTONE, NULL},
	{"description", "description", FT_STRING, 10000, false, false, RED_NULL, NULL},
	{"budget", "budget", FT_NUMBER, 1000000000000LL, false, false, RED_KEEP, NULL},
	{"status", "status", FT_ENUM, 0, false, false, RED_KEEP, project_status},
};
static const struct entity_column office_cols[] = {
	{"name", "name", FT_STRING, 200, true, false, RED_KEEP, NULL},
	{"address", "address", FT_STRING, 500, false, false, RED_NULL, NULL},
	{"phone", "phone", FT_STRING, 64, false, false, RED_NULL, NULL},
	{"manager_name", "managerName", FT_STRING, 200, false, false, RED_TOMBSTONE, NULL},
};
static const struct entity_column user_cols[] = {
	{"email", "email", FT_STRING, 254, true, true, RED_UNIQUE, NULL},
	{"name", "name", FT_STRING, 200, true, false, RED_TOMBSTONE, NULL},
};
static const struct entity_column org_cols[] = {
	{"name", "name", FT_STRING, 200, true, false, RED_TOMBSTONE, NULL},
};

#define COLS(a) a, countof(a)

const struct entity entities[] = {
	{"contacts", "contacts", true, true, COLS(contact_cols), "org_id"},
	{"projects", "projects", true, true, COLS(project_cols), "org_id"},
	{"offices", "offices", true, true, COLS(office_cols), "org_id"},
	{"users", "users", false, false, COLS(user_cols), "org_id"},
	{"orgs", "orgs", false, false, COLS(org_cols), "id"},
};
const size_t nentities = countof(entities);

const struct entity *entity_find(const char *name)
{
	for (size_t i = 0; name && i < nentities; i++)
		if (strcmp(entities[i].name, name) == 0)
			return &entities[i];
	return NULL;
}

const char *entity_redacted_value(const struct entity_column *c, const uint8_t id[16], char *buf,
    size_t len)
{
	uint8_t h[32];
	char hex[65];

	switch (c->redact) {
	case RED_TOMBSTONE:
		return "[redacted]";
	case RED_UNIQUE:
		/* Unique columns keep unique values: derived from the row id. */
		sha256_raw(id, 16, h);
		hex_encode(h, 8, hex);
		snprintf(buf, len, "redacted+%s@redacted.invalid", hex);
		return buf;
	default:
		return NULL;
	}
}

int tenant_org_db(struct db *control, struct arena *a, const uint8_t org[16], struct tenant_org *out)
{
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(org, 16)};

	memset(out, 0, sizeof(*out));
	if (db_query(control, a, "SELECT db_mode, legal_hold FROM orgs WHERE id = ?", p, 1, &rows) != 0)
		return -1;
	if (rows.nrows != 1)
		return 1;
	out->legal_hold = rows.val[0][1] && strcmp(rows.val[0][1], "0") != 0;
	/* Dedicated databases arrive with tenant migration; until then every
	 * org's records live in the shared database. */
	out->db = control;
	return 0;
}

int legal_hold_guard(struct db *d, struct arena *a, const struct entity *e, const uint8_t id[16],
    bool *held)
{
	char sql[256];
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(id, 16)};

	*held = false;
	if (strcmp(e->org_column, "id") == 0)
		snprintf(sql, sizeof(sql), "SELECT legal_hold, legal_hold FROM %s WHERE id = ? FOR UPDATE",
		    e->table);
	else
		snprintf(sql, sizeof(sql),
		    "SELECT t.legal_hold, COALESCE(o.legal_hold, 0) FROM %s t"
		    " LEFT JOIN orgs o ON o.id = t.%s WHERE t.id = ? FOR UPDATE",
		    e->table, e->org_column);
	if (db_query(d, a, sql, p, 1, &rows) != 0)
		return -1;
	if (rows.nrows != 1)
		return 1;
	*held = strcmp(rows.val[0][0] ? rows.val[0][0] : "0", "0") != 0 ||
	    strcmp(rows.val[0][1] ? rows.val[0][1] : "0", "0") != 0;
	return 0;
}
