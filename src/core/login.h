/* A person's own account (README "Identity, sessions and roles"): signing
 * in and out, changing one's password, and API tokens. Each write is one
 * transaction with its audit event. */
#ifndef OPSD_LOGIN_H
#define OPSD_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/authz.h"
#include "core/session.h"
#include "lib/crypto.h"
#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct opsd_config;
struct principal;

enum login_rc {
	LOGIN_OK,
	LOGIN_THROTTLED, /* too many failures for the account or the address: wait_s */
	LOGIN_FAILED,    /* unknown account, disabled, no password or the wrong one */
	LOGIN_DB_ERROR,
	LOGIN_BUSY, /* no password check slot freed in time (infra/pwgate.h) */
};
struct login {
	const char *email, *password;
	const char *user_agent; /* recorded with the session */
	/* set by auth_login */
	long wait_s;
	char user_id[UUID_STR_LEN + 1];
	char cookie[SESSION_COOKIE_VALUE_LEN + 1];
	char csrf[CSRF_TOKEN_LEN + 1];
};
/* Throttling per account and per address, the password check (an unknown
 * account costs the same work as a real one), the failure counted, a
 * rehash when the scrypt cost changed, the new session, and
 * auth.login_succeeded, _failed or _throttled audited. client is the
 * anonymous actor of the request (its address and request id). */
enum login_rc auth_login(struct db *d, struct arena *a, const struct opsd_config *cfg,
    const struct audit_actor *client, struct login *l);

/* Ends the principal's session and audits auth.logout. 0 or -1. */
int auth_logout(struct db *d, const struct audit_actor *actor, const struct principal *p);

enum password_rc {
	PASSWORD_OK,
	PASSWORD_WRONG,
	PASSWORD_DB_ERROR,
	PASSWORD_HASH_FAILED,
	PASSWORD_BUSY, /* no password check slot freed in time */
};
/* Checks current, stores new, ends every session of the user and opens a
 * fresh one for this client (cookie, csrf), audits auth.password_changed. */
enum password_rc auth_change_password(struct db *d, struct arena *a, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *user_agent, const struct principal *p,
    const char *current, const char *new_password, char cookie[SESSION_COOKIE_VALUE_LEN + 1],
    char csrf[CSRF_TOKEN_LEN + 1]);

/* ---- API tokens --------------------------------------------------------- */

/* Columns read by token_row_json, in its order. */
#define TOKEN_COLUMNS "id, name, scopes, expires_at, created_at, last_used_at, revoked_at"
struct db_rows;
struct json_object;
/* {id, name, scopes, expiresAt, createdAt, lastUsedAt, revokedAt}. */
struct json_object *token_row_json(const struct db_rows *rows, size_t i);

/* A new token of owner (its text, shown once, in token; only its hash is
 * stored), audited auth.token_created with the scopes and expiry.
 * expires_ms 0: no expiry (the API always gives one: token_expiry). 0 or
 * -1. */
int token_create(struct db *d, const struct audit_actor *actor, const char *owner, const char *name,
    permset scopes, int64_t expires_ms, char id_out[UUID_STR_LEN + 1], char token[TOKEN_LEN + 1]);
/* The expiry of a new token (README "Runbook 7"): every token ends within
 * max_days of its creation. asked_ms NULL (none asked) gets now + max_days;
 * an asked time must lie after now and no later than that. */
enum token_expiry_rc { TOKEN_EXPIRY_OK, TOKEN_EXPIRY_PAST, TOKEN_EXPIRY_TOO_LATE };
enum token_expiry_rc token_expiry(const int64_t *asked_ms, int64_t now_ms, int max_days,
    int64_t *expires_ms);
enum token_rc { TOKEN_REVOKED, TOKEN_NOT_FOUND, TOKEN_DB_ERROR };
/* Revokes owner's token id (again: no new event), audited
 * auth.token_revoked with id_text as the target. */
enum token_rc token_revoke(struct db *d, struct arena *a, const struct audit_actor *actor,
    const char *owner, const struct opsd_uuid *id, const char *id_text);

#endif
