/* Secrets in memory (README "Hardening"): the one way opsd overwrites a secret it no longer
 * needs, and the process setting that keeps secrets out of core files. Includes nothing of
 * opsd's, so that every lib file may use it. */
#ifndef OPSD_SECRET_H
#define OPSD_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Overwrites n bytes in a way the compiler may not drop as a dead store (before a free, at the
 * end of a scope). NULL or 0 bytes is fine. */
void secret_wipe(void *p, size_t n);
/* Wipes a NUL-terminated string, then frees it (NULL is fine). */
void secret_free_str(char *s);
/* No core file and no ptrace or /proc/PID/{environ,mem} access by the process's own user: for
 * every process that holds a secret, called before it reads one (PR_SET_DUMPABLE 0,
 * RLIMIT_CORE 0). Inherited across fork and setuid, not across exec. false when the kernel
 * refused. */
bool process_forbid_core_dumps(void);

#endif
