/* JSON-lines logging. Every field goes through redact_field(), the one
 * redaction function, so secrets and personal data never reach a log. */
#ifndef OPSD_LOG_H
#define OPSD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LL_DEBUG, LL_INFO, LL_WARN, LL_ERROR };

/* target: "stderr", "syslog" or a file path (opened O_APPEND). */
int log_open(const char *target, char *err, size_t err_len);
/* SIGUSR1: reopens the same file path (no-op for stderr/syslog). */
int log_reopen(void);
void log_set_level(enum log_level min);
/* Process role and current request id, added to every line until reset. */
void log_set_role(const char *role);
void log_set_request_id(const char *request_id); /* NULL to clear */

/* Sensitive field names: passwords, secrets, tokens, cookies, Authorization,
 * and personal data (email, name, phone, address, ...). Matching is on the
 * lower-cased key, ignoring '_' and '-'. */
bool redact_key_is_sensitive(const char *key);
/* The one redaction function: returns the text that may be written for
 * key=value. Sensitive keys give "[redacted]"; in any other value, e-mail
 * addresses are masked ("a***@example.com") and "Bearer <token>" loses the
 * token. The result is value itself when nothing changed, else out. */
const char *redact_field(const char *key, const char *value, char *out, size_t out_len);

/* A line is built with log_begin, fields, log_end. Only one line is built at
 * a time per thread (workers handle one request at a time). */
struct logline;
struct logline *log_begin(enum log_level lvl, const char *event);
void log_str(struct logline *l, const char *key, const char *value);
void log_int(struct logline *l, const char *key, long long value);
void log_dbl(struct logline *l, const char *key, double value);
void log_bool(struct logline *l, const char *key, bool value);
void log_end(struct logline *l);
/* Lines that could not be written whole (a full disk, an I/O error) are
 * dropped and counted, never waited for. log_share puts the count, and the
 * flag saying the file ends in a torn line, in memory every process shares
 * (mapped before the first fork; NULL: this process's own again). */
struct log_shared {
	uint64_t dropped;
	int torn;
};
void log_share(struct log_shared *shared);
uint64_t log_lines_dropped(void);
/* A thread other than the main one frees its line's buffer before it ends. */
void log_thread_done(void);

/* Shorthand: one line with a "msg" field (msg is printf-formatted and then
 * redacted like any other value). */
void log_msg(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
