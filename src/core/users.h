/* Users and orgs of the control database: the one code path behind the API,
 * opsctl and script/server's first superadmin. */
#ifndef OPSD_USERS_H
#define OPSD_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "authz.h"
#include "uuid.h"

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
	USER_DUPLICATE,    /* email already used */
	USER_BAD_EMAIL,
	USER_BAD_PASSWORD, /* shorter than 12 or longer than 1024 bytes */
	USER_ORG_REQUIRED, /* org_admin/member without an org */
	USER_NO_SUCH_ORG,
	USER_NOT_FOUND,
	USER_DB_ERROR,
};
const char *user_err_message(enum user_err e);

#define PASSWORD_MIN_LEN 12

/* Lower-cases into out (254 + 1) and checks the shape; false if invalid. */
bool email_normalize(const char *in, char *out, size_t out_len);
bool password_acceptable(const char *pw);

/* Creates the user and audits user.created, in one transaction. */
enum user_err user_create(struct db *d, const struct opsd_config *cfg,
    const struct user_input *in, const struct audit_actor *actor, char id_out[UUID_STR_LEN + 1]);
/* Sets a new password hash (and audits auth.password_changed). */
enum user_err user_set_password(struct db *d, const struct opsd_config *cfg,
    const char *user_id, const char *password, const struct audit_actor *actor);
/* Finds a user id by email; USER_NOT_FOUND if none. */
enum user_err user_find_by_email(struct db *d, const char *email, char id_out[UUID_STR_LEN + 1]);

/* The API's JSON for a user, or NULL (*err says why). */
struct json_object *user_get_json(struct db *d, struct arena *a, const char *id, enum user_err *err);
/* Column list shared by every query that renders users, and the renderer
 * of one row selected with it. */
#define USER_COLUMNS "id, email, name, roles, org_id, service, disabled_at IS NOT NULL," \
	" created_at, updated_at"
struct db_rows;
struct json_object *user_row_json(const struct db_rows *rows, size_t r);

/* Roles of a user (for the grant checks of PATCH). */
enum user_err user_get_roles(struct db *d, struct arena *a, const char *id, roleset *roles);

#endif
