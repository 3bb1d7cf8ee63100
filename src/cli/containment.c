/* opsctl user disable|enable and opsctl tokens revoke (README, runbook 4
 * step 3 and runbook 7): the same core calls and audit events as the API's
 * /security/users/:id/disable|enable and /security/tokens/revoke; opsctl
 * tokens list finds the live tokens (those stored without an expiry too). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/errors.h"
#include "cli/cli.h"
#include "core/containment.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/arena.h"
#include "lib/util.h"
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

/* The selectors of tokens revoke: the option, what it selects, and what an
 * unknown id is (NULL: takes no id). */
static const struct {
	const char *opt;
	enum token_selector sel;
	const char *what;
} revoke_opts[] = {
    {"--user", TOKENS_OF_USER, "user"},
    {"--org", TOKENS_OF_ORG, "org"},
    {"--all", TOKENS_ALL, NULL},
    {"--id", TOKENS_ONE, "API token"},
};

int cmd_token_revoke(struct opsctl *o)
{
	struct token_revocation t = {0};
	size_t n = 0, which = 0;
	struct arena *a;
	enum token_rc rc;

	for (size_t i = 0; i < countof(revoke_opts); i++)
		if (revoke_opts[i].what ? opt_value(o, revoke_opts[i].opt) != NULL
		                        : opt_flag(o, revoke_opts[i].opt)) {
			which = i;
			n++;
		}
	if (n != 1) {
		fprintf(stderr,
		    "opsctl: say which tokens to revoke: one of --user ID, --org ID, --all "
		    "or --id TOKEN_ID\n");
		return EXIT_USAGE;
	}
	t.sel = revoke_opts[which].sel;
	t.id = revoke_opts[which].what ? opt_value(o, revoke_opts[which].opt) : NULL;
	if ((t.id && !uuid_opt_ok(revoke_opts[which].opt, t.id)) || !reason_ok(o, &t.reason))
		return EXIT_USAGE;
	if (!(a = arena_new(4096))) {
		fprintf(stderr, "opsctl: out of memory\n");
		return EXIT_FAILED;
	}
	rc = tokens_revoke_audited(o->db, a, &o->actor, &t);
	arena_free(a);
	if (rc == TOKEN_NOT_FOUND) {
		fprintf(stderr, "opsctl: no such %s %s\n", revoke_opts[which].what, t.id);
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

/* One live token as JSON: the API's token fields, its owner and org. */
static struct json_object *live_token_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = token_row_json(rows, i);

	json_object_object_add(o, "userId", dbv_json_uuid(rows, i, TOKEN_LIVE_USER_COL));
	json_object_object_add(o, "orgId", dbv_json_uuid(rows, i, TOKEN_LIVE_ORG_COL));
	return o;
}

int cmd_tokens_list(struct opsctl *o)
{
	struct token_filter f = {.user_id = opt_value(o, "--user"),
	    .org_id = opt_value(o, "--org"),
	    .no_expiry = opt_flag(o, "--no-expiry"),
	    .limit = 500};
	bool json = opt_flag(o, "--json");
	struct json_object *items = json_object_new_array();
	char before[UUID_STR_LEN + 1] = "";
	size_t total = 0, never = 0;
	int rc = EXIT_OK;

	if ((f.user_id && !uuid_opt_ok("--user", f.user_id)) ||
	    (f.org_id && !uuid_opt_ok("--org", f.org_id))) {
		json_object_put(items);
		return EXIT_USAGE;
	}
	if (!json)
		printf("%-36s  %-36s  %-36s  %-24s  %-24s  %s\n", "ID", "USER", "ORG", "EXPIRES",
		    "LAST USED", "NAME");
	/* Pages of 500 in id order, so that any number of tokens is listed in
	 * bounded memory. */
	for (;;) {
		struct arena *a = arena_new(16384);
		struct db_rows rows;

		f.before_id = before[0] ? before : NULL;
		if (!a || tokens_live_list(o->db, a, &f, &rows) != 0) {
			fprintf(stderr, "opsctl: listing tokens failed: %s\n", db_error(o->db));
			arena_free(a);
			rc = EXIT_FAILED;
			break;
		}
		for (size_t i = 0; i < rows.nrows; i++) {
			struct json_object *t = live_token_json(&rows, i);
			const char *exp = doc_str(t, "expiresAt"), *used = doc_str(t, "lastUsedAt");
			const char *org = doc_str(t, "orgId"), *name = doc_str(t, "name");
			char shown[256];

			never += exp == NULL;
			/* the name is its owner's text: no control character reaches the terminal
			 */
			str_copy(shown, name ? name : "", sizeof(shown));
			for (char *c = shown; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			if (!json)
				printf("%-36s  %-36s  %-36s  %-24s  %-24s  %s\n", doc_str(t, "id"),
				    doc_str(t, "userId"), org ? org : "-", exp ? exp : "never",
				    used ? used : "never", shown);
			str_copy(before, doc_str(t, "id"), sizeof(before));
			if (json)
				json_object_array_add(items, t);
			else
				json_object_put(t);
		}
		total += rows.nrows;
		arena_free(a);
		if (rows.nrows < (size_t)f.limit)
			break;
	}
	if (rc == EXIT_OK && json)
		print_json(items);
	else if (rc == EXIT_OK)
		printf("%zu live API tokens, %zu without expiry\n", total, never);
	json_object_put(items);
	return rc;
}
