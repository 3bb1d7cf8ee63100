/* opsctl ratelimit show and set (README "Runbook 4" step 2): the limits of both
 * layers in force with their source, and changing them at run time, as GET and
 * PUT /security/rate-limits do. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/rate_limits.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/util.h"

/* The limits in force into rl (strings in a); false after a message. */
static bool load(struct opsctl *o, struct arena *a, struct rate_limits *rl)
{
	if (rate_limits_load(o->db, &o->cfg, a, rl) == 0)
		return true;
	fprintf(stderr, "opsctl: cannot read the rate limits: %s\n", db_error(o->db));
	return false;
}

/* "runtime: security_admin at 2026-…Z (INC-42); env_file: 1200" and the like. */
static void print_limit(enum limit_id id, const struct limit_state *s)
{
	printf("  %-16s %-11s ", limit_defs[id].name, s->value.text);
	if (s->source == LS_RUNTIME)
		printf("set at run time by %s at %s: %s (%s: %s)\n",
		    s->set_by_label ? s->set_by_label : "?", s->set_at ? s->set_at : "?",
		    s->reason ? s->reason : "", limit_source_name(s->env_source), s->env.text);
	else
		printf("%s (%s)\n", limit_source_name(s->source), limit_defs[id].variable);
}

static void print_limits(const struct rate_limits *rl)
{
	printf("opsd, per signed-in user, API token or anonymous address:\n");
	for (int i = 0; i < LIM__MAX; i++)
		if (limit_defs[i].layer == LAYER_OPSD)
			print_limit((enum limit_id)i, &rl->l[i]);
	printf("nginx, per client address (%s):\n",
	    rate_limits_nginx_applied_now(rl) ? "applied"
	                                      : "NOT applied yet: nginx runs earlier values");
	for (int i = 0; i < LIM__MAX; i++)
		if (limit_defs[i].layer == LAYER_NGINX)
			print_limit((enum limit_id)i, &rl->l[i]);
}

int cmd_ratelimit_show(struct opsctl *o)
{
	struct arena *a = arena_new(16 * 1024);
	struct rate_limits rl;
	int rc = EXIT_FAILED;

	if (!a || !load(o, a, &rl))
		goto out;
	if (opt_flag(o, "--nginx-conf")) {
		struct buf b;

		buf_init(&b);
		if (!rate_limits_nginx_conf(&rl, &b) || buf_failed(&b)) {
			fprintf(stderr, "opsctl: an nginx value in force does not parse\n");
			buf_free(&b);
			goto out;
		}
		fputs(buf_cstr(&b), stdout);
		buf_free(&b);
	} else if (opt_flag(o, "--json")) {
		struct json_object *doc = rate_limits_json(&rl);

		print_json(doc);
		json_object_put(doc);
	} else {
		print_limits(&rl);
	}
	rc = EXIT_OK;
out:
	arena_free(a);
	return rc;
}

/* The options given, each checked as its limit takes it ("env": back to the
 * configuration); EXIT_OK, or EXIT_USAGE after a message. */
static int changes_of(struct opsctl *o, struct limit_change *ch, size_t *n)
{
	char why[160];

	*n = 0;
	for (int i = 0; i < LIM__MAX; i++) {
		const char *v = opt_value(o, limit_defs[i].option);

		if (!v)
			continue;
		ch[*n] =
		    (struct limit_change){.id = (enum limit_id)i, .clear = strcmp(v, "env") == 0};
		if (!ch[*n].clear &&
		    !limit_parse((enum limit_id)i, v, &ch[*n].value, why, sizeof(why))) {
			fprintf(stderr, "opsctl: %s \"%s\": %s (or env)\n", limit_defs[i].option, v,
			    why);
			return EXIT_USAGE;
		}
		(*n)++;
	}
	if (*n == 0) {
		fprintf(stderr,
		    "opsctl: name at least one limit to change (opsctl ratelimit show)\n");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int cmd_ratelimit_set(struct opsctl *o)
{
	const char *reason = opt_value(o, "--reason");
	struct limit_change ch[LIM__MAX];
	struct rate_limits rl;
	struct arena *a;
	unsigned changed;
	size_t n;
	int rc;

	if ((rc = changes_of(o, ch, &n)) != EXIT_OK)
		return rc;
	if (!reason)
		return need_opt("--reason");
	if (reason[strspn(reason, " \t\r\n")] == '\0' || strlen(reason) > 500) {
		fprintf(stderr, "opsctl: --reason must be 1 to 500 characters, not blank\n");
		return EXIT_USAGE;
	}
	if (rate_limits_set(o->db, &o->cfg, &o->actor, ch, n, reason, &changed) != 0) {
		fprintf(stderr, "opsctl: set failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	if (!(a = arena_new(16 * 1024)) || !load(o, a, &rl)) {
		arena_free(a);
		return EXIT_FAILED;
	}
	if (opt_flag(o, "--json")) {
		struct json_object *doc = rate_limits_json(&rl);

		json_object_object_add(doc, "changed", json_object_new_int((int)changed));
		print_json(doc);
		json_object_put(doc);
	} else {
		printf("changed %u limit%s\n", changed, changed == 1 ? "" : "s");
		print_limits(&rl);
		printf("opsd's workers apply them within a second on every host\n");
	}
	arena_free(a);
	return EXIT_OK;
}
