/* opsctl user disable|enable and opsctl token revoke (README, runbook 4
 * step 3): the same core calls and audit events as the API's
 * /security/users/:id/disable|enable and /security/tokens/revoke. */
#include <stdio.h>
#include <string.h>

#include "api/errors.h"
#include "cli/cli.h"
#include "core/containment.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/uuid.h"

/* --reason, NULL when absent; false (after saying so) when blank or too long. */
static bool reason_ok(const struct opsctl *o, const char **reason)
{
	*reason = opt_value(o, "--reason");
	if (!*reason || ((*reason)[strspn(*reason, " \t\r\n")] != '\0' && strlen(*reason) <= 500))
		return true;
	fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
	return false;
}

/* An id option that must be a UUID; false (after saying so) otherwise. */
static bool uuid_opt_ok(const char *name, const char *value)
{
	struct opsd_uuid u;

	if (uuid_parse(value, &u))
		return true;
	fprintf(stderr, "opsctl: %s \"%s\" is not a UUID\n", name, value);
	return false;
}

static int user_contain_cmd(struct opsctl *o, bool disable)
{
	const char *id = opt_value(o, "--id");
	struct user_containment c = {.disable = disable};
	struct arena *a;
	enum user_err e;

	if (!id)
		return need_opt("--id");
	if (!uuid_opt_ok("--id", id) || !reason_ok(o, &c.reason))
		return EXIT_USAGE;
	if (!(a = arena_new(4096))) {
		fprintf(stderr, "opsctl: out of memory\n");
		return EXIT_FAILED;
	}
	e = user_contain(o->db, a, id, &c, &o->actor);
	arena_free(a);
	if (e != USER_OK) {
		fprintf(stderr, "opsctl: %s\n", user_errors[e].message);
		return EXIT_FAILED;
	}
	if (!c.changed)
		printf("%s was already %s\n", id, disable ? "disabled" : "enabled");
	else if (disable)
		printf("disabled %s (its sessions and API tokens are revoked)\n", id);
	else
		printf("enabled %s\n", id);
	return EXIT_OK;
}

int cmd_user_disable(struct opsctl *o)
{
	return user_contain_cmd(o, true);
}

int cmd_user_enable(struct opsctl *o)
{
	return user_contain_cmd(o, false);
}

int cmd_token_revoke(struct opsctl *o)
{
	const char *user = opt_value(o, "--user"), *token = opt_value(o, "--id");
	bool all = opt_flag(o, "--all");
	struct token_revocation t = {0};
	struct arena *a;
	enum token_rc rc;

	if ((user != NULL) + (token != NULL) + all != 1) {
		fprintf(stderr, "opsctl: say which tokens to revoke: one of --user ID, --all or "
		                "--id TOKEN_ID\n");
		return EXIT_USAGE;
	}
	if ((user && !uuid_opt_ok("--user", user)) || (token && !uuid_opt_ok("--id", token)) ||
	    !reason_ok(o, &t.reason))
		return EXIT_USAGE;
	t.sel = user ? TOKENS_OF_USER : token ? TOKENS_ONE : TOKENS_ALL;
	t.id = user ? user : token;
	if (!(a = arena_new(4096))) {
		fprintf(stderr, "opsctl: out of memory\n");
		return EXIT_FAILED;
	}
	rc = tokens_revoke_audited(o->db, a, &o->actor, &t);
	arena_free(a);
	if (rc == TOKEN_NOT_FOUND) {
		fprintf(stderr, "opsctl: no such %s %s\n", user ? "user" : "API token", t.id);
		return EXIT_FAILED;
	}
	if (rc != TOKEN_REVOKED) {
		fprintf(stderr, "opsctl: revoking failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	printf("revoked %llu API tokens (%s%s%s)\n", t.revoked, token_selector_name(t.sel),
	    t.id ? " " : "", t.id ? t.id : "");
	return EXIT_OK;
}
