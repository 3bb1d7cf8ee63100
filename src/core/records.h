/* Tenant records (README, "Tenant records"): contacts, projects and
 * offices of an org, in the org's database, driven by the entity table.
 * The one SELECT of a record of any entity and its JSON, and the writes of
 * the CRUD routes, each one tenant write through the legal-hold guard. */
#ifndef OPSD_RECORDS_H
#define OPSD_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/tenant_db.h"
#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct db_rows;
struct entity;
struct json_object;
struct opsd_config;

/* SELECT of a record of e: id, its org (org_id; an org's own id), its
 * columns, its state (legalHold, piiStripped, archived, createdAt,
 * updatedAt), then tail, the caller's WHERE/ORDER text (fixed text only). */
const char *record_select_sql(const struct entity *e, const char *tail, char *buf, size_t len);
/* Row i of a record_select_sql result as the API shows it. */
struct json_object *record_json(const struct entity *e, const struct db_rows *rows, size_t i);

/* The first email column of body that does not hold an address, or NULL. */
const char *record_bad_email(const struct entity *e, struct json_object *body);

/* One write of a record of an org. body holds the fields, validated
 * against the entity table and by record_bad_email; create needs id set. */
struct record_write {
	const struct entity *e;
	struct opsd_uuid org, id;
	struct json_object *body; /* NULL for delete */
	const struct audit_actor *actor;
	/* set by the write */
	bool held;      /* TENANT_REFUSED: the record or its org is on legal hold, else
	                 * the record does not exist in this org */
	struct db *tdb; /* the database the write went to: read the record back there,
	                 * even when a migration switched the org meanwhile */
};
/* Each audited tenant.created, tenant.updated or tenant.deleted with the
 * names of the fields given, never their values. */
enum tenant_rc record_create(struct db *control, const struct opsd_config *cfg, struct arena *a,
    struct record_write *w);
enum tenant_rc record_update(struct db *control, const struct opsd_config *cfg, struct arena *a,
    struct record_write *w);
enum tenant_rc record_delete(struct db *control, const struct opsd_config *cfg, struct arena *a,
    struct record_write *w);

/* Exports (runbook 2). compliance.exported {entity, count, format} about
 * id (NULL for an org export) in its own transaction; -1 (logged) when it
 * cannot be written. A subject's export is then refused (500, or 503 with
 * the database gone); a streamed org export, audited once its count is
 * known, has already been sent. */
int record_audit_export(struct db *control, const struct audit_actor *actor, const struct entity *e,
    const char *org, const char *id, long long n, const char *format);
/* One subject's record (DSR access), as GET /compliance/export and opsctl
 * compliance export answer it: {entity, id, exportedAt, record} with the
 * entity table's declared columns only (stripped ones as stored, i.e.
 * redacted), audited as above. TENANT_NO_ORG: no such record. */
enum tenant_rc record_export_subject(struct db *control, const struct opsd_config *cfg,
    struct arena *a, const struct audit_actor *actor, const struct entity *e,
    const struct opsd_uuid *id, struct json_object **out);

#endif
