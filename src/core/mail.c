#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/mail.h"
#include "core/users.h"
#include "infra/config.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "infra/metrics.h"
#include "infra/smtp.h"
#include "lib/arena.h"
#include "lib/holder.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/util.h"

const char *const mail_status_names[MAIL__STATUS_MAX + 1] = {
    [MAIL_QUEUED] = "queued",
    [MAIL_SENDING] = "sending",
    [MAIL_SENT] = "sent",
    [MAIL_FAILED] = "failed",
    [MAIL_SUPPRESSED] = "suppressed",
    [MAIL__STATUS_MAX] = NULL,
};

const char *mail_status_name(enum mail_status s)
{
	return (unsigned)s < MAIL__STATUS_MAX ? mail_status_names[s] : "unknown";
}

int mail_status_from_name(const char *name)
{
	for (size_t i = 0; name && i < MAIL__STATUS_MAX; i++)
		if (strcmp(name, mail_status_names[i]) == 0)
			return (int)i;
	return -1;
}

bool mail_may_send_to(const struct opsd_config *cfg, const char *addr)
{
	const char *list = cfg->test_email_allowlist;
	const char *at = strrchr(addr, '@');

	if (!cfg->smtp_test_mode)
		return true;
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		const char *s = p;

		while (n > 0 && (*s == ' ' || *s == '\t'))
			s++, n--;
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		/* "@domain" matches that domain exactly; anything else one address. */
		if (n > 0 &&
		    ((s[0] == '@' && at && strlen(at) == n && strncasecmp(at, s, n) == 0) ||
		        (strlen(addr) == n && strncasecmp(addr, s, n) == 0)))
			return true;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return false;
}

static struct json_object *string_or_null(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

/* The allowlist's entries, trimmed, in their order. */
static struct json_object *allowlist_json(const char *list)
{
	struct json_object *arr = json_object_new_array();

	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		const char *s = p;

		while (n > 0 && (*s == ' ' || *s == '\t'))
			s++, n--;
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n > 0)
			json_object_array_add(arr, json_object_new_string_len(s, (int)n));
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return arr;
}

struct json_object *mail_settings_json(const struct opsd_config *cfg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "server", string_or_null(cfg->smtp_server));
	json_object_object_add(o, "port", json_object_new_int(cfg->smtp_port));
	json_object_object_add(o, "secure",
	    json_object_new_string(cfg->smtp_secure == SMTP_STARTTLS ? "starttls" : "none"));
	json_object_object_add(o, "user", string_or_null(cfg->smtp_user));
	json_object_object_add(o, "passwordSet", json_object_new_boolean(cfg->smtp_pass != NULL));
	json_object_object_add(o, "from", string_or_null(cfg->smtp_from));
	json_object_object_add(o, "caFile", string_or_null(cfg->smtp_ca_file));
	json_object_object_add(o, "testMode", json_object_new_boolean(cfg->smtp_test_mode));
	json_object_object_add(o, "allowlist", allowlist_json(cfg->test_email_allowlist));
	return o;
}

void mail_mask(const char *addr, char *out, size_t out_len)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	if (!at || at == addr)
		snprintf(out, out_len, "***");
	else
		snprintf(out, out_len, "%c***%s", addr[0], at);
}

static bool text_ok(const char *s, bool one_line)
{
	if (!s || !utf8_valid(s, strlen(s)))
		return false;
	return !one_line || strpbrk(s, "\r\n") == NULL;
}

/* A per-event counter and its log line; the address is masked. */
static void note(const char *event, const char *id, const char *to, const char *detail)
{
	char masked[300];
	struct logline *l = log_begin(strcmp(event, "email.sent") == 0 ? LL_INFO : LL_WARN, event);

	mail_mask(to, masked, sizeof(masked));
	log_str(l, "outboxId", id);
	log_str(l, "to", masked);
	if (detail)
		log_str(l, "detail", detail);
	log_end(l);
}

enum mail_err mail_enqueue(struct db *d, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *kind, const char *to, const char *subject,
    const char *body, char id_out[UUID_STR_LEN + 1], enum mail_status *status)
{
	char addr[256];
	struct opsd_uuid id;
	bool allowed;

	if (!email_normalize(to, addr, sizeof(addr)))
		return MAIL_BAD_ADDRESS;
	if (!text_ok(subject, true) || !text_ok(body, false) || strlen(subject) > 998)
		return MAIL_BAD_CONTENT;
	allowed = mail_may_send_to(cfg, addr);
	*status = allowed ? MAIL_QUEUED : MAIL_SUPPRESSED;
	uuid7_new(&id);
	uuid_format(&id, id_out);
	{
		struct db_param p[] = {
		    DBP_BLOB(id.b, 16),
		    DBP_STR(kind),
		    DBP_STR(addr),
		    DBP_STR(subject),
		    DBP_STR(body),
		    DBP_STR(mail_status_name(*status)),
		    DBP_STR(actor->request_id),
		};

		if (db_exec(d,
		        "INSERT INTO email_outbox (id, kind, to_addr, subject, body, status,"
		        " next_attempt_at, request_id) VALUES (?, ?, ?, ?, ?, ?, NOW(3), ?)",
		        p, countof(p), NULL) != 0)
			return MAIL_DB_ERROR;
	}
	if (!allowed) {
		struct json_object *payload = json_object_new_object();

		json_object_object_add(payload, "kind", json_object_new_string(kind));
		json_object_object_add(payload, "reason", json_object_new_string("test mode"));
		if (audit_append(d, actor, AA_EMAIL_SUPPRESSED, NULL, "email", id_out, payload) !=
		    0)
			return MAIL_DB_ERROR;
		metrics_email(EMAIL_SUPPRESSED);
		note("email.suppressed", id_out, addr, "not in TEST_EMAIL_ALLOWLIST (test mode)");
	}
	return MAIL_OK;
}

void mail_smtp_settings(const struct opsd_config *cfg, struct smtp_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->server = cfg->smtp_server;
	s->port = cfg->smtp_port;
	s->user = cfg->smtp_user;
	s->pass = cfg->smtp_pass;
	s->from = cfg->smtp_from;
	s->starttls = cfg->smtp_secure == SMTP_STARTTLS;
	s->ca_file = cfg->smtp_ca_file;
	s->timeout_s = 30;
}

/* ---- delivery ---------------------------------------------------------- */

/* A batch is claimed for CLAIM_LEASE; at worst each message takes a few
 * 30-second SMTP steps, so 5 messages finish well inside 30 minutes and no
 * other host re-queues a message still being sent. */
#define CLAIM_BATCH 5
#define CLAIM_LEASE "30 MINUTE"

struct claim_tx {
	struct arena *a;
	const char *holder;
	struct db_rows rows;
};

static int reclaim_gone(struct db *d, struct claim_tx *x)
{
	struct db_rows held;

	if (db_query(d, x->a,
	        "SELECT DISTINCT claimed_by FROM email_outbox WHERE status = 'sending'"
	        " AND claimed_by IS NOT NULL",
	        NULL, 0, &held) != 0)
		return -1;
	for (size_t i = 0; i < held.nrows; i++) {
		struct db_param p[] = {DBP_STR(held.val[i][0])};
		unsigned long long n = 0;

		if (!holder_gone(held.val[i][0]))
			continue;
		if (db_exec(d,
		        "UPDATE email_outbox SET status = 'queued', claimed_by = NULL,"
		        " claimed_until = NULL WHERE status = 'sending' AND claimed_by = ?",
		        p, 1, &n) != 0)
			return -1;
		log_msg(LL_WARN, "email_claim_reclaimed",
		    "%llu message(s) claimed by %s, a process that is gone, queued again", n,
		    held.val[i][0]);
	}
	return 0;
}

/* Due rows, and rows a crashed sender left in 'sending', are claimed in one
 * short transaction; SKIP LOCKED lets other hosts take the rest. */
static int claim_fn(struct db *d, void *arg)
{
	struct claim_tx *x = arg;
	struct db_param lim[] = {DBP_I64(CLAIM_BATCH)};

	if (reclaim_gone(d, x) != 0)
		return -1;
	if (db_exec(d,
	        "UPDATE email_outbox SET status = 'queued', claimed_by = NULL"
	        " WHERE status = 'sending' AND claimed_until < NOW(3)",
	        NULL, 0, NULL) != 0)
		return -1;
	if (db_query(d, x->a,
	        "SELECT id, to_addr, subject, body, attempts, request_id FROM email_outbox"
	        " WHERE status = 'queued' AND next_attempt_at <= NOW(3)"
	        " ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED",
	        lim, 1, &x->rows) != 0)
		return -1;
	for (size_t i = 0; i < x->rows.nrows; i++) {
		struct db_param p[] = {DBP_STR(x->holder),
		    DBP_BLOB(x->rows.val[i][0], x->rows.len[i][0])};

		if (db_exec(d,
		        "UPDATE email_outbox SET status = 'sending', claimed_by = ?,"
		        " claimed_until = NOW(3) + INTERVAL " CLAIM_LEASE " WHERE id = ?",
		        p, countof(p), NULL) != 0)
			return -1;
	}
	return 0;
}

struct outcome_tx {
	const struct opsd_config *cfg;
	const char *holder;
	const uint8_t *id;
	const char *id_s;
	long long attempts; /* after this one */
	const struct smtp_result *res;
	enum mail_status final;
	bool retry_now; /* handed over to the next jobs process: due at once */
	const char *request_id;
};

static int outcome_fn(struct db *d, void *arg)
{
	struct outcome_tx *x = arg;
	const struct smtp_result *res = x->res;
	struct audit_actor a = {NULL, "system", NULL, x->request_id};
	struct json_object *payload = json_object_new_object();
	bool retry = x->final == MAIL_QUEUED;
	long long delay = (long long)x->cfg->smtp_retry_base_s
	                  << (x->attempts > 12 ? 12 : x->attempts - 1);
	struct db_param p[] = {
	    DBP_STR(mail_status_name(x->final)),
	    DBP_I64(x->attempts),
	    res->status ? DBP_I64(res->status) : DBP_NULL,
	    x->final == MAIL_SENT ? DBP_NULL : DBP_STR(res->error),
	    DBP_I64(x->final == MAIL_SENT),
	    DBP_I64(x->retry_now   ? 0
	            : delay > 3600 ? 3600
	                           : delay),
	    DBP_BLOB(x->id, 16),
	    DBP_STR(x->holder),
	};
	unsigned long long mine = 0;

	/* Only while the claim is still ours: never overwrite another
	 * sender's outcome. */
	if (db_exec(d,
	        "UPDATE email_outbox SET status = ?, attempts = ?, last_smtp_status = ?,"
	        " last_error = ?, sent_at = IF(?, NOW(3), sent_at), claimed_by = NULL,"
	        " claimed_until = NULL, next_attempt_at = NOW(3) + INTERVAL ? SECOND"
	        " WHERE id = ? AND status = 'sending' AND claimed_by = ?",
	        p, countof(p), &mine) != 0) {
		json_object_put(payload);
		return -1;
	}
	if (mine == 0) {
		log_msg(LL_WARN, "email_claim_lost", "outbox %s was claimed by another sender",
		    x->id_s);
		json_object_put(payload);
		return 0;
	}
	json_object_object_add(payload, "attempt", json_object_new_int64(x->attempts));
	json_object_object_add(payload, "smtpStatus",
	    res->status ? json_object_new_int(res->status) : NULL);
	if (x->final != MAIL_SENT) {
		json_object_object_add(payload, "step", json_object_new_string(res->step));
		json_object_object_add(payload, "willRetry", json_object_new_boolean(retry));
	}
	return audit_append(d, &a, x->final == MAIL_SENT ? AA_EMAIL_SENT : AA_EMAIL_FAILED, NULL,
	    "email", x->id_s, payload);
}

/* Test mode is checked again at delivery: a message queued before the
 * allowlist changed still never leaves the host. */
static int suppress_fn(struct db *d, void *arg)
{
	struct outcome_tx *x = arg;
	struct audit_actor a = {NULL, "system", NULL, x->request_id};
	struct db_param p[] = {DBP_BLOB(x->id, 16)};

	if (db_exec(d,
	        "UPDATE email_outbox SET status = 'suppressed', claimed_by = NULL,"
	        " claimed_until = NULL WHERE id = ?",
	        p, 1, NULL) != 0)
		return -1;
	return audit_append(d, &a, AA_EMAIL_SUPPRESSED, NULL, "email", x->id_s, NULL);
}

/* ---- a jobs process that is leaving ------------------------------------ */

/* The jobs process's stop flag: set when the master asks it to leave, at a
 * reload (which starts its successor with the new configuration at once) or
 * a stop. */
static volatile sig_atomic_t *leaving_flag;

void mail_attach_stop_flag(volatile sig_atomic_t *flag)
{
	leaving_flag = flag;
}

static bool leaving(void)
{
	return leaving_flag && *leaving_flag;
}

/* libESMTP's reads and writes give up when a signal interrupts their wait
 * for the socket: a stop signal arriving while the server takes the message
 * would record a message it accepted as a retry, and send it twice. The
 * stop signals wait until the session is over. */
static void send_whole_session(const struct smtp_settings *s, const struct mail_message *m,
    struct smtp_result *res)
{
	sigset_t stop, old;

	sigemptyset(&stop);
	sigaddset(&stop, SIGQUIT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, &old);
	smtp_send(s, m, res);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

bool mail_settings_changed(const struct opsd_config *a, const struct opsd_config *b)
{
	const char *const sa[] = {a->smtp_server, a->smtp_user, a->smtp_pass};
	const char *const sb[] = {b->smtp_server, b->smtp_user, b->smtp_pass};

	for (size_t i = 0; i < countof(sa); i++)
		if ((sa[i] == NULL) != (sb[i] == NULL) || (sa[i] && strcmp(sa[i], sb[i]) != 0))
			return true;
	return a->smtp_port != b->smtp_port;
}

/* Records an attempt's outcome (the row, its audit event), counts and logs it; false when
 * the transaction failed (then counted and logged only when always). */
static bool record(struct db *d, struct outcome_tx *x, const char *to, bool always)
{
	bool ok = db_tx(d, outcome_fn, x) == 0;

	if (!ok)
		log_msg(LL_ERROR, "email_record_failed", "%s", db_error(d));
	if (!ok && !always)
		return false;
	metrics_email(x->final == MAIL_SENT     ? EMAIL_SENT
	              : x->final == MAIL_FAILED ? EMAIL_FAILED
	                                        : EMAIL_RETRY);
	note(x->final == MAIL_SENT ? "email.sent" : "email.failed", x->id_s, to,
	    x->final == MAIL_SENT ? NULL : x->res->error);
	return ok;
}

struct accepted_ctx {
	struct db *d;
	struct outcome_tx *x;
	const char *to;
	struct smtp_result res;
	bool recorded;
};

/* The relay took the message (its 2xx to the end of the data): recorded at once, while
 * the session is still open, so a sender that dies before QUIT is answered does not send
 * it again (README "Runbook 5", the duplicate window). */
static void on_accepted(void *arg, int status)
{
	struct accepted_ctx *c = arg;

	c->res = (struct smtp_result){.outcome = SMTP_SENT, .status = status};
	str_copy(c->res.step, "done", sizeof(c->res.step));
	c->x->res = &c->res;
	c->x->final = MAIL_SENT;
	c->recorded = record(c->d, c->x, c->to, false);
}

static void deliver_one(struct db *d, const struct opsd_config *cfg, const char *holder,
    const struct db_rows *rows, size_t i)
{
	struct outcome_tx x = {.cfg = cfg,
	    .holder = holder,
	    .id = (const uint8_t *)rows->val[i][0]};
	struct smtp_settings s;
	struct mail_message m;
	struct smtp_result res;
	char id_s[UUID_STR_LEN + 1], msgid[UUID_STR_LEN + 300];
	const char *to = rows->val[i][1], *from_at;
	struct accepted_ctx acc = {.d = d, .x = &x, .to = to};

	dbv_uuid(rows->val[i][0], rows->len[i][0], id_s);
	x.id_s = id_s;
	x.request_id = rows->val[i][5];
	if (!mail_may_send_to(cfg, to)) {
		if (db_tx(d, suppress_fn, &x) != 0)
			log_msg(LL_ERROR, "email_record_failed", "%s", db_error(d));
		metrics_email(EMAIL_SUPPRESSED);
		note("email.suppressed", id_s, to, "not in TEST_EMAIL_ALLOWLIST (test mode)");
		return;
	}
	mail_smtp_settings(cfg, &s);
	s.accepted = on_accepted;
	s.accepted_arg = &acc;
	x.attempts = strtoll(rows->val[i][4], NULL, 10) + 1;
	from_at = s.from ? strrchr(s.from, '@') : NULL;
	snprintf(msgid, sizeof(msgid), "%s%s", id_s, from_at ? from_at : "@opsd.invalid");
	m = (struct mail_message){msgid, to, rows->val[i][2], rows->val[i][3], now_ms()};
	if (!s.server) {
		memset(&res, 0, sizeof(res));
		res.outcome = SMTP_RETRY;
		str_copy(res.step, "connect", sizeof(res.step));
		str_copy(res.error, "connect: SMTP_SERVER is not set", sizeof(res.error));
	} else {
		send_whole_session(&s, &m, &res);
	}
	if (acc.recorded) {
		if (res.outcome != SMTP_SENT)
			log_msg(LL_WARN, "email_session_after_accept",
			    "outbox %s: the relay accepted it, then the session ended with %s",
			    id_s, res.error);
		return;
	}
	x.res = &res;
	x.final = res.outcome == SMTP_SENT ? MAIL_SENT
	          : res.outcome == SMTP_FAILED || x.attempts >= cfg->smtp_max_attempts
	              ? MAIL_FAILED
	              : MAIL_QUEUED;
	/* An AUTH refusal met while this process is being replaced (a reload,
	 * perhaps with new credentials: README "Runbook 7") says nothing about
	 * the message: the successor tries it at once. */
	if (res.outcome != SMTP_SENT && strcmp(res.step, "auth") == 0 && leaving()) {
		x.final = MAIL_QUEUED;
		x.retry_now = true;
	}
	record(d, &x, to, true);
}

struct release_tx {
	const char *holder;
	const struct db_rows *rows;
	size_t from;
};

/* Claims a leaving process has not started on go back to the queue for its
 * successor, which sends them with the configuration in force. */
static int release_fn(struct db *d, void *arg)
{
	struct release_tx *x = arg;

	for (size_t i = x->from; i < x->rows->nrows; i++) {
		struct db_param p[] = {DBP_BLOB(x->rows->val[i][0], x->rows->len[i][0]),
		    DBP_STR(x->holder)};

		if (db_exec(d,
		        "UPDATE email_outbox SET status = 'queued', claimed_by = NULL,"
		        " claimed_until = NULL WHERE id = ? AND status = 'sending' AND claimed_by = ?",
		        p, countof(p), NULL) != 0)
			return -1;
	}
	return 0;
}

/* At most this many re-queued per transaction (and per run of the outbox
 * job: the jobs loop runs it again while a batch comes back full). */
#define REQUEUE_BATCH 1000

struct requeue_tx {
	struct arena *a;
	long long from_ms, until_ms; /* the replaced settings' time in force */
	size_t n;
};

/* Messages that failed at AUTH while the replaced SMTP settings were in
 * force were refused for the credentials, not for themselves: queued again,
 * each audited as email.retry_requested by the system. */
static int requeue_fn(struct db *d, void *arg)
{
	struct requeue_tx *x = arg;
	struct db_param q[] = {DBP_I64(x->from_ms), DBP_I64(x->until_ms), DBP_I64(REQUEUE_BATCH)};
	struct db_rows rows;

	if (db_query(d, x->a,
	        "SELECT id, request_id FROM email_outbox WHERE status = 'failed'"
	        " AND last_error LIKE 'auth:%' AND updated_at >= FROM_UNIXTIME(? / 1000)"
	        " AND updated_at < FROM_UNIXTIME(? / 1000) ORDER BY id LIMIT ? FOR UPDATE",
	        q, countof(q), &rows) != 0)
		return -1;
	for (size_t i = 0; i < rows.nrows; i++) {
		struct db_param p[] = {DBP_BLOB(rows.val[i][0], rows.len[i][0])};
		struct audit_actor a = {NULL, "system", NULL, rows.val[i][1]};
		struct json_object *payload = json_object_new_object();
		char id_s[UUID_STR_LEN + 1];

		if (db_exec(d,
		        "UPDATE email_outbox SET status = 'queued', next_attempt_at = NOW(3)"
		        " WHERE id = ?",
		        p, 1, NULL) != 0) {
			json_object_put(payload);
			return -1;
		}
		dbv_uuid(rows.val[i][0], rows.len[i][0], id_s);
		json_object_object_add(payload, "reason",
		    json_object_new_string("SMTP settings changed since it failed at AUTH"));
		if (audit_append(d, &a, AA_EMAIL_RETRY_REQUESTED, NULL, "email", id_s, payload) !=
		    0)
			return -1;
	}
	x->n = rows.nrows;
	return 0;
}

/* After a reload that changed the SMTP settings: one batch a run until a
 * batch comes back short (then nothing more in this jobs process); 1 while
 * there may be more. Only failures from [smtp_replaced_since_ms,
 * smtp_since_ms), the replaced settings' time in force: the master keeps
 * both in its configuration, so every jobs process it starts with these
 * settings (one that crashed and was started again too) has the same
 * window, and a message queued again leaves it (its updated_at moves past
 * the end). A restarted jobs process re-queues nothing twice, and nothing
 * that failed at AUTH under the new settings. The ends are this host's
 * clock, updated_at the database's: hosts and database are assumed to
 * agree to well under a second (NTP). */
static int requeue_auth_failures(struct db *d, const struct opsd_config *cfg, struct arena *a)
{
	static bool done;
	struct requeue_tx x = {a, cfg->smtp_replaced_since_ms, cfg->smtp_since_ms, 0};

	if (done || x.from_ms <= 0)
		return 0;
	if (db_tx(d, requeue_fn, &x) != 0)
		return -1;
	done = x.n < REQUEUE_BATCH;
	if (x.n > 0)
		log_msg(LL_INFO, "email_requeued",
		    "%zu message(s) that failed at AUTH under the previous SMTP settings queued "
		    "again",
		    x.n);
	return done ? 0 : 1;
}

int mail_deliver_due(struct db *d, const struct opsd_config *cfg)
{
	struct claim_tx x = {.a = arena_new(64 * 1024)};
	const char *holder = holder_self(); /* fits claimed_by, VARCHAR(128) */
	int rc = -1, more;

	if (!x.a)
		return -1;
	x.holder = holder;
	more = requeue_auth_failures(d, cfg, x.a);
	if (more < 0 || db_tx(d, claim_fn, &x) != 0)
		goto out;
	for (size_t i = 0; i < x.rows.nrows; i++) {
		if (leaving()) {
			struct release_tx r = {holder, &x.rows, i};

			if (db_tx(d, release_fn, &r) != 0)
				log_msg(LL_ERROR, "email_release_failed", "%s", db_error(d));
			break;
		}
		deliver_one(d, cfg, holder, &x.rows, i);
	}
	rc = more;
out:
	arena_free(x.a);
	return rc;
}

struct retry_tx {
	struct arena *a;
	const struct audit_actor *actor;
	const struct opsd_uuid *id;
	const char *id_text;
	enum mail_retry_rc rc;
};

static int retry_fn(struct db *d, void *arg)
{
	struct retry_tx *x = arg;
	struct db_rows rows;
	struct db_param p[] = {DBP_BLOB(x->id->b, 16)};

	if (db_query(d, x->a, "SELECT status FROM email_outbox WHERE id = ? FOR UPDATE", p, 1,
	        &rows) != 0)
		return -1;
	if (rows.nrows != 1) {
		x->rc = MAIL_RETRY_NOT_FOUND;
		return 1;
	}
	if (strcmp(rows.val[0][0], "failed") != 0) {
		x->rc = MAIL_RETRY_NOT_FAILED;
		return 1;
	}
	if (db_exec(d,
	        "UPDATE email_outbox SET status = 'queued', attempts = 0,"
	        " next_attempt_at = NOW(3) WHERE id = ?",
	        p, 1, NULL) != 0)
		return -1;
	return audit_append(d, x->actor, AA_EMAIL_RETRY_REQUESTED, NULL, "email", x->id_text, NULL);
}

enum mail_retry_rc mail_retry(struct db *d, struct arena *a, const struct audit_actor *actor,
    const struct opsd_uuid *id, const char *id_text)
{
	struct retry_tx x = {a, actor, id, id_text, MAIL_RETRY_OK};

	return db_tx(d, retry_fn, &x) < 0 ? MAIL_RETRY_DB_ERROR : x.rc;
}

/* ---- operators: the test message and the outbox ------------------------ */

struct test_tx {
	const struct opsd_config *cfg;
	const struct audit_actor *actor;
	const char *to, *origin;
	char *id;
	enum mail_status *status;
	enum mail_err err;
};

static int test_fn(struct db *d, void *arg)
{
	struct test_tx *x = arg;
	struct json_object *payload;
	char body[512];

	snprintf(body, sizeof(body),
	    "This is a test message from opsd.\n\n%s\nIf you did not expect it, you can ignore "
	    "it.\n",
	    x->origin);
	x->err = mail_enqueue(d, x->cfg, x->actor, "test", x->to, "opsd test message", body, x->id,
	    x->status);
	if (x->err != MAIL_OK)
		return x->err == MAIL_DB_ERROR ? -1 : 1;
	payload = json_object_new_object();
	json_object_object_add(payload, "status",
	    json_object_new_string(mail_status_name(*x->status)));
	return audit_append(d, x->actor, AA_EMAIL_TEST_REQUESTED, NULL, "email", x->id, payload);
}

enum mail_err mail_send_test(struct db *d, const struct opsd_config *cfg,
    const struct audit_actor *actor, const char *to, const char *origin,
    char id_out[UUID_STR_LEN + 1], enum mail_status *status)
{
	struct test_tx x = {cfg, actor, to, origin, id_out, status, MAIL_OK};
	int rc = db_tx(d, test_fn, &x);

	return x.err != MAIL_OK ? x.err : rc != 0 ? MAIL_DB_ERROR : MAIL_OK;
}

struct json_object *mail_outbox_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 0));
	json_object_object_add(o, "kind", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "to", dbv_json_str(rows, i, 2));
	json_object_object_add(o, "subject", dbv_json_str(rows, i, 3));
	json_object_object_add(o, "status", dbv_json_str(rows, i, 4));
	json_object_object_add(o, "attempts", dbv_json_int(rows, i, 5));
	json_object_object_add(o, "nextAttemptAt", dbv_json_time(rows, i, 6));
	json_object_object_add(o, "lastSmtpStatus", dbv_json_int(rows, i, 7));
	json_object_object_add(o, "lastError", dbv_json_str(rows, i, 8));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, i, 9));
	json_object_object_add(o, "sentAt", dbv_json_time(rows, i, 10));
	return o;
}

int mail_outbox_get(struct db *d, struct arena *a, const struct opsd_uuid *id, struct db_rows *rows)
{
	struct db_param p[] = {DBP_BLOB(id->b, 16)};

	return db_query(d, a, "SELECT " MAIL_OUTBOX_COLUMNS " FROM email_outbox WHERE id = ?", p, 1,
	    rows);
}
