#include "lib/holder.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

long holder_pid(const char *holder, const char *host, const char *ns)
{
	size_t hl = strlen(host), nl = strlen(ns);
	const char *p = holder;
	char *end;
	long pid;

	if (hl == 0 || nl == 0 || strncmp(p, host, hl) != 0 || p[hl] != ':')
		return 0;
	p += hl + 1;
	if (strncmp(p, ns, nl) != 0 || p[nl] != ':')
		return 0;
	p += nl + 1;
	if (*p < '1' || *p > '9')
		return 0;
	errno = 0;
	pid = strtol(p, &end, 10);
	return *end == '\0' && errno == 0 && pid <= 0x7fffffff ? pid : 0;
}

void holder_ns(char *out, size_t size)
{
	struct stat st;
	char boot[64] = "", hex[33];
	size_t n = 0;
	FILE *f;

	out[0] = '\0';
	if (stat("/proc/self/ns/pid", &st) != 0)
		return;
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (f == NULL)
		return;
	if (fgets(boot, sizeof(boot), f) == NULL)
		boot[0] = '\0';
	fclose(f);
	for (const char *b = boot; *b != '\0' && *b != '\n' && n + 1 < sizeof(hex); b++)
		if (*b != '-')
			hex[n++] = *b;
	hex[n] = '\0';
	if (n == 32)
		snprintf(out, size, "%llu-%s", (unsigned long long)st.st_ino, hex);
}

static struct {
	pid_t pid;
	char host[64], ns[54], name[HOLDER_MAX];
} self;

static void self_update(void)
{
	if (self.pid == getpid())
		return;
	self.pid = getpid();
	memset(self.host, 0, sizeof(self.host));
	if (gethostname(self.host, sizeof(self.host) - 1) != 0 || !self.host[0])
		snprintf(self.host, sizeof(self.host), "localhost");
	holder_ns(self.ns, sizeof(self.ns));
	snprintf(self.name, sizeof(self.name), "%s:%s:%d", self.host, self.ns, (int)self.pid);
}

const char *holder_self(void)
{
	self_update();
	return self.name;
}

bool holder_gone(const char *holder)
{
	long pid;

	self_update();
	pid = holder_pid(holder, self.host, self.ns);
	if (pid <= 0 || pid == (long)self.pid)
		return false;
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}
