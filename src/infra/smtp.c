/* One message through libESMTP (README, runbook 5): the session around the
 * text lib/mail_format.c writes, read back into one outcome. libESMTP keeps
 * global state and is not thread-aware; one process sends at a time. */
#include "infra/smtp.h"

#include "lib/buf.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* libesmtp.h uses size_t without including <stddef.h>; it
 * declares smtp_auth_set_context and smtp_starttls_set_ctx only when
 * auth-client.h and openssl/ssl.h come first. */
#include <stddef.h>
#include <auth-client.h>
#include <libesmtp.h>

struct reply {
	int code;
	char text[200];
};

/* What one session saw: filled by the libESMTP callbacks, read afterwards. */
struct send_state {
	const struct smtp_settings *s;
	const struct buf *msg;
	smtp_recipient_t rcpt;
	bool served;
	bool accepted_told; /* s->accepted was called */
	bool refused_data;
	const char *phase;  /* step of the furthest command written */
	size_t verb_seen;   /* its index in verbs[] */
	bool at_line_start; /* of the client's write stream */
	char line[512];     /* server reply line being assembled */
	size_t line_len;
	struct reply greeting; /* greeting, EHLO/HELO */
	struct reply starttls;
	struct reply auth;
	bool auth_tried, auth_ok;
	bool quitting;
	bool tls_ok, tls_not_offered;
	char tls_error[256]; /* first certificate problem */
};

static void copy_text(char *dst, size_t size, const char *src)
{
	size_t j = 0;
	bool space = false;
	for (const unsigned char *p = (const unsigned char *)src; *p != '\0' && j + 1 < size; p++) {
		if (*p < 0x20 || *p >= 0x7f) {
			space = j > 0;
			continue;
		}
		if (space && *p != ' ' && j + 2 < size)
			dst[j++] = ' ';
		space = false;
		dst[j++] = (char)*p;
	}
	while (j > 0 && dst[j - 1] == ' ')
		j--;
	dst[j] = '\0';
}

static void result_set(struct smtp_result *res, enum smtp_outcome o, const char *step, int status,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void result_set(struct smtp_result *res, enum smtp_outcome o, const char *step, int status,
    const char *fmt, ...)
{
	va_list ap;
	res->outcome = o;
	res->status = status;
	str_copy(res->step, step, sizeof(res->step));
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

static void tls_fail(struct send_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tls_fail(struct send_state *st, const char *fmt, ...)
{
	va_list ap;
	if (st->tls_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(st->tls_error, sizeof(st->tls_error), fmt, ap);
	va_end(ap);
}

static const char *ssl_reason(const char *fallback)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : fallback;
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static bool cert_matches(X509 *cert, const char *host)
{
	if (cert == NULL)
		return false;
	if (is_ip_literal(host))
		return X509_check_ip_asc(cert, host, 0) == 1;
	return X509_check_host(cert, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

static void record_verify_error(struct send_state *st, long err)
{
	if (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH)
		tls_fail(st, "tls: server certificate does not match %s", st->s->server);
	else
		tls_fail(st, "tls: server certificate not trusted: %s",
		    X509_verify_cert_error_string(err));
}

/* The handshake fails on the first bad certificate (SSL_VERIFY_PEER); this
 * keeps OpenSSL's reason, which libESMTP would otherwise reduce to nothing. */
static int on_verify(int preverify_ok, X509_STORE_CTX *x)
{
	if (preverify_ok)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct send_state *st = ssl != NULL ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	if (st != NULL)
		record_verify_error(st, X509_STORE_CTX_get_error(x));
	return 0;
}

/* libESMTP 1.1 sends no SNI; set it as the handshake starts, before the
 * ClientHello is written, so relays with several certificates pick ours. */
static void on_tls_info(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	struct send_state *st = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (st != NULL && !is_ip_literal(st->s->server) &&
	    SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL)
		SSL_set_tlsext_host_name((SSL *)ssl, st->s->server);
}

/* TLS 1.2, the peer verified against SMTP_CA_FILE or the system CAs, and
 * the host name (or IP address) checked by OpenSSL during the handshake. */
static SSL_CTX *tls_context(struct send_state *st, struct smtp_result *res)
{
	const struct smtp_settings *s = st->s;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	/* TLS 1.2 only: a TLS 1.3 server sends its session tickets after the
	 * handshake, and libESMTP 1.1 then reads the post-STARTTLS EHLO reply
	 * before flushing the EHLO, stalling until the timeout (seen here). */
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	if (s->ca_file != NULL && s->ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, s->ca_file, NULL) != 1) {
			result_set(res, SMTP_RETRY, "starttls", 0,
			    "starttls: cannot load CA file %s", s->ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_literal(s->server) ? X509_VERIFY_PARAM_set1_ip_asc(param, s->server) != 1
	                             : X509_VERIFY_PARAM_set1_host(param, s->server, 0) != 1)
		goto fail;
	SSL_CTX_set_info_callback(ctx, on_tls_info);
	SSL_CTX_set_app_data(ctx, st);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	result_set(res, SMTP_RETRY, "starttls", 0, "starttls: cannot set up TLS: %s",
	    ssl_reason("out of memory"));
	return NULL;
}

/* The server's final reply to the message (after DATA's "." or BDAT ... LAST),
 * read before QUIT is: a 2xx for the message and the recipient means the server
 * took it. The monitor cannot tell this: libESMTP switches it off for good
 * when it sends the message with BDAT (a server offering CHUNKING). */
static void on_message_sent(struct send_state *st, smtp_message_t msg)
{
	const smtp_status_t *data = smtp_message_transfer_status(msg);
	const smtp_status_t *to = st->rcpt != NULL ? smtp_recipient_status(st->rcpt) : NULL;

	if (st->accepted_told || !st->served || st->refused_data || data == NULL ||
	    data->code / 100 != 2 || to == NULL || to->code / 100 != 2)
		return;
	st->accepted_told = true;
	if (st->s->accepted != NULL)
		st->s->accepted(st->s->accepted_arg, data->code);
}

/* doc/architecture.md "Pitfalls of the platform": the certificate events pass int *ok at different
 * positions, and leaving it 0 ends the session; every other event is informational. */
static void on_event(smtp_session_t session, int event, void *arg, ...)
{
	struct send_state *st = arg;
	va_list ap;
	int *ok;
	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long verify = va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = 0;
		record_verify_error(st, verify);
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 0;
		tls_fail(st, "tls: server presented no certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		/* libESMTP's own name check knows no IP SANs: decide with OpenSSL's */
		ok = va_arg(ap, int *);
		(void)va_arg(ap, const char *);
		SSL *ssl = va_arg(ap, SSL *);
		X509 *cert = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;
		*ok = cert_matches(cert, st->s->server);
		X509_free(cert);
		if (!*ok)
			tls_fail(st, "tls: server certificate does not match %s", st->s->server);
		break;
	}
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = 0;
		tls_fail(st, "tls: weak cipher offered by the server");
		break;
	case SMTP_EV_STARTTLS_OK:
		st->tls_ok = true;
		break;
	case SMTP_EV_MESSAGEDATA:
		/* BDAT is written with the monitor switched off: the phase comes from here */
		st->phase = "data";
		break;
	case SMTP_EV_MESSAGESENT:
		on_message_sent(st, va_arg(ap, smtp_message_t));
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		st->tls_not_offered = true;
		break;
	default:
		break;
	}
	va_end(ap);
}

/* In protocol order; the phase only moves forward, so the EHLO repeated
 * after STARTTLS still counts as starttls. */
static const struct {
	const char *verb;
	const char *phase;
} verbs[] = {
    {"EHLO", "connect"},
    {"HELO", "connect"},
    {"STARTTLS", "starttls"},
    {"AUTH", "auth"},
    {"MAIL", "mail"},
    {"RCPT", "rcpt"},
    {"DATA", "data"},
};

/* The client side: only the command verb is looked at, so AUTH's
 * credentials are never copied anywhere. */
static void monitor_write(struct send_state *st, const char *p, int n)
{
	for (int i = 0; i < n; i++) {
		/* QUIT's reply would hide the one that ended the session */
		if (st->at_line_start && n - i >= 4 && strncmp(p + i, "QUIT", 4) == 0)
			st->quitting = true;
		if (st->at_line_start) {
			for (size_t v = 0; v < countof(verbs); v++) {
				size_t vl = strlen(verbs[v].verb);
				if ((size_t)(n - i) > vl &&
				    strncmp(p + i, verbs[v].verb, vl) == 0 &&
				    (p[i + vl] == ' ' || p[i + vl] == '\r') && v >= st->verb_seen) {
					st->verb_seen = v;
					st->phase = verbs[v].phase;
					if (strcmp(verbs[v].verb, "AUTH") == 0)
						st->auth_tried = true;
				}
			}
		}
		st->at_line_start = p[i] == '\n';
	}
}

/* A final reply line ("250 ok", not "250-..."): kept for the phase whose
 * status libESMTP does not expose (greeting/EHLO, STARTTLS, AUTH). */
static void monitor_reply(struct send_state *st, const char *line)
{
	if (!(line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
	        line[2] >= '0' && line[2] <= '9' && (line[3] == ' ' || line[3] == '\0')))
		return;
	struct reply *r = NULL;
	if (st->quitting)
		return;
	if (strcmp(st->phase, "connect") == 0)
		r = &st->greeting;
	else if (strcmp(st->phase, "starttls") == 0)
		r = &st->starttls;
	else if (strcmp(st->phase, "auth") == 0)
		r = &st->auth;
	if (r == NULL)
		return;
	r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	copy_text(r->text, sizeof(r->text), line[3] ? line + 4 : "");
	if (r == &st->auth && line[0] == '2')
		st->auth_ok = true;
}

static void on_monitor(const char *p, int n, int writing, void *arg)
{
	struct send_state *st = arg;
	if (writing == SMTP_CB_WRITING) {
		monitor_write(st, p, n);
		return;
	}
	if (writing != SMTP_CB_READING)
		return;
	for (int i = 0; i < n; i++) {
		if (p[i] == '\n') {
			st->line[st->line_len] = '\0';
			monitor_reply(st, st->line);
			st->line_len = 0;
		} else if (st->line_len + 1 < sizeof(st->line)) {
			st->line[st->line_len++] = p[i];
		}
	}
}

/* libESMTP free()s *ctx, so all state lives in arg. The message goes out
 * only over the channel asked for: libESMTP 1.1 carries on to MAIL after a
 * refused AUTH, and an error here drops the connection before the final
 * ".", so the server discards the transaction. */
static const char *on_message(void **ctx, int *len, void *arg)
{
	struct send_state *st = arg;
	(void)ctx;
	if (len == NULL) {
		st->served = false;
		return NULL;
	}
	*len = 0;
	if (st->served)
		return NULL;
	if ((st->s->starttls && !st->tls_ok) || (st->s->user != NULL && !st->auth_ok)) {
		st->refused_data = true;
		errno = EACCES;
		return NULL;
	}
	st->served = true;
	*len = (int)st->msg->len;
	return st->msg->data;
}

static int on_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
	struct send_state *st = arg;
	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = (char *)st->s->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = (char *)(st->s->pass != NULL ? st->s->pass : "");
		else
			return 0;
	}
	return 1;
}

/* libESMTP's connect() has no timeout; this bounds it and names the
 * failure. The real session follows on a fresh connection. */
static bool probe_connect(const struct smtp_settings *s, int timeout_ms, struct smtp_result *res)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char port[8];
	int err = 0;
	snprintf(port, sizeof(port), "%d", s->port);
	int rc = getaddrinfo(s->server, port, &hints, &ai);
	if (rc != 0) {
		result_set(res, SMTP_RETRY, "connect", 0, "connect: cannot resolve %s: %s",
		    s->server, gai_strerror(rc));
		return false;
	}
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		err = 0;
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			err = errno;
			if (err == EINPROGRESS) {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				socklen_t el = sizeof(err);
				rc = poll(&pfd, 1, timeout_ms);
				if (rc == 0)
					err = ETIMEDOUT;
				else if (rc < 0 ||
				         getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
					err = errno;
			}
		}
		close(fd);
		if (err == 0)
			break;
	}
	freeaddrinfo(ai);
	if (err == 0)
		return true;
	char why[128];
	str_copy(why, strerror(err), sizeof(why));
	if (why[0] >= 'A' && why[0] <= 'Z')
		why[0] = (char)(why[0] - 'A' + 'a');
	result_set(res, SMTP_RETRY, "connect", 0, "connect: %s (%s:%d)", why, s->server, s->port);
	return false;
}

static enum smtp_outcome by_code(int code)
{
	return code >= 500 && code <= 599 ? SMTP_FAILED : SMTP_RETRY;
}

/* "550 5.1.1 no such user" from a libESMTP status. */
static void status_line(const smtp_status_t *st, char *out, size_t size)
{
	char text[200];
	copy_text(text, sizeof(text), st->text != NULL ? st->text : "");
	if (st->enh_class > 0)
		snprintf(out, size, "%d %d.%d.%d %s", st->code, st->enh_class, st->enh_subject,
		    st->enh_detail, text);
	else
		snprintf(out, size, "%d %s", st->code, text);
}

/* README "Runbook 5": delivered only when the recipient and the message both got a
 * 2xx; the session's own return says little (doc/architecture.md "Pitfalls of
 * the platform"). */
static void classify(const struct send_state *st, int started, smtp_message_t msg,
    smtp_recipient_t rcpt, struct smtp_result *res)
{
	const struct smtp_settings *s = st->s;
	const smtp_status_t *mail = smtp_reverse_path_status(msg);
	const smtp_status_t *to = smtp_recipient_status(rcpt);
	const smtp_status_t *data = smtp_message_transfer_status(msg);
	char line[300];

	if (to != NULL && to->code / 100 == 2 && data != NULL && data->code / 100 == 2 &&
	    !st->refused_data) {
		result_set(res, SMTP_SENT, "done", data->code, "%s", "");
		return;
	}
	if (st->tls_error[0] != '\0') {
		result_set(res, SMTP_RETRY, "starttls", st->starttls.code, "%s", st->tls_error);
	} else if (st->tls_not_offered) {
		result_set(res, SMTP_RETRY, "starttls", st->greeting.code,
		    "starttls: server does not offer STARTTLS and TLS is required");
	} else if (st->starttls.code >= 400) {
		result_set(res, SMTP_RETRY, "starttls", st->starttls.code, "starttls: %d %s",
		    st->starttls.code, st->starttls.text);
	} else if (s->starttls && st->starttls.code / 100 == 2 && !st->tls_ok) {
		result_set(res, SMTP_RETRY, "starttls", st->starttls.code,
		    "starttls: TLS handshake failed: %s", ssl_reason("connection closed"));
	} else if (st->greeting.code >= 400) {
		result_set(res, SMTP_RETRY, "connect", st->greeting.code,
		    "connect: server said %d %s", st->greeting.code, st->greeting.text);
	} else if (s->user != NULL && st->auth_tried && !st->auth_ok && st->auth.code >= 400) {
		result_set(res, by_code(st->auth.code), "auth", st->auth.code, "auth: %d %s",
		    st->auth.code, st->auth.text);
	} else if (s->user != NULL && !st->auth_ok &&
	           (st->auth_tried || st->refused_data || (mail != NULL && mail->code != 0))) {
		result_set(res, SMTP_RETRY, "auth", st->auth.code,
		    st->auth_tried
		        ? "auth: authentication did not complete"
		        : "auth: server offers no usable AUTH mechanism (PLAIN or LOGIN)");
	} else if (mail != NULL && mail->code >= 400) {
		status_line(mail, line, sizeof(line));
		result_set(res, by_code(mail->code), "mail", mail->code, "mail: %s", line);
	} else if (to != NULL && to->code >= 400) {
		status_line(to, line, sizeof(line));
		result_set(res, by_code(to->code), "rcpt", to->code, "rcpt: %s", line);
	} else if (data != NULL && data->code >= 400) {
		status_line(data, line, sizeof(line));
		result_set(res, by_code(data->code), "data", data->code, "data: %s", line);
	} else {
		char why[128];
		int e = smtp_errno();
		/* libESMTP reports a timeout as a dropped connection */
		if ((started && e == 0) || e == SMTP_ERR_DROPPED_CONNECTION)
			snprintf(why, sizeof(why),
			    "server closed the connection or did not answer within %d s",
			    s->timeout_s > 0 ? s->timeout_s : 30);
		else
			smtp_strerror(e, why, sizeof(why));
		result_set(res, SMTP_RETRY, st->phase, 0, "%s: %s", st->phase, why);
	}
}

int smtp_send(const struct smtp_settings *s, const struct mail_message *m, struct smtp_result *res)
{
	static bool auth_ready;
	struct send_state st = {.s = s, .phase = "connect", .at_line_start = true};
	struct buf msg;
	smtp_session_t session = NULL;
	smtp_message_t message = NULL;
	smtp_recipient_t rcpt = NULL;
	auth_context_t actx = NULL;
	SSL_CTX *ctx = NULL;
	char hostport[300];

	if (res == NULL)
		return -1;
	memset(res, 0, sizeof(*res));
	buf_init(&msg);
	st.msg = &msg;
	if (s == NULL || m == NULL || s->server == NULL || s->server[0] == '\0' || s->port <= 0 ||
	    s->port > 65535 || s->from == NULL) {
		result_set(res, SMTP_RETRY, "connect", 0, "connect: SMTP server or sender not set");
		goto done;
	}
	if (!mail_format(m, s->from, &msg)) {
		result_set(res, buf_failed(&msg) ? SMTP_RETRY : SMTP_FAILED, "format", 0,
		    buf_failed(&msg) ? "format: out of memory"
		                     : "format: refused: CR/LF in a header field, a bad address "
		                       "or invalid UTF-8");
		goto done;
	}
	if (msg.len > 0x7fffffff) {
		result_set(res, SMTP_FAILED, "format", 0, "format: message too large");
		goto done;
	}

	long timeout_ms = (s->timeout_s > 0 ? s->timeout_s : 30) * 1000L;
	if (!probe_connect(s, (int)timeout_ms, res))
		goto done;

	snprintf(hostport, sizeof(hostport), "%s:%d", s->server, s->port);
	session = smtp_create_session();
	message = session != NULL ? smtp_add_message(session) : NULL;
	if (message == NULL || !smtp_set_server(session, hostport) ||
	    !smtp_set_reverse_path(message, s->from) ||
	    (rcpt = st.rcpt = smtp_add_recipient(message, m->to)) == NULL ||
	    !smtp_set_messagecb(message, on_message, &st) ||
	    !smtp_set_eventcb(session, on_event, &st) ||
	    !smtp_set_monitorcb(session, on_monitor, &st, 0))
		goto internal;
	smtp_size_set_estimate(message, msg.len);
	/* milliseconds; without the flag libESMTP raises them to RFC 5321's minutes */
	static const int which[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
	    Timeout_TRANSFER, Timeout_DATA2};
	for (size_t i = 0; i < countof(which); i++)
		if (smtp_set_timeout(session, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM,
		        timeout_ms) <= 0)
			goto internal;
	if (s->starttls) {
		if ((ctx = tls_context(&st, res)) == NULL)
			goto done;
		/* libESMTP takes its own reference; ours is dropped below */
		if (!smtp_starttls_set_ctx(session, ctx) ||
		    !smtp_starttls_enable(session, Starttls_REQUIRED))
			goto internal;
	} else if (!smtp_starttls_enable(session, Starttls_DISABLED)) {
		goto internal;
	}
	if (s->user != NULL) {
		if (!auth_ready) {
			auth_client_init();
			auth_ready = true;
		}
		if ((actx = auth_create_context()) == NULL ||
		    !auth_set_mechanism_flags(actx, AUTH_PLUGIN_PLAIN, 0) ||
		    !auth_set_interact_cb(actx, on_interact, &st) ||
		    !smtp_auth_set_context(session, actx))
			goto internal;
	}

	ERR_clear_error();
	int started = smtp_start_session(session);
	classify(&st, started, message, rcpt, res);
	goto done;

internal:
	result_set(res, SMTP_RETRY, st.phase, 0, "%s: libESMTP setup failed", st.phase);
done:
	if (session != NULL)
		smtp_destroy_session(session);
	if (actx != NULL)
		auth_destroy_context(actx);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	buf_free(&msg);
	return 0;
}
