/* opsctl email test. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/mail.h"
#include "core/users.h"
#include "infra/smtp.h"
#include "lib/util.h"
#include "lib/uuid.h"

/* Runbook 5 step 1: the whole path now (connect, STARTTLS, AUTH, send),
 * with the step that failed, outside the outbox. */
int cmd_email_test(struct opsctl *o)
{
	const char *to = opt_value(o, "--to");
	struct smtp_settings s;
	struct mail_message m;
	struct smtp_result res;
	char addr[256], msgid[128], body[256];
	struct opsd_uuid id;

	if (!to)
		return need_opt("--to");
	if (!email_normalize(to, addr, sizeof(addr))) {
		fprintf(stderr, "opsctl: \"%s\" is not an email address\n", to);
		return EXIT_USAGE;
	}
	if (!mail_may_send_to(&o->cfg, addr)) {
		printf("suppressed: %s is not in TEST_EMAIL_ALLOWLIST (test mode)\n", addr);
		return EXIT_FAILED;
	}
	mail_smtp_settings(&o->cfg, &s);
	if (!s.server) {
		printf("failed at config: SMTP_SERVER is not set\n");
		return EXIT_FAILED;
	}
	uuid7_new(&id);
	uuid_format(&id, msgid);
	snprintf(msgid + UUID_STR_LEN, sizeof(msgid) - UUID_STR_LEN, "%s",
	    s.from && strrchr(s.from, '@') ? strrchr(s.from, '@') : "@opsd.invalid");
	snprintf(body, sizeof(body), "This is a test message sent by %s with opsctl email test.\n",
	    o->label);
	m = (struct mail_message){msgid, addr, "opsd test message (opsctl)", body, now_ms()};
	smtp_send(&s, &m, &res);
	if (res.outcome != SMTP_SENT) {
		printf("failed at %s: %s\n", res.step, res.error);
		return EXIT_FAILED;
	}
	printf("sent: %s via %s:%d (%s, %s)\n", addr, s.server, s.port,
	    s.starttls ? "starttls" : "no tls", s.user ? "auth" : "no auth");
	return EXIT_OK;
}
