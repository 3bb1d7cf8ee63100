/* Who holds a claim or a lease (mail delivery claims, cluster-wide job leases,
 * the schema migration lock): "host:ns:pid", ns naming the PID namespace the
 * pid belongs to. On several hosts (README "Running on several hosts") a claim
 * says which host took it; on this host and in this namespace, whether its
 * process is still alive. */
#ifndef OPSD_HOLDER_H
#define OPSD_HOLDER_H

#include <stdbool.h>
#include <stddef.h>

/* At most 127 characters: host (< 64) + ns (<= 53) + pid (<= 10) + 2. */
#define HOLDER_MAX 128

/* The pid of a holder taken on `host` in namespace `ns`, so one whose process
 * this one can look up; 0 for any other (another host or namespace, the older
 * "host:pid" form, an unknown ns ""): such holders are left to their lease. */
long holder_pid(const char *holder, const char *host, const char *ns);

/* This process's PID namespace: "<inode of /proc/self/ns/pid>-<boot id, 32 hex
 * digits>" (at most 53 characters), so that namespaces on different machines
 * never compare equal even under one host name; "" when /proc does not tell. */
void holder_ns(char *out, size_t size);

/* This process's holder name (recomputed after a fork). The first call of a
 * process makes it: a process with threads calls it before it starts them. */
const char *holder_self(void);

/* The holder is a process of this host and PID namespace, not this one, and it
 * is gone (killed or crashed): what it held need not wait for its lease. A live
 * process, a pid another user's process has taken since, or a holder of another
 * host or namespace is not gone. */
bool holder_gone(const char *holder);

#endif
