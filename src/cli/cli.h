/* What opsctl's command files share: the invocation (struct opsctl), the
 * exit codes and option helpers of opsctl.c, the JSON output of util.c, and
 * the commands of each group, which the table in opsctl.c lists. */
#ifndef OPSD_CLI_H
#define OPSD_CLI_H

#include <stdbool.h>

#include "core/audit.h"
#include "core/authz.h"
#include "infra/config.h"

struct db;
struct json_object;

/* 0 ok, 1 the operation failed or the state is not what was asked, 2 usage
 * or config, 3 the principal lacks the command's permission (nothing done). */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_DENIED = 3 };

struct opsctl {
	struct opsd_config cfg;
	struct db *db;
	int argc; /* options after "<command> <subcommand>" */
	char **argv;
	struct audit_actor actor; /* "cli:<user>" in audit events */
	char label[80];
	char user[64]; /* the OS user running opsctl ("" when unknown) */
	roleset roles; /* its roles (OPSD_CLI_ROLES) */
	permset perms; /* and their permissions: what it may grant, for one */
};

/* --name value and --flag options; NULL / false when absent. */
const char *opt_value(const struct opsctl *o, const char *name);
bool opt_flag(const struct opsctl *o, const char *name);
/* "opsctl: --name is required" on stderr; EXIT_USAGE. */
int need_opt(const char *name);

/* doc as pretty JSON and a newline on stdout. */
void print_json(struct json_object *doc);
/* {"items": items, "nextCursor": next or null}, as the API's lists answer;
 * takes items. */
void print_list_page(struct json_object *items, const char *next);
/* o's member k when it is a string, else NULL. */
const char *doc_str(struct json_object *o, const char *k);

/* The commands, one file per group. */
/* db.c */
int cmd_db_migrate(struct opsctl *o);
int cmd_db_status(struct opsctl *o);
/* users.c */
int cmd_user_create(struct opsctl *o);
int cmd_user_set_password(struct opsctl *o);
int cmd_user_ensure_admin(struct opsctl *o);
/* containment.c */
int cmd_user_disable(struct opsctl *o);
int cmd_user_enable(struct opsctl *o);
int cmd_token_revoke(struct opsctl *o);
int cmd_tokens_list(struct opsctl *o);
/* sessions.c */
int cmd_sessions_flush(struct opsctl *o);
/* audit.c */
int cmd_audit_verify(struct opsctl *o);
int cmd_audit_purge(struct opsctl *o);
/* audit_search.c */
int cmd_audit_search(struct opsctl *o);
/* email.c */
int cmd_email_test(struct opsctl *o);
int cmd_email_outbox_list(struct opsctl *o);
int cmd_email_outbox_retry(struct opsctl *o);
int cmd_email_settings(struct opsctl *o);
/* legal.c */
int cmd_legal_publish(struct opsctl *o);
int cmd_legal_report(struct opsctl *o);
/* compliance.c */
int cmd_compliance_hold(struct opsctl *o);
int cmd_compliance_strip(struct opsctl *o);
int cmd_compliance_archive(struct opsctl *o);
int cmd_compliance_export(struct opsctl *o);
/* migration.c */
int cmd_migration_start(struct opsctl *o);
int cmd_tenant_set_target(struct opsctl *o);
/* data_key.c */
int cmd_data_key_rotate(struct opsctl *o);
int cmd_migration_status(struct opsctl *o);
int cmd_migration_watch(struct opsctl *o);
int cmd_migration_finalize(struct opsctl *o);
int cmd_migration_abort(struct opsctl *o);
int cmd_migration_history(struct opsctl *o);
int cmd_migration_list(struct opsctl *o);
/* blocklist.c */
int cmd_blocklist_add(struct opsctl *o);
int cmd_blocklist_remove(struct opsctl *o);
int cmd_blocklist_list(struct opsctl *o);
int cmd_blocklist_sync_nginx(struct opsctl *o);
/* subjects.c */
int cmd_compliance_search(struct opsctl *o);
/* ratelimit.c */
int cmd_ratelimit_show(struct opsctl *o);
int cmd_ratelimit_set(struct opsctl *o);
/* routes.c */
int cmd_routes(struct opsctl *o);
int cmd_roles(struct opsctl *o);
int cmd_openapi(struct opsctl *o);

#endif
