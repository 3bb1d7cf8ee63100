/* Containing accounts (README "Runbook 4"): disabling and re-enabling a user,
 * revoking the API tokens of one user, of everyone, or one token. Each is one
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
enum token_selector { TOKENS_OF_USER, TOKENS_ALL, TOKENS_ONE };
struct token_revocation {
	enum token_selector sel;
	const char *id;             /* the user (TOKENS_OF_USER) or the token (TOKENS_ONE) */
	const char *reason;         /* NULL: none given */
	unsigned long long revoked; /* out: tokens that were live and are revoked now */
};
/* Revokes the selected tokens and audits security.tokens_revoked (scope,
 * count, reason; never a token value) in one transaction, also when none was
 * live. TOKEN_NOT_FOUND (nothing written) for an unknown or malformed user or
 * token id. */
enum token_rc tokens_revoke_audited(struct db *d, struct arena *a, const struct audit_actor *actor,
    struct token_revocation *t);
/* "user", "all", "token". */
const char *token_selector_name(enum token_selector s);

#endif
