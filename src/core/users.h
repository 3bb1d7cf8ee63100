/* Users and orgs of the control database: the one code path behind the API,
 * opsctl and script/server's first superadmin. */
#ifndef OPSD_USERS_H
#define OPSD_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/authz.h"
#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct json_object;
struct opsd_config;

struct user_input {
	const char *email;
	const char *name;
	const char *password; /* NULL: no password (token-only or set later) */
	const char *org_id;   /* NULL for platform staff */
	roleset roles;
	bool service;
};

enum user_err {
	USER_OK,
	USER_DUPLICATE, /* email already used */
	USER_BAD_EMAIL,
	USER_BAD_PASSWORD, /* shorter than 12 or longer than 1024 bytes */
	USER_ORG_REQUIRED, /* org_admin/member without an org */
	USER_NO_SUCH_ORG,
	USER_NOT_FOUND,
	USER_LEGAL_HOLD,    /* the user or its org is on legal hold */
	USER_NOT_GRANTABLE, /* the user holds roles the caller could not grant */
	USER_SELF,          /* a caller changing its own roles, disabling or deleting itself */
	USER_ARCHIVED,      /* re-enabling a deleted or archived account */
	USER_DB_ERROR,
	USER_BUSY, /* no password check slot freed in time (infra/pwgate.h) */
	USER__MAX
};

#define PASSWORD_MIN_LEN 12

/* Lower-cases into out (254 + 1) and checks the shape; false if invalid. */
bool email_normalize(const char *in, char *out, size_t out_len);
bool password_acceptable(const char *pw);

/* Creates the user and audits user.created, in one transaction. */
enum user_err user_create(struct db *d, const struct opsd_config *cfg, const struct user_input *in,
    const struct audit_actor *actor, char id_out[UUID_STR_LEN + 1]);
/* Sets a new password hash (and audits auth.password_changed), ending the
 * account's sessions and tokens; USER_NOT_GRANTABLE when the account holds a
 * role granter could not grant. */
enum user_err user_set_password(struct db *d, const struct opsd_config *cfg, const char *user_id,
    const char *password, permset granter, const struct audit_actor *actor);
/* Finds a user id by email; USER_NOT_FOUND if none. */
enum user_err user_find_by_email(struct db *d, const char *email, char id_out[UUID_STR_LEN + 1]);

/* The API's JSON for a user, or NULL (*err says why). */
struct json_object *user_get_json(struct db *d, struct arena *a, const char *id,
    enum user_err *err);
/* Column list shared by every query that renders users, and the renderer
 * of one row selected with it. */
#define USER_COLUMNS                                                                               \
	"id, email, name, roles, org_id, service, disabled_at IS NOT NULL,"                        \
	" created_at, updated_at"
struct db_rows;
struct json_object *user_row_json(const struct db_rows *rows, size_t r);

/* The reach of a caller that changes a user: only users whose current roles
 * granter could grant and, when org is set, only the live (not archived)
 * users of that org; the others are USER_NOT_FOUND or USER_NOT_GRANTABLE. */
struct user_scope {
	const struct opsd_uuid *org; /* NULL: every user, archived ones included */
	permset granter;
};

/* What a PATCH sets; everything else stays. */
struct user_change {
	bool set_roles, set_disabled;
	roleset roles;
	bool disabled;
	const char *name; /* NULL: unchanged */
};

/* Applies c and audits user.updated (user.disabled when it disables), in one
 * transaction that holds the user's row; new roles or a disabled account end
 * every session and token. A new name for a held user is USER_LEGAL_HOLD and
 * changes nothing; changing one's own roles or disabling oneself is USER_SELF. */
enum user_err user_update(struct db *d, struct arena *a, const char *id, const struct user_scope *s,
    const struct user_change *c, const struct audit_actor *actor);
/* The soft delete (acceptances, sessions and audit events keep referring to
 * the row): disabled, archived with reason "deleted", every session and token
 * revoked, user.deleted audited, in one transaction. USER_LEGAL_HOLD when the
 * user or its org is held, USER_NOT_FOUND when already deleted, USER_SELF for
 * the caller's own account. */
enum user_err user_delete(struct db *d, struct arena *a, const char *id, const struct user_scope *s,
    const struct audit_actor *actor);

/* A new org (shared database mode), audited org.created with its slug. 0,
 * 1 when the slug is taken, -1 on a database error. */
int org_create(struct db *d, const struct audit_actor *actor, const char *name, const char *slug,
    struct opsd_uuid *id);

/* Ends an account inside the caller's transaction: disabled (if it was
 * not), every session and API token revoked. Strip-PII, archive and delete
 * all end with it. 0 or -1. */
int user_lock_out(struct db *d, const uint8_t id[16]);

#endif
