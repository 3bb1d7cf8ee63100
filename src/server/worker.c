#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "api/pipeline.h"
#include "http/http.h"
#include "http/router.h"
#include "infra/config.h"
#include "infra/metrics.h"
#include "infra/scoreboard.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/uuid.h"
#include "server/fcgi.h"
#include "server/worker.h"

static volatile sig_atomic_t stopping;

/* SIGQUIT: finish the current request, then leave. fcgi2 only stops its
 * accept loop when told through FCGX_ShutdownPending. */
static void on_quit(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

/* The mask while waiting for a connection: everything open. Outside that
 * wait SIGQUIT stays blocked, so a graceful stop or reload never interrupts
 * a read or write of the request in hand (libfcgi does not retry EINTR). */
static sigset_t wait_mask;

static void install_signals(void)
{
	struct sigaction sa;
	sigset_t quit;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: accept() must return EINTR so the worker can leave. */
	sa.sa_handler = on_quit;
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&wait_mask);
	sigemptyset(&quit);
	sigaddset(&quit, SIGQUIT);
	sigprocmask(SIG_SETMASK, &quit, NULL);
}

/* nginx's $request_id is 32 hex digits; anything odd that arrives over a
 * direct FastCGI connection is replaced rather than echoed into headers. */
static const char *sane_request_id(struct arena *a, const char *rid)
{
	struct opsd_uuid u;
	char buf[UUID_STR_LEN + 1];
	size_t n = 0;

	if (rid) {
		for (; rid[n] && n <= 64; n++) {
			char c = rid[n];

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.'))
				break;
		}
		if (n > 0 && n <= 64 && rid[n] == '\0')
			return rid;
	}
	uuid7_new(&u);
	uuid_format(&u, buf);
	return arena_strdup(a, buf);
}

static void stream_head(struct req *r)
{
	fcgi_write_head(r->stream_ctx, r, false);
}

static void stream_body(struct req *r, const void *p, size_t n)
{
	FCGX_PutStr(p, (int)n, ((FCGX_Request *)r->stream_ctx)->out);
}

static void log_request(const struct req *r, int64_t dur_us, int slowlog_ms)
{
	bool slow = slowlog_ms > 0 && dur_us >= (int64_t)slowlog_ms * 1000;
	/* nginx's access log has every request; opsd's has the ones an operator
	 * looks for: failed (>= 400) and slow. Successful ones are debug. */
	enum log_level lvl = slow               ? LL_WARN
	                     : r->status >= 500 ? LL_ERROR
	                     : r->status >= 400 ? LL_INFO
	                                        : LL_DEBUG;
	struct logline *l = log_begin(lvl, slow ? "slow_request" : "request");

	log_str(l, "method", r->method);
	log_str(l, "path", r->path);
	log_str(l, "route", r->route ? r->route->name : "unmatched");
	log_int(l, "status", r->status);
	log_dbl(l, "durationMs", (double)dur_us / 1000.0);
	log_str(l, "remoteAddr", r->remote_addr);
	if (r->error_code)
		log_str(l, "errorCode", r->error_code);
	log_end(l);
}

static void handle(FCGX_Request *fr, struct req *r, const struct worker_args *wa)
{
	const struct opsd_config *cfg = wa->cfg;
	bool head;
	int64_t dur;

	r->cfg = cfg;
	r->server = &wa->server;
	r->stream_ctx = fr;
	r->stream_head = stream_head;
	r->stream_body = stream_body;
	r->start_us = mono_us();
	r->route_index = -1;
	r->body_state = fcgi_read_request(fr, r, JSON_MAX_BODY);
	r->request_id = sane_request_id(r->arena, r->request_id);
	log_set_request_id(r->request_id);
	scoreboard_request_start(wa->sb, wa->slot, r->method, r->path, r->request_id);

	pipeline_run(r, cfg->env == ENV_TEST);

	head = strcmp(r->method, "HEAD") == 0;
	fcgi_write_reply(fr, r, head);
	dur = mono_us() - r->start_us;
	metrics_request(r->route_index, r->status, dur);
	log_request(r, dur, cfg->slowlog_ms);
	if (cfg->slowlog_ms > 0 && dur >= (int64_t)cfg->slowlog_ms * 1000)
		__atomic_add_fetch(&wa->sb->slow_requests, 1, __ATOMIC_RELAXED);
	scoreboard_request_end(wa->sb, wa->slot, r->status, dur);
	json_wipe_strings(r->json);
	if (r->json)
		json_object_put(r->json);
	log_set_request_id(NULL);
}

int worker_main(const struct worker_args *wa)
{
	FCGX_Request fr;
	struct arena *arena = arena_new(64 * 1024);
	struct buf out;
	uint64_t served = 0;
	int rc = 0;

	log_set_role("worker");
	/* Fixed thresholds: glibc would otherwise raise both after the first
	 * large free (an export's buffers), keeping a big request's memory in
	 * the heap for the worker's whole life. Above 128 KiB a block is
	 * mapped and returned at free; a heap top above 256 KiB is trimmed. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024);
	buf_init(&out);
	if (!arena) {
		log_msg(LL_ERROR, "worker_start_failed", "out of memory");
		return 1;
	}
	/* The listen socket is not given to libfcgi: fcgi_accept_checked
	 * accepts and vets each connection, then hands it over as ipcFd. */
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, -1, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_msg(LL_ERROR, "worker_start_failed", "FCGX_Init failed");
		return 1;
	}
	/* After FCGX_Init: libfcgi installs its own SIGTERM/SIGUSR1 handlers
	 * that only set shutdownPending, which would leave a worker spinning
	 * instead of stopping. Ours replace them. */
	install_signals();
	pipeline_start(wa->cfg, wa->sb);

	scoreboard_set_state(wa->sb, wa->slot, SB_IDLE);
	while (!stopping) {
		struct req r;
		int fd = fcgi_accept_checked(wa->listen_fd, wa->cfg->allowed_clients, &wait_mask);

		if (fd < 0)
			continue;
		/* keepConnection makes FCGX_Accept_r read from our fd instead of
		 * closing it; a protocol error it still finds closes the fd and
		 * fails on the invalid listen socket, which is just a refusal. */
		fr.ipcFd = fd;
		fr.keepConnection = 1;
		if (FCGX_Accept_r(&fr) < 0) {
			if (fr.ipcFd >= 0)
				close(fr.ipcFd);
			fr.ipcFd = -1;
			log_msg(LL_WARN, "fcgi_rejected", "libfcgi refused the request");
			continue;
		}
		memset(&r, 0, sizeof(r));
		r.arena = arena;
		r.out = &out;
		handle(&fr, &r, wa);
		FCGX_Finish_r(&fr);
		/* FCGI_KEEP_CONN is not served: one request per connection. */
		if (fr.ipcFd >= 0) {
			close(fr.ipcFd);
			fr.ipcFd = -1;
		}
		arena_reset(arena);
		buf_reset(&out);
		if (out.cap > 4 * 1024 * 1024) {
			buf_free(&out);
			buf_init(&out);
		}
		served++;
		if (wa->cfg->max_requests > 0 && served >= (uint64_t)wa->cfg->max_requests) {
			log_msg(LL_INFO, "worker_recycle", "served %llu requests",
			    (unsigned long long)served);
			break;
		}
	}
	scoreboard_set_state(wa->sb, wa->slot, SB_EXITING);
	FCGX_Free(&fr, 1);
	pipeline_stop();
	buf_free(&out);
	arena_free(arena);
	return rc;
}
