/* Legal documents (README "Runbook 1"): publishing, the current version of
 * each type (cached per worker, invalidated on publish), acceptance and the
 * enforcement gate. */
#ifndef OPSD_LEGAL_H
#define OPSD_LEGAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct opsd_config;

#define LEGAL_TYPE_MAX 32
#define LEGAL_VERSION_MAX 64
#define LEGAL_CONTENT_MAX (1024 * 1024)

struct legal_doc {
	uint8_t id[16];
	char id_s[UUID_STR_LEN + 1];
	char type[LEGAL_TYPE_MAX + 1];
	char version[LEGAL_VERSION_MAX + 1];
	char effective_at[32]; /* RFC 3339 */
	char etag[UUID_STR_LEN + 3];
	char *json; /* the GET /legal/:type body, built once */
	size_t json_len;
};

bool legal_type_valid(const char *s);
bool legal_version_valid(const char *s);

/* Workers share a publish counter through the scoreboard: a publish on this
 * host is seen by every worker on its next request; other hosts within a
 * second. */
void legal_attach_generation(uint64_t *shared);
void legal_published(void);

/* The current documents, from the cache (refreshed when stale, when a
 * scheduled version becomes effective, or after a publish). NULL docs and
 * -1 on a database error. The array lives until the next call. */
int legal_current(struct db *d, const struct legal_doc **docs, size_t *n);
const struct legal_doc *legal_current_of(const struct legal_doc *docs, size_t n, const char *type);

/* The columns legal_doc_json reads, in this order. */
#define LEGAL_DOC_COLUMNS "id, type, version, content, content_sha256, effective_at, created_at"
struct db_rows;
/* The body of GET /legal/:type for row i of a query of LEGAL_DOC_COLUMNS, with its final
 * newline (malloc'd; NULL when out of memory). The files nginx serves hold the same bytes
 * (core/legal_files.c). */
char *legal_doc_json(const struct db_rows *rows, size_t i, size_t *len);

enum legal_err { LEGAL_OK, LEGAL_DUPLICATE, LEGAL_DB_ERROR, LEGAL__MAX };

/* Inserts the version and audits legal.updated in one transaction. The
 * caller has validated type, version, content and time. effective_ms 0 =
 * now. */
enum legal_err legal_publish(struct db *d, const struct audit_actor *actor, const char *type,
    const char *version, const char *content, int64_t effective_ms, bool notify,
    char id_out[UUID_STR_LEN + 1]);

/* Records that actor (a signed-in user; org_id "" for platform staff)
 * accepted doc, a current version, from its address and user agent, and
 * audits legal.accepted; accepting again keeps the first record and writes
 * no event. accepted_at gets the recorded time (RFC 3339). 0 or -1. */
int legal_accept(struct db *d, struct arena *a, const struct audit_actor *actor,
    const char *user_agent, const char *org_id, const struct legal_doc *doc, char accepted_at[32]);

/* Which current documents user_id has not accepted: pending[i] is true for
 * docs[i]. -1 on a database error. */
int legal_pending(struct db *d, struct arena *a, const char *user_id, const struct legal_doc *docs,
    size_t n, bool *pending, char (*accepted_at)[32]);

/* GET /legal/acceptance/report (and opsctl legal report): how many active
 * users (enabled people, not service principals) accepted version of type
 * (NULL: the current one) and how many have not, with one page of the
 * pending ones: {type, version, accepted, pending, pendingUsers: {items:
 * [{id, email, name, orgId}], nextCursor}}, limit users after the user id
 * after (NULL: from the first). */
enum legal_report_rc {
	LEGAL_REPORT_OK,
	LEGAL_REPORT_NO_CURRENT, /* no version given and none is current */
	LEGAL_REPORT_NO_VERSION,
	LEGAL_REPORT_DB_ERROR,
	LEGAL_REPORT__MAX
};
struct json_object;
enum legal_report_rc legal_report(struct db *d, struct arena *a, const char *type,
    const char *version, long long limit, const struct opsd_uuid *after, struct json_object **out);

/* The jobs process: emails every active user about documents published with
 * notify, in batches, through mail_enqueue. */
int legal_notify_batch(struct db *d, const struct opsd_config *cfg);

#endif
