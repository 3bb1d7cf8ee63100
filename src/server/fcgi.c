#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "server/fcgi.h"
#include "server/fcgi_frame.h"

/* Bodies beyond this are not even drained: the connection is dropped. nginx
 * caps bodies well below it (client_max_body_size). */
#define DRAIN_MAX (64u * 1024 * 1024)

#define PEEK_MAX (FCGI_PARAMS_MAX + 64 * FCGI_HEADER + 8 * 1024)
#define PEEK_TIMEOUT_MS 3000

/* Peeks at whatever is queued (one recv in the usual case, where nginx has
 * written all params at once) until at least need bytes are there. A peek
 * never waits for more than the first byte, so a short one is retried in
 * short naps. Returns the byte count, 0 when the peer closed first, -1 on
 * error or time-out. */
static ssize_t peek_at_least(int fd, void *buf, size_t cap, size_t need, int64_t deadline)
{
	useconds_t nap = 200;

	for (;;) {
		ssize_t got = recv(fd, buf, cap, MSG_PEEK);
		struct pollfd pf = {fd, POLLRDHUP, 0};

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || (size_t)got >= need)
			return got;
		if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return 0;
		if (mono_ms() >= deadline)
			return -1;
		usleep(nap);
		if (nap < 20000)
			nap *= 2;
	}
}

/* Peeks until the record framing of BEGIN_REQUEST + PARAMS is complete.
 * Returns 1 when the framing is sound, 0 when it is not (f->why), -1 on a
 * read error or time-out. */
static int check_framing(int fd, struct fcgi_frame *f)
{
	static unsigned char buf[PEEK_MAX];
	size_t have = 0;
	int64_t deadline = mono_ms() + PEEK_TIMEOUT_MS;

	for (;;) {
		enum fcgi_frame_verdict v = fcgi_frame_scan(buf, have, f);
		ssize_t got;

		if (v != FRAME_MORE)
			return v == FRAME_SOUND;
		if (f->need > sizeof(buf)) {
			f->why = "PARAMS larger than allowed";
			return 0;
		}
		got = peek_at_least(fd, buf, sizeof(buf), f->need, deadline);
		if (got == 0) {
			f->why = "connection closed before the end of PARAMS";
			return 0;
		}
		if (got < (ssize_t)f->need)
			return -1;
		have = (size_t)got;
	}
}

static void put_record(struct buf *b, unsigned type, unsigned id, const void *p, size_t n)
{
	unsigned char h[FCGI_HEADER] = {1, (unsigned char)type, (unsigned char)(id >> 8),
	    (unsigned char)id, (unsigned char)(n >> 8), (unsigned char)n, 0, 0};

	buf_append(b, h, sizeof(h));
	buf_append(b, p, n);
}

/* A JSON 400 written as raw records: libfcgi never sees this connection. */
static void reply_bad_framing(int fd, unsigned id, const char *why)
{
	struct opsd_uuid u;
	char rid[UUID_STR_LEN + 1];
	static const unsigned char end[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	struct buf body, out;

	uuid7_new(&u);
	uuid_format(&u, rid);
	buf_init(&body);
	buf_init(&out);
	buf_printf(&body,
	    "Status: 400 Bad Request\r\nContent-Type: application/json\r\n"
	    "X-Request-Id: %s\r\nCache-Control: no-store\r\n\r\n"
	    "{\"error\":{\"code\":\"bad_request\",\"message\":",
	    rid);
	buf_json_str(&body, why);
	buf_printf(&body, ",\"details\":{}},\"requestId\":\"%s\"}\n", rid);
	if (!buf_failed(&body) && body.len < 65535) {
		put_record(&out, FCGI_STDOUT_T, id, body.data, body.len);
		put_record(&out, FCGI_STDOUT_T, id, NULL, 0);
		put_record(&out, FCGI_END, id, end, sizeof(end));
		if (!buf_failed(&out) && write(fd, out.data, out.len) < 0)
			log_msg(LL_DEBUG, "fcgi_reply_failed", "%s", strerror(errno));
	}
	buf_free(&body);
	buf_free(&out);
}

static bool peer_allowed(const struct sockaddr_storage *ss, const char *allowed)
{
	char addr[INET6_ADDRSTRLEN];
	const char *a;
	size_t n;

	if (ss->ss_family == AF_UNIX)
		return true;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, addr, sizeof(addr));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, addr,
		    sizeof(addr));
	else
		return false;
	a = str_has_prefix(addr, "::ffff:") ? addr + 7 : addr;
	n = strlen(a);
	if (!allowed || !*allowed)
		return true;
	for (const char *p = allowed; *p;) {
		size_t len = strcspn(p, ",");
		const char *s = p;

		while (len > 0 && *s == ' ')
			s++, len--;
		while (len > 0 && s[len - 1] == ' ')
			len--;
		if (len == n && strncmp(s, a, n) == 0)
			return true;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return false;
}

/* nginx sends the whole request at once (it buffers bodies before passing
 * them on), so a read that waits this long means a stalled peer. Writes are
 * bounded by the master's request timeout instead. */
#define READ_TIMEOUT_S 10

int fcgi_accept_checked(int listen_fd, const char *allowed_clients, const sigset_t *wait_mask)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct fcgi_frame fc;
	struct pollfd lp = {listen_fd, POLLIN, 0};
	int fd, ok;

	/* The only place stop signals get through: ppoll swaps the mask
	 * atomically, so a signal either interrupts this wait or stays pending
	 * until the request in hand is finished. */
	if (ppoll(&lp, 1, NULL, wait_mask) < 0)
		return -1;
	fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
			/* Another worker took it (the socket is non-blocking). */
			errno = EAGAIN;
			return -1;
		}
		if (errno != ECONNABORTED) {
			/* EMFILE and friends: back off instead of spinning. */
			log_msg(LL_ERROR, "accept_failed", "%s", strerror(errno));
			usleep(100 * 1000);
		}
		errno = EAGAIN;
		return -1;
	}
	if (!peer_allowed(&ss, allowed_clients)) {
		log_msg(LL_WARN, "fcgi_peer_refused", "FastCGI peer not in OPSD_ALLOWED_CLIENTS");
		close(fd);
		errno = EAGAIN;
		return -1;
	}
	/* A peer that stalls in the middle of its request cannot hold the worker. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){READ_TIMEOUT_S, 0},
	    sizeof(struct timeval));
	ok = check_framing(fd, &fc);
	if (ok != 1) {
		log_msg(LL_WARN, "fcgi_rejected", "malformed FastCGI request: %s",
		    ok < 0 ? "read failed or timed out" : fc.why);
		if (ok == 0 && fc.request_id)
			reply_bad_framing(fd, fc.request_id, "malformed FastCGI parameters");
		close(fd);
		errno = EAGAIN;
		return -1;
	}
	return fd;
}

static const char *param(const struct req *r, const char *name)
{
	const char *v = req_env(r, name);

	return v ? v : NULL;
}

static void copy_params(FCGX_Request *fr, struct req *r)
{
	size_t n = 0;

	for (char **e = fr->envp; e && *e; e++)
		n++;
	r->param_name = arena_calloc(r->arena, n + 1, sizeof(char *));
	r->param_value = arena_calloc(r->arena, n + 1, sizeof(char *));
	if (!r->param_name || !r->param_value)
		return;
	for (char **e = fr->envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (!eq)
			continue;
		r->param_name[r->nparams] = arena_strndup(r->arena, *e, (size_t)(eq - *e));
		r->param_value[r->nparams] = arena_strdup(r->arena, eq + 1);
		if (r->param_name[r->nparams] && r->param_value[r->nparams])
			r->nparams++;
	}
}

static void split_uri(struct req *r)
{
	const char *uri = param(r, "DOCUMENT_URI");
	const char *q = param(r, "QUERY_STRING");
	const char *full = param(r, "REQUEST_URI");

	/* Prefer the raw REQUEST_URI: DOCUMENT_URI is already decoded and
	 * normalised by nginx, and routing decodes parameters itself. */
	if (full && *full == '/') {
		const char *qm = strchr(full, '?');

		r->path = qm ? arena_strndup(r->arena, full, (size_t)(qm - full)) : full;
		r->query = qm ? qm + 1 : (q ? q : "");
	} else {
		r->path = uri && *uri ? uri : "/";
		r->query = q ? q : "";
	}
	if (!r->path)
		r->path = "/";
}

/* Reads exactly len bytes; returns how many arrived before EOF. */
static size_t read_exact(FCGX_Request *fr, char *dst, size_t len)
{
	size_t got = 0;

	while (got < len) {
		int chunk = len - got > 65536 ? 65536 : (int)(len - got);
		int n = FCGX_GetStr(dst + got, chunk, fr->in);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void drain(FCGX_Request *fr, size_t len)
{
	char sink[8192];

	while (len > 0) {
		int n =
		    FCGX_GetStr(sink, len > sizeof(sink) ? (int)sizeof(sink) : (int)len, fr->in);

		if (n <= 0)
			return;
		len -= (size_t)n;
	}
}

static bool parse_length(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s) {
		*out = 0;
		return true;
	}
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > (unsigned long long)SIZE_MAX / 2)
		return false;
	*out = (size_t)v;
	return true;
}

enum body_state fcgi_read_request(FCGX_Request *fr, struct req *r, size_t max_body)
{
	size_t len;

	copy_params(fr, r);
	r->method = param(r, "REQUEST_METHOD");
	if (!r->method || !*r->method)
		r->method = "GET";
	split_uri(r);
	r->remote_addr = param(r, "REMOTE_ADDR");
	r->content_type = param(r, "CONTENT_TYPE");
	r->user_agent = param(r, "HTTP_USER_AGENT");
	r->cookie = param(r, "HTTP_COOKIE");
	r->authorization = param(r, "HTTP_AUTHORIZATION");
	r->if_none_match = param(r, "HTTP_IF_NONE_MATCH");
	r->csrf_token = param(r, "HTTP_X_CSRF_TOKEN");
	r->request_id = param(r, "REQUEST_ID");

	if (!parse_length(param(r, "CONTENT_LENGTH"), &len))
		return BODY_BAD_LENGTH;
	if (len == 0)
		return BODY_OK;
	if (len > max_body) {
		if (len <= DRAIN_MAX)
			drain(fr, len);
		return BODY_TOO_BIG;
	}
	r->body = arena_alloc(r->arena, len + 1);
	if (!r->body)
		return BODY_TOO_BIG;
	r->body_len = read_exact(fr, r->body, len);
	r->body[r->body_len] = '\0';
	return r->body_len == len ? BODY_OK : BODY_SHORT;
}

/* Header values come from opsd itself, never from the client; anything with
 * a line break would split the response, so it is dropped. */
static void put_header(struct buf *h, const char *name, const char *value)
{
	if (strpbrk(value, "\r\n"))
		return;
	buf_printf(h, "%s: %s\r\n", name, value);
}

/* Status line and headers; Content-Length only for a buffered reply. */
void fcgi_write_head(FCGX_Request *fr, const struct req *r, bool with_length)
{
	/* Kept across requests: the head is built without a malloc. fcgi2's
	 * own printf knows no %zu, so it is formatted here and written once. */
	static struct buf h;
	bool cache_set = false;

	buf_reset(&h);
	buf_printf(&h, "Status: %d %s\r\n", r->status, http_status_text(r->status));
	if (r->content_type_out)
		put_header(&h, "Content-Type", r->content_type_out);
	if (r->request_id)
		put_header(&h, "X-Request-Id", r->request_id);
	for (int i = 0; i < r->nheaders; i++) {
		put_header(&h, r->headers[i].name, r->headers[i].value);
		cache_set |= strcasecmp(r->headers[i].name, "Cache-Control") == 0;
	}
	/* API answers are per-user and live: never cached unless a handler says so. */
	if (!cache_set)
		put_header(&h, "Cache-Control", "no-store");
	if (with_length)
		buf_printf(&h, "Content-Length: %zu\r\n", r->out->len);
	buf_puts(&h, "\r\n");
	FCGX_PutStr(h.data, (int)h.len, fr->out);
}

void fcgi_write_reply(FCGX_Request *fr, const struct req *r, bool head_only)
{
	if (r->streaming)
		return; /* head and body already went out */
	fcgi_write_head(fr, r, true);
	if (!head_only && r->out->len)
		FCGX_PutStr(r->out->data, (int)r->out->len, fr->out);
}
