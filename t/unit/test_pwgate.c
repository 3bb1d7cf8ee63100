#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infra/pwgate.h"
#include "lib/util.h"

#define MIB ((uint64_t)1 << 20)

/* 128 * r * N: the default cost is 128 MiB, the tests' (ln 10) 1 MiB. */
static void test_cost(void **state)
{
	(void)state;
	assert_int_equal(pwgate_cost(17, 8), 128 * MIB);
	assert_int_equal(pwgate_cost(10, 8), 1 * MIB);
	assert_int_equal(pwgate_cost(22, 8), 4096 * MIB);
}

/* (available - reserve) / cost, at least 1, at most what leaves a worker
 * free once the waiters (half the workers) are counted. */
static void test_slots_for(void **state)
{
	(void)state;
	uint64_t c = 128 * MIB, res = PWGATE_RESERVE_BYTES;

	assert_int_equal(pwgate_slots_for(res + 4 * c, res, c, 16), 4);
	assert_int_equal(pwgate_slots_for(res + 4 * c + c - 1, res, c, 16), 4);
	/* 3 workers: 1 waiting + 1 checking leave one for the other routes */
	assert_int_equal(pwgate_slots_for(res + 4 * c, res, c, 3), 1);
	assert_int_equal(pwgate_slots_for(res + 4 * c, res, c, 4), 1);
	assert_int_equal(pwgate_slots_for(res + 4 * c, res, c, 12), 4);
	/* less than the reserve, or nothing known: one slot, never none */
	assert_int_equal(pwgate_slots_for(res - 1, res, c, 16), 1);
	assert_int_equal(pwgate_slots_for(0, res, c, 16), 1);
	assert_int_equal(pwgate_slots_for(res + c - 1, res, c, 16), 1);
	/* a huge host is still bounded by the workers and the table */
	assert_int_equal(pwgate_slots_for(UINT64_MAX, res, c, 8), 3);
	assert_int_equal(pwgate_slots_for(UINT64_MAX, res, c, 1), 1);
	assert_int_equal(pwgate_slots_for(UINT64_MAX, res, 1, 5000), PWGATE_MAX_SLOTS);
	assert_int_equal(pwgate_slots_for(UINT64_MAX, res, c, 0), 1);
	assert_int_equal(pwgate_slots_for(UINT64_MAX, res, 0, 4), 1);
}

static void test_waiters_for(void **state)
{
	(void)state;
	assert_int_equal(pwgate_waiters_for(1), 1);
	assert_int_equal(pwgate_waiters_for(2), 1);
	assert_int_equal(pwgate_waiters_for(12), 6);
	assert_int_equal(pwgate_waiters_for(0), 1);
	assert_int_equal(pwgate_waiters_for(5000), PWGATE_MAX_SLOTS);
}

static void test_meminfo(void **state)
{
	(void)state;
	assert_int_equal(pwgate_meminfo_available("MemTotal:       16316412 kB\n"
	                                          "MemFree:         1093112 kB\n"
	                                          "MemAvailable:    9524316 kB\n"
	                                          "Buffers:          601212 kB\n"),
	    (uint64_t)9524316 * 1024);
	assert_int_equal(pwgate_meminfo_available("MemAvailable: 1024 kB\n"), 1024 * 1024);
	assert_int_equal(pwgate_meminfo_available("MemTotal: 1 kB\nMemFree: 2 kB\n"), 0);
	assert_int_equal(pwgate_meminfo_available(""), 0);
	assert_int_equal(pwgate_meminfo_available(NULL), 0);
}

static void test_cgroup_room(void **state)
{
	(void)state;
	assert_int_equal(pwgate_cgroup_room("1073741824\n", "268435456\n"), 768 * MIB);
	assert_int_equal(pwgate_cgroup_room("max\n", "268435456\n"), UINT64_MAX);
	assert_int_equal(pwgate_cgroup_room("100\n", "200\n"), 0);
	assert_int_equal(pwgate_cgroup_room("junk", "1"), UINT64_MAX);
	assert_int_equal(pwgate_cgroup_room(NULL, "1"), UINT64_MAX);
}

/* Fork a process that takes a slot (or waits for one) and reports on fd. */
static pid_t child_entering(int fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char c = pwgate_enter() ? 'y' : 'n';

		if (write(fd, &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	return pid;
}

static void test_cgroup_path(void **state)
{
	(void)state;
	char p[64];
	const char *hybrid = "9:name=systemd:/\n4:memory:/process_api/ab22\n1:cpu:/\n0::/\n";

	assert_true(pwgate_cgroup_path("0::/system.slice/opsd.service\n", "", p, sizeof(p)));
	assert_string_equal(p, "/system.slice/opsd.service");
	assert_true(pwgate_cgroup_path(hybrid, "memory", p, sizeof(p)));
	assert_string_equal(p, "/process_api/ab22");
	assert_true(pwgate_cgroup_path(hybrid, "", p, sizeof(p)));
	assert_string_equal(p, "/");
	assert_false(pwgate_cgroup_path("4:memory:/a\n", "", p, sizeof(p)));
	assert_false(pwgate_cgroup_path("4:cpu,cpuacct:/a\n", "memory", p, sizeof(p)));
	assert_false(pwgate_cgroup_path("0::/a-path-much-longer-than-the-eight-bytes", "", p, 8));
	assert_false(pwgate_cgroup_path("", "", p, sizeof(p)));
	/* v1's "no limit" is a huge number: the room is MemAvailable's to bound */
	assert_true(
	    pwgate_cgroup_room("9223372036854771712\n", "3588579328\n") > ((uint64_t)1 << 60));
}

/* One slot, one place in the queue (two workers): a nested enter takes no
 * second slot; with the slot held, one check waits and is refused after
 * the wait, another finding the queue full is refused at once; killed, the
 * holder's slot is taken over. */
static void test_slot_queue_and_recovery(void **state)
{
	(void)state;
	int fd[2];
	char c;
	pid_t holder, waiter;
	int64_t t0;

	assert_true(pwgate_enter()); /* no table yet: nothing to take */
	pwgate_leave();
	assert_int_equal(pwgate_init(1, 2, 10), 0);
	assert_int_equal(pwgate_slots(), 1);
	assert_true(pwgate_enter());
	assert_true(pwgate_enter());
	pwgate_leave();
	pwgate_leave();

	assert_int_equal(pipe(fd), 0);
	holder = child_entering(fd[1]);
	assert_int_equal(read(fd[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	int64_t spawned = mono_ms();
	waiter = child_entering(fd[1]);
	/* wait (not sleep) until the waiter holds the one place of the queue */
	for (int64_t end = mono_ms() + 10000; pwgate_waiting() < 1 && mono_ms() < end;)
		usleep(1000);
	assert_int_equal(pwgate_waiting(), 1);
	t0 = mono_ms();
	assert_false(pwgate_enter()); /* the queue is full: refused at once */
	assert_true(mono_ms() - t0 < PWGATE_WAIT_MS);
	assert_int_equal(read(fd[0], &c, 1), 1);
	assert_int_equal(c, 'n');
	assert_true(mono_ms() - spawned >= PWGATE_WAIT_MS - 10);

	kill(holder, SIGKILL);
	kill(waiter, SIGKILL);
	waitpid(holder, NULL, 0);
	waitpid(waiter, NULL, 0);
	assert_true(pwgate_enter());
	pwgate_leave();
	close(fd[0]);
	close(fd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cost),
	    cmocka_unit_test(test_slots_for),
	    cmocka_unit_test(test_waiters_for),
	    cmocka_unit_test(test_meminfo),
	    cmocka_unit_test(test_cgroup_room),
	    cmocka_unit_test(test_cgroup_path),
	    cmocka_unit_test(test_slot_queue_and_recovery),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
