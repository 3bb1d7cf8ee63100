/* JSON-lines log. A line is built in one buffer and written with a single
 * write(2): O_APPEND keeps lines of several processes whole. A line that
 * cannot be written whole (a full disk, an I/O error) is dropped and
 * counted, never waited for: logging must not hold a request. */
#include "lib/log.h"

#include "lib/buf.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

enum log_target { LT_STDERR, LT_SYSLOG, LT_FILE };

struct logline {
	struct buf b;
	enum log_level lvl;
	bool active;
};

/* Per process: where lines go and what every line carries. */
static struct {
	enum log_target target;
	int fd;
	char path[4096];
	enum log_level min;
	char role[32];
	char request_id[128];
} lg = {.target = LT_STDERR, .fd = STDERR_FILENO, .min = LL_INFO};
/* Lines not written whole, and whether the file ends in a torn line (part
 * of a line written when the disk filled): in shared memory once log_share
 * points there, so that every process adds to one count and the first line
 * that fits again, whoever writes it, ends the torn one with a newline (the
 * lines after a full disk parse again). */
static struct log_shared local_share;
static struct log_shared *share = &local_share;
/* The line being built: one per thread (the jobs process's materialiser logs too). */
static _Thread_local struct logline line;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const int level_syslog[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};

static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open(const char *target, char *err, size_t err_len)
{
	int fd = -1;
	if (target == NULL)
		target = "stderr";
	if (strcmp(target, "stderr") != 0 && strcmp(target, "syslog") != 0) {
		fd = open_file(target);
		if (fd < 0) {
			snprintf(err, err_len, "cannot open log file %s: %s", target,
			    strerror(errno));
			return -1;
		}
	}
	if (lg.target == LT_FILE)
		close(lg.fd);
	if (lg.target == LT_SYSLOG)
		closelog();
	lg.fd = STDERR_FILENO;
	lg.path[0] = '\0';
	if (fd >= 0) {
		lg.target = LT_FILE;
		lg.fd = fd;
		str_copy(lg.path, target, sizeof(lg.path));
	} else if (strcmp(target, "syslog") == 0) {
		lg.target = LT_SYSLOG;
		openlog("opsd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	} else {
		lg.target = LT_STDERR;
	}
	return 0;
}

int log_reopen(void)
{
	if (lg.target != LT_FILE)
		return 0;
	int fd = open_file(lg.path);
	if (fd < 0)
		return -1;
	/* dup2 swaps the file under the same descriptor number atomically */
	int rc = dup2(fd, lg.fd) < 0 ? -1 : 0;
	close(fd);
	return rc;
}

void log_set_level(enum log_level min)
{
	lg.min = min;
}

void log_set_role(const char *role)
{
	str_copy(lg.role, role != NULL ? role : "", sizeof(lg.role));
}

void log_set_request_id(const char *request_id)
{
	str_copy(lg.request_id, request_id != NULL ? request_id : "", sizeof(lg.request_id));
}

/* Normalised (lower-case, no '_' or '-') names of sensitive fields. */
static const char *const sensitive_keys[] = {
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "setcookie",
    "session",
    "sessionid",
    "csrf",
    "email",
    "phone",
    "mobile",
    "name",
    "username",
    "firstname",
    "lastname",
    "fullname",
    "displayname",
    "address",
    "street",
    "city",
    "postcode",
    "zip",
    "ssn",
    "dob",
    "birthdate",
    "notes",
    "content",
    "body",
    "smtppass",
    "dburi",
    "dedicateddburi",
    "datakey",
    "privatekey",
    "accesskey",
    "secretkey",
    "credential",
    "credentials",
    "iban",
};
/* Keys ending in one of these are sensitive too (smtpPassword, csrfToken,
 * userEmail, OPSD_DB_URI). */
static const char *const sensitive_suffixes[] = {
    "password",
    "secret",
    "token",
    "email",
    "dburi",
    "datakey",
    "apikey",
    "cookie",
};

bool redact_key_is_sensitive(const char *key)
{
	char norm[128];
	size_t n = 0;
	if (key == NULL)
		return false;
	for (const char *p = key; *p != '\0' && n < sizeof(norm) - 1; p++)
		if (*p != '_' && *p != '-')
			norm[n++] = (char)tolower((unsigned char)*p);
	norm[n] = '\0';
	for (size_t i = 0; i < countof(sensitive_keys); i++)
		if (strcmp(norm, sensitive_keys[i]) == 0)
			return true;
	for (size_t i = 0; i < countof(sensitive_suffixes); i++) {
		size_t sl = strlen(sensitive_suffixes[i]);
		if (n >= sl && strcmp(norm + n - sl, sensitive_suffixes[i]) == 0)
			return true;
	}
	return false;
}

/* Bounded output for redact_field. */
struct out {
	char *p;
	size_t len, cap;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->cap == 0)
		return;
	size_t room = o->cap - 1 - o->len;
	if (n > room)
		n = room;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* Local-part characters of ordinary addresses; the rarer RFC 5322 atext
 * characters are left out so "to=a@b.c" keeps its "to=". */
static bool local_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("._%+-", c));
}

static bool domain_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-';
}

/* Length of a domain with at least one inner dot at s, else 0. */
static size_t domain_len(const char *s)
{
	size_t n = 0;
	bool dot = false;
	while (domain_char(s[n]))
		n++;
	while (n > 0 && (s[n - 1] == '.' || s[n - 1] == '-'))
		n--;
	for (size_t i = 1; i < n; i++)
		dot |= s[i] == '.';
	return dot ? n : 0;
}

const char *redact_field(const char *key, const char *value, char *out, size_t out_len)
{
	static const char redacted[] = "[redacted]";
	if (value == NULL)
		return NULL;
	struct out o = {out, 0, out_len};
	if (out_len > 0)
		out[0] = '\0';
	if (redact_key_is_sensitive(key)) {
		out_put(&o, redacted, sizeof(redacted) - 1);
		return out_len > 0 ? out : redacted;
	}
	bool changed = false;
	const char *s = value;
	while (*s != '\0') {
		/* scheme://user:password@host: the password goes (RFC 3986 §3.2.1) */
		if (strncmp(s, "://", 3) == 0) {
			out_put(&o, s, 3);
			s += 3;
			size_t ui = strcspn(s, "@/?# \t\r\n\"");
			const char *colon = memchr(s, ':', ui);
			if (s[ui] == '@' && colon != NULL) {
				out_put(&o, s, (size_t)(colon - s));
				out_put(&o, ":***@", 5);
				changed = true;
			} else if (s[ui] == '@') {
				out_put(&o, s, ui + 1); /* a user name alone is not an address */
			}
			if (s[ui] == '@')
				s += ui + 1;
			continue;
		}
		/* RFC 6750 §2.1 bearer credentials */
		if (strncasecmp(s, "bearer ", 7) == 0 &&
		    (s == value || !isalnum((unsigned char)s[-1]))) {
			size_t sp = strspn(s + 7, " ");
			size_t tok = strcspn(s + 7 + sp, " \t\r\n,;\"'");
			if (tok > 0) {
				out_put(&o, "Bearer [redacted]", 17);
				s += 7 + sp + tok;
				changed = true;
				continue;
			}
		}
		if (local_char(*s)) {
			size_t run = 1;
			while (local_char(s[run]))
				run++;
			const char *dom = s + run + 1;
			size_t dl = s[run] == '@' ? domain_len(dom) : 0;
			/* "a@b.example@c.example": the domain is the last one, the rest
			 * goes with the local part (else "b.example@c.example" stays) */
			while (dl > 0 && dom[dl] == '@' && domain_len(dom + dl + 1) > 0) {
				dom += dl + 1;
				dl = domain_len(dom);
			}
			if (dl > 0) {
				out_put(&o, s, 1);
				out_put(&o, "***@", 4);
				out_put(&o, dom, dl);
				s = dom + dl;
				changed = true;
				continue;
			}
			/* copy the word, stopping where a bearer token might start */
			size_t keep = 1;
			while (keep < run && strncasecmp(s + keep, "bearer ", 7) != 0)
				keep++;
			out_put(&o, s, keep);
			s += keep;
			continue;
		}
		out_put(&o, s, 1);
		s++;
	}
	if (!changed)
		return value;
	return out_len > 0 ? out : redacted;
}

struct logline *log_begin(enum log_level lvl, const char *event)
{
	struct logline *l = &line;
	char ts[32];
	if (lvl < lg.min || (unsigned)lvl >= countof(level_names))
		return NULL;
	l->active = true;
	l->lvl = lvl;
	buf_reset(&l->b);
	format_rfc3339(now_ms(), ts);
	buf_printf(&l->b, "{\"time\":\"%s\",\"level\":\"%s\",\"event\":", ts, level_names[lvl]);
	buf_json_str(&l->b, event);
	buf_printf(&l->b, ",\"pid\":%ld", (long)getpid());
	if (lg.role[0] != '\0') {
		buf_puts(&l->b, ",\"role\":");
		buf_json_str(&l->b, lg.role);
	}
	if (lg.request_id[0] != '\0') {
		buf_puts(&l->b, ",\"requestId\":");
		buf_json_str(&l->b, lg.request_id);
	}
	return l;
}

static bool log_key(struct logline *l, const char *key)
{
	if (l == NULL || !l->active || key == NULL)
		return false;
	buf_putc(&l->b, ',');
	buf_json_str(&l->b, key);
	buf_putc(&l->b, ':');
	if (redact_key_is_sensitive(key)) {
		buf_puts(&l->b, "\"[redacted]\"");
		return false;
	}
	return true;
}

void log_str(struct logline *l, const char *key, const char *value)
{
	char scratch[8192];
	if (!log_key(l, key))
		return;
	buf_json_str(&l->b, redact_field(key, value, scratch, sizeof(scratch)));
}

void log_int(struct logline *l, const char *key, long long value)
{
	if (log_key(l, key))
		buf_printf(&l->b, "%lld", value);
}

void log_dbl(struct logline *l, const char *key, double value)
{
	if (!log_key(l, key))
		return;
	/* JSON has no NaN or infinity (RFC 8259 §6) */
	if (value != value || value > 1e308 || value < -1e308)
		buf_puts(&l->b, "null");
	else
		buf_printf(&l->b, "%.15g", value);
}

void log_bool(struct logline *l, const char *key, bool value)
{
	if (log_key(l, key))
		buf_puts(&l->b, value ? "true" : "false");
}

void log_share(struct log_shared *shared)
{
	share = shared != NULL ? shared : &local_share;
}

uint64_t log_lines_dropped(void)
{
	return __atomic_load_n(&share->dropped, __ATOMIC_RELAXED);
}

static void dropped(void)
{
	__atomic_add_fetch(&share->dropped, 1, __ATOMIC_RELAXED); /* nowhere else to say it */
}

/* false when the bytes could not all be written; when some were, the file
 * now ends in a torn line (flagged for the next writer). */
static bool write_all(int fd, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (done > 0)
				__atomic_store_n(&share->torn, 1, __ATOMIC_RELAXED);
			return false;
		}
		done += (size_t)w;
	}
	return true;
}

static void write_line(int fd, const char *p, size_t n)
{
	/* read before the exchange: every process writes lines, and an exchange
	 * on each would bounce the shared cache line between them */
	if (__atomic_load_n(&share->torn, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&share->torn, 0, __ATOMIC_RELAXED) && !write_all(fd, "\n", 1)) {
		__atomic_store_n(&share->torn, 1, __ATOMIC_RELAXED); /* still torn */
		dropped();
		return;
	}
	if (!write_all(fd, p, n))
		dropped();
}

void log_end(struct logline *l)
{
	if (l == NULL || !l->active)
		return;
	l->active = false;
	buf_putc(&l->b, '}');
	if (buf_failed(&l->b)) {
		dropped();
		return;
	}
	if (lg.target == LT_SYSLOG) {
		syslog(level_syslog[l->lvl], "%s", buf_cstr(&l->b));
		return;
	}
	buf_putc(&l->b, '\n');
	write_line(lg.fd, l->b.data, l->b.len);
}

void log_thread_done(void)
{
	buf_free(&line.b);
}

void log_msg(enum log_level lvl, const char *event, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	struct logline *l = log_begin(lvl, event);
	if (l == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_str(l, "msg", msg);
	log_end(l);
}
