/* Delivery of one message through libESMTP (README, runbook 5): STARTTLS required
 * unless SMTP_SECURE=none, AUTH when a user is set, the server certificate
 * verified (system CAs or SMTP_CA_FILE, host name checked), and the
 * per-message and per-recipient status read after the session. */
#ifndef OPSD_SMTP_H
#define OPSD_SMTP_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/mail_format.h"

struct smtp_settings {
	const char *server; /* host name or address */
	int port;           /* 587 */
	const char *user;   /* NULL: no AUTH */
	const char *pass;
	const char *from;    /* envelope and header From: addr-spec */
	bool starttls;       /* true: STARTTLS required; false: plain (loopback only) */
	const char *ca_file; /* NULL: system CAs */
	int timeout_s;       /* per network step; 0 = 30 */
	/* Called once, during the session, the moment the server accepts the message (a 2xx
	 * reply to the end of its data), before QUIT is answered: the caller records the
	 * delivery at once, so a sender that dies afterwards does not send it again. */
	void (*accepted)(void *arg, int status);
	void *accepted_arg;
};

enum smtp_outcome {
	SMTP_SENT,
	SMTP_RETRY,  /* 4xx, connection or TLS trouble: try again later */
	SMTP_FAILED, /* 5xx or a refused recipient: permanent */
};

struct smtp_result {
	enum smtp_outcome outcome;
	int status;      /* last SMTP reply code seen (0 when none) */
	char step[16];   /* where it stopped: connect, starttls, auth, mail, rcpt, data, done */
	char error[400]; /* one clear line, no password, no message body */
};

/* Sends one message; never blocks longer than a few timeouts. Fills res in
 * every case. 0 when the outcome is known (see res->outcome). */
int smtp_send(const struct smtp_settings *s, const struct mail_message *m, struct smtp_result *res);

#endif
