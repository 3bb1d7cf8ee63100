/* Delivery of one message through libESMTP (SPEC §12): STARTTLS required
 * unless SMTP_SECURE=none, AUTH when a user is set, the server certificate
 * verified (system CAs or SMTP_CA_FILE, host name checked), and the
 * per-message and per-recipient status read after the session. */
#ifndef OPSD_SMTP_H
#define OPSD_SMTP_H

#include <stdbool.h>
#include <stdint.h>

struct buf;

struct smtp_settings {
	const char *server; /* host name or address */
	int port;           /* 587 */
	const char *user;   /* NULL: no AUTH */
	const char *pass;
	const char *from;    /* envelope and header From: addr-spec */
	bool starttls;       /* true: STARTTLS required; false: plain (loopback only) */
	const char *ca_file; /* NULL: system CAs */
	int timeout_s;       /* per network step; 0 = 30 */
};

struct smtp_message {
	const char *message_id; /* without <>: "<outbox id>@<from domain>" is built by the caller */
	const char *to;         /* one addr-spec */
	const char *subject;    /* UTF-8 */
	const char *body;       /* UTF-8 text; any line endings */
	int64_t date_ms;        /* for the Date header */
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

/* Formats the message as RFC 5322 with CRLF line endings: Date, Message-ID,
 * From, To, Subject (RFC 2047 encoded-words when not ASCII), MIME-Version,
 * Content-Type: text/plain; charset=UTF-8, Content-Transfer-Encoding:
 * quoted-printable (RFC 2045 §6.7, so no line exceeds 78 characters).
 * Returns false when a header field holds CR, LF or NUL (header injection). */
bool mail_format(const struct smtp_message *m, const char *from, struct buf *out);

/* Sends one message; never blocks longer than a few timeouts. Fills res in
 * every case. 0 when the outcome is known (see res->outcome). */
int smtp_send(const struct smtp_settings *s, const struct smtp_message *m, struct smtp_result *res);

#endif
