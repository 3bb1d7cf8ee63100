/* The field tables of the API's inputs, each defined once in the handler
 * file that reads it: the handler validates with it and the route table
 * (api/routes.c) names it, so the API document (api/openapi.c) describes
 * exactly what is checked. A new route's body is one array here and one
 * BODY(...) on its route line. */
#ifndef OPSD_SPECS_H
#define OPSD_SPECS_H

#include <stdbool.h>

#include "lib/json.h"

/* ---- request bodies ------------------------------------------------------ */

/* auth.c */
extern const struct field_spec auth_login_spec[];
extern const struct field_spec auth_password_spec[];
extern const struct field_spec token_create_spec[];
/* users.c: /users and /orgs/:orgId/users share the user's fields */
extern const struct field_spec user_create_spec[];
extern const struct field_spec org_user_create_spec[];
extern const struct field_spec user_patch_spec[];
extern const struct field_spec org_create_spec[];
/* legal.c */
extern const struct field_spec legal_publish_spec[];
extern const struct field_spec legal_accept_spec[];
/* compliance.c: their ENTITY_FIELD gets its choices from the entity table
 * (api.h entity_spec), hence not const */
extern struct field_spec compliance_hold_spec[];
extern struct field_spec compliance_strip_spec[];
extern struct field_spec compliance_archive_spec[];
/* subjects.c */
extern const struct field_spec compliance_subjects_search_spec[];
/* migration.c */
extern const struct field_spec migration_start_spec[];
extern const struct field_spec migration_finalize_spec[];
extern const struct field_spec migration_abort_spec[];
extern const struct field_spec dedicated_target_spec[];
/* security.c */
extern const struct field_spec sessions_flush_spec[];
extern const struct field_spec blocklist_add_spec[];
extern const struct field_spec blocklist_remove_spec[];
/* rate_limits.c */
extern const struct field_spec rate_limits_put_spec[];
/* containment.c */
extern const struct field_spec security_user_contain_spec[];
extern const struct field_spec security_tokens_revoke_spec[];
/* email.c */
extern const struct field_spec email_test_spec[];
/* system.c */
extern const struct field_spec test_echo_spec[];
/* tenant.c: a tenant record's body, from the entity table: create (the
 * required columns required) or patch (all optional, null clears). */
struct entity;
const struct field_spec *tenant_spec(const struct entity *e, bool create);

/* ---- query parameters ---------------------------------------------------- */

/* Handlers read these with req_query; the tables say which ones a route
 * takes and their types for the document. FT_BOOL is a flag (present or
 * not). */
#define PAGE_DEFAULT 50
#define PAGE_MAX 500
/* ?limit= and ?cursor= of every list (common.c page_or_reply). */
#define PAGE_QUERY                                                                                 \
	{"limit", FT_INT, 0, 1, PAGE_MAX, NULL},                                                   \
	{                                                                                          \
		"cursor", FT_STRING, 0, 0, 0, NULL                                                 \
	}
extern const struct field_spec page_query[];       /* common.c */
extern const struct field_spec status_query[];     /* system.c */
extern const struct field_spec legal_diff_query[]; /* legal.c */
extern const struct field_spec legal_report_query[];
extern const struct field_spec export_subject_query[]; /* export.c */
extern const struct field_spec export_org_query[];
extern const struct field_spec migration_history_query[]; /* migration.c */
extern const struct field_spec migration_list_query[];
extern const struct field_spec email_outbox_query[];   /* email.c */
extern const struct field_spec audit_list_query[];     /* audit.c */
extern const struct field_spec audit_verify_query[];   /* audit.c */
extern const struct field_spec blocklist_list_query[]; /* security.c */

#endif
