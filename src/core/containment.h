/* Containing accounts (README "Runbook 4"): disabling and re-enabling a user,
 * revoking the API tokens of one user, of one org, of everyone, or one
 * token, and listing the live ones (README "Runbook 7"). Each write is one
 * transaction with its audit event; the API and opsctl run the same code. A
 * legal hold never refuses them: a held account under investigation must
 * still be containable. */
#ifndef OPSD_CONTAINMENT_H
#define OPSD_CONTAINMENT_H

#include <stdbool.h>

#include "core/login.h"
#include "core/users.h"

struct arena;
struct audit_actor;
struct db;

/* What a disable or enable asks (reason NULL: none given) and did. */
struct user_containment {
	bool disable;       /* true: disable; false: enable again */
	const char *reason; /* recorded in the audit payload */
	bool changed;       /* out: false when the account already was in that state */
};
/* Disables the user id, revoking every session and API token of it
 * (user_lock_out) and auditing user.disabled, or enables it again
 * (user.enabled). An account already in the asked state is left alone:
 * c->changed false, nothing written. USER_NOT_FOUND for an unknown or
 * malformed id, USER_SELF for the actor's own account, USER_ARCHIVED when
 * enabling a deleted or archived account. Whatever the roles of the user:
 * containment is not a grant. */
enum user_err user_contain(struct db *d, struct arena *a, const char *id,
    struct user_containment *c, const struct audit_actor *actor);

/* Which API tokens a revocation ends. */
enum token_selector { TOKENS_OF_USER, TOKENS_ALL, TOKENS_ONE, TOKENS_OF_ORG };
struct token_revocation {
	enum token_selector sel;
	const char *id;             /* the user, the token (TOKENS_ONE) or the org */
	const char *reason;         /* NULL: none given */
	unsigned long long revoked; /* out: tokens that were live and are revoked now */
};
/* Revokes the selected tokens and audits security.tokens_revoked (scope,
 * count, reason; never a token value) in one transaction, also when none was
 * live. TOKEN_NOT_FOUND (nothing written) for an unknown or malformed user,
 * token or org id. */
enum token_rc tokens_revoke_audited(struct db *d, struct arena *a, const struct audit_actor *actor,
    struct token_revocation *t);
/* "user", "all", "token", "org". */
const char *token_selector_name(enum token_selector s);

/* Which live tokens (neither revoked nor expired) tokens_live_list reads. */
struct token_filter {
	const char *user_id, *org_id; /* NULL: any (malformed: none) */
	bool no_expiry;               /* only tokens stored without an expiry */
	const char *before_id;        /* keyset: ids below this one; NULL: from the newest */
	int limit;
};
/* Columns of tokens_live_list's rows: TOKEN_COLUMNS, then the owner's id and org. */
#define TOKEN_LIVE_USER_COL 7
#define TOKEN_LIVE_ORG_COL 8
/* The live API tokens matching f, newest first: never their hash. 0 or -1. */
int tokens_live_list(struct db *d, struct arena *a, const struct token_filter *f,
    struct db_rows *rows);

#endif
