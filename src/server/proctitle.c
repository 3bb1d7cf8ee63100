#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "lib/util.h"
#include "server/proctitle.h"

extern char **environ;

static char *title_start;
static size_t title_len;

void proctitle_init(int argc, char **argv)
{
	char *end;
	size_t n = 0;
	char **env;

	if (argc < 1 || !argv[0])
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	while (environ[n])
		n++;
	/* The environment strings usually follow argv: take them too, after
	 * copying them to the heap so getenv keeps working. */
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return;
	for (size_t i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		env[i] = strdup(environ[i]);
		if (!env[i])
			return;
	}
	environ = env;
	title_start = argv[0];
	title_len = (size_t)(end - argv[0]);
}

void proctitle_set(const char *title)
{
	char comm[16];

	str_copy(comm, title, sizeof(comm));
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (!title_start || title_len < 2)
		return;
	memset(title_start, 0, title_len);
	str_copy(title_start, title, title_len - 1);
}
