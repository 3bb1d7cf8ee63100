/* One plain-text message as RFC 5322 text, the only form in which opsd
 * sends mail (the outbox's jobs and opsctl email test hand it to
 * infra/smtp.c). Pure: no I/O, so every header rule is unit-tested. */
#ifndef OPSD_MAIL_FORMAT_H
#define OPSD_MAIL_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

struct buf;

struct mail_message {
	const char *message_id; /* without <>: "<outbox id>@<from domain>" is built by the caller */
	const char *to;         /* one addr-spec */
	const char *subject;    /* UTF-8 */
	const char *body;       /* UTF-8 text; any line endings */
	int64_t date_ms;        /* for the Date header */
};

/* Formats the message as RFC 5322 with CRLF line endings: Date, Message-ID,
 * From, To, Subject (RFC 2047 encoded-words when not ASCII), MIME-Version,
 * Content-Type: text/plain; charset=UTF-8, Content-Transfer-Encoding:
 * quoted-printable (RFC 2045 §6.7, so no line exceeds 78 characters).
 * Returns false when a header field holds CR, LF or NUL (header injection). */
bool mail_format(const struct mail_message *m, const char *from, struct buf *out);

#endif
