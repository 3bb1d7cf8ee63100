/* Claim and lease holders (lib/holder): which holders this process may look up by pid,
 * and the PID namespace identity written into its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include "lib/holder.h"

#define NS "4026531836-0f3c9a2b7d6e41f08a5b2c3d4e5f6a7b"

static void test_claim_pid(void **state)
{
	(void)state;
	assert_int_equal(holder_pid("web1:" NS ":1234", "web1", NS), 1234);
	assert_int_equal(holder_pid("web1:" NS ":1", "web1", NS), 1);
	/* another PID namespace under the same host name: a container, the other colour */
	assert_int_equal(
	    holder_pid("web1:4026532201-0f3c9a2b7d6e41f08a5b2c3d4e5f6a7b:1234", "web1", NS), 0);
	/* the same namespace inode on another machine (another boot id) */
	assert_int_equal(
	    holder_pid("web1:4026531836-99999999999999999999999999999999:1234", "web1", NS), 0);
	/* the older "host:pid" form: left to the lease */
	assert_int_equal(holder_pid("web1:1234", "web1", NS), 0);
	/* another host, a host name that is a prefix of another */
	assert_int_equal(holder_pid("web2:" NS ":1234", "web1", NS), 0);
	assert_int_equal(holder_pid("web10:" NS ":1234", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ":1234", "web", NS), 0);
	/* a namespace that is a prefix of ours, or ours a prefix of it */
	assert_int_equal(holder_pid("web1:4026531836-0f3c:1234", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS "0:1234", "web1", NS), 0);
	/* this process's namespace unknown, or no host name: nothing is looked up */
	assert_int_equal(holder_pid("web1::1234", "web1", ""), 0);
	assert_int_equal(holder_pid(":" NS ":1234", "", NS), 0);
	/* not a pid */
	assert_int_equal(holder_pid("web1:" NS ":", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ":0", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ":-5", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ": 12", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ":12x", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ":99999999999", "web1", NS), 0);
	assert_int_equal(holder_pid("web1:" NS ":99999999999999999999999", "web1", NS), 0);
}

static void test_claim_ns(void **state)
{
	char ns[54], again[54];
	unsigned long long ino = 0;
	char hex[40] = "";

	(void)state;
	holder_ns(ns, sizeof(ns));
	/* Linux with /proc mounted: "<inode>-<32 hex digits>", the same on every call */
	assert_int_equal(sscanf(ns, "%llu-%39s", &ino, hex), 2);
	assert_true(ino > 0);
	assert_int_equal(strlen(hex), 32);
	assert_int_equal(strspn(hex, "0123456789abcdef"), 32);
	assert_true(strlen(ns) <= 53);
	holder_ns(again, sizeof(again));
	assert_string_equal(ns, again);
	/* what this process writes into a claim, it finds again */
	char holder[129];
	snprintf(holder, sizeof(holder), "%s:%s:%d", "host", ns, 4321);
	assert_int_equal(holder_pid(holder, "host", ns), 4321);
}

/* holder_self names this process; holder_gone is true only for a gone process of this
 * host and namespace. */
static void test_self_and_gone(void **state)
{
	char ns[54], want[200], host[64] = "", dead[200];
	pid_t child;

	(void)state;
	holder_ns(ns, sizeof(ns));
	gethostname(host, sizeof(host) - 1);
	snprintf(want, sizeof(want), "%s:%s:%d", host, ns, (int)getpid());
	assert_string_equal(holder_self(), want);
	assert_true(strlen(holder_self()) < HOLDER_MAX);
	assert_false(holder_gone(holder_self()));
	child = fork();
	if (child == 0)
		_exit(0);
	assert_true(child > 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	snprintf(dead, sizeof(dead), "%s:%s:%d", host, ns, (int)child);
	assert_true(holder_gone(dead));
	/* the same pid on another host, or in another namespace, is left to its lease */
	snprintf(dead, sizeof(dead), "%s-other:%s:%d", host, ns, (int)child);
	assert_false(holder_gone(dead));
	snprintf(dead, sizeof(dead), "%s:1-00000000000000000000000000000000:%d", host, (int)child);
	assert_false(holder_gone(dead));
	/* pid 1 is alive (or not ours to signal): never gone */
	snprintf(dead, sizeof(dead), "%s:%s:1", host, ns);
	assert_false(holder_gone(dead));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_claim_pid),
	    cmocka_unit_test(test_claim_ns),
	    cmocka_unit_test(test_self_and_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
