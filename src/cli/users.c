/* opsctl user create, set-password and ensure-admin. */
#include <stdio.h>
#include <string.h>

#include "api/errors.h"
#include "cli/cli.h"
#include "core/authz.h"
#include "core/users.h"
#include "lib/crypto.h"
#include "lib/uuid.h"

/* A password from standard input (one line), never from the command line
 * where ps would show it. */
static bool read_password(char *out, size_t out_len)
{
	size_t n;

	if (!fgets(out, (int)out_len, stdin))
		return false;
	n = strcspn(out, "\r\n");
	if (out[n] == '\0' && n == out_len - 1)
		return false; /* longer than the buffer */
	out[n] = '\0';
	return true;
}

static int user_create_with(struct opsctl *o, const char *email, const char *roles_csv,
    const char *password)
{
	struct user_input in = {0};
	const char *bad;
	char id[UUID_STR_LEN + 1];
	enum user_err e;

	if (!roles_parse_csv(roles_csv, &in.roles, &bad)) {
		fprintf(stderr, "opsctl: unknown role \"%s\"\n", bad);
		return EXIT_USAGE;
	}
	/* the API's rule: only roles whose permissions the granter holds */
	if (!roles_grantable(o->perms, in.roles)) {
		fprintf(stderr,
		    "opsctl: %s cannot grant %s (only roles within its own permissions)\n",
		    o->label, roles_csv);
		return EXIT_DENIED;
	}
	in.email = email;
	in.name = opt_value(o, "--name");
	in.org_id = opt_value(o, "--org");
	in.service = opt_flag(o, "--service");
	in.password = password;
	e = user_create(o->db, &o->cfg, &in, &o->actor, id);
	if (e != USER_OK) {
		fprintf(stderr, "opsctl: %s\n", user_errors[e].message);
		return e == USER_DB_ERROR ? EXIT_FAILED : EXIT_USAGE;
	}
	printf("%s\n", id);
	return EXIT_OK;
}

int cmd_user_create(struct opsctl *o)
{
	const char *email = opt_value(o, "--email"), *roles = opt_value(o, "--role");
	char pw[PASSWORD_MAX_LEN + 2];

	if (!email)
		return need_opt("--email");
	if (!roles)
		return need_opt("--role");
	if (opt_flag(o, "--password-stdin") && !read_password(pw, sizeof(pw))) {
		fprintf(stderr, "opsctl: no password on standard input\n");
		return EXIT_USAGE;
	}
	return user_create_with(o, email, roles, opt_flag(o, "--password-stdin") ? pw : NULL);
}

int cmd_user_set_password(struct opsctl *o)
{
	const char *email = opt_value(o, "--email");
	char pw[PASSWORD_MAX_LEN + 2], id[UUID_STR_LEN + 1];
	enum user_err e;

	if (!email)
		return need_opt("--email");
	if (!read_password(pw, sizeof(pw))) {
		fprintf(stderr, "opsctl: no password on standard input\n");
		return EXIT_USAGE;
	}
	e = user_find_by_email(o->db, email, id);
	if (e == USER_OK)
		e = user_set_password(o->db, &o->cfg, id, pw, o->perms, &o->actor);
	if (e != USER_OK) {
		fprintf(stderr, "opsctl: %s\n", user_errors[e].message);
		return e == USER_NOT_GRANTABLE ? EXIT_DENIED : EXIT_FAILED;
	}
	printf("password set for %s\n", id);
	return EXIT_OK;
}

/* script/server's first superadmin: created once, left alone afterwards. */
int cmd_user_ensure_admin(struct opsctl *o)
{
	const char *email = opt_value(o, "--email");
	char pw[PASSWORD_MAX_LEN + 2], id[UUID_STR_LEN + 1];
	enum user_err e;

	if (!email)
		return need_opt("--email");
	e = user_find_by_email(o->db, email, id);
	if (e == USER_OK) {
		printf("exists %s\n", id);
		return EXIT_OK;
	}
	if (e != USER_NOT_FOUND) {
		fprintf(stderr, "opsctl: %s\n", user_errors[e].message);
		return EXIT_FAILED;
	}
	if (!read_password(pw, sizeof(pw))) {
		fprintf(stderr, "opsctl: no password on standard input\n");
		return EXIT_USAGE;
	}
	printf("created ");
	return user_create_with(o, email, "superadmin", pw);
}
