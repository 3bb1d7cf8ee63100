/* Who is calling (README "Identity, sessions and roles"): a session cookie or a bearer token
 * resolved to a principal with its effective permissions, and the session/token stores. */
#ifndef OPSD_AUTH_H
#define OPSD_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/authz.h"
#include "core/session.h"
#include "lib/uuid.h"

struct arena;
struct db;
struct opsd_config;

enum auth_method { AUTH_NONE, AUTH_SESSION, AUTH_TOKEN };

struct principal {
	enum auth_method method;
	char user_id[UUID_STR_LEN + 1];
	char org_id[UUID_STR_LEN + 1]; /* "" for platform staff */
	roleset roles;
	permset perms; /* effective: roles, narrowed by token scopes */
	bool service;
	uint8_t session_id[SESSION_ID_LEN]; /* AUTH_SESSION */
	char token_id[UUID_STR_LEN + 1];    /* AUTH_TOKEN */
};

enum auth_result {
	AUTH_ANONYMOUS, /* no credentials presented */
	AUTH_OK,
	AUTH_REJECTED, /* credentials presented but invalid, expired or revoked */
	AUTH_DB_ERROR,
};

/* The credentials a request presents, and where to check them. */
struct auth_input {
	struct db *db;
	struct arena *arena;
	const struct opsd_config *cfg;
	const char *authorization; /* the Authorization header, or NULL */
	const char *cookie;        /* the Cookie header, or NULL */
};
/* Resolves the Authorization: Bearer header, else the session cookie.
 * Touches last_seen/last_used at most once a minute. */
enum auth_result auth_authenticate(const struct auth_input *in, struct principal *p);

/* The label stored as actor in audit events: the principal's highest role. */
const char *principal_label(const struct principal *p);

/* Creates a session for user_id; writes the cookie value and CSRF token. */
int session_create(struct db *d, const struct opsd_config *cfg, const char *user_id, const char *ip,
    const char *user_agent, char cookie[SESSION_COOKIE_VALUE_LEN + 1],
    char csrf[CSRF_TOKEN_LEN + 1]);
int session_delete(struct db *d, const uint8_t id[SESSION_ID_LEN]);

enum flush_scope { FLUSH_ALL, FLUSH_USER, FLUSH_ORG };
/* Deletes sessions (and, with revoke_tokens, revokes API tokens) of
 * everyone, one user or one org's users. *count gets the sessions removed. */
int sessions_flush(struct db *d, enum flush_scope scope, const char *id, bool revoke_tokens,
    unsigned long long *count);

/* Revokes the live API tokens of the same scopes, inside the caller's
 * transaction; *count gets how many. -1 on a malformed id or a database error. */
int tokens_revoke_scope(struct db *d, enum flush_scope scope, const char *id,
    unsigned long long *count);

/* What sessions_flush_audited is asked (with_tokens) and what it did. */
struct flush_result {
	bool with_tokens;            /* revoke the scope's API tokens as well */
	const char *reason;          /* why, for the audit event (NULL: none given) */
	unsigned long long sessions; /* sessions removed */
	unsigned long long tokens;   /* tokens revoked (with_tokens) */
};
/* The flush of sessions (and, when res->with_tokens, of API tokens) with
 * its security.sessions_flushed audit event, in one transaction: what the
 * API and opsctl both run. */
struct audit_actor;
int sessions_flush_audited(struct db *d, const struct audit_actor *actor, enum flush_scope scope,
    const char *id, struct flush_result *res);
const char *flush_scope_name(enum flush_scope s);

/* Housekeeping for the jobs process: removes expired sessions and stale
 * throttle rows in bounded batches. */
int sessions_expire(struct db *d, const struct opsd_config *cfg);

/* Login throttling (README "Identity, sessions and roles"): per account and per IP, failures within
 * 15 minutes lock the key for 15 minutes. */
/* Seconds the login must wait (0 = allowed), -1 on a database error. */
long login_throttled(struct db *d, const struct opsd_config *cfg, const char *email,
    const char *ip);
int login_failed(struct db *d, const struct opsd_config *cfg, const char *email, const char *ip);
int login_succeeded(struct db *d, const char *email);

#endif
