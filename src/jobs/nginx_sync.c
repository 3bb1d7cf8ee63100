/* The nginx process, "opsd: nginx" (README "Runbook 4", doc/architecture.md): the one process
 * of a host that changes its nginx. The master starts it when OPSD_NGINX_APPLY is on and, unlike
 * the workers and the jobs process, lets it keep the user opsd was started as (root under
 * script/server and systemd), which may write nginx's includes and signal nginx's master. It
 * serves no request and runs no other job: each second (at once when this host changed the
 * blocklist) it renders every include of the table below from the database and hands it to
 * nginx_apply_file, which writes it only when it changed, runs nginx -t, puts the previous
 * file back if that fails, and reloads nginx. Every host runs its own, from the shared
 * database. What it found goes to the scoreboard (/status, /metrics) and to
 * nginx_apply_hosts (which hosts an entry must be applied on). */
#include <poll.h>
#include <stddef.h>
#include <string.h>

#include "core/blocklist_nginx.h"
#include "core/rate_limits.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/nginx_apply.h"
#include "infra/scoreboard.h"
#include "jobs/jobs.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/util.h"

#define PASS_MS 1000    /* every include is checked this often */
#define TICK_MS 100     /* how soon a change made on this host is seen */
#define RETRY_MS 5000   /* a failed attempt is repeated this late, unless the render changes */
#define REPORT_MS 10000 /* nginx_apply_hosts is refreshed at least this often */
#define HOST_LEN 256

/* A render: its text, a digest of everything it stands for (NULL: the text's SHA-256), and
 * what applied() needs. */
struct rendered {
	struct buf *text;
	const uint8_t *digest;
	void *ctx;
};

/* One generated include. render fills r from the database (0 or -1); applied (may be NULL)
 * records that this host's nginx now runs it; release frees what render made. changes: a
 * counter of the scoreboard that moves when this host changed what the include holds (0:
 * none). */
struct include {
	const char *name; /* /status, the metric's label, nginx_apply_hosts.file */
	const char *file; /* written beside nginx.conf */
	int (*render)(struct db *d, struct rendered *r);
	int (*applied)(struct db *d, const char *host, void *ctx);
	void (*release)(struct rendered *r);
	size_t changes;
};

/* ---- the blocklist ------------------------------------------------------ */

static struct blocklist_render blocklist_now;

static void blocklist_skipped(const char *id, void *ctx)
{
	(void)ctx;
	log_msg(LL_WARN, "blocklist_entry_skipped", "entry %s: not a valid CIDR", id);
}

static int blocklist_render(struct db *d, struct rendered *r)
{
	if (blocklist_render_nginx(d, &blocklist_now, blocklist_skipped, NULL) != 0)
		return -1;
	*r = (struct rendered){&blocklist_now.text, blocklist_now.digest, &blocklist_now};
	return 0;
}

static int blocklist_applied(struct db *d, const char *host, void *ctx)
{
	return blocklist_nginx_applied(d, host, ctx);
}

static void blocklist_release(struct rendered *r)
{
	blocklist_render_free(r->ctx);
}

/* ---- nginx's rate limits ------------------------------------------------ */

/* The values in force (configuration, or set at run time: README "Runbook 4", step 2) as
 * nginx's limits include, the file script/render-nginx renders from the configuration at
 * start: so a value set at run time is back in nginx within a second of a start too. The
 * text names the generation of nginx's values, which applied() records. */
struct limits_render {
	struct buf text;
	uint64_t generation;
};

static const struct opsd_config *limits_cfg; /* the process's configuration */
static struct limits_render limits_now;

static int limits_render(struct db *d, struct rendered *r)
{
	struct arena *a = arena_new(16 * 1024);
	struct rate_limits rl;
	int rc = -1;

	buf_init(&limits_now.text);
	if (a && rate_limits_load(d, limits_cfg, a, &rl) == 0 &&
	    rate_limits_nginx_conf(&rl, &limits_now.text) && !buf_failed(&limits_now.text)) {
		limits_now.generation = rl.nginx_generation;
		*r = (struct rendered){&limits_now.text, NULL, &limits_now};
		rc = 0;
	}
	arena_free(a);
	if (rc != 0)
		buf_free(&limits_now.text);
	return rc;
}

static int limits_applied(struct db *d, const char *host, void *ctx)
{
	(void)host;
	return rate_limits_nginx_applied(d, ((const struct limits_render *)ctx)->generation);
}

static void limits_release(struct rendered *r)
{
	buf_free(&((struct limits_render *)r->ctx)->text);
}

/* One row per file opsd generates for nginx. */
static const struct include includes[] = {
    {"blocklist", "opsd-blocklist.conf", blocklist_render, blocklist_applied, blocklist_release,
        offsetof(struct scoreboard, blocklist_generation)},
    {"rate_limits", "opsd-limits.conf", limits_render, limits_applied, limits_release,
        offsetof(struct scoreboard, rate_limits_generation)},
};

_Static_assert(countof(includes) <= SB_NGINX_FILES, "the scoreboard has room for each include");

/* ---- the process ------------------------------------------------------- */

struct include_state {
	struct sb_nginx pub; /* what /status and /metrics show */
	bool reload_pending; /* written, but nginx has not been reloaded with it yet */
	bool acked;          /* applied() recorded the render of digest */
	uint8_t digest[32];  /* the last render handed to nginx */
	int64_t retry_mono;  /* after a failure: the next attempt with the same render */
	int64_t next_mono;   /* the next pass */
	int64_t reported_mono;
	int reported_state;
	uint64_t changes_seen;
	char reported_error[SB_NGINX_ERROR_LEN];
};

struct sync {
	const struct opsd_config *cfg;
	struct scoreboard *sb;
	struct nginx_target target;
	char host[HOST_LEN];
	struct include_state st[countof(includes)];
};

static uint64_t changes_of(const struct sync *s, const struct include *inc)
{
	return inc->changes ? __atomic_load_n((const uint64_t *)(const void *)((const char *)s->sb +
	                                                                       inc->changes),
	                          __ATOMIC_ACQUIRE)
	                    : 0;
}

/* nginx_apply_hosts, at each change of state or error and every REPORT_MS. */
static void report(struct db *d, const struct sync *s, const struct include *inc,
    struct include_state *st)
{
	struct nginx_host_report r = {s->host, inc->name,
	    scoreboard_nginx_state_name(st->pub.state), st->pub.success_ms, st->pub.error_ms,
	    st->pub.error[0] ? st->pub.error : NULL, st->pub.failures};

	if (st->pub.state == st->reported_state && strcmp(st->pub.error, st->reported_error) == 0 &&
	    mono_ms() - st->reported_mono < REPORT_MS)
		return;
	if (nginx_host_report(d, &r) != 0)
		return;
	st->reported_mono = mono_ms();
	st->reported_state = st->pub.state;
	str_copy(st->reported_error, st->pub.error, sizeof(st->reported_error));
}

static void set_state(struct include_state *st, const struct include *inc, int state,
    const char *msg)
{
	if (state != st->pub.state || (state == SBN_FAILING && strcmp(msg, st->pub.error) != 0)) {
		struct logline *l = log_begin(state == SBN_FAILING ? LL_ERROR : LL_INFO,
		    state == SBN_FAILING ? "nginx_apply_failed" : "nginx_apply_state");

		log_str(l, "file", inc->name);
		log_str(l, "state", scoreboard_nginx_state_name(state));
		log_str(l, "msg", msg);
		log_end(l);
	}
	st->pub.state = state;
}

/* One pass over one include: render, apply, record. */
static void pass(struct db *d, struct sync *s, size_t i)
{
	const struct include *inc = &includes[i];
	struct include_state *st = &s->st[i];
	struct rendered r;
	uint8_t text_digest[32];
	char msg[SB_NGINX_ERROR_LEN];
	enum nginx_apply res;
	int64_t now = now_ms();

	st->changes_seen = changes_of(s, inc);
	if (inc->render(d, &r) != 0) {
		log_msg(LL_WARN, "nginx_render_failed", "%s: %s", inc->name, db_error(d));
		return;
	}
	if (!r.digest) {
		sha256_raw(r.text->data ? r.text->data : "", r.text->len, text_digest);
		r.digest = text_digest;
	}
	/* A failure is tried again after RETRY_MS, or at once when the render changed. */
	if (st->pub.state == SBN_FAILING && mono_ms() < st->retry_mono &&
	    memcmp(st->digest, r.digest, sizeof(st->digest)) == 0)
		goto done;
	if (memcmp(st->digest, r.digest, sizeof(st->digest)) != 0)
		st->acked = false;
	memcpy(st->digest, r.digest, sizeof(st->digest));
	res = nginx_apply_file(&s->target, inc->file, r.text->data ? r.text->data : "", r.text->len,
	    st->reload_pending ? NGINX_APPLY_RELOAD : 0, msg, sizeof(msg));
	st->pub.checked_ms = now;
	switch (res) {
	case NGINX_APPLY_RELOADED:
		st->pub.reload_ms = now;
		log_msg(LL_INFO, "nginx_applied", "%s: %s", inc->name, msg);
		/* fall through */
	case NGINX_APPLY_UNCHANGED:
		st->reload_pending = false;
		st->pub.success_ms = now;
		set_state(st, inc, SBN_IN_SYNC, msg);
		if (!st->acked && (!inc->applied || inc->applied(d, s->host, r.ctx) == 0))
			st->acked = true;
		break;
	case NGINX_APPLY_NOT_RUNNING:
		st->reload_pending = true;
		set_state(st, inc, SBN_WAITING, msg);
		break;
	default:
		st->reload_pending = true;
		st->pub.failures++;
		st->pub.error_ms = now;
		st->retry_mono = mono_ms() + RETRY_MS;
		set_state(st, inc, SBN_FAILING, msg);
		str_copy(st->pub.error, msg, sizeof(st->pub.error));
		break;
	}
	scoreboard_nginx_write(s->sb, (int)i, &st->pub);
done:
	report(d, s, inc, st);
	inc->release(&r);
}

static void sync_init(struct sync *s, const struct opsd_config *cfg, struct scoreboard *sb)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	limits_cfg = cfg;
	s->sb = sb;
	nginx_target_from_config(cfg, &s->target);
	nginx_host_name(s->host, sizeof(s->host));
	for (size_t i = 0; i < countof(includes); i++) {
		struct include_state *st = &s->st[i];

		/* A replaced nginx process (a reload of opsd) goes on with the counts and times
		 * of the one before: the failures counter only grows while the master runs. */
		if (!scoreboard_nginx_read(sb, (int)i, &st->pub) ||
		    strcmp(st->pub.name, includes[i].name) != 0) {
			memset(&st->pub, 0, sizeof(st->pub));
			str_copy(st->pub.name, includes[i].name, sizeof(st->pub.name));
		}
		st->pub.state = SBN_STARTING;
		st->reported_state = -1;
		scoreboard_nginx_write(sb, (int)i, &st->pub);
	}
}

int nginx_sync_main(const struct opsd_config *cfg, struct scoreboard *sb, int slot)
{
	static struct sync s;
	struct db *db = NULL;

	jobs_install_signals();
	log_set_role("nginx");
	sync_init(&s, cfg, sb);
	scoreboard_set_state(sb, slot, SB_IDLE);
	log_msg(LL_INFO, "nginx_sync_started", "applying to %s (pid file %s) as host %s",
	    s.target.conf, s.target.pid_file, s.host);
	while (!jobs_stopping()) {
		int64_t now = mono_ms();

		for (size_t i = 0; i < countof(includes) && !jobs_stopping(); i++) {
			struct include_state *st = &s.st[i];

			if (now < st->next_mono && changes_of(&s, &includes[i]) == st->changes_seen)
				continue;
			st->next_mono = now + PASS_MS;
			if (!jobs_db_ready(cfg, &db))
				break;
			scoreboard_set_state(sb, slot, SB_BUSY);
			pass(db, &s, i);
			scoreboard_set_state(sb, slot, SB_IDLE);
		}
		poll(NULL, 0, TICK_MS);
	}
	db_close(db);
	return 0;
}
