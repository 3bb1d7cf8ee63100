/* opsctl email test, email outbox list|retry and email settings (README,
 * runbook 5), through the core functions of the /email routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/mail.h"
#include "core/users.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "infra/smtp.h"
#include "lib/arena.h"
#include "lib/util.h"
#include "lib/uuid.h"

#define WAIT_POLL_MS 200

/* "sent: ADDR via HOST:PORT (starttls, auth)" from this configuration. */
static void print_sent(const struct opsctl *o, const char *addr)
{
	struct smtp_settings s;

	mail_smtp_settings(&o->cfg, &s);
	printf("sent: %s via %s:%d (%s, %s)\n", addr, s.server ? s.server : "?", s.port,
	    s.starttls ? "starttls" : "no tls", s.user ? "auth" : "no auth");
}

/* last_error is "step: detail" (core/mail.c); "failed at step: detail". */
static void print_failure(const char *prefix, const char *last_error)
{
	const char *colon = last_error ? strstr(last_error, ": ") : NULL;

	if (colon)
		printf("%s at %.*s: %s", prefix, (int)(colon - last_error), last_error, colon + 2);
	else
		printf("%s: %s", prefix, last_error ? last_error : "no error recorded");
}

/* Polls the message until the jobs process has an outcome for it: sent,
 * failed, or a first attempt that failed and will be retried. */
static int wait_outcome(struct opsctl *o, const struct opsd_uuid *id, const char *addr,
    long long timeout_s)
{
	int64_t until = mono_ms() + timeout_s * 1000;
	struct arena *a = arena_new(16 * 1024);
	int rc = EXIT_FAILED;

	for (; a; arena_reset(a)) {
		struct db_rows rows;
		struct json_object *m;
		const char *status, *err;
		int attempts, done = 1;

		if (mail_outbox_get(o->db, a, id, &rows) != 0 || rows.nrows != 1) {
			fprintf(stderr, "opsctl: cannot read the outbox: %s\n", db_error(o->db));
			break;
		}
		m = mail_outbox_json(&rows, 0);
		status = doc_str(m, "status") ? doc_str(m, "status") : "";
		err = doc_str(m, "lastError");
		attempts = json_object_get_int(json_object_object_get(m, "attempts"));
		if (strcmp(status, "sent") == 0) {
			print_sent(o, addr);
			rc = EXIT_OK;
		} else if (strcmp(status, "failed") == 0) {
			print_failure("failed", err);
			printf("\n");
		} else if (strcmp(status, "queued") == 0 && err && attempts > 0) {
			print_failure("not sent yet: attempt failed", err);
			printf("; next attempt at %s (opsctl email outbox list --status queued)\n",
			    doc_str(m, "nextAttemptAt") ? doc_str(m, "nextAttemptAt") : "?");
		} else if (mono_ms() >= until) {
			printf(
			    "still %s after %lld s: is the jobs process running? (opsctl email outbox "
			    "list)\n",
			    status, timeout_s);
		} else {
			done = 0;
		}
		json_object_put(m);
		if (done)
			break;
		usleep(WAIT_POLL_MS * 1000);
	}
	arena_free(a);
	return rc;
}

/* Runbook 5 step 1: a test message through the outbox, as POST /email/test
 * queues it (test mode and the allowlist apply, email.test_requested is
 * audited); the jobs process sends it. --wait reports its outcome. */
int cmd_email_test(struct opsctl *o)
{
	const char *to = opt_value(o, "--to"), *timeout_s = opt_value(o, "--timeout");
	char addr[256], id[UUID_STR_LEN + 1], origin[160], host[64] = "";
	long long timeout = 60;
	enum mail_status status;
	struct opsd_uuid u;
	enum mail_err e;

	if (!to)
		return need_opt("--to");
	if (!email_normalize(to, addr, sizeof(addr))) {
		fprintf(stderr, "opsctl: \"%s\" is not an email address\n", to);
		return EXIT_USAGE;
	}
	if (timeout_s &&
	    (!opt_flag(o, "--wait") || !parse_ll_range(timeout_s, 1, 3600, &timeout))) {
		fprintf(stderr, "opsctl: --timeout goes with --wait: seconds, 1 to 3600\n");
		return EXIT_USAGE;
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(origin, sizeof(origin), "Queued with opsctl email test by %s on %s.", o->label,
	    host);
	e = mail_send_test(o->db, &o->cfg, &o->actor, addr, origin, id, &status);
	if (e != MAIL_OK) {
		fprintf(stderr, "opsctl: %s\n",
		    e == MAIL_DB_ERROR ? db_error(o->db) : "not a valid email address");
		return e == MAIL_DB_ERROR ? EXIT_FAILED : EXIT_USAGE;
	}
	if (status == MAIL_SUPPRESSED) {
		printf("suppressed: %s is not in TEST_EMAIL_ALLOWLIST (test mode)\n", addr);
		return EXIT_FAILED;
	}
	printf("queued: %s (outbox %s)\n", addr, id);
	if (!opt_flag(o, "--wait"))
		return EXIT_OK;
	fflush(stdout);
	uuid_parse(id, &u);
	return wait_outcome(o, &u, addr, timeout);
}

/* GET /email/outbox: newest first, the same JSON. */
int cmd_email_outbox_list(struct opsctl *o)
{
	const char *status = opt_value(o, "--status"), *limit_s = opt_value(o, "--limit");
	const char *cursor = opt_value(o, "--cursor");
	long long limit = 50;
	char after_s[64], last[UUID_STR_LEN + 1], next[128];
	struct opsd_uuid after;
	struct arena *a;
	struct db_rows rows;
	struct json_object *items;
	size_t n;

	if (status && mail_status_from_name(status) < 0) {
		fprintf(stderr, "opsctl: --status must be one of:");
		for (size_t i = 0; mail_status_names[i]; i++)
			fprintf(stderr, " %s", mail_status_names[i]);
		fprintf(stderr, "\n");
		return EXIT_USAGE;
	}
	if (limit_s && !parse_ll_range(limit_s, 1, 500, &limit)) {
		fprintf(stderr, "opsctl: --limit must be an integer between 1 and 500\n");
		return EXIT_USAGE;
	}
	if (cursor && (!cursor_decode("outbox", cursor, after_s, sizeof(after_s)) ||
	                  !uuid_parse(after_s, &after))) {
		fprintf(stderr, "opsctl: --cursor is not a cursor of the outbox\n");
		return EXIT_USAGE;
	}
	if (!(a = arena_new(64 * 1024)))
		return EXIT_FAILED;
	{
		struct db_param p[] = {DBP_I64(status != NULL), DBP_STR(status ? status : ""),
		    DBP_I64(cursor != NULL), cursor ? DBP_BLOB(after.b, 16) : DBP_NULL,
		    DBP_I64(limit + 1)};

		if (db_query(o->db, a, MAIL_OUTBOX_LIST_SQL, p, countof(p), &rows) != 0) {
			fprintf(stderr, "opsctl: cannot read the outbox: %s\n", db_error(o->db));
			arena_free(a);
			return EXIT_FAILED;
		}
	}
	n = rows.nrows > (size_t)limit ? (size_t)limit : rows.nrows;
	items = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(items, mail_outbox_json(&rows, i));
	bool more = rows.nrows > n && dbv_uuid(rows.val[n - 1][0], rows.len[n - 1][0], last);

	if (more)
		cursor_encode("outbox", last, next, sizeof(next));
	print_list_page(items, more ? next : NULL);
	arena_free(a);
	return EXIT_OK;
}

/* POST /email/outbox/:id/retry: a failed message queued again, audited
 * email.retry_requested; prints the message as the API answers it. */
int cmd_email_outbox_retry(struct opsctl *o)
{
	const char *id_s = opt_value(o, "--id");
	struct opsd_uuid id;
	char id_text[UUID_STR_LEN + 1];
	struct arena *a;
	struct db_rows rows;
	enum mail_retry_rc rc;
	int ret = EXIT_FAILED;

	if (!id_s)
		return need_opt("--id");
	if (!uuid_parse(id_s, &id)) {
		fprintf(stderr, "opsctl: --id must be an outbox id (UUID)\n");
		return EXIT_USAGE;
	}
	if (!(a = arena_new(16 * 1024)))
		return EXIT_FAILED;
	uuid_format(&id, id_text);
	rc = mail_retry(o->db, a, &o->actor, &id, id_text);
	if (rc == MAIL_RETRY_NOT_FOUND)
		fprintf(stderr, "opsctl: no such message %s\n", id_text);
	else if (rc == MAIL_RETRY_NOT_FAILED)
		fprintf(stderr, "opsctl: only a failed message can be retried\n");
	else if (rc != MAIL_RETRY_OK || mail_outbox_get(o->db, a, &id, &rows) != 0 ||
	         rows.nrows != 1)
		fprintf(stderr, "opsctl: retry failed: %s\n", db_error(o->db));
	else {
		struct json_object *doc = mail_outbox_json(&rows, 0);

		print_json(doc);
		json_object_put(doc);
		ret = EXIT_OK;
	}
	arena_free(a);
	return ret;
}

/* What the outbox sends with, from the same configuration opsd reads:
 * never the password, only whether it is set. */
int cmd_email_settings(struct opsctl *o)
{
	const struct opsd_config *c = &o->cfg;

	if (opt_flag(o, "--json")) {
		struct json_object *j = mail_settings_json(c);

		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		return EXIT_OK;
	}
	printf("server:     %s\n", c->smtp_server ? c->smtp_server : "(unset: nothing is sent)");
	printf("port:       %d\n", c->smtp_port);
	printf("secure:     %s\n", c->smtp_secure == SMTP_STARTTLS ? "starttls" : "none");
	printf("user:       %s\n", c->smtp_user ? c->smtp_user : "(none: no AUTH)");
	printf("password:   %s\n", c->smtp_pass ? "set" : "unset");
	printf("from:       %s\n", c->smtp_from ? c->smtp_from : "(unset)");
	printf("ca file:    %s\n", c->smtp_ca_file ? c->smtp_ca_file : "(system CAs)");
	printf("test mode:  %s\n",
	    c->smtp_test_mode ? "on (only allowlisted recipients get mail)" : "off");
	printf("allowlist:  %s\n", c->test_email_allowlist ? c->test_email_allowlist : "(empty)");
	return EXIT_OK;
}
