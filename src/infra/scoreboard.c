#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "infra/scoreboard.h"
#include "lib/util.h"

struct scoreboard *scoreboard_create(void)
{
	void *p = mmap(NULL, sizeof(struct scoreboard), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, sizeof(struct scoreboard));
	((struct scoreboard *)p)->start_ms = now_ms();
	return p;
}

int scoreboard_claim(struct scoreboard *sb, pid_t pid, enum sb_kind kind)
{
	for (int i = 0; i < SB_MAX_SLOTS; i++) {
		struct sb_slot *s = &sb->slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SB_FREE || s->pid != 0)
			continue;
		memset(s, 0, sizeof(*s));
		s->pid = pid;
		s->kind = kind;
		s->generation = sb->generation;
		s->started_ms = now_ms();
		__atomic_store_n(&s->state, SB_STARTING, __ATOMIC_RELEASE);
		return i;
	}
	return -1;
}

void scoreboard_release(struct scoreboard *sb, int slot)
{
	if (slot < 0 || slot >= SB_MAX_SLOTS)
		return;
	__atomic_store_n(&sb->slots[slot].state, SB_FREE, __ATOMIC_RELEASE);
	sb->slots[slot].pid = 0;
}

int scoreboard_find(const struct scoreboard *sb, pid_t pid)
{
	for (int i = 0; i < SB_MAX_SLOTS; i++)
		if (sb->slots[i].pid == pid)
			return i;
	return -1;
}

void scoreboard_request_start(struct scoreboard *sb, int slot, const char *method, const char *uri,
    const char *request_id)
{
	struct sb_slot *s = &sb->slots[slot];

	str_copy(s->method, method ? method : "", sizeof(s->method));
	str_copy(s->uri, uri ? uri : "", sizeof(s->uri));
	str_copy(s->request_id, request_id ? request_id : "", sizeof(s->request_id));
	s->req_start_ms = now_ms();
	s->slow_logged = false;
	__atomic_store_n(&s->req_start_mono, mono_ms(), __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, SB_BUSY, __ATOMIC_RELEASE);
	__atomic_add_fetch(&sb->accepted_conn, 1, __ATOMIC_RELAXED);
}

void scoreboard_request_end(struct scoreboard *sb, int slot, int status, int64_t duration_us)
{
	struct sb_slot *s = &sb->slots[slot];

	s->last_status = status;
	s->last_duration_us = duration_us;
	s->requests++;
	__atomic_store_n(&s->state, SB_IDLE, __ATOMIC_RELEASE);
}

void scoreboard_set_state(struct scoreboard *sb, int slot, enum sb_state st)
{
	__atomic_store_n(&sb->slots[slot].state, st, __ATOMIC_RELEASE);
}

int scoreboard_state(const struct scoreboard *sb, int slot)
{
	return __atomic_load_n(&sb->slots[slot].state, __ATOMIC_ACQUIRE);
}

void scoreboard_count(const struct scoreboard *sb, unsigned generation, struct sb_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < SB_MAX_SLOTS; i++) {
		const struct sb_slot *s = &sb->slots[i];
		int st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (st == SB_FREE || s->kind != SB_WORKER)
			continue;
		/* Workers of an older generation are draining after a reload:
		 * they are not spares of the current pool. */
		if (s->generation != generation) {
			if (st == SB_BUSY)
				out->busy++;
			continue;
		}
		out->total++;
		if (st == SB_IDLE)
			out->idle++;
		else if (st == SB_BUSY)
			out->busy++;
		else if (st == SB_STARTING)
			out->starting++;
	}
}

const char *scoreboard_state_name(int st)
{
	static const char *const names[] = {
	    [SB_FREE] = "free",
	    [SB_STARTING] = "starting",
	    [SB_IDLE] = "idle",
	    [SB_BUSY] = "running",
	    [SB_EXITING] = "finishing",
	};

	if (st < 0 || st >= (int)countof(names))
		return "unknown";
	return names[st];
}

void scoreboard_nginx_write(struct scoreboard *sb, int i, const struct sb_nginx *v)
{
	struct sb_nginx *e = &sb->nginx[i];
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);

	__atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	str_copy(e->name, v->name, sizeof(e->name));
	e->state = v->state;
	e->failures = v->failures;
	e->checked_ms = v->checked_ms;
	e->success_ms = v->success_ms;
	e->reload_ms = v->reload_ms;
	e->error_ms = v->error_ms;
	str_copy(e->error, v->error, sizeof(e->error));
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

bool scoreboard_nginx_read(const struct scoreboard *sb, int i, struct sb_nginx *out)
{
	const struct sb_nginx *e = &sb->nginx[i];

	/* A writer holds the entry for microseconds: a few tries always suffice. */
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t before = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);

		if (before & 1)
			continue;
		memcpy(out, e, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == before) {
			out->name[sizeof(out->name) - 1] = '\0';
			out->error[sizeof(out->error) - 1] = '\0';
			return out->name[0] != '\0';
		}
	}
	return false;
}

const char *scoreboard_nginx_state_name(int st)
{
	static const char *const names[] = {
	    [SBN_STARTING] = "starting",
	    [SBN_IN_SYNC] = "in_sync",
	    [SBN_WAITING] = "waiting_for_nginx",
	    [SBN_FAILING] = "failing",
	};

	return st >= 0 && st < SBN__MAX ? names[st] : "unknown";
}
