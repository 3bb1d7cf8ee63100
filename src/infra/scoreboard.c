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
