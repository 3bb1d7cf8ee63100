/* opsctl sessions flush: every session, one user's or one org's (README,
 * runbook 7), and with --tokens their API tokens too (runbook 4). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/auth.h"
#include "core/authz.h"
#include "infra/db.h"

int cmd_sessions_flush(struct opsctl *o)
{
	const char *user = opt_value(o, "--user"), *org = opt_value(o, "--org");
	enum flush_scope scope = user ? FLUSH_USER : org ? FLUSH_ORG : FLUSH_ALL;
	struct flush_result res = {.with_tokens = opt_flag(o, "--tokens"),
	    .reason = opt_value(o, "--reason")};

	if (!opt_flag(o, "--all") && !user && !org) {
		fprintf(stderr, "opsctl: say what to flush: --all, --user ID or --org ID\n");
		return EXIT_USAGE;
	}
	if (res.reason &&
	    (res.reason[strspn(res.reason, " \t\r\n")] == '\0' || strlen(res.reason) > 500)) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	/* As the API: revoking tokens with the flush needs that permission too. */
	if (res.with_tokens && !perms_have(o->perms, P_SECURITY_TOKENS_REVOKE)) {
		fprintf(stderr, "opsctl: %s lacks %s\n", o->label,
		    perm_name(P_SECURITY_TOKENS_REVOKE));
		return EXIT_DENIED;
	}
	if (sessions_flush_audited(o->db, &o->actor, scope, user ? user : org, &res) != 0) {
		fprintf(stderr, "opsctl: flush failed: %s\n",
		    scope != FLUSH_ALL ? "malformed id or database error" : db_error(o->db));
		return EXIT_FAILED;
	}
	printf("flushed %llu sessions (%s)\n", res.sessions, flush_scope_name(scope));
	if (res.with_tokens)
		printf("revoked %llu API tokens\n", res.tokens);
	return EXIT_OK;
}
