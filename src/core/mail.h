/* The email outbox (README "Runbook 5"). mail_enqueue is the only way any
 * feature sends mail; the jobs process delivers what is due. */
#ifndef OPSD_MAIL_H
#define OPSD_MAIL_H

#include <signal.h>
#include <stdbool.h>

#include "lib/uuid.h"

struct arena;
struct audit_actor;
struct db;
struct json_object;
struct opsd_config;
struct smtp_settings;

enum mail_status {
	MAIL_QUEUED,
	MAIL_SENDING,
	MAIL_SENT,
	MAIL_FAILED,
	MAIL_SUPPRESSED,
	MAIL__STATUS_MAX
};
/* The names, NULL-terminated (the choices of ?status=). */
extern const char *const mail_status_names[MAIL__STATUS_MAX + 1];
const char *mail_status_name(enum mail_status s);
int mail_status_from_name(const char *name); /* -1 if unknown */

/* Test mode (SMTP_TEST_MODE, forced by CI): only allowlisted recipients
 * (exact addresses or "@domain" entries of TEST_EMAIL_ALLOWLIST) get mail. */
bool mail_may_send_to(const struct opsd_config *cfg, const char *addr);
/* The settings the outbox delivers with (runbook 5 steps 1-3: GET
 * /email/settings, opsctl email settings): server, port, secure, user,
 * passwordSet (never the password), from, caFile, testMode and the
 * allowlist's entries. Unset values are null. */
struct json_object *mail_settings_json(const struct opsd_config *cfg);
/* Masks an address for logs: "a***@example.test". */
void mail_mask(const char *addr, char *out, size_t out_len);

enum mail_err { MAIL_OK, MAIL_BAD_ADDRESS, MAIL_BAD_CONTENT, MAIL_DB_ERROR, MAIL__MAX };

/* Queues one message (or records it as suppressed, audited) inside the
 * caller's transaction, so it commits with the change that caused it.
 * to must be a valid address; subject and body UTF-8 without NUL (subject
 * without CR/LF). *status gets MAIL_QUEUED or MAIL_SUPPRESSED. */
enum mail_err mail_enqueue(struct db *d, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *kind, const char *to, const char *subject,
    const char *body, char id_out[UUID_STR_LEN + 1], enum mail_status *status);

/* Sends a failed message again: queued, attempts reset, audited
 * email.retry_requested with id_text as the target. */
enum mail_retry_rc {
	MAIL_RETRY_OK,
	MAIL_RETRY_NOT_FOUND,
	MAIL_RETRY_NOT_FAILED,
	MAIL_RETRY_DB_ERROR
};
struct arena;
enum mail_retry_rc mail_retry(struct db *d, struct arena *a, const struct audit_actor *actor,
    const struct opsd_uuid *id, const char *id_text);

/* A test message (POST /email/test, opsctl email test): mail_enqueue, and
 * email.test_requested {status} by actor in the same transaction, so the
 * request is on record whether it is queued or suppressed (the address
 * stays out of the payload). origin, a line of the body, says who asked. */
enum mail_err mail_send_test(struct db *d, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *to, const char *origin,
    char id_out[UUID_STR_LEN + 1], enum mail_status *status);

/* The outbox as GET /email/outbox and opsctl email outbox list show it,
 * newest first. MAIL_OUTBOX_LIST_SQL's parameters: status given (0/1), the
 * status, a cursor given (0/1), the id to list below, the row limit. */
#define MAIL_OUTBOX_COLUMNS                                                                        \
	"id, kind, to_addr, subject, status, attempts, next_attempt_at,"                           \
	" last_smtp_status, last_error, created_at, sent_at"
#define MAIL_OUTBOX_LIST_SQL                                                                       \
	"SELECT " MAIL_OUTBOX_COLUMNS " FROM email_outbox WHERE (? = 0 OR status = ?)"             \
	" AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?"
struct db_rows;
/* Row i of MAIL_OUTBOX_COLUMNS as the API shows it. */
struct json_object *mail_outbox_json(const struct db_rows *rows, size_t i);
/* One message's MAIL_OUTBOX_COLUMNS (rows gets 0 or 1 row). 0 or -1. */
int mail_outbox_get(struct db *d, struct arena *a, const struct opsd_uuid *id,
    struct db_rows *rows);

/* The SMTP settings of the configuration. */
void mail_smtp_settings(const struct opsd_config *cfg, struct smtp_settings *s);

/* The jobs process's outbox job: claims due messages (FOR UPDATE SKIP
 * LOCKED, so several hosts never send one twice), sends them, records each
 * outcome with its audit event. After a reload that changed the SMTP
 * settings it first queues again, a batch a run, what failed at AUTH under
 * the replaced ones. 0, 1 while such a batch came back full, or -1. */
int mail_deliver_due(struct db *d, const struct opsd_config *cfg);

/* A delivery claim is lib/holder.h's "host:ns:pid" of the jobs process that took it. */

/* The jobs process's stop flag, read by the delivery job (README "Runbook 7",
 * step 3): once it is set, messages claimed but not started go back to the
 * queue, and an AUTH refusal of the message in hand queues it again, due at
 * once, for the successor (which may hold new credentials). */
void mail_attach_stop_flag(volatile sig_atomic_t *flag);
/* Whether a reload from a to b changes the server or the credentials the
 * outbox sends with (SMTP_SERVER, SMTP_PORT, SMTP_USER, SMTP_PASS). */
bool mail_settings_changed(const struct opsd_config *a, const struct opsd_config *b);

#endif
