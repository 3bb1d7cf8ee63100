/* Secrets in memory (see secret.h). */
#include "lib/secret.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

void secret_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void secret_free_str(char *s)
{
	if (s != NULL)
		secret_wipe(s, strlen(s));
	free(s);
}

bool process_forbid_core_dumps(void)
{
	const struct rlimit none = {0, 0};
	bool ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;

	return setrlimit(RLIMIT_CORE, &none) == 0 && ok;
}
