/* The pool's shared memory (README "The process model and signals"): one slot per worker, written
 * by the worker, read by the master (request timeouts, spare counting) and by /status. Mapped
 * MAP_SHARED before the first fork and kept across reloads. */
#ifndef OPSD_SCOREBOARD_H
#define OPSD_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAX_SLOTS 1024
#define SB_URI_LEN 128
#define SB_RID_LEN 48

enum sb_state { SB_FREE = 0, SB_STARTING, SB_IDLE, SB_BUSY, SB_EXITING };
/* SB_NGINX: the nginx process (jobs/nginx_sync.c), which keeps the master's user. */
enum sb_kind { SB_WORKER = 1, SB_JOBS, SB_NGINX };

struct sb_slot {
	pid_t pid;
	int kind;               /* enum sb_kind */
	int state;              /* enum sb_state, written with release order */
	unsigned generation;    /* reload generation that spawned it */
	int64_t started_ms;     /* process start, realtime */
	uint64_t requests;      /* requests served */
	int64_t req_start_mono; /* monotonic ms of the current request */
	int64_t req_start_ms;   /* realtime ms of the current request */
	int64_t last_duration_us;
	int last_status;
	bool slow_logged; /* the master already reported this one as slow */
	char method[8];
	char uri[SB_URI_LEN];
	char request_id[SB_RID_LEN];
};

/* The nginx process's report on each include it keeps applied to this host's nginx (README
 * "Runbook 4"), read by /status and /metrics. One writer; readers copy it under seq. */
#define SB_NGINX_FILES 4
#define SB_NGINX_ERROR_LEN 512
enum sb_nginx_state {
	SBN_STARTING, /* no pass finished yet */
	SBN_IN_SYNC,  /* nginx runs the current render */
	SBN_WAITING,  /* written and tested; nginx is not running (it reads it when it starts) */
	SBN_FAILING,  /* the last attempt failed: error says why */
	SBN__MAX,
};
struct sb_nginx {
	uint32_t seq;       /* odd while the nginx process writes */
	char name[16];      /* "blocklist"; empty: the entry is unused */
	int state;          /* enum sb_nginx_state */
	uint64_t failures;  /* failed attempts since the master started */
	int64_t checked_ms; /* the last pass (realtime ms; 0: never) */
	int64_t success_ms; /* the last pass that found nginx running the current render */
	int64_t reload_ms;  /* the last write or reload that brought it there */
	int64_t error_ms;   /* the last failure */
	char error[SB_NGINX_ERROR_LEN];
};

struct scoreboard {
	int64_t start_ms;       /* master start, realtime */
	uint64_t accepted_conn; /* every accepted request since start */
	uint64_t slow_requests;
	uint64_t timeouts; /* requests killed at OPSD_REQUEST_TIMEOUT */
	uint64_t max_children_reached;
	uint64_t worker_restarts;      /* abnormal worker exits */
	uint64_t legal_generation;     /* bumped by every publish: workers drop their cache */
	uint64_t blocklist_generation; /* bumped by every blocklist change: workers reload it */
	uint64_t
	    rate_limits_generation; /* bumped by every rate limit change: workers reread them */
	int max_active;
	int pm; /* enum opsd_pm of the running config */
	int workers_max;
	unsigned generation;
	struct sb_nginx nginx[SB_NGINX_FILES];
	struct sb_slot slots[SB_MAX_SLOTS];
};

/* Maps the board (anonymous shared memory). NULL on failure. */
struct scoreboard *scoreboard_create(void);
/* Claims a free slot for pid; -1 when full. Called by the master. */
int scoreboard_claim(struct scoreboard *sb, pid_t pid, enum sb_kind kind);
void scoreboard_release(struct scoreboard *sb, int slot);
int scoreboard_find(const struct scoreboard *sb, pid_t pid);

/* Worker side: mark the start and end of a request. */
void scoreboard_request_start(struct scoreboard *sb, int slot, const char *method, const char *uri,
    const char *request_id);
void scoreboard_request_end(struct scoreboard *sb, int slot, int status, int64_t duration_us);
void scoreboard_set_state(struct scoreboard *sb, int slot, enum sb_state st);
int scoreboard_state(const struct scoreboard *sb, int slot);

struct sb_counts {
	int idle;
	int busy;
	int starting;
	int total; /* workers only, not the jobs process */
};
void scoreboard_count(const struct scoreboard *sb, unsigned generation, struct sb_counts *out);

const char *scoreboard_state_name(int st);

/* The nginx process publishes entry i; readers get a consistent copy (false: unused). */
void scoreboard_nginx_write(struct scoreboard *sb, int i, const struct sb_nginx *v);
bool scoreboard_nginx_read(const struct scoreboard *sb, int i, struct sb_nginx *out);
/* "starting", "in_sync", "waiting_for_nginx", "failing". */
const char *scoreboard_nginx_state_name(int st);

#endif
